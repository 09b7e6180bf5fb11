"""The shard-run contract (surd.task): one shard through a chain of stages (a single stage is a chain of one),
committed whole or not at all; the one failure policy every executor applies."""

from __future__ import annotations

import pytest

from surd import shards
from surd.models import ModelLoadError
from surd.stages import STAGES
from surd.task import Chain, Failures, ShardTask, StageContractError, format_error, is_fatal, not_run, process
from tests.stages_testing import Config


@pytest.fixture(autouse=True)
def _testing_stage(monkeypatch):
    monkeypatch.setitem(STAGES, "testing", "tests.stages_testing")


def _input(tmp_path, n=4):
    shards.write_shard(tmp_path / "in", "00000", [{"__key__": f"k{i}", "json": {"i": i}} for i in range(n)])
    return ShardTask("00000", str(tmp_path / "in" / "00000.tar"), n)


def test_process_shard_commits_every_input_with_its_outcome(tmp_path):
    seen = []
    stats = process(Chain.of("testing", Config(), str(tmp_path / "out")), _input(tmp_path), seen.append)["testing"]
    assert (stats["in"], stats["kept"], stats["rejected"]) == (4, 2, {"odd_position": 2})
    assert stats["versions"]["surd"] and sum(seen) == 4
    assert shards.is_done(tmp_path / "out", "00000")
    rows = shards.read_sidecar(tmp_path / "out", "00000")
    assert [(r["key"], r["status"]) for r in rows] == [("k0", "kept"), ("k1", "rejected"), ("k2", "kept"),
                                                      ("k3", "rejected")]


def test_a_stage_that_drops_an_input_silently_commits_nothing(tmp_path):
    with pytest.raises(StageContractError, match="3 results for 4 inputs"):
        process(Chain.of("testing", Config(mode="lossy"), str(tmp_path / "out")), _input(tmp_path))
    assert not shards.is_done(tmp_path / "out", "00000")
    assert not list((tmp_path / "out").glob("00000*"))  # no tar, sidecar or stats under the final names


def test_rows_as_input_and_errors_no_retry_can_fix(tmp_path):
    rows = [{"__key__": "a", "json": {}}, {"__key__": "b", "json": {}}]
    stats = process(Chain.of("testing", Config(), str(tmp_path / "out")), ShardTask("00003", rows, 2))["testing"]
    assert stats["kept"] == 1 and shards.is_done(tmp_path / "out", "00003")
    assert is_fatal(ModelLoadError("offline")) and is_fatal(ImportError("no torch"))
    assert not is_fatal(RuntimeError("flaky disk"))
    assert not_run("ModelLoadError: x").startswith("not run: stopped after a fatal error")


def test_format_error_names_the_error_and_where():
    try:
        raise ValueError("bad value")
    except ValueError as e:
        line = format_error(e)
    assert line.startswith("ValueError: bad value (at test_task.py:") and line.endswith(")")


def test_one_failure_policy_retries_then_reports_and_remembers_a_fatal_error():
    task, other = ShardTask("00000", [], 0), ShardTask("00001", [], 0)
    policy = Failures(retries=2)
    assert policy.record(task, RuntimeError("flaky")) is None and policy.record(task, RuntimeError("flaky")) is None
    assert policy.record(task, RuntimeError("flaky")).startswith("RuntimeError: flaky")  # the third attempt failed
    assert policy.fatal is None
    assert policy.record(other, ModelLoadError("offline")).startswith("ModelLoadError: offline")  # never retried
    assert policy.fatal.startswith("ModelLoadError: offline")
    assert Failures(retries=0).record(task, OSError("disk")) is not None
