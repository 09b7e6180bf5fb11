"""A real multi-node Ray run with no shared file system: two `ray start` nodes (head + worker, each with its own
resources and temp dir) on 127.0.0.1, every input and output on an S3 server (moto, a separate process).

Model stages run as actors that load the model once and take many shards, one per GPU of the cluster (the nodes
declare 2 GPUs each; Ray hands them out as resources, CPU torch runs the tiny models). The sample pipeline, set up
for the cluster in its own file (no flags), survives the worker node being killed mid-stage and gives the same
bytes as on local disk.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from surd import shards
from surd.executors import get_executor
from surd.executors.ray import workers_that_fit
from surd.pipeline import run_pipeline
from surd.runner import plan_tasks, run_stage
from surd.stages import build_config, get_stage
from surd.task import Chain
from tests.conftest import REPO
from tests.s3_server import free_port, output_digests

ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.ray, pytest.mark.s3]

RAY_BIN = Path(sys.executable).with_name("ray")
GPUS_PER_NODE = 2


@dataclass
class Cluster:
    address: str
    head_dir: Path
    node_dir: Path
    env: dict[str, str]


def _processes() -> dict[int, tuple[int, str]]:
    """pid → (parent pid, command line), from /proc."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        out[int(entry)] = (ppid, cmd)
    return out


def kill_node(temp_dir: Path) -> list[int]:
    """SIGKILL the processes of the Ray node started with this temp dir (its raylet and everything under it)."""
    procs = _processes()
    doomed = {pid for pid, (_, cmd) in procs.items() if str(temp_dir) in cmd} - {os.getpid()}
    while True:
        more = {pid for pid, (ppid, _) in procs.items() if ppid in doomed} - doomed - {os.getpid()}
        if not more:
            break
        doomed |= more
    for pid in doomed:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return sorted(doomed)


def _start(args: list[str], env: dict[str, str]) -> None:
    proc = subprocess.run([str(RAY_BIN), "start", "--node-ip-address=127.0.0.1", "--num-cpus=2",
                           f"--num-gpus={GPUS_PER_NODE}", "--disable-usage-stats", *args],
                          env=env, capture_output=True, text=True, timeout=180)
    if proc.returncode != 0:
        pytest.fail(f"ray start failed: {proc.stderr[-2000:]}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, s3):
    if not RAY_BIN.exists():
        pytest.skip("the ray CLI is not installed: pip install 'surd[ray]'")
    head_dir, node_dir = tmp_path_factory.mktemp("head"), tmp_path_factory.mktemp("node")
    # The S3 credentials and endpoint reach the nodes' workers through their environment, as on a real cluster.
    # Fast health checks: the head declares a killed node dead within seconds.
    env = {**os.environ, "PYTHONPATH": str(REPO), "RAY_health_check_period_ms": "1000",
           "RAY_health_check_timeout_ms": "1000", "RAY_health_check_failure_threshold": "3"}
    # conftest turns multi-node clusters off for drivers (that keeps their address on 127.0.0.1); the nodes
    # themselves are told their address and must allow a second node.
    node_env = {**env, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1"}
    port = free_port()
    _start(["--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={head_dir}"], node_env)
    try:
        _start([f"--address=127.0.0.1:{port}", f"--temp-dir={node_dir}"], node_env)
        yield Cluster(f"127.0.0.1:{port}", head_dir, node_dir, env)
    finally:
        ray.shutdown()
        kill_node(node_dir)
        kill_node(head_dir)
        shutil.rmtree(head_dir, ignore_errors=True)
        shutil.rmtree(node_dir, ignore_errors=True)


def _ingest_cfg(manifest: str) -> dict:
    return {"source": "manifest", "path": manifest, "size": 128, "shard_size": 4}


def test_workers_that_fit_sizes_by_the_stage():
    four_gpus, two_gpus = {"CPU": 16, "GPU": 4}, {"CPU": 8, "GPU": 2}
    assert workers_that_fit([four_gpus], 1, 1) == 4  # a node with 4 GPUs runs 4 one-GPU actors
    assert workers_that_fit([four_gpus, two_gpus], 1, 1) == 6
    assert workers_that_fit([four_gpus], 1, 2) == 2 and workers_that_fit([four_gpus], 1, 0.5) == 8
    assert workers_that_fit([four_gpus], 8, 1) == 2  # CPUs bound too
    assert workers_that_fit([{"CPU": 2}], 1, 1) == 0 and workers_that_fit([{"CPU": 3}], 1, 0) == 3


def test_model_stage_runs_as_actors_one_per_gpu_each_loading_once(cluster, bucket, tmp_path):
    ingest_out, caption_out = bucket + "/actors/00_ingest", bucket + "/actors/01_caption"
    res = run_stage("ingest", _ingest_cfg(bucket + "/manifests/sample/manifest.jsonl"), ingest_out, executor="ray",
                    address=cluster.address, progress=False)
    assert res.ok and len(res.done) == 8
    assert _alive_nodes(cluster) == 2
    module = get_stage("caption")
    cfg = build_config(module, {"model": "tiny", "batch_size": 4})
    executor = get_executor("ray", workers=None, address=cluster.address, uses_gpu=True)
    tasks = plan_tasks(module, cfg, caption_out, ingest_out)
    outcomes = list(executor.run(Chain.of("caption", cfg, caption_out), tasks, 2, lambda n: None))
    assert [error for _, _, error in outcomes] == [None] * 8
    reports = executor.actor_reports
    assert len(reports) == 2 * GPUS_PER_NODE  # one actor per GPU of the cluster, on both nodes
    assert len({r["node"] for r in reports}) == 2 and all(len(r["gpus"]) == 1 for r in reports)
    assert sum(r["shards"] for r in reports) == 8 and max(r["shards"] for r in reports) >= 2
    assert all(r["model_loads"] == (1 if r["shards"] else 0) for r in reports)  # loaded once, many shards
    local = tmp_path / "local"
    run_stage("ingest", _ingest_cfg(str(REPO / "manifests/sample/manifest.jsonl")), local / "00_ingest",
              progress=False)
    run_stage("caption", cfg, local / "01_caption", local / "00_ingest", progress=False)
    assert output_digests(caption_out) == output_digests(str(local / "01_caption"))


def _alive_nodes(cluster: Cluster) -> int:
    if not ray.is_initialized():
        ray.init(address=cluster.address, log_to_driver=False)
    return len([n for n in ray.nodes() if n["Alive"]])


def _pipeline_file(path: Path, **top) -> Path:
    doc = yaml.safe_load((REPO / "pipelines" / "sample.yaml").read_text())
    doc["name"] = "cluster"
    doc["stages"] = [s for s in doc["stages"] if s["stage"] != "train_adapter"]
    doc["stages"][0]["config"].update(_ingest_cfg(top.pop("manifest")))
    for step in doc["stages"]:
        if get_stage(step["stage"]).USES_GPU:  # the model stages: one GPU per actor
            step["resources"] = {"num_gpus": 1, "num_cpus": 1}
    doc.update(top)
    path.write_text(yaml.safe_dump(doc))
    return path


def test_sample_pipeline_on_two_nodes_survives_losing_one(cluster, bucket, tmp_path):
    local_file = _pipeline_file(tmp_path / "local.yaml", manifest=str(REPO / "manifests/sample/manifest.jsonl"))
    local = run_pipeline(local_file, tmp_path / "local", progress=False)
    assert all(res.ok for _, res in local)
    runs = bucket + "/runs"
    pipe = _pipeline_file(tmp_path / "cluster.yaml", manifest=bucket + "/manifests/sample/manifest.jsonl",
                          runs_dir=runs, executor="ray", address=cluster.address, workers=2)
    stages = [s["stage"] for s in yaml.safe_load(pipe.read_text())["stages"]]
    caption = f"{runs}/cluster/{stages.index('caption'):02d}_caption"
    killed: dict[str, object] = {}

    def kill_mid_caption() -> None:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and not killed:
            done = shards.list_done(caption)
            if done:
                killed["done_at_kill"] = len(done)
                killed["pids"] = kill_node(cluster.node_dir)
            time.sleep(0.2)

    watcher = threading.Thread(target=kill_mid_caption, daemon=True)
    watcher.start()
    # `surd run FILE` with no flag: runs_dir, executor, address and workers come from the file.
    proc = subprocess.run([sys.executable, "-m", "surd", "run", str(pipe)], env=cluster.env, capture_output=True,
                          text=True, timeout=900)
    killed.setdefault("done_at_kill", None)
    watcher.join(5)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert killed.get("pids") and 0 < killed["done_at_kill"] < 8, killed  # the node died mid-stage
    assert "lost with its worker (" in proc.stderr and "rerunning it on a new actor" in proc.stderr
    assert _alive_nodes(cluster) == 1
    remote = output_digests(runs + "/cluster")
    assert len(remote) == 16 * len(stages) and remote == output_digests(str(tmp_path / "local" / "cluster"))
