"""Streaming input sharding (surd.sources.plan): row files per shard under _state/plan, written once; repeated keys
marked exactly as a walk over the whole list would; memory bounded by a shard, not by the list."""

from __future__ import annotations

import json
import random
import tracemalloc

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from surd import shards
from surd.runner import plan_tasks, run_stage
from surd.sample import make_key
from surd.sources.plan import MARKER, duplicate_positions, plan_dir, plan_rows
from surd.sources.rows import make_row
from surd.stages import build_config, get_stage


def _rows(n: int, seed: int = 0, dup_every: int = 0, error_every: int = 0):
    rng = random.Random(seed)
    for i in range(n):
        sid = f"id-{rng.randrange(n // 2)}" if dup_every and i % dup_every == 0 else f"id-{i}"
        yield make_row(source="t", source_id=sid, image=f"http://127.0.0.1:9/{i}.jpg", complex_prompt=f"p {i}",
                       error="missing_url" if error_every and i % error_every == 0 else None,
                       extra={"n": i, "pad": "x" * 200})


def _set_walk(rows: list[dict]) -> list[str | None]:
    """The old planner's rule, over the whole list in memory: a key seen before marks a not-yet-rejected row."""
    seen, out = set(), []
    for r in rows:
        key = make_key(r["source"], r["source_id"])
        out.append("duplicate_key" if key in seen and not r.get("error") else r.get("error"))
        seen.add(key)
    return out


def test_plan_writes_row_files_and_marks_repeats_like_a_full_walk(tmp_path):
    rows = list(_rows(2500, seed=1, dup_every=3, error_every=7))
    planned = plan_rows(iter(json.loads(json.dumps(rows))), str(tmp_path), 400)
    assert [p.stem for p in planned] == [f"{i:05d}" for i in range(7)] and [p.n for p in planned] == [400] * 6 + [100]
    got = [r for p in planned for r in shards.read_rows(p.rows)]
    assert [r.get("error") for r in got] == _set_walk(rows)
    assert [r["__key__"] for r in got] == [make_key("t", r["source_id"]) for r in rows]
    assert got[5]["extra"] == rows[5]["extra"]  # rows round-trip whole
    marker = json.loads((tmp_path / "plan" / MARKER).read_text())
    assert marker["rows"] == 2500 and marker["shards"] == [p.n for p in planned]
    assert marker["duplicate_keys"] == sum(e == "duplicate_key" for e in _set_walk(rows)) > 0


def test_duplicate_positions_first_occurrence_wins_even_if_rejected():
    keys = np.array([5, 3, 5, 5, 3, 9], dtype=np.uint64)
    errored = np.array([True, False, False, True, False, False])
    assert duplicate_positions(keys, errored).tolist() == [2, 4]  # 3 is rejected already; 0 (errored) still wins


def test_a_finished_plan_is_reused_without_listing(tmp_path):
    first = plan_rows(_rows(50), str(tmp_path), 20)

    def must_not_list():
        raise AssertionError("a finished plan must not list the source again")
        yield

    assert plan_rows(must_not_list(), str(tmp_path), 20) == first


def test_a_cut_short_plan_is_made_again(tmp_path):
    def dies_half_way():
        for i, row in enumerate(_rows(50)):
            if i == 30:
                raise KeyboardInterrupt
            yield row

    with pytest.raises(KeyboardInterrupt):
        plan_rows(dies_half_way(), str(tmp_path), 20)
    assert not (tmp_path / "plan" / MARKER).exists()
    planned = plan_rows(_rows(50), str(tmp_path), 20)
    assert [p.n for p in planned] == [20, 20, 10]


def test_a_changed_input_list_is_refused(tmp_path):
    plan_rows(_rows(10), str(tmp_path), 4, {"size": 10})
    with pytest.raises(ValueError, match="input list changed"):
        plan_rows(_rows(10), str(tmp_path), 4, {"size": 11})


def _traced_peak(fn) -> tuple[object, int]:
    tracemalloc.start()
    try:
        out = fn()
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_planning_memory_is_bounded_by_a_shard_not_the_list(tmp_path):
    n, shard = 20_000, 500
    plan_rows(_rows(10), str(tmp_path / "warm"), 5)  # imports (pyarrow loads pandas lazily) are not the plan's memory
    planned, peak = _traced_peak(lambda: plan_rows(_rows(n), str(tmp_path / "plan"), shard))
    _, whole = _traced_peak(lambda: list(_rows(n)))  # what the old planner held: every row at once
    assert sum(p.n for p in planned) == n
    assert peak < whole / 5, (peak, whole)


def test_ingest_knows_its_shard_count_before_downloading(tmp_path):
    """A 2,500-row img2dataset-style Parquet list: planning lists and shards it without one request."""
    table = pa.table({"url": [f"http://127.0.0.1:9/{i}.jpg" for i in range(2500)],
                      "caption": [f"caption {i}" for i in range(2500)]})
    pq.write_table(table, tmp_path / "list.parquet")
    module = get_stage("ingest")
    cfg = build_config(module, {"source": "urls", "path": str(tmp_path / "list.parquet"), "shard_size": 1000})
    tasks = plan_tasks(module, cfg, str(tmp_path / "out"), None)
    assert [(t.stem, t.n_in) for t in tasks] == [("00000", 1000), ("00001", 1000), ("00002", 500)]
    assert all(t.input.startswith(plan_dir(str(tmp_path / "out" / "_state"))) for t in tasks)
    assert not list((tmp_path / "out").glob("*.tar"))


def test_rerun_of_a_finished_ingest_reuses_its_plan_and_refuses_a_changed_list(tmp_path):
    lines = [json.dumps({"url": "", "caption": f"c{i}"}) for i in range(30)]  # every row rejected at listing
    (tmp_path / "l.jsonl").write_text("\n".join(lines))
    cfg = {"source": "urls", "path": str(tmp_path / "l.jsonl"), "shard_size": 8}
    first = run_stage("ingest", cfg, tmp_path / "out", progress=False)
    assert first.ok and first.stats["rejected"] == {"missing_url": 30} and len(first.done) == 4
    again = run_stage("ingest", cfg, tmp_path / "out", progress=False)
    assert again.ok and again.skipped == first.done and not again.done
    (tmp_path / "l.jsonl").write_text("\n".join([*lines, lines[0]]))  # a row more: the old plan no longer holds
    with pytest.raises(ValueError, match="input list changed"):
        run_stage("ingest", cfg, tmp_path / "out", progress=False)


def _plan_of(planned) -> list[tuple[str, str | None]]:
    return [(r["__key__"], r.get("error") or "") for p in planned for r in shards.read_rows(p.rows)]


def test_an_append_plans_only_new_rows_marked_as_a_plan_of_the_whole_list(tmp_path):
    """The list gains rows (some repeating earlier keys, some erroring): the appended plan holds exactly the rows and
    marks of a fresh plan over everything, the old shards untouched and the new ones numbered after them."""
    whole = list(_rows(900, seed=3, dup_every=4, error_every=11))
    old = whole[:700]
    first = plan_rows(iter(json.loads(json.dumps(old))), str(tmp_path / "a"), 64, {"v": 1})
    before = {p.rows: (tmp_path / p.rows).read_bytes() for p in first}
    grown = plan_rows(iter(json.loads(json.dumps(whole))), str(tmp_path / "a"), 64, {"v": 2}, append=True)
    fresh = plan_rows(iter(json.loads(json.dumps(whole))), str(tmp_path / "f"), 64, {"v": 2})
    assert grown[: len(first)] == first and all((tmp_path / r).read_bytes() == b for r, b in before.items())
    assert [p.stem for p in grown] == [f"{i:05d}" for i in range(len(grown))]
    assert [p.n for p in grown[len(first):]] == [64, 64, 64, 8]  # 200 new rows in shards of their own
    assert sorted(_plan_of(grown)) == sorted(_plan_of(fresh))  # the same rows and marks; only the shards differ
    assert _plan_of(grown) == _plan_of(fresh)  # rows were added at the end: even the order holds
    marker = json.loads((tmp_path / "a" / "plan" / MARKER).read_text())
    assert marker["rows"] == 900 and marker["input"] == {"v": 2} and marker["appends"][0]["rows"] == 200
    assert marker["duplicate_keys"] == json.loads((tmp_path / "f" / "plan" / MARKER).read_text())["duplicate_keys"]
    assert np.load(tmp_path / "a" / "plan" / "_keys.npy").tolist() == [int(k, 16) for k, _ in _plan_of(grown)]


def test_an_append_keeps_a_repeat_listed_more_often_and_skips_an_unchanged_file(tmp_path):
    rows = [make_row(source="t", source_id=s, image="http://h/x.jpg", complex_prompt="p") for s in "abab"]
    plan_rows(iter(json.loads(json.dumps(rows[:3]))), str(tmp_path), 2, {"v": 1})  # a, b, a (a repeat)
    grown = plan_rows(iter(json.loads(json.dumps(rows))), str(tmp_path), 2, {"v": 2}, append=True)
    new = shards.read_rows(grown[-1].rows)  # only the second b is new, and it repeats b
    assert [(r["source_id"], r.get("error")) for r in new] == [("b", "duplicate_key")]

    def must_not_list():
        raise AssertionError("an append over an unchanged file lists nothing")
        yield

    assert plan_rows(must_not_list(), str(tmp_path), 2, {"v": 2}, append=True) == grown


def test_an_append_killed_before_its_marker_is_planned_again(tmp_path):
    whole = list(_rows(60))
    plan_rows(iter(json.loads(json.dumps(whole[:40]))), str(tmp_path), 16, {"v": 1})

    def dies_after_listing():
        yield from json.loads(json.dumps(whole))
        raise KeyboardInterrupt  # after the new row files, before _keys.npy and the marker

    with pytest.raises(KeyboardInterrupt):
        plan_rows(dies_after_listing(), str(tmp_path), 16, {"v": 2}, append=True)
    with pytest.raises(ValueError, match="rerun with --append"):  # the plan is still the old one: refused as before
        plan_rows(iter([]), str(tmp_path), 16, {"v": 2})
    grown = plan_rows(iter(json.loads(json.dumps(whole))), str(tmp_path), 16, {"v": 2}, append=True)
    assert [p.n for p in grown] == [16, 16, 8, 16, 4]
    assert [r["__key__"] for p in grown for r in shards.read_rows(p.rows)] == [
        make_key("t", r["source_id"]) for r in whole]


def test_an_append_reads_the_keys_of_a_plan_made_before_keys_were_saved(tmp_path):
    whole = list(_rows(30))
    plan_rows(iter(json.loads(json.dumps(whole[:20]))), str(tmp_path), 8, {"v": 1})
    keys = tmp_path / "plan" / "_keys.npy"
    keys.unlink()  # as a plan from an older surd
    grown = plan_rows(iter(json.loads(json.dumps(whole))), str(tmp_path), 8, {"v": 2}, append=True)
    assert [p.n for p in grown] == [8, 8, 4, 8, 2]
    for i, damage in enumerate((keys.read_bytes()[:100], b"", b"not a .npy file")):
        d = str(tmp_path / f"damaged{i}")  # truncated, empty, not a .npy: the row files are read instead
        plan_rows(iter(json.loads(json.dumps(whole[:20]))), d, 8, {"v": 1})
        (tmp_path / f"damaged{i}" / "plan" / "_keys.npy").write_bytes(damage)
        again = plan_rows(iter(json.loads(json.dumps(whole))), d, 8, {"v": 2}, append=True)
        assert [p.n for p in again] == [8, 8, 4, 8, 2], damage[:20]


def test_an_append_to_nothing_is_a_first_plan(tmp_path):
    planned = plan_rows(_rows(10), str(tmp_path), 4, {"v": 1}, append=True)
    assert [p.n for p in planned] == [4, 4, 2]
    assert "appends" not in json.loads((tmp_path / "plan" / MARKER).read_text())
