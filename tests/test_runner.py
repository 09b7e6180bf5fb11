"""Runner + local executor: skip done shards, retries, failures, contract checks, kill-and-resume equality."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from surd import shards
from surd.runner import ConfigMismatch, run_stage
from surd.stages import STAGES
from tests.conftest import REPO, jpeg_bytes


def _manifest(tmp_path: Path, n: int, w: int = 320, h: int = 240) -> Path:
    rows = []
    for i in range(n):
        (tmp_path / f"{i:03d}.jpg").write_bytes(jpeg_bytes(w, h, seed=i))
        rows.append({"image": f"{i:03d}.jpg", "complex_prompt": f"scene {i}, masterpiece, 8k"})
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    return tmp_path / "m.jsonl"


@pytest.fixture
def ingested(tmp_path):
    m = _manifest(tmp_path, 12)
    run_stage("ingest", {"source": "manifest", "path": str(m), "size": 64, "shard_size": 4}, tmp_path / "in",
              progress=False)
    return tmp_path / "in"


@pytest.fixture
def testing_stage(monkeypatch):
    monkeypatch.setitem(STAGES, "testing", "tests.stages_testing")


def _tree_bytes(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.suffix in (".tar", ".parquet")}


def test_rerun_skips_done_shards(ingested, tmp_path, testing_stage):
    first = run_stage("testing", {}, tmp_path / "out", ingested, progress=False)
    assert first.done == ["00000", "00001", "00002"] and first.stats["in"] == 12 and first.stats["kept"] == 6
    assert first.stats["rejected"] == {"odd_position": 6}
    (tmp_path / "out" / "00001.stats.json").unlink()  # as if shard 1 never finished
    second = run_stage("testing", {}, tmp_path / "out", ingested, progress=False)
    assert second.skipped == ["00000", "00002"] and second.done == ["00001"]
    saved = json.loads((tmp_path / "out" / "_config.json").read_text())
    assert saved["stage"] == "testing" and saved["surd_version"] and saved["config"]["mode"] == "ok"


def test_flaky_shard_is_retried(ingested, tmp_path, testing_stage):
    key = next(shards.read_shard(ingested / "00001.tar"))["__key__"]
    cfg = {"mode": "flaky", "counter_dir": str(tmp_path), "fail_stem_key": key}
    res = run_stage("testing", cfg, tmp_path / "out", ingested, progress=False, retries=1)
    assert res.ok and len(res.done) == 3


def test_broken_shard_is_reported_and_others_finish(ingested, tmp_path, testing_stage):
    key = next(shards.read_shard(ingested / "00002.tar"))["__key__"]
    cfg = {"mode": "broken", "counter_dir": str(tmp_path), "fail_stem_key": key}
    res = run_stage("testing", cfg, tmp_path / "out", ingested, progress=False, retries=2)
    assert not res.ok and list(res.failed) == ["00002"] and "simulated failure" in res.failed["00002"]
    assert res.done == ["00000", "00001"] and not shards.is_done(tmp_path / "out", "00002")
    assert json.loads((tmp_path / "out" / "_failed.json").read_text()).keys() == {"00002"}


def test_fatal_error_stops_the_run_without_retries(ingested, tmp_path, testing_stage):
    res = run_stage("testing", {"mode": "fatal", "counter_dir": str(tmp_path)}, tmp_path / "out", ingested,
                    progress=False, retries=2)
    assert (tmp_path / "calls").read_text() == "x"  # one attempt in all: no retry, no other shard tried
    assert "ModelLoadError" in res.failed["00000"] and "--model /path" in res.failed["00000"]
    assert res.failed["00001"].startswith("not run") and res.failed["00002"].startswith("not run")


def test_stage_that_drops_silently_fails_its_shards(ingested, tmp_path, testing_stage):
    res = run_stage("testing", {"mode": "lossy"}, tmp_path / "out", ingested, progress=False, retries=0)
    assert len(res.failed) == 3 and all("StageContractError" in e for e in res.failed.values())


def test_changed_config_is_refused(ingested, tmp_path, testing_stage):
    run_stage("testing", {}, tmp_path / "out", ingested, progress=False)
    with pytest.raises(ConfigMismatch, match="different config"):
        run_stage("testing", {"mode": "lossy"}, tmp_path / "out", ingested, progress=False)


def test_unknown_config_key_lists_valid_keys(ingested, tmp_path):
    with pytest.raises(ValueError, match="valid keys:.*shard_size"):
        run_stage("ingest", {"source": "manifest", "path": "x", "shard_sise": 3}, tmp_path / "o", progress=False)


def test_process_pool_equals_serial(tmp_path):
    m = _manifest(tmp_path, 10)
    cfg = {"source": "manifest", "path": str(m), "size": 64, "shard_size": 3}
    run_stage("ingest", cfg, tmp_path / "serial", progress=False)
    res = run_stage("ingest", cfg, tmp_path / "pool", workers=2, progress=False)
    assert res.ok and len(res.done) == 4
    assert _tree_bytes(tmp_path / "serial") == _tree_bytes(tmp_path / "pool")


def _ingest_cmd(m: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "surd", "ingest", "manifest", str(m), "--out", str(out), "--workers", "2",
            "--shard-size", "3", "--size", "256"]


def test_sigkill_mid_run_then_resume_equals_uninterrupted(tmp_path):
    m = _manifest(tmp_path, 60, 1400, 1000)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run(_ingest_cmd(m, tmp_path / "clean"), check=True, env=env, capture_output=True)
    proc = subprocess.Popen(_ingest_cmd(m, tmp_path / "killed"), env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((tmp_path / "killed").glob("*.stats.json"))) < 3:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its workers, mid-run
    proc.wait()
    done_at_kill = len(list((tmp_path / "killed").glob("*.stats.json")))
    assert 0 < done_at_kill < 20, "the kill should land mid-run"
    subprocess.run(_ingest_cmd(m, tmp_path / "killed"), check=True, env=env, capture_output=True)
    assert _tree_bytes(tmp_path / "killed") == _tree_bytes(tmp_path / "clean")
    keys = [s["__key__"] for s in shards.iter_dataset(tmp_path / "killed")]
    assert len(keys) == len(set(keys)) == 60
    assert not list((tmp_path / "killed").glob(".*.tmp"))


def test_unfinished_input_is_refused_unless_finished_only_is_asked_and_recorded(tmp_path, monkeypatch):
    monkeypatch.setitem(STAGES, "testing", "tests.stages_testing")
    for i in range(2):
        shards.write_shard(tmp_path / "in", f"0000{i}", [{"__key__": f"k{i}{j}", "json": {"i": j}} for j in range(2)])
    (tmp_path / "in" / ("00001" + shards.STATS_SUFFIX)).unlink()  # a shard whose marker never came
    with pytest.raises(ValueError, match="unfinished or missing shards.*00001.*--finished-only"):
        run_stage("testing", {}, tmp_path / "out", tmp_path / "in", progress=False)
    res = run_stage("testing", {}, tmp_path / "out2", tmp_path / "in", progress=False, finished_only=True)
    assert res.done == ["00000"] and res.stats["in"] == 2
    assert json.loads((tmp_path / "out2" / "_config.json").read_text())["finished_only"] is True
