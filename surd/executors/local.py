"""Local executor: shards in this process (workers=1) or in a pool of spawned worker processes."""

from __future__ import annotations

import multiprocessing as mp
import queue as queue_mod
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from surd.fetch.budget import serve_processes
from surd.task import Chain, Failures, ShardTask, not_run, process

_QUEUE: Any = None  # per worker process: where progress counts go, as (stem, samples)
_UNSENT: dict[str, int] = {}


def _init_worker(q: Any) -> None:
    global _QUEUE
    _QUEUE = q


def _flush(stem: str) -> None:
    n = _UNSENT.pop(stem, 0)
    if n:
        _QUEUE.put((stem, n))


def _entry(chain: Chain, task: ShardTask) -> dict:
    def report(n: int) -> None:  # one queue message per 16 samples keeps the progress overhead negligible
        _UNSENT[task.stem] = _UNSENT.get(task.stem, 0) + n
        if _UNSENT[task.stem] >= 16:
            _flush(task.stem)

    try:
        return process(chain, task, report)
    finally:
        _flush(task.stem)


class _Progress:
    """Samples counted per shard, so a failed attempt's count is taken back (the same meaning on every executor)."""

    def __init__(self, progress: Callable[[int], None]) -> None:
        self.progress = progress
        self.seen: dict[str, int] = {}

    def add(self, stem: str, n: int) -> None:
        self.seen[stem] = self.seen.get(stem, 0) + n
        self.progress(n)

    def take_back(self, stem: str) -> None:
        self.progress(-self.seen.pop(stem, 0))

    def drain(self, q: Any) -> None:
        while True:
            try:
                stem, n = q.get_nowait()
            except queue_mod.Empty:
                return
            self.add(stem, n)


class LocalExecutor:
    def __init__(self, workers: int | None = 1, address: str | None = None, uses_gpu: bool = False,
                 resources: dict[str, float] | None = None):
        if address:
            raise ValueError("--address is for --executor ray; the local executor runs on this machine")
        self.workers = workers or 1  # resources size Ray workers; here a worker is one process

    def run(self, chain: Chain, tasks: list[ShardTask], retries: int,
            progress: Callable[[int], None]) -> Iterator[tuple[ShardTask, dict | None, str | None]]:
        if self.workers == 1 or len(tasks) <= 1:
            yield from self._serial(chain, tasks, Failures(retries), _Progress(progress))
        else:
            with serve_processes():  # the worker processes wait on this process's per-host budget (surd.fetch.budget)
                yield from self._pool(chain, tasks, Failures(retries), _Progress(progress))

    def _serial(self, chain, tasks, failures, counts):
        for task in tasks:
            while failures.fatal is None:
                try:
                    stats = process(chain, task, lambda n, stem=task.stem: counts.add(stem, n))
                except Exception as e:  # a failed shard is retried, then reported; it never stops the run
                    counts.take_back(task.stem)
                    error = failures.record(task, e)
                    if error is not None:
                        yield task, None, error
                        break
                else:
                    yield task, stats, None
                    break
            else:
                yield task, None, not_run(failures.fatal)

    def _pool(self, chain, tasks, failures, counts):
        ctx = mp.get_context("spawn")  # fork after torch/OpenMP init can deadlock; spawn is always safe
        q = ctx.Queue()
        pending = list(tasks)
        while pending and failures.fatal is None:
            # A worker killed mid-shard breaks the whole pool: every unfinished task then fails with
            # BrokenProcessPool, is requeued (counting one attempt), and a fresh pool takes them.
            with ProcessPoolExecutor(min(self.workers, len(pending)), mp_context=ctx, initializer=_init_worker,
                                     initargs=(q,)) as pool:
                futures: dict[Future, ShardTask] = {pool.submit(_entry, chain, t): t for t in pending}
                pending = []
                while futures:
                    done, _ = wait(futures, timeout=0.2, return_when=FIRST_COMPLETED)
                    counts.drain(q)
                    for fut in done:
                        task = futures.pop(fut)
                        if fut.cancelled():
                            yield task, None, not_run(failures.fatal)
                            continue
                        try:
                            stats = fut.result()
                        except (Exception, BrokenProcessPool) as e:
                            counts.drain(q)
                            counts.take_back(task.stem)
                            error = failures.record(task, e)
                            if failures.fatal is not None:
                                for other in futures:
                                    other.cancel()  # shards not started yet would fail the same way
                            if error is None:
                                pending.append(task)
                            else:
                                yield task, None, error
                            continue
                        yield task, stats, None
        for task in pending:
            yield task, None, not_run(failures.fatal)
        counts.drain(q)
