"""Remote storage against a real S3-compatible server (moto's server mode, a separate process on 127.0.0.1).

The sample pipeline read from and written to s3:// gives the same bytes as on local disk; a run killed in the
middle of an upload and rerun gives the same bytes; web listings, the embed cache, review exports and the
adapter's training data work there too. Credentials and the endpoint reach surd only through the standard AWS
environment variables, and are never saved.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import yaml

from surd import files, shards, storage
from surd.pipeline import run_pipeline
from surd.runner import run_stage
from tests.conftest import REPO, jpeg_bytes
from tests.s3_server import output_digests

pytestmark = pytest.mark.s3


SAMPLE_STAGES = [s["stage"] for s in yaml.safe_load((REPO / "pipelines" / "sample.yaml").read_text())["stages"]]


def stage_dir(stage: str) -> str:
    """The sample pipeline's folder for *stage*, NN_<stage>."""
    return f"{SAMPLE_STAGES.index(stage):02d}_{stage}"


def _pipeline(tmp_path, **top) -> str:
    doc = yaml.safe_load((REPO / "pipelines" / "sample.yaml").read_text())
    doc.update(top)
    if "manifest" in top:
        doc["stages"][0]["config"]["path"] = doc.pop("manifest")
    path = tmp_path / f"{doc['name']}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """The sample pipeline on local disk: the bytes every remote run must reproduce."""
    tmp = tmp_path_factory.mktemp("local")
    results = run_pipeline(_pipeline(tmp, manifest=str(REPO / "manifests/sample/manifest.jsonl")), tmp / "runs",
                           progress=False)
    assert all(getattr(res, "ok", True) for _, res in results)
    return tmp / "runs"


@pytest.fixture(scope="module")
def s3_run(bucket, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("remote")
    pipe = _pipeline(tmp, manifest=bucket + "/manifests/sample/manifest.jsonl", runs_dir=bucket + "/runs")
    saved = os.environ.get("SURD_CACHE_DIR")
    os.environ["SURD_CACHE_DIR"] = str(tmp / "machine-1")  # where training into a URL keeps its local mirror
    try:
        t0 = time.perf_counter()
        results = run_pipeline(pipe, progress=False)  # runs_dir comes from the file
    finally:
        if saved is None:
            del os.environ["SURD_CACHE_DIR"]
        else:
            os.environ["SURD_CACHE_DIR"] = saved
    return pipe, results, time.perf_counter() - t0


def test_sample_pipeline_from_and_to_s3_equals_local(local_run, s3_run, bucket):
    _, results, _ = s3_run
    assert [s.stage for s, _ in results] == SAMPLE_STAGES
    assert all(getattr(res, "ok", True) for _, res in results)
    local, remote = output_digests(str(local_run)), output_digests(bucket + "/runs")
    shard_stages = len(SAMPLE_STAGES) - 1  # each writes 2 shards (tar + parquet); training 3 safetensors
    assert len(local) == 4 * shard_stages + 3 and remote == local
    assert results[-1][1]["adapter"] == f"{bucket}/runs/sample/{stage_dir('train_adapter')}"  # from s3 shards, to s3


def test_no_credential_or_endpoint_is_saved(s3_run, bucket, s3):
    for rel in storage.walk_files(bucket + "/runs"):
        if rel.endswith((".json", ".csv")):
            text = storage.read_text(storage.join(bucket, "runs", rel))
            assert s3.endpoint not in text and s3.env["AWS_SECRET_ACCESS_KEY"] not in text.split('"'), rel


def test_rerun_on_s3_skips_every_done_shard(s3_run):
    pipe, first, _ = s3_run
    again = run_pipeline(pipe, progress=False, until="embed")
    for (step, res), (_, before) in zip(again, first):
        assert not res.done and res.skipped == before.done + before.skipped, step.stage


def test_training_into_s3_resumes_on_another_machine_without_training_again(s3_run, bucket, tmp_path, monkeypatch):
    """A fresh machine (an empty local mirror) reruns the pipeline: the finished adapter's checkpoints come down from
    the bucket, so no step is trained again and the published adapter keeps its bytes."""
    pipe, _, _ = s3_run
    adapter = f"{bucket}/runs/sample/{stage_dir('train_adapter')}"
    before = output_digests(adapter)
    log_before = storage.read_text(adapter + "/log.csv")
    monkeypatch.setenv("SURD_CACHE_DIR", str(tmp_path / "machine-2"))
    results = run_pipeline(pipe, progress=False)
    assert all(res.skipped and not res.done for _, res in results[:-1])
    mirror = next((tmp_path / "machine-2" / "train").iterdir())
    assert (mirror / "checkpoints" / "step-00000004" / "trainer_state.json").exists()  # pulled from the bucket
    assert storage.read_text(adapter + "/log.csv") == log_before  # 4 steps logged once: nothing retrained
    assert output_digests(adapter) == before


def test_a_partial_upload_is_never_done_and_a_rerun_gives_the_same_bytes(bucket, tmp_path):
    """The writer is SIGKILLed in the middle of its third upload, after half a tar reached its final key (what a
    store without atomic puts could show); the shard has no stats marker, so it is not done, and a rerun redoes it."""
    cfg = {"source": "manifest", "path": str(REPO / "manifests/sample/manifest.jsonl"), "size": 96, "shard_size": 8}
    run_stage("ingest", cfg, tmp_path / "clean", progress=False)
    out = bucket + "/killed/00_ingest"
    script = textwrap.dedent(f"""
        import os, signal
        from surd import storage
        from surd.runner import run_stage
        real, calls = storage.put_file, []
        def dying_put(local, url):
            calls.append(url)
            if len(calls) == 3:  # the third shard's tar: half of it, then the process dies mid-upload
                data = open(local, "rb").read()
                storage.put_bytes(url, data[: len(data) // 2])
                os.kill(os.getpid(), signal.SIGKILL)
            real(local, url)
        storage.put_file = dying_put
        run_stage("ingest", {cfg!r}, {out!r}, progress=False)
    """)
    proc = subprocess.run([sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert shards.list_done(out) == ["00000", "00001"]
    assert storage.exists(out + "/00002.tar") and not storage.exists(out + "/00002.stats.json")
    res = run_stage("ingest", cfg, out, progress=False)
    assert res.ok and res.skipped == ["00000", "00001"] and res.done == ["00002", "00003"]
    assert output_digests(out) == output_digests(str(tmp_path / "clean"))


def test_storage_helpers_on_s3(bucket):
    base = bucket + "/helpers"
    files.write_json_atomic(base + "/a/x.json", {"b": 1})
    files.write_bytes_atomic(base + "/a/y.bin", b"\0" * 10)
    assert storage.listdir(base + "/a") == ["x.json", "y.bin"] and storage.listdir(base) == ["a"]
    assert storage.isfile(base + "/a/x.json") and storage.isdir(base + "/a") and not storage.exists(base + "/none")
    assert storage.read_many([base + "/a/y.bin", base + "/a/x.json"])[0] == b"\0" * 10
    assert storage.version_tag(base + "/a/y.bin")["size"] == 10
    assert storage.parent(base + "/a/x.json") == base + "/a" and storage.basename(base + "/a/x.json") == "x.json"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        storage.listdir(base + "/none")
    assert files.clean_temp_files(base) == 0  # temp files stay on the local disk, never in the bucket
    storage.remove(base + "/a/y.bin")
    assert storage.listdir(base + "/a") == ["x.json"]


def test_remote_image_refs_are_fetched_with_reasons(bucket):
    from surd.fetch import fetch_all

    storage.put_bytes(bucket + "/img/ok.jpg", jpeg_bytes(80, 60))
    storage.put_bytes(bucket + "/img/empty.jpg", b"")
    got = fetch_all([bucket + "/img/ok.jpg", bucket + "/img/missing.jpg", bucket + "/img/empty.jpg",
                     bucket + "/img/ok.jpg"], {"max_bytes": 1 << 20})
    assert got[0] == got[3] == jpeg_bytes(80, 60)
    assert [g.reason for g in got[1:3]] == ["missing_file", "empty_file"]
    assert fetch_all([bucket + "/img/ok.jpg"], {"max_bytes": 100})[0].reason == "too_large"


def test_web_listing_state_resumes_from_s3(bucket):
    from surd.sources.web_state import PageLog

    state = bucket + "/web/_state/civitai_pages.jsonl"
    log = PageLog(state, {"q": 1})
    log.append({"items": [1, 2], "next": "c1"})
    log.append({"items": [3], "next": None})
    assert PageLog(state, {"q": 1}).pages() == [{"items": [1, 2], "next": "c1"}, {"items": [3], "next": None}]
    with pytest.raises(ValueError, match="different query"):
        PageLog(state, {"q": 2})


def test_embed_cache_on_s3_is_shared_and_exact(bucket):
    from surd.embed.cache import ObjectEmbedCache, open_cache
    from surd.embed.core import Embedding

    cache = open_cache(bucket + "/embed-cache")
    assert isinstance(cache, ObjectEmbedCache)
    vecs = {f"prompt {i}": Embedding(np.arange(i, i + 6, dtype=np.float16), i % 2 == 0, i + 3) for i in range(5)}
    cache.put_many({"model": "m"}, vecs)
    again = open_cache(bucket + "/embed-cache").get_many({"model": "m"}, [*vecs, "unknown"])
    assert again.keys() == vecs.keys() and len(cache) == 5
    for p, e in vecs.items():
        assert np.array_equal(again[p].vector, e.vector) and (again[p].truncated, again[p].tokens) == (
            e.truncated, e.tokens)
    assert not cache.get_many({"model": "other"}, list(vecs))


def test_review_export_and_stats_read_s3(s3_run, bucket, tmp_path):
    from typer.testing import CliRunner

    from surd.cli import app
    from surd.review.exporter import ExportConfig, export_review

    dataset = f"{bucket}/runs/sample/{stage_dir('clip_filter')}"
    res = export_review(dataset, bucket + "/review", ExportConfig(format="csv"), progress=False)
    kept = sum(st["kept"] for st in shards.read_stats(dataset).values())
    assert res.n == kept and res.batches == [bucket + "/review"]
    assert storage.read_text(bucket + "/review/review.csv", "utf-8-sig").count("\n") == kept + 1
    with pytest.raises(FileExistsError, match="not empty"):
        export_review(dataset, bucket + "/review", ExportConfig(format="csv"), progress=False)
    out = CliRunner().invoke(app, ["stats", bucket + "/runs/sample", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["00_ingest"]["in"] == 32
