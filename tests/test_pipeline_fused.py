"""Fused stages (issue 16): consecutive per-shard stages over each shard in one pass write exactly what the stages
write one after the other (tars, sidecars, stats but their seconds, configs), each image decoded once."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from surd import batching, shards
from surd.batching import DECODED, DecodedImage, decode_count, decode_rgb
from surd.pipeline import fused_groups, load_pipeline, run_pipeline
from surd.runner import run_chain, run_stage
from surd.stages import STAGES
from tests.conftest import REPO, jpeg_bytes

SAMPLE = REPO / "pipelines" / "sample.yaml"


def stage_files(stage_dir: Path, runs: Path) -> dict[str, bytes]:
    """Every file a stage wrote, as bytes to compare: stats without ``seconds``, configs with the runs folder
    replaced (their ``input`` is an absolute path)."""
    out = {}
    for p in sorted(stage_dir.iterdir()):
        if p.is_dir():
            continue
        data = p.read_bytes()
        if p.name.endswith(shards.STATS_SUFFIX):
            stats = json.loads(data)
            assert stats.pop("seconds") >= 0
            data = json.dumps(stats, sort_keys=True).encode()
        elif p.name == shards.CONFIG_NAME:
            data = data.replace(str(runs.resolve()).encode(), b"<runs>")
        out[p.name] = data
    return out


def assert_same_outputs(a: Path, b: Path, stages: list[str]) -> None:
    for name in stages:
        fa, fb = stage_files(a / name, a), stage_files(b / name, b)
        assert sorted(fa) == sorted(fb), name
        assert any(n.endswith(".tar") for n in fa), name
        for n in fa:
            assert fa[n] == fb[n], f"{name}/{n} differs between the fused and the unfused run"


MODEL_STAGES = ["02_caption", "03_clip_filter", "04_safety", "05_quality", "06_embed"]


@pytest.fixture(scope="module")
def sample_runs(tmp_path_factory):
    """The sample pipeline (up to embed) fused and unfused, in this process; decodes counted per run."""
    root = tmp_path_factory.mktemp("sample")
    runs, decodes = {}, {}
    for fuse in (False, True):
        before = decode_count()
        runs[fuse] = run_pipeline(SAMPLE, root / str(fuse), progress=False, until="embed", fuse=fuse)
        decodes[fuse] = decode_count() - before
    return root, runs, decodes


def test_sample_pipeline_fused_is_byte_identical(sample_runs):
    root, runs, decodes = sample_runs
    for fuse in (False, True):
        assert [s.stage for s, _ in runs[fuse]] == ["ingest", "dedup", "caption", "clip_filter", "safety", "quality",
                                                    "embed"]
        assert all(r.ok for _, r in runs[fuse])
    assert [r.done for _, r in runs[True]] == [r.done for _, r in runs[False]]
    assert_same_outputs(root / "True" / "sample", root / "False" / "sample",
                        ["00_ingest", "01_dedup", *MODEL_STAGES])
    # dedup decodes each image once in both runs; then caption and clip_filter decode each again unfused (safety
    # and quality reuse clip_filter's embeddings), once together fused.
    n = runs[True][0][1].stats["kept"]
    assert (decodes[False], decodes[True]) == (3 * n, 2 * n)


def test_workers_fused_equals_in_process(sample_runs, tmp_path):
    """Two spawned workers run the fused chain (the Chain travels to them) and write the same bytes."""
    root, runs, _ = sample_runs
    shutil.copytree(root / "False" / "sample" / "00_ingest", tmp_path / "sample" / "00_ingest")
    shutil.copytree(root / "False" / "sample" / "01_dedup", tmp_path / "sample" / "01_dedup")
    for name in ("00_ingest", "01_dedup"):
        cfg = tmp_path / "sample" / name / shards.CONFIG_NAME
        cfg.write_text(cfg.read_text().replace(str((root / "False").resolve()), str(tmp_path.resolve())))
    res = run_pipeline(SAMPLE, tmp_path, progress=False, until="embed", workers=2)
    assert [len(r.skipped) for _, r in res][:2] == [2, 2] and all(r.ok for _, r in res)
    assert_same_outputs(tmp_path / "sample", root / "False" / "sample", MODEL_STAGES)


def test_resume_in_the_middle_of_a_chain(sample_runs, tmp_path):
    """A run stopped between commits (shard 1 done up to clip_filter, shard 0 up to quality) goes on from there."""
    root, _, _ = sample_runs
    shutil.copytree(root / "True", tmp_path / "r")
    base = tmp_path / "r" / "sample"
    for name in ("00_ingest", "01_dedup", *MODEL_STAGES):
        cfg = base / name / shards.CONFIG_NAME
        cfg.write_text(cfg.read_text().replace(str((root / "True").resolve()), str((tmp_path / "r").resolve())))
    for name, stem in (("04_safety", "00001"), ("05_quality", "00001"), ("06_embed", "00001"), ("06_embed", "00000")):
        for suffix in (shards.STATS_SUFFIX, ".tar", shards.SIDECAR_SUFFIX):
            (base / name / f"{stem}{suffix}").unlink()
    before = decode_count()
    res = dict((s.stage, r) for s, r in run_pipeline(SAMPLE, tmp_path / "r", progress=False, until="embed"))
    assert decode_count() == before  # safety and quality reuse clip_filter's embeddings: no image decoded again
    assert res["clip_filter"].done == [] and res["clip_filter"].skipped == ["00000", "00001"]
    assert res["safety"].done == ["00001"] and res["quality"].done == ["00001"]
    assert res["embed"].done == ["00000", "00001"]
    assert_same_outputs(base, root / "False" / "sample", MODEL_STAGES)


# ---------------------------------------------------------------------------------------------- failures


@pytest.fixture
def ingested(tmp_path, monkeypatch):
    monkeypatch.setitem(STAGES, "testing", "tests.stages_testing")
    monkeypatch.setitem(STAGES, "testing_b", "tests.stages_testing")
    rows = []
    for i in range(12):
        (tmp_path / f"{i:03d}.jpg").write_bytes(jpeg_bytes(120, 90, seed=i))
        rows.append({"image": f"{i:03d}.jpg", "complex_prompt": f"scene {i}"})
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    run_stage("ingest", {"source": "manifest", "path": str(tmp_path / "m.jsonl"), "size": 64, "shard_size": 4},
              tmp_path / "in", progress=False)
    return tmp_path / "in"


def _chain(tmp_path: Path, ingested: Path, second: dict, name: str = "f", retries: int = 0):
    return run_chain([("testing", {}, tmp_path / name / "a"), ("testing_b", second, tmp_path / name / "b")],
                     ingested, retries=retries, progress=False)


def test_a_failed_shard_is_committed_by_no_stage_of_its_pass(ingested, tmp_path):
    key = next(shards.read_shard(ingested / "00001.tar"))["__key__"]
    flaky = {"mode": "flaky", "counter_dir": str(tmp_path), "fail_stem_key": key}
    a, b = _chain(tmp_path, ingested, flaky)
    assert not a.ok and not b.ok and a.done == b.done == ["00000", "00002"]
    assert b.failed["00001"].startswith("in stage testing_b: RuntimeError: simulated failure")
    assert a.failed["00001"].startswith("not committed: testing_b failed on this shard")
    assert json.loads((tmp_path / "f" / "b" / "_failed.json").read_text())["00001"] == b.failed["00001"]
    assert not (tmp_path / "f" / "a" / "00001.stats.json").exists()
    a, b = _chain(tmp_path, ingested, flaky)  # flaky: fails once, then works
    assert a.ok and b.ok and a.done == b.done == ["00001"] and a.skipped == ["00000", "00002"]
    assert not (tmp_path / "f" / "a" / "_failed.json").exists()
    run_stage("testing", {}, tmp_path / "u" / "a", ingested, progress=False)
    run_stage("testing_b", flaky, tmp_path / "u" / "b", tmp_path / "u" / "a", progress=False)
    for stage in ("a", "b"):
        assert stage_files(tmp_path / "f" / stage, tmp_path / "f") == stage_files(tmp_path / "u" / stage, tmp_path / "u")


def test_a_stage_that_drops_a_sample_fails_the_pass(ingested, tmp_path):
    a, b = _chain(tmp_path, ingested, {"mode": "lossy"})
    assert sorted(b.failed) == ["00000", "00001", "00002"] and not a.done and not b.done
    assert "in stage testing_b: StageContractError" in b.failed["00000"]


def test_a_fatal_error_stops_the_chain(ingested, tmp_path):
    a, b = _chain(tmp_path, ingested, {"mode": "fatal", "counter_dir": str(tmp_path)}, retries=2)
    assert "in stage testing_b: ModelLoadError" in b.failed["00000"]
    assert all(e.startswith("not run") for s, e in b.failed.items() if s != "00000")
    assert (tmp_path / "calls").read_text() == "x"  # no retry, no other shard


def test_stages_that_cannot_be_fused_are_refused(ingested, tmp_path):
    with pytest.raises(ValueError, match="source stage"):
        run_chain([("ingest", {}, tmp_path / "x"), ("testing", {}, tmp_path / "y")], None)
    with pytest.raises(ValueError, match="global pass"):
        run_chain([("dedup", {}, tmp_path / "x"), ("testing", {}, tmp_path / "y")], ingested)


# ---------------------------------------------------------------------------------------------- grouping


def _stages(groups):
    return [[s.stage for s in g] for g in groups]


def test_groups_of_the_shipped_pipelines(tmp_path):
    sample = load_pipeline(SAMPLE)
    assert _stages(fused_groups(sample)) == [["ingest"], ["dedup"],
                                             ["caption", "clip_filter", "safety", "quality", "embed"],
                                             ["train_adapter"]]
    assert _stages(fused_groups(sample, until="clip_filter")) == [["ingest"], ["dedup"], ["caption", "clip_filter"]]
    assert all(len(g) == 1 for g in fused_groups(sample, fuse=False))
    # review's decisions do not exist before the review: it is left out, and fails alone, as unfused.
    assert _stages(fused_groups(load_pipeline(REPO / "pipelines" / "paper.yaml")))[1:3] == [
        ["caption", "clip_filter"], ["review", "embed"]]


def test_the_file_and_step_settings_split_groups(tmp_path):
    doc = yaml.safe_load(SAMPLE.read_text())
    doc["stages"][3]["workers"] = 2  # clip_filter: its own workers
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(doc))
    assert _stages(fused_groups(load_pipeline(tmp_path / "a.yaml")))[2:4] == [["caption"],
                                                                               ["clip_filter"]]
    doc["fuse"] = False
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(doc))
    assert load_pipeline(tmp_path / "b.yaml").settings.fuse is False
    doc["fuse"] = "yes"
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(ValueError, match="fuse must be true or false"):
        load_pipeline(tmp_path / "c.yaml")


def test_surd_run_passes_the_fuse_switch(monkeypatch):
    from typer.testing import CliRunner

    from surd import cli
    from surd.commands import run as run_cmd

    seen = []
    monkeypatch.setattr(run_cmd, "run_pipeline", lambda *a, **kw: seen.append(kw["fuse"]) or [])
    for args, want in (([], None), (["--no-fuse"], False), (["--fuse"], True)):
        assert CliRunner().invoke(cli.app, ["run", str(SAMPLE), *args]).exit_code == 0
        assert seen[-1] is want


# ---------------------------------------------------------------------------------------------- decoded images


def _sample(seed: int = 0) -> dict:
    return {"__key__": "k", "jpg": jpeg_bytes(64, 48, seed=seed), "json": {}}


def test_a_decoded_image_is_handed_on_not_decoded_again():
    s = _sample()
    s[DECODED] = DecodedImage()
    before = decode_count()
    first = decode_rgb(s)
    first.paste((255, 0, 0), (0, 0, 10, 10))  # a stage editing its copy in place
    second = decode_rgb(s)
    assert decode_count() == before + 1 and s[DECODED].used
    plain = decode_rgb(_sample())
    assert np.array_equal(np.asarray(second), np.asarray(plain))
    assert not np.array_equal(np.asarray(first), np.asarray(plain))


def test_new_image_bytes_are_decoded_anew():
    s = _sample()
    s[DECODED] = DecodedImage()
    decode_rgb(s)
    s["jpg"] = jpeg_bytes(64, 48, seed=5)  # a stage replaced the image
    before = decode_count()
    assert np.array_equal(np.asarray(decode_rgb(s)), np.asarray(Image.open(__import__("io").BytesIO(s["jpg"]))))
    assert decode_count() == before + 1


def test_without_a_slot_nothing_is_kept():
    s = _sample()
    decode_rgb(s)
    assert DECODED not in s and batching.DECODED.startswith("__")  # never written to a tar
