"""Ray executor: shards on a cluster (``--executor ray --address auto``), spread over its nodes.

Model stages (``USES_GPU``) run in a pool of actors, each loading the model once and taking shard after shard,
sized by the stage's resources (``num_gpus``, ``num_cpus``): a node with 4 GPUs runs 4 one-GPU actors. Other
stages run as one Ray task per shard. Outputs go wherever the output path points: an object store (``s3://…``)
needs no shared file system, since every worker reads its input and writes its shard there itself. A lost
worker, actor or node fails only its shards in flight; they are retried elsewhere (replacement actors start
where there is room), so the output is the same bytes as an uninterrupted run.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from surd.deps import require
from surd.fetch.budget import serve_ray
from surd.models import ModelCache
from surd.task import Chain, Failures, ShardTask, not_run, process

STALL_SECONDS = 600.0  # no worker could start for this long: the cluster lacks the resources a worker asks for
log = logging.getLogger(__name__)


def _run_shard(chain: Chain, task: ShardTask) -> dict:
    return process(chain, task)


class ShardWorker:
    """A Ray actor: runs shards one after another in one process, so a stage's model is loaded once."""

    def __init__(self) -> None:
        self.shards = 0

    def ready(self) -> int:
        return os.getpid()

    def run(self, chain: Chain, task: ShardTask) -> dict:
        stats = process(chain, task)
        self.shards += 1
        return stats

    def report(self) -> dict[str, Any]:
        """What this actor did: its process, node, GPUs, shards run and models loaded."""
        ray = require("ray", "ray")
        ctx = ray.get_runtime_context()
        return {"pid": os.getpid(), "node": ctx.get_node_id(), "gpus": [str(g) for g in ray.get_gpu_ids()],
                "shards": self.shards, "model_loads": ModelCache.loads}


def workers_that_fit(nodes: list[dict[str, float]], num_cpus: float, num_gpus: float) -> int:
    """How many workers of (num_cpus, num_gpus) the nodes' total resources hold, node by node."""
    total = 0
    for res in nodes:
        fits = [math.floor(res.get("CPU", 0) / num_cpus + 1e-9)] if num_cpus > 0 else []
        fits += [math.floor(res.get("GPU", 0) / num_gpus + 1e-9)] if num_gpus > 0 else []
        total += min(fits) if fits else 0
    return total


class RayExecutor:
    def __init__(self, workers: int | None = None, address: str | None = None, uses_gpu: bool = False,
                 resources: dict[str, float] | None = None):
        self.ray = require("ray", "ray")
        if not self.ray.is_initialized():
            # address=None starts a local single-node cluster; "auto" or host:port joins a running one.
            self.ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
        res = dict(resources or {})
        gpus = self.ray.cluster_resources().get("GPU", 0)
        self.num_gpus = res.get("num_gpus", 1.0 if uses_gpu and gpus >= 1 else 0.0)
        self.num_cpus = res.get("num_cpus", 1.0)
        self.use_actors = uses_gpu  # model stages: load once per actor, not once per shard
        nodes = [n["Resources"] for n in self.ray.nodes() if n.get("Alive")]
        self.fit = workers_that_fit(nodes, self.num_cpus, self.num_gpus)
        if self.fit == 0:
            raise ValueError(f"no node of the Ray cluster has {self.num_cpus:g} CPU(s) and {self.num_gpus:g} GPU(s) "
                             "for one worker: lower the stage's resources (num_cpus, num_gpus) or add such a node")
        self.workers = workers or self.fit  # the most shards in flight at once
        self.actor_reports: list[dict[str, Any]] = []

    def _options(self) -> dict[str, Any]:
        return {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus, "scheduling_strategy": "SPREAD"}

    def run(self, chain: Chain, tasks: list[ShardTask], retries: int,
            progress: Callable[[int], None]) -> Iterator[tuple[ShardTask, dict | None, str | None]]:
        """Progress is counted when a shard comes back done (a failed attempt counts nothing)."""
        with serve_ray(self.ray):  # every worker on every node waits on one per-host budget (surd.fetch.budget)
            if self.use_actors:
                yield from self._run_actors(chain, tasks, Failures(retries), progress)
            else:
                yield from self._run_tasks(chain, tasks, Failures(retries), progress)

    def _run_tasks(self, chain, tasks, failures, progress):
        ray = self.ray
        remote = ray.remote(max_retries=0, **self._options())(_run_shard)
        queue = deque(tasks)
        running: dict[Any, ShardTask] = {}
        while queue or running:
            if failures.fatal is not None and queue:
                yield from ((t, None, not_run(failures.fatal)) for t in queue)
                queue.clear()
                continue
            while queue and len(running) < self.workers:
                task = queue.popleft()
                running[remote.remote(chain, task)] = task
            ready, _ = ray.wait(list(running), num_returns=1)
            task = running.pop(ready[0])
            try:
                stats = ray.get(ready[0])
            except Exception as e:  # task errors and lost workers/nodes alike: retry, then report
                error = failures.record(task, getattr(e, "cause", None) or e)
                if error is None:
                    log.warning("shard %s failed (%s): rerunning it", task.stem, type(e).__name__)
                    queue.append(task)
                else:
                    yield task, None, error
                continue
            progress(task.n_in)
            yield task, stats, None

    def _run_actors(self, chain, tasks, failures, progress):
        ray = self.ray
        actor_cls = ray.remote(max_restarts=0, max_task_retries=0, **self._options())(ShardWorker)
        queue = deque(tasks)
        starting: dict[Any, Any] = {}  # ready() ref → actor not yet placed and started
        idle: list[Any] = []
        running: dict[Any, tuple[ShardTask, Any]] = {}
        actors: list[Any] = []

        def start_actor() -> None:
            actor = actor_cls.remote()
            actors.append(actor)
            starting[actor.ready.remote()] = actor

        for _ in range(min(self.workers, len(tasks))):
            start_actor()
        last_progress = time.monotonic()
        try:
            while queue or running:
                if failures.fatal is not None and queue:
                    yield from ((t, None, not_run(failures.fatal)) for t in queue)
                    queue.clear()
                    continue
                while queue and idle:
                    actor = idle.pop()
                    task = queue.popleft()
                    running[actor.run.remote(chain, task)] = (task, actor)
                ready, _ = ray.wait([*running, *starting], num_returns=1, timeout=10.0)
                if not ready:
                    if not running and time.monotonic() - last_progress > STALL_SECONDS:
                        raise RuntimeError(f"no Ray worker with {self.num_cpus:g} CPU(s) and {self.num_gpus:g} "
                                           f"GPU(s) could start for {STALL_SECONDS:.0f} s: the cluster lacks them")
                    continue
                last_progress = time.monotonic()
                ref = ready[0]
                if ref in starting:
                    actor = starting.pop(ref)
                    try:
                        ray.get(ref)
                        idle.append(actor)
                    except ray.exceptions.RayActorError:
                        start_actor()  # its node went away before it started: place another
                    continue
                task, actor = running.pop(ref)
                try:
                    stats = ray.get(ref)
                except ray.exceptions.RayActorError as e:  # the actor (or its node) died: a new one takes over
                    log.warning("shard %s lost with its worker (%s): rerunning it on a new actor", task.stem,
                                type(e).__name__)
                    start_actor()
                    error = failures.record(task, e)
                except Exception as e:  # the shard failed; the actor itself is fine
                    idle.append(actor)
                    error = failures.record(task, getattr(e, "cause", None) or e)
                else:
                    idle.append(actor)
                    progress(task.n_in)
                    yield task, stats, None
                    continue
                if error is None:
                    queue.append(task)
                else:
                    yield task, None, error
            self.actor_reports = self._reports(idle)
        finally:
            for actor in actors:
                ray.kill(actor)

    def _reports(self, actors: list[Any]) -> list[dict[str, Any]]:
        try:
            return list(self.ray.get([a.report.remote() for a in actors], timeout=60))
        except Exception:  # reports are for inspection only; never fail a finished stage over them
            return []
