"""Executors schedule shard tasks: ``local`` (in-process or a process pool, the default) and ``ray`` (a cluster).

They only schedule: the runner plans the tasks and skips done shards; `surd.task.process` runs one shard through a
chain of stages, and `surd.task.Failures` is the failure policy every executor applies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

from surd.registry import Registry
from surd.task import Chain, ShardTask

EXECUTORS = Registry("executor", {
    "local": "surd.executors.local:LocalExecutor",
    "ray": "surd.executors.ray:RayExecutor",
})

Outcome = tuple[ShardTask, "dict | None", "str | None"]


class Executor(Protocol):
    """Built as ``cls(workers=…, address=…, uses_gpu=…, resources=…)``; `run` yields ``(task, stats, None)`` for
    each shard done and ``(task, None, error)`` for each shard that still failed after ``retries`` retries.
    ``workers`` None means the executor's default (1 locally; on Ray, as many workers as the cluster holds);
    ``resources`` (``num_cpus``, ``num_gpus``) size one worker where the executor can (Ray)."""

    def run(self, chain: Chain, tasks: list[ShardTask], retries: int,
            progress: Callable[[int], None]) -> Iterator[Outcome]: ...


RESOURCE_KEYS = ("num_cpus", "num_gpus")


def check_resources(resources: dict[str, Any] | None) -> dict[str, float]:
    """A stage's per-worker resources (``{num_cpus: 2, num_gpus: 1}``), validated; the error names the fix."""
    out: dict[str, float] = {}
    for k, v in (resources or {}).items():
        if k not in RESOURCE_KEYS:
            raise ValueError(f"unknown resource {k!r}: a stage's resources are {', '.join(RESOURCE_KEYS)}")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            raise ValueError(f"resource {k} must be a number >= 0, got {v!r}")
        out[k] = float(v)
    if out.get("num_cpus") == 0 and out.get("num_gpus", 0) == 0:
        raise ValueError("a worker needs num_cpus > 0 or num_gpus > 0")
    return out


def get_executor(name: str, *, workers: int | None = 1, address: str | None = None, uses_gpu: bool = False,
                 resources: dict[str, Any] | None = None) -> Executor:
    """An executor by name; the error lists the valid names."""
    cls = EXECUTORS.load(name)
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    return cls(workers=workers, address=address, uses_gpu=uses_gpu, resources=check_resources(resources))
