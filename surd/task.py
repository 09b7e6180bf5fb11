"""The shard-run contract shared by the runner and every executor: one shard through one stage.

`process_shard` is what a worker runs (in this process, a spawned process or a Ray task); `is_fatal` decides
whether a failed shard is retried or stops the run; `format_error` is the line a user sees for a failure.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import surd
from surd import shards
from surd.models import ModelLoadError
from surd.sample import Rejected
from surd.stages import get_stage

Progress = Callable[[int], None]


@dataclass(frozen=True)
class ShardTask:
    """One unit of work: output shard `stem` from an input tar path, or from source rows (ingest)."""

    stem: str
    input: str | list[dict[str, Any]]
    n_in: int


class StageContractError(RuntimeError):
    """A stage broke the one-output-per-input contract."""


def is_fatal(exc: BaseException) -> bool:
    """Errors no retry can fix (a model that cannot load, a missing dependency): the run stops at once."""
    return isinstance(exc, (ModelLoadError, ImportError))


def not_run(error: str) -> str:
    """The error recorded for a shard that never ran because an earlier one failed fatally."""
    return f"not run: stopped after a fatal error ({error})"


def format_error(exc: BaseException) -> str:
    """One line a user can act on, plus the innermost frame."""
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(tb[-1].filename).name}:{tb[-1].lineno})" if tb else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _counted(items: Iterable[Any], counter: list[int], progress: Progress | None) -> Iterator[Any]:
    for item in items:
        counter[0] += 1
        if progress is not None:
            progress(1)
        yield item


def process_shard(stage: str, cfg: Any, output_dir: str, task: ShardTask, progress: Progress | None = None) -> dict:
    """Run the stage over one shard and commit it; returns the shard's stats. Called inside a worker."""
    module = get_stage(stage)
    t0 = time.perf_counter()
    inputs: Iterable[Any] = task.input if isinstance(task.input, list) else shards.read_shard(task.input)
    consumed = [0]
    produced = 0
    with shards.ShardWriter(output_dir, task.stem) as writer:
        for item in module.run(_counted(inputs, consumed, progress), cfg):
            if not isinstance(item, (dict, Rejected)):
                raise StageContractError(f"stage {stage} yielded a {type(item).__name__}, not a sample or Rejected")
            writer.add(item)
            produced += 1
        if produced != consumed[0]:
            raise StageContractError(f"stage {stage} yielded {produced} results for {consumed[0]} inputs in shard "
                                     f"{task.stem}: every input needs a kept sample or a Rejected with a reason")
        versions = {"surd": surd.__version__, **module.versions()}
        return writer.commit({"seconds": round(time.perf_counter() - t0, 3), "versions": versions})
