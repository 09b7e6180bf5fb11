"""Executors run shard tasks: ``local`` (in-process or a process pool, the default) and ``ray`` (a cluster).

An executor's ``run(stage, cfg, output_dir, tasks, retries, progress)`` yields ``(task, stats, None)`` for each
shard done and ``(task, None, error)`` for each shard that still failed after ``retries`` retries.
"""

from __future__ import annotations

import importlib
from typing import Any

EXECUTORS: dict[str, str] = {"local": "surd.executors.local:LocalExecutor", "ray": "surd.executors.ray:RayExecutor"}


def get_executor(name: str, *, workers: int = 1, address: str | None = None, uses_gpu: bool = False) -> Any:
    if name not in EXECUTORS:
        raise ValueError(f"unknown executor {name!r}; choose one of {', '.join(sorted(EXECUTORS))}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    module, _, cls = EXECUTORS[name].partition(":")
    return getattr(importlib.import_module(module), cls)(workers=workers, address=address, uses_gpu=uses_gpu)
