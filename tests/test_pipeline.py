"""Cluster settings in the pipeline file (runs_dir, executor, address, workers, per-stage resources), overridden by
the command line's flags."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

import surd.pipeline as pipeline_mod
from surd.cli import app
from surd.pipeline import load_pipeline, run_pipeline
from tests.conftest import REPO

SAMPLE = yaml.safe_load((REPO / "pipelines" / "sample.yaml").read_text())


def _write(tmp_path, **top) -> str:
    doc = {**SAMPLE, "stages": [dict(s) for s in SAMPLE["stages"][:2]], **top}
    doc["stages"][0] = {**doc["stages"][0], "config": {**doc["stages"][0]["config"],
                                                        "path": str(REPO / "manifests/sample/manifest.jsonl")}}
    doc["stages"][1] = {**doc["stages"][1], "resources": {"num_gpus": 1, "num_cpus": 2}}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def test_the_file_holds_the_cluster_settings(tmp_path):
    pipe = load_pipeline(_write(tmp_path, runs_dir="s3://bucket/runs", executor="ray", address="auto", workers=8))
    st = pipe.settings
    assert (st.runs_dir, st.executor, st.address, st.workers) == ("s3://bucket/runs", "ray", "auto", 8)
    assert pipe.steps[1].resources == {"num_gpus": 1.0, "num_cpus": 2.0} and pipe.steps[0].resources is None


@pytest.mark.parametrize("top, message", [
    ({"executor": "slurm"}, "executor must be one of local, ray"),
    ({"workers": 0}, "workers must be >= 1"),
    ({"workers": "8"}, "workers must be a whole number or nothing"),
    ({"workers": 0, "runs": "x", "fuse": "yes"}, r"(?s)3 problem\(s\).*unknown top-level key\(s\) runs.*fuse must be true or false.*workers must be >= 1"),
    ({"address": 12}, "address must be a string or nothing"),
])
def test_bad_settings_name_the_fix(tmp_path, top, message):
    with pytest.raises(ValueError, match=message):
        load_pipeline(_write(tmp_path, **top))


def test_bad_stage_resources_name_the_fix(tmp_path):
    doc = yaml.safe_load(open(_write(tmp_path)))
    doc["stages"][1]["resources"] = {"gpus": 1}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(ValueError, match=r"stages\[1\] \(dedup\): unknown resource 'gpus'.*num_cpus, num_gpus"):
        load_pipeline(tmp_path / "bad.yaml")


@pytest.fixture
def calls(monkeypatch):
    seen = []

    class Done:
        ok, done, skipped, failed = True, [], [], {}

    def fake_run_chain(steps, input_dir, **kw):
        for stage, _config, out in steps:
            seen.append({"stage": stage, "out": out, **kw})
        return [Done() for _ in steps]

    monkeypatch.setattr(pipeline_mod, "run_chain", fake_run_chain)
    return seen


def test_settings_come_from_the_file_and_flags_override_them(tmp_path, calls):
    path = _write(tmp_path, runs_dir=str(tmp_path / "cluster-runs"), executor="ray", address="10.0.0.1:6379",
                  workers=8)
    run_pipeline(path, progress=False)
    assert [(c["executor"], c["address"], c["workers"]) for c in calls] == [("ray", "10.0.0.1:6379", 8)] * 2
    assert calls[0]["out"] == str(tmp_path / "cluster-runs" / "sample" / "00_ingest")
    assert calls[1]["resources"] == {"num_gpus": 1.0, "num_cpus": 2.0}
    calls.clear()
    run_pipeline(path, tmp_path / "here", executor="local", workers=2, progress=False)
    # another executor than the file's: the file's cluster address does not apply to it
    assert [(c["executor"], c["address"], c["workers"]) for c in calls] == [("local", None, 2)] * 2
    assert calls[0]["out"] == str(tmp_path / "here" / "sample" / "00_ingest")


def test_surd_run_needs_no_flags(tmp_path):
    """`surd run FILE` with runs_dir and workers in the file; `--executor local` overrides the file's ray."""
    path = _write(tmp_path, runs_dir=str(tmp_path / "runs"), executor="ray", address="127.0.0.1:1", workers=2)
    doc = yaml.safe_load(open(path))
    doc["stages"] = doc["stages"][:1]
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(doc))
    res = CliRunner().invoke(app, ["run", path, "--executor", "local"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "runs" / "sample" / "00_ingest" / "00001.stats.json").exists()
