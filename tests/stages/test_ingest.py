"""Local ingest: every kind of bad input is rejected with its own reason; formats; the SURD folder layout."""

from __future__ import annotations

import csv
import json
from collections import Counter
from contextlib import nullcontext

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from surd import shards
from surd.runner import run_samples, run_stage
from surd.sample import make_key
from tests.conftest import REPO, jpeg_bytes


def _cfg(path, **kw):
    return {"source": "manifest", "path": str(path), "size": 128, **kw}


def _all_rows(out):
    return [r for stem in shards.list_done(out) for r in shards.read_sidecar(out, stem)]


def test_every_bad_input_has_its_reason(bad_manifest, tmp_path):
    path, expected = bad_manifest
    res = run_stage("ingest", _cfg(path, shard_size=5), tmp_path / "out", progress=False)
    assert res.ok and res.stats["shards"] == 4
    for st in shards.read_stats(tmp_path / "out").values():  # in = kept + Σ rejected, per shard
        assert st["in"] == st["kept"] + sum(st["rejected"].values())
    by_key: dict = {}
    for r in _all_rows(tmp_path / "out"):
        by_key.setdefault(r["key"], r)  # the duplicate-key row shares its key with the first listing
    for sid, want in expected.items():
        row = by_key[make_key("local", sid)]
        assert (row["reason"] or "kept") == want, (sid, row)
    counts = Counter(r["reason"] or "kept" for r in _all_rows(tmp_path / "out"))
    want_counts = Counter(expected.values()) + Counter({"bad_encoding": 1, "duplicate_key": 1})
    assert counts == want_counts
    st = res.stats
    assert st["in"] == len(expected) + 2 == st["kept"] + sum(st["rejected"].values())


def test_kept_samples_carry_the_contract_metadata(bad_manifest, tmp_path):
    path, _ = bad_manifest
    run_stage("ingest", _cfg(path), tmp_path / "out", progress=False)
    samples = list(shards.iter_dataset(tmp_path / "out"))
    converted = {s["json"]["source_id"]: s["json"]["converted_from"] for s in samples}
    assert converted["img/cmyk.jpg"] == "CMYK" and converted["img/gray16.png"].startswith("I")
    assert converted["img/palette.png"] == "P" and converted["img/alpha.png"] == "RGBA"
    meta = next(s["json"] for s in samples if s["json"]["source_id"] == "img/good0.jpg")
    for field in ("key", "source", "source_id", "url", "complex_prompt", "negative_prompt", "simple_prompt",
                  "width", "height", "sha256", "license", "provenance", "nsfw", "stages"):
        assert field in meta
    assert (meta["width"], meta["height"]) == (900, 700) and meta["stages"]["ingest"]["size"] == 128
    assert meta["key"] == make_key("local", "img/good0.jpg")


def test_rejected_samples_stay_inspectable(bad_manifest, tmp_path):
    path, _ = bad_manifest
    run_stage("ingest", _cfg(path), tmp_path / "out", progress=False)
    row = next(r for r in _all_rows(tmp_path / "out") if r["reason"] == "decode_error")
    assert row["meta"]["source_id"] == "img/truncated.jpg" and "a scene" in row["meta"]["complex_prompt"]
    assert row["detail"]


def test_duplicate_images_across_shards_keep_the_first(tmp_path):
    data = jpeg_bytes(300, 300, seed=1)
    rows = []
    for i in range(6):
        (tmp_path / f"{i}.jpg").write_bytes(data if i in (1, 4) else jpeg_bytes(300, 300, seed=10 + i))
        rows.append({"image": f"{i}.jpg", "complex_prompt": f"p{i}"})
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    res = run_stage("ingest", _cfg(tmp_path / "m.jsonl", shard_size=2), tmp_path / "out", progress=False)
    assert res.stats["rejected"] == {"duplicate_image": 1}
    dup = next(r for r in _all_rows(tmp_path / "out") if r["status"] == "rejected")
    assert dup["key"] == make_key("local", "4.jpg") and make_key("local", "1.jpg") in dup["detail"]
    assert shards.read_stats(tmp_path / "out")["00002"] == {**shards.read_stats(tmp_path / "out")["00002"],
                                                          "in": 2, "kept": 1}


def _write_formats(tmp_path, rows):
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    with open(tmp_path / "m.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "m.parquet")


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_manifest_formats_and_custom_columns(tmp_path, fmt):
    rows = []
    for i in range(3):
        (tmp_path / f"p{i}.jpg").write_bytes(jpeg_bytes(256, 256, seed=i))
        rows.append({"file": f"file://{tmp_path}/p{i}.jpg" if i == 0 else f"p{i}.jpg", "prompt": f"cat {i}, 8k",
                     "neg": "blurry", "lic": "CC0-1.0", "seed": i})
    _write_formats(tmp_path, rows)
    opts = {"image_col": "file", "prompt_col": "prompt", "negative_col": "neg", "license_col": "lic"}
    res = run_stage("ingest", _cfg(tmp_path / f"m.{fmt}", options=opts), tmp_path / fmt, progress=False)
    assert res.stats["kept"] == 3
    metas = [s["json"] for s in shards.iter_dataset(tmp_path / fmt)]
    assert [m["complex_prompt"] for m in metas] == ["cat 0, 8k", "cat 1, 8k", "cat 2, 8k"]
    assert {m["negative_prompt"] for m in metas} == {"blurry"} and {m["license"] for m in metas} == {"CC0-1.0"}
    assert str(metas[1]["extra"]["seed"]) == "1"


def test_unknown_column_names_the_option(tmp_path):
    (tmp_path / "m.jsonl").write_text(json.dumps({"path": "a.jpg", "complex_prompt": "x"}))
    with pytest.raises(ValueError, match="--image-col"):
        run_stage("ingest", _cfg(tmp_path / "m.jsonl"), tmp_path / "out", progress=False)


def test_missing_manifest_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.jsonl not found"):
        run_stage("ingest", _cfg(tmp_path / "nope.jsonl"), tmp_path / "out", progress=False)


def test_official_surd_folder_layout(tmp_path):
    folder = tmp_path / "SURD"
    folder.mkdir()
    meta = []
    for i in range(3):
        (folder / f"{i:05d}.png").write_bytes(jpeg_bytes(512, 512, seed=i))
        meta.append({"file_name": f"{i:05d}.png", "text": f"a dog number {i}", "prompt": f"dog {i}, masterpiece"})
    (folder / "metadata.jsonl").write_text("\n".join(json.dumps(m) for m in meta))
    res = run_stage("ingest", {"source": "surd_folder", "path": str(folder)}, tmp_path / "out", progress=False)
    assert res.stats["kept"] == 3
    got = [s["json"] for s in shards.iter_dataset(tmp_path / "out")]
    assert [g["simple_prompt"] for g in got] == ["a dog number 0", "a dog number 1", "a dog number 2"]
    assert got[0]["complex_prompt"] == "dog 0, masterpiece" and got[0]["source"] == "surd"
    assert got[0]["key"] == make_key("surd", "00000.png")


def test_keys_do_not_depend_on_row_order(tmp_path):
    for i in range(4):
        (tmp_path / f"{i}.jpg").write_bytes(jpeg_bytes(128, 128, seed=i))
    rows = [{"image": f"{i}.jpg", "complex_prompt": f"p{i}"} for i in range(4)]
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (tmp_path / "b.jsonl").write_text("\n".join(json.dumps(r) for r in reversed(rows)))
    keys = []
    for name in ("a", "b"):
        run_stage("ingest", _cfg(tmp_path / f"{name}.jsonl"), tmp_path / name, progress=False)
        keys.append({s["json"]["source_id"]: s["__key__"] for s in shards.iter_dataset(tmp_path / name)})
    assert keys[0] == keys[1]


def test_stage_runs_on_plain_lists(tmp_path):
    (tmp_path / "a.jpg").write_bytes(jpeg_bytes(200, 200))
    (tmp_path / "m.jsonl").write_text("{}")
    row = {"__key__": make_key("x", "1"), "source": "x", "source_id": "1", "image": str(tmp_path / "a.jpg"),
           "complex_prompt": " a cat ", "negative_prompt": "", "simple_prompt": None, "extra": {}}
    bad = dict(row, __key__=make_key("x", "2"), image=str(tmp_path / "none.jpg"))
    out = run_samples("ingest", [row, bad], _cfg(tmp_path / "m.jsonl", size=64))
    assert out[0]["json"]["complex_prompt"] == "a cat" and len(out[0]["jpg"]) > 0
    assert out[1].reason == "missing_file"


@pytest.mark.parametrize("layout", ["manifest", "folder"])
def test_a_grown_manifest_or_folder_appends_only_its_new_rows(tmp_path, layout):
    """A manifest / imagefolder gains rows (one repeating an earlier image's bytes): --append ingests only them,
    into a new shard, and the run equals a fresh ingest of the grown source sample for sample."""
    photos = sorted((REPO / "manifests/sample/images").glob("*.jpg"))[:9]
    src = tmp_path / "src"
    src.mkdir()
    for p in photos:
        (src / p.name).write_bytes(p.read_bytes())
    (src / "again.jpg").write_bytes(photos[0].read_bytes())
    names = [p.name for p in photos[:6]]

    def write(names: list[str]) -> None:
        key, text = ("image", "complex_prompt") if layout == "manifest" else ("file_name", "prompt")
        name = "manifest.jsonl" if layout == "manifest" else "metadata.jsonl"
        (src / name).write_text("".join(json.dumps({key: n, text: f"prompt {n}"}) + "\n" for n in names))

    path = str(src / "manifest.jsonl") if layout == "manifest" else str(src)
    cfg = {"source": layout, "path": path, "size": 64, "min_size": 32, "shard_size": 4}
    write(names)
    assert run_stage("ingest", cfg, tmp_path / "a", progress=False).ok
    grown = names + [p.name for p in photos[6:]] + ["again.jpg"]
    write(grown)
    with pytest.raises(ValueError, match="rerun with --append") if layout == "manifest" else nullcontext():
        again = run_stage("ingest", cfg, tmp_path / "a", progress=False)  # a folder: its saved plan, nothing new
        assert not again.done and again.stats["in"] == 6
    read: list[str] = []
    real = shards.read_sidecar
    with pytest.MonkeyPatch.context() as mp:  # the byte-dedup pass reads the new shard only (and its kept index)
        mp.setattr(shards, "read_sidecar", lambda d, stem, **kw: read.append(stem) or real(d, stem, **kw))
        res = run_stage("ingest", cfg, tmp_path / "a", progress=False, append=True)
    assert res.ok and res.done == ["00002"] and res.skipped == ["00000", "00001"] and set(read) == {"00002"}
    fresh = run_stage("ingest", cfg, tmp_path / "b", progress=False)

    def samples(out):
        return {r["key"]: (r["status"], r["reason"], r["detail"], json.dumps(r["meta"], sort_keys=True))
                for stem in shards.list_done(out) for r in shards.read_sidecar(out, stem)}

    assert samples(tmp_path / "a") == samples(tmp_path / "b") and len(samples(tmp_path / "a")) == 10
    assert res.stats["rejected"] == fresh.stats["rejected"] == {"duplicate_image": 1}
