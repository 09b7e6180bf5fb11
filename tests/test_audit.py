"""surd.audit: a stage refuses an input with unfinished or missing shards, and `verify_run` finds every broken
shard, count and cross-stage mismatch, naming the file."""

from __future__ import annotations

import json
import shutil

import pytest

from surd import shards
from surd.audit import input_shards, verify_run, verify_stage
from surd.integrity import ShardCorrupt, ShardUnfinished
from surd.runner import run_stage
from surd.sample import Rejected, make_key
from surd.stages import STAGES
from tests.conftest import jpeg_bytes


def _stage(d, n_shards=3, per=3, drop_last=0):
    """A stage directory of `n_shards` shards, `per` samples in each (the last `drop_last` of each rejected)."""
    for i in range(n_shards):
        items = []
        for j in range(per):
            key = make_key("t", f"{i}-{j}")
            items.append(Rejected(key, "too_small", "", {}) if j >= per - drop_last else
                         {"__key__": key, "json": {"j": j}, "jpg": jpeg_bytes(16, 16, seed=j)})
        shards.write_shard(d, shards.shard_name(i), items)
    (d / shards.CONFIG_NAME).write_text("{}")
    return d


def test_input_shards_of_a_finished_directory(tmp_path):
    got = input_shards(_stage(tmp_path / "a"))
    assert [(s.stem, s.n) for s in got] == [("00000", 3), ("00001", 3), ("00002", 3)]


@pytest.mark.parametrize(("damage", "named"), [
    ("no_marker", "00001.tar has no stats marker"),
    ("no_tar", "00001.stats.json has no 00001.tar"),
    ("gap", "shard 00001 is missing"),
])  # fmt: skip
def test_unfinished_or_missing_shards_are_refused_unless_finished_only(tmp_path, damage, named):
    d = _stage(tmp_path / "a")
    if damage in ("no_marker", "gap"):
        (d / "00001.stats.json").unlink()
    if damage in ("no_tar", "gap"):
        (d / "00001.tar").unlink()
    if damage == "gap":
        (d / "00001.samples.parquet").unlink()
    with pytest.raises(ShardUnfinished, match=named):
        input_shards(d)
    assert [s.stem for s in input_shards(d, finished_only=True)] == ["00000", "00002"]


def test_a_local_tar_of_the_wrong_size_is_refused_before_reading(tmp_path):
    d = _stage(tmp_path / "a")
    with open(d / "00002.tar", "ab") as f:
        f.write(b"\0" * 512)
    with pytest.raises(ShardCorrupt, match=r"00002\.tar does not match its stats marker \(size"):
        input_shards(d)


@pytest.fixture
def testing_stage(monkeypatch):
    monkeypatch.setitem(STAGES, "testing", "tests.stages_testing")


def test_a_stage_refuses_an_unfinished_input_and_a_corrupt_shard_fails_naming_it(tmp_path, testing_stage):
    d = _stage(tmp_path / "a")
    (d / "00001.stats.json").unlink()
    with pytest.raises(ShardUnfinished, match="00001.tar has no stats marker"):
        run_stage("testing", {}, tmp_path / "out", d, progress=False)
    _stage(d)  # finish it again
    tar = d / "00001.tar"
    data = bytearray(tar.read_bytes())
    data[1500] ^= 0xFF
    tar.write_bytes(bytes(data))
    res = run_stage("testing", {}, tmp_path / "out2", d, progress=False, retries=0)
    assert set(res.failed) == {"00001"} and "00001.tar does not match its stats marker" in res.failed["00001"]
    assert not (tmp_path / "out2" / "00001.stats.json").exists()  # nothing committed from a corrupt input


def test_verify_a_sound_run(tmp_path):
    run = tmp_path / "run"
    _stage(run / "00_ingest", drop_last=1)
    _stage(run / "01_next", per=2)
    reports, across = verify_run(run)
    assert [r.problems for r in reports] == [[], []] and across == []
    assert reports[0].totals() == {"shards": 3, "in": 9, "kept": 6, "rejected": {"too_small": 3}}
    assert [r.path for r in verify_run(run / "01_next")[0]] == [str(run / "01_next")]


def test_verify_names_each_problem(tmp_path):
    run = tmp_path / "run"
    _stage(run / "00_ingest", drop_last=1)
    _stage(run / "01_next", per=3)  # in 3, but 00_ingest kept 2 per shard
    a, b = run / "00_ingest", run / "01_next"
    marker = json.loads((a / "00000.stats.json").read_text())
    marker["kept"] += 1  # in != kept + Σ rejected
    (a / "00000.stats.json").write_text(json.dumps(marker))
    (a / "00002.tar").write_bytes((a / "00002.tar").read_bytes()[:-1024])
    shutil.copy(a / "00001.samples.parquet", b / "00001.samples.parquet")  # another shard's sidecar
    reports, across = verify_run(run)
    problems = "\n".join(p for r in reports for p in r.problems)
    assert "00_ingest/00000.stats.json: in (3) != kept (3) + Σ rejected (1)" in problems
    assert "00_ingest/00002.tar does not match its stats marker (size" in problems
    assert "01_next/00001.samples.parquet does not match its stats marker" in problems
    assert not any("01_next/00000" in p for p in across)  # the bumped marker matches: its own problem is above
    assert any("01_next/00001: in = 3, but" in p and "kept 2" in p and "extra samples" in p for p in across)


def test_verify_reports_unfinished_shards_and_markers_without_records(tmp_path):
    d = _stage(tmp_path / "a")
    (d / "00002.stats.json").unlink()
    m = json.loads((d / "00000.stats.json").read_text())
    del m["files"]
    (d / "00000.stats.json").write_text(json.dumps(m))
    problems = verify_stage(d).problems
    assert any("00002.tar has no stats marker" in p for p in problems)
    assert any("00000.stats.json records no files" in p for p in problems)
    assert len(problems) == 2


def _safetensors(tensors: dict[str, bytes]) -> bytes:
    """A float32 safetensors file by hand (no torch needed)."""
    header, offset = {"__metadata__": {"format": "x"}}, 0
    for name, data in tensors.items():
        header[name] = {"dtype": "F32", "shape": [len(data) // 4], "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    return len(head).to_bytes(8, "little") + head + b"".join(tensors.values())


def test_verify_checks_adapter_files(tmp_path):
    run = tmp_path / "run"
    _stage(run / "00_ingest")
    adapter = run / "01_train_adapter"
    (adapter / "checkpoints" / "step-1").mkdir(parents=True)
    (adapter / "adapter_config.json").write_text("{}")
    weights = _safetensors({"a": b"\0" * 16, "b": b"\1" * 8})
    (adapter / "adapter_model.safetensors").write_bytes(weights)
    (adapter / "checkpoints" / "step-1" / "adapter_model.safetensors").write_bytes(weights)
    reports, across = verify_run(run)
    assert [r.kind for r in reports] == ["shards", "adapter"] and not any(r.problems for r in reports) and not across
    (adapter / "checkpoints" / "step-1" / "adapter_model.safetensors").write_bytes(weights[:-4])
    (adapter / "adapter_model.safetensors").write_bytes(weights[:6])
    problems = verify_run(run)[0][1].problems
    assert any("step-1/adapter_model.safetensors: the tensors do not fill the file exactly" in p for p in problems)
    assert any("01_train_adapter/adapter_model.safetensors is not a safetensors file" in p for p in problems)
