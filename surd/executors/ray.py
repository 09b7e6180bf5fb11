"""Ray executor: shards as Ray tasks on a cluster (``--executor ray --address auto``); GPU stages ask for a GPU.

The output directory must be on storage every node can write (NFS, a shared volume): each task writes its
shard there exactly as a local worker would, so skip-done, retries and byte-identical outputs hold unchanged.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from surd.deps import require
from surd.task import ShardTask, format_error, is_fatal, not_run, process_shard


def _run_shard(stage: str, cfg: Any, output_dir: str, task: ShardTask) -> dict:
    return process_shard(stage, cfg, output_dir, task)


class RayExecutor:
    def __init__(self, workers: int = 1, address: str | None = None, uses_gpu: bool = False):
        self.ray = require("ray", "ray")
        self.workers = workers  # the most shards in flight at once
        if not self.ray.is_initialized():
            # address=None starts a local single-node cluster; "auto" or host:port joins a running one.
            self.ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
        gpus = self.ray.cluster_resources().get("GPU", 0)
        self.num_gpus = 1 if uses_gpu and gpus >= 1 else 0

    def run(self, stage: str, cfg: Any, output_dir: str, tasks: list[ShardTask], retries: int,
            progress: Callable[[int], None]) -> Iterator[tuple[ShardTask, dict | None, str | None]]:
        ray = self.ray
        remote = ray.remote(num_cpus=1, num_gpus=self.num_gpus, max_retries=0)(_run_shard)
        attempts: Counter[str] = Counter()
        queue = list(tasks)
        running: dict[Any, ShardTask] = {}
        fatal = None
        while queue or running:
            if fatal is not None and queue:
                for task in queue:
                    yield task, None, not_run(fatal)
                queue = []
                continue
            while queue and len(running) < self.workers:
                task = queue.pop(0)
                running[remote.remote(stage, cfg, output_dir, task)] = task
            ready, _ = ray.wait(list(running), num_returns=1)
            task = running.pop(ready[0])
            try:
                stats = ray.get(ready[0])
            except Exception as e:  # task errors and lost workers/nodes alike: retry, then report
                cause = getattr(e, "cause", None) or e
                attempts[task.stem] += 1
                if is_fatal(cause):
                    fatal = format_error(cause)
                if attempts[task.stem] <= retries and not is_fatal(cause):
                    queue.append(task)
                else:
                    yield task, None, format_error(cause)
                continue
            progress(task.n_in)
            yield task, stats, None
