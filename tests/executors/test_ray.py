"""The Ray executor on a real local cluster (`ray start --head` on 127.0.0.1): same bytes as the local one."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from surd import shards
from surd.runner import run_stage
from tests.conftest import REPO, jpeg_bytes

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    ray_bin = Path(sys.executable).with_name("ray")
    if not ray_bin.exists():
        pytest.skip("the ray CLI is not installed: pip install 'surd[ray]'")
    tmp = tmp_path_factory.mktemp("ray")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    start = [str(ray_bin), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
             "--include-dashboard=false", f"--temp-dir={tmp}", "--disable-usage-stats"]
    proc = subprocess.run(start, env=env, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        pytest.fail(f"ray start failed: {proc.stderr[-2000:]}")
    yield f"127.0.0.1:{port}"
    ray.shutdown()
    subprocess.run([str(ray_bin), "stop", "--force"], env=env, capture_output=True, timeout=120)
    shutil.rmtree(tmp, ignore_errors=True)


def test_ray_cluster_gives_the_same_shards_as_local(tmp_path, cluster):
    rows = []
    for i in range(9):
        (tmp_path / f"{i}.jpg").write_bytes(jpeg_bytes(300, 200, seed=i))
        rows.append({"image": f"{i}.jpg", "complex_prompt": f"scene {i}"})
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    cfg = {"source": "manifest", "path": str(tmp_path / "m.jsonl"), "size": 64, "shard_size": 2}
    local = run_stage("ingest", cfg, tmp_path / "local", progress=False)
    res = run_stage("ingest", cfg, tmp_path / "ray", executor="ray", address=cluster, workers=2, progress=False)
    assert res.ok and len(res.done) == 5
    assert {k: v for k, v in local.stats.items() if k != "seconds"} == {k: v for k, v in res.stats.items()
                                                                      if k != "seconds"}
    for p in sorted((tmp_path / "local").glob("*.tar")):
        assert p.read_bytes() == (tmp_path / "ray" / p.name).read_bytes()
    again = run_stage("ingest", cfg, tmp_path / "ray", executor="ray", address=cluster, progress=False)
    assert again.skipped == shards.list_done(tmp_path / "ray") and not again.done


@pytest.mark.slow
def test_sample_pipeline_on_ray_equals_local(tmp_path, cluster, monkeypatch):
    """Every shard stage of the sample pipeline (tiny BLIP, CLIP, LLaMA loaded inside Ray workers)."""
    from surd.pipeline import run_pipeline
    from tests.conftest import REPO

    monkeypatch.chdir(REPO)
    local = run_pipeline("pipelines/sample.yaml", tmp_path / "local", progress=False, until="embed")
    remote = run_pipeline("pipelines/sample.yaml", tmp_path / "ray", executor="ray", address=cluster, workers=2,
                          progress=False, until="embed")
    assert [s.stage for s, _ in remote] == ["ingest", "dedup", "caption", "clip_filter", "safety", "quality",
                                            "embed"]
    assert all(res.ok for _, res in local + remote)
    for stage_dir in sorted((tmp_path / "local" / "sample").iterdir()):
        for tar in sorted(stage_dir.glob("*.tar")):
            assert tar.read_bytes() == (tmp_path / "ray" / "sample" / stage_dir.name / tar.name).read_bytes(), tar
