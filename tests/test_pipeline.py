"""Cluster settings in the pipeline file (runs_dir, executor, address, workers, per-stage resources), overridden by
the command line's flags."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

import surd.pipeline as pipeline_mod
from surd import shards
from surd.cli import app
from surd.pipeline import load_pipeline, run_pipeline
from surd.runner import total_stats
from tests.conftest import REPO
from tests.fault_server import Route

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


def test_append_from_the_file_or_the_flag_reaches_only_the_ingest_step(tmp_path, calls):
    run_pipeline(_write(tmp_path, append=True), progress=False)
    assert [(c["out"].rsplit("/", 1)[-1], c["append"]) for c in calls] == [("00_ingest", True), ("01_dedup", False)]
    calls.clear()
    run_pipeline(_write(tmp_path), progress=False, append=True)  # surd run --append
    assert [c["append"] for c in calls] == [True, False]
    calls.clear()
    run_pipeline(_write(tmp_path, append=True), progress=False, append=False)  # the flag overrides the file
    assert [c["append"] for c in calls] == [False, False]
    with pytest.raises(ValueError, match="append"):
        load_pipeline(_write(tmp_path, append="yes"))


def test_surd_run_needs_no_flags(tmp_path):
    """`surd run FILE` with runs_dir and workers in the file; `--executor local` overrides the file's ray."""
    path = _write(tmp_path, runs_dir=str(tmp_path / "runs"), executor="ray", address="127.0.0.1:1", workers=2)
    doc = yaml.safe_load(open(path))
    doc["stages"] = doc["stages"][:1]
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(doc))
    res = CliRunner().invoke(app, ["run", path, "--executor", "local"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "runs" / "sample" / "00_ingest" / "00001.stats.json").exists()


# ---------------------------------------------------------------------------------------------- --append


def _served_list(server, tmp_path, rows: list[tuple[str, str]]) -> Path:
    (tmp_path / "list.csv").write_text("url,caption\n" + "".join(f"{server.url(p)},{c}\n" for p, c in rows))
    return tmp_path / "list.csv"


def _append_pipeline(tmp_path, listing: Path) -> str:
    tmp_path.mkdir(parents=True, exist_ok=True)
    doc = {"name": "grow", "runs_dir": str(tmp_path / "runs"), "stages": [
        {"stage": "ingest", "config": {
            "source": "urls", "path": str(listing), "size": 64, "min_size": 32, "shard_size": 4,
            "download": {"rate_limit": 0, "allowed_networks": ["127.0.0.0/8"], "timeout": 5, "retries": 0}}},
        {"stage": "dedup", "config": {"max_distance": 8, "prompt_dedup": True}},
        {"stage": "caption", "config": {"model": "tiny", "batch_size": 4}},
        {"stage": "card", "config": {}}]}
    path = tmp_path / "grow.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def _samples(stage_dir: Path) -> dict[str, tuple]:
    """key → (status, reason, detail, json without the caption stage's words, image bytes) over every shard."""
    images = {s["__key__"]: s.get("jpg") for s in shards.iter_dataset(stage_dir)}
    return {r["key"]: (r["status"], r["reason"], r["detail"], json.dumps(r["meta"], sort_keys=True)
                       if "02_caption" not in str(stage_dir) else None, images.get(r["key"]))
            for stem in shards.list_done(stage_dir) for r in shards.read_sidecar(stage_dir, stem)}


def test_an_appended_run_equals_a_fresh_run_over_everything(server, tmp_path):
    """A URL list gains rows between two runs (new images, an exact copy of an old image, a re-encoded copy, a URL
    listed again, a repeated prompt, a row without a prompt). `surd run --append` processes only the new shards at
    every stage and ends with the samples, reasons and stats of a fresh run over the whole list."""
    photos = sorted((REPO / "manifests/sample/images").glob("*.jpg"))[:15]
    for i, p in enumerate(photos):
        server.routes[f"/img/{i}.jpg"] = Route(body=p.read_bytes())
    with Image.open(photos[2]) as img:
        buf = io.BytesIO()
        img.convert("RGB").save(buf, "JPEG", quality=30)
    server.routes["/img/recoded-2.jpg"] = Route(body=buf.getvalue())
    server.routes["/img/copy-of-3.jpg"] = Route(body=photos[3].read_bytes())
    old = [(f"/img/{i}.jpg", f"photo {i}") for i in range(10)]
    new = [(f"/img/{i}.jpg", f"photo {i}") for i in range(10, 14)] + [
        ("/img/copy-of-3.jpg", "another prompt"), ("/img/recoded-2.jpg", "recoded"), ("/img/5.jpg", "listed again"),
        ("/img/none.jpg", ""), ("/img/14.jpg", "Photo 4!")]  # fmt: skip
    listing = _served_list(server, tmp_path, old)  # one list file for both runs: its path is each row's provenance
    pipe = _append_pipeline(tmp_path / "a", listing)
    first = run_pipeline(pipe, progress=False)
    assert all(r.ok for _, r in first[:3])
    run_dir = tmp_path / "a" / "runs" / "grow"
    before = {d.name: sorted(p.name for p in d.glob("*.tar")) for d in run_dir.iterdir() if d.is_dir()}

    _served_list(server, tmp_path, old + new)
    res = CliRunner().invoke(app, ["run", pipe])  # without --append a grown list is refused, nothing run
    assert res.exit_code == 2 and "rerun with --append" in res.output
    assert {d.name: sorted(p.name for p in d.glob("*.tar")) for d in run_dir.iterdir() if d.is_dir()} == before
    fetched = {p: server.count(p) for p in server.routes}
    res = CliRunner().invoke(app, ["run", pipe, "--append"])
    assert res.exit_code == 0, res.output
    assert "(3 written, 3 already done)" in res.output  # ingest, dedup and caption: only the new shards
    got = {p for p in server.routes if server.count(p) > fetched[p]}
    assert got == {p for p, _ in new[:6]} | {"/img/14.jpg"} and all(server.count(p) == fetched[p] + 1 for p in got)

    fresh = tmp_path / "b"
    run_pipeline(_append_pipeline(fresh, listing), progress=False)
    for stage in ("00_ingest", "01_dedup", "02_caption"):
        appended, whole = _samples(run_dir / stage), _samples(fresh / "runs" / "grow" / stage)
        assert appended == whole, stage
        a, w = total_stats(run_dir / stage), total_stats(fresh / "runs" / "grow" / stage)
        assert {k: a[k] for k in ("in", "kept", "rejected")} == {k: w[k] for k in ("in", "kept", "rejected")}
    assert total_stats(run_dir / "00_ingest")["rejected"] == {"duplicate_image": 1, "duplicate_key": 1,
                                                              "missing_prompt": 1}
    assert total_stats(run_dir / "01_dedup")["rejected"] == {"duplicate_prompt": 1, "near_duplicate": 1}
    when = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d")  # the runs' own dates differ
    card = when.sub("T", (run_dir / "03_card" / "README.md").read_text())
    fresh_card = when.sub("T", (fresh / "runs" / "grow" / "03_card" / "README.md").read_text())
    assert card == fresh_card.replace(str(fresh), str(tmp_path / "a"))  # the card covers the whole run
    assert CliRunner().invoke(app, ["verify", str(run_dir)]).exit_code == 0  # stage to stage, old and new shards
    assert "13 samples kept of 18 seen" in card and "| 00_ingest | 19 | 16 |" in card  # old and new rows counted
