"""Local executor: shards in this process (workers=1) or in a pool of spawned worker processes."""

from __future__ import annotations

import multiprocessing as mp
import queue as queue_mod
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from surd.fetch.budget import serve_processes
from surd.task import ShardTask, format_error, is_fatal, not_run, process_shard

_QUEUE: Any = None  # per worker process: where progress counts go
_UNSENT = [0]


def _init_worker(q: Any) -> None:
    global _QUEUE
    _QUEUE = q


def _report(n: int) -> None:
    # One queue message per 16 samples keeps the progress overhead negligible.
    _UNSENT[0] += n
    if _UNSENT[0] >= 16:
        _QUEUE.put(_UNSENT[0])
        _UNSENT[0] = 0


def _entry(stage: str, cfg: Any, output_dir: str, task: ShardTask) -> dict:
    try:
        return process_shard(stage, cfg, output_dir, task, _report)
    finally:
        _QUEUE.put(_UNSENT[0])
        _UNSENT[0] = 0


class LocalExecutor:
    def __init__(self, workers: int | None = 1, address: str | None = None, uses_gpu: bool = False,
                 resources: dict[str, float] | None = None):
        if address:
            raise ValueError("--address is for --executor ray; the local executor runs on this machine")
        self.workers = workers or 1  # resources size Ray workers; here a worker is one process

    def run(self, stage: str, cfg: Any, output_dir: str, tasks: list[ShardTask], retries: int,
            progress: Callable[[int], None]) -> Iterator[tuple[ShardTask, dict | None, str | None]]:
        if self.workers == 1 or len(tasks) <= 1:
            yield from self._serial(stage, cfg, output_dir, tasks, retries, progress)
        else:
            with serve_processes():  # rate-budget hook: the worker processes wait on this process's per-host budget
                yield from self._pool(stage, cfg, output_dir, tasks, retries, progress)

    def _serial(self, stage, cfg, output_dir, tasks, retries, progress):
        fatal = None
        for task in tasks:
            if fatal is not None:
                yield task, None, not_run(fatal)
                continue
            for attempt in range(retries + 1):
                seen = [0]

                def count(n: int, seen: list[int] = seen) -> None:
                    seen[0] += n
                    progress(n)

                try:
                    yield task, process_shard(stage, cfg, output_dir, task, count), None
                    break
                except Exception as e:  # a failed shard is retried, then reported; it never stops the run
                    progress(-seen[0])
                    if attempt == retries or is_fatal(e):
                        fatal = format_error(e) if is_fatal(e) else None
                        yield task, None, format_error(e)
                        break

    def _pool(self, stage, cfg, output_dir, tasks, retries, progress):
        ctx = mp.get_context("spawn")  # fork after torch/OpenMP init can deadlock; spawn is always safe
        q = ctx.Queue()
        attempts: Counter[str] = Counter()
        pending = list(tasks)
        fatal = None
        while pending and fatal is None:
            # A worker killed mid-shard breaks the whole pool: every unfinished task then fails with
            # BrokenProcessPool, is requeued (counting one attempt), and a fresh pool takes them.
            with ProcessPoolExecutor(min(self.workers, len(pending)), mp_context=ctx, initializer=_init_worker,
                                     initargs=(q,)) as pool:
                futures: dict[Future, ShardTask] = {pool.submit(_entry, stage, cfg, output_dir, t): t for t in pending}
                pending = []
                while futures:
                    done, _ = wait(futures, timeout=0.2, return_when=FIRST_COMPLETED)
                    _drain(q, progress)
                    for fut in done:
                        task = futures.pop(fut)
                        if fut.cancelled():
                            yield task, None, not_run(fatal)
                            continue
                        try:
                            yield task, fut.result(), None
                        except (Exception, BrokenProcessPool) as e:
                            attempts[task.stem] += 1
                            if is_fatal(e) and fatal is None:
                                fatal = format_error(e)
                                for other in futures:
                                    other.cancel()  # shards not started yet would fail the same way
                            if attempts[task.stem] <= retries and not is_fatal(e):
                                pending.append(task)
                            else:
                                yield task, None, format_error(e)
        for task in pending:
            yield task, None, not_run(fatal)
        _drain(q, progress)


def _drain(q: Any, progress: Callable[[int], None]) -> None:
    while True:
        try:
            n = q.get_nowait()
        except queue_mod.Empty:
            return
        if n:
            progress(n)
