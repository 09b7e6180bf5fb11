"""Executors schedule shard tasks: ``local`` (in-process or a process pool, the default) and ``ray`` (a cluster).

They only schedule: the runner plans the tasks and skips done shards; `surd.task.process_shard` does one shard.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

from surd.registry import Registry
from surd.task import ShardTask

EXECUTORS = Registry("executor", {
    "local": "surd.executors.local:LocalExecutor",
    "ray": "surd.executors.ray:RayExecutor",
})

Outcome = tuple[ShardTask, "dict | None", "str | None"]


class Executor(Protocol):
    """Built as ``cls(workers=…, address=…, uses_gpu=…)``; `run` yields ``(task, stats, None)`` for each shard done
    and ``(task, None, error)`` for each shard that still failed after ``retries`` retries."""

    def run(self, stage: str, cfg: Any, output_dir: str, tasks: list[ShardTask], retries: int,
            progress: Callable[[int], None]) -> Iterator[Outcome]: ...


def get_executor(name: str, *, workers: int = 1, address: str | None = None, uses_gpu: bool = False) -> Executor:
    """An executor by name; the error lists the valid names."""
    cls = EXECUTORS.load(name)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    return cls(workers=workers, address=address, uses_gpu=uses_gpu)
