"""The shard-run contract shared by the runner and every executor: one shard through a chain of stages.

`process` is what a worker runs (in this process, a spawned process or a Ray worker): one shard through a `Chain`
(a single stage is a chain of one). `Failures` is the one failure policy every executor applies (retry, stop the
run on a fatal error, report); `format_error` is the line a user sees for a failure. Progress means the same
everywhere: input samples of the shards being run, a failed attempt's samples taken back.
"""

from __future__ import annotations

import re
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import surd
from surd import shards
from surd.batching import DECODED, DecodedImage
from surd.models import ModelLoadError
from surd.sample import Rejected
from surd.stages import get_stage

Progress = Callable[[int], None]


@dataclass(frozen=True)
class ShardTask:
    """One unit of work: output shard `stem` from an input tar, a planned row file (ingest), or a list of rows."""

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
    """One line a user can act on, plus the innermost frame; in a fused pass, first the stage that failed."""
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(tb[-1].filename).name}:{tb[-1].lineno})" if tb else ""
    stage = getattr(exc, _STAGE_ATTR, None)
    return f"{f'in stage {stage}: ' if stage else ''}{type(exc).__name__}: {exc}{where}"


_STAGE_ATTR = "surd_stage"  # set on an exception by the fused-pass stage it came out of (it survives pickling)


def failed_stage(error: str) -> str | None:
    """The stage a fused pass's error line names (`format_error` puts it first), or None."""
    m = re.match(r"in stage (\w+): ", error)
    return m.group(1) if m else None


def _blame(exc: BaseException, stage: str) -> None:
    if getattr(exc, _STAGE_ATTR, None) is None:  # the innermost stage it came through raised it
        try:
            setattr(exc, _STAGE_ATTR, stage)
        except AttributeError:  # an exception type without attributes: the message still names the frame
            pass


def _counted(items: Iterable[Any], counter: list[int], progress: Progress | None) -> Iterator[Any]:
    for item in items:
        counter[0] += 1
        if progress is not None:
            progress(1)
        yield item


class Failures:
    """The failure policy of every executor: counts attempts per shard, decides retry (`record` returns None) or
    the error to report, and remembers the first fatal error (then the shards not run yet are reported `not_run`)."""

    def __init__(self, retries: int) -> None:
        self.retries = retries
        self.attempts: dict[str, int] = {}
        self.fatal: str | None = None

    def record(self, task: ShardTask, cause: BaseException) -> str | None:
        """A failed attempt of `task`: None to run it again, else the error to report."""
        self.attempts[task.stem] = self.attempts.get(task.stem, 0) + 1
        if is_fatal(cause):
            self.fatal = self.fatal or format_error(cause)
            return format_error(cause)
        return None if self.attempts[task.stem] <= self.retries else format_error(cause)


# ---------------------------------------------------------------------------------------------- fused stages


@dataclass(frozen=True)
class Link:
    """One stage of a `Chain`: its registry name, config and output directory."""

    stage: str
    cfg: Any
    output_dir: str


@dataclass(frozen=True)
class Chain:
    """Stages run over each shard in one pass (stage i+1 reads what stage i writes); a single stage is a chain of
    one."""

    links: tuple[Link, ...]

    @classmethod
    def of(cls, stage: str, cfg: Any, output_dir: str) -> Chain:
        """A chain of one stage."""
        return cls((Link(stage, cfg, output_dir),))

    @property
    def name(self) -> str:
        return "+".join(link.stage for link in self.links)


class _Timer:
    """Seconds a stage spends on its own work in a fused pass: its run() and writes, less the time it waits for
    the previous stage (which that stage's own timer counts)."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def excluding(self, items: Iterator[Any]) -> Iterator[Any]:
        """Yield from `items`, not counting the time spent getting each one."""
        while True:
            t0 = time.perf_counter()
            try:
                item = next(items)
            except StopIteration:
                return
            finally:
                self.seconds -= time.perf_counter() - t0
            yield item


def _carry(sample: Any, members: list[tuple[str, bytes]]) -> dict[str, Any]:
    """The sample the next stage of a chain gets: what it would read back from the tar just written (json decoded,
    every other member as bytes), plus the decoded image while the stages keep using it."""
    out = shards.sample_from_members(sample["__key__"], members)
    slot = sample.get(DECODED)
    if isinstance(slot, DecodedImage) and (slot.used or slot.image is None):
        slot.used = False
        out[DECODED] = slot  # dropped after the first stage that did not use it: memory stays bounded
    return out


def _commit_each(outputs: Iterator[Any], writer: shards.ShardWriter, stage: str, consumed: list[int],
                 timer: _Timer, forward: bool, stem: str) -> Iterator[dict[str, Any]]:
    """Write each output of one stage of the chain; yield the kept ones, as read back, to the next stage."""
    produced = 0
    outputs = iter(outputs)
    try:
        while True:
            t0 = time.perf_counter()
            try:
                item = next(outputs)
            except StopIteration:
                timer.seconds += time.perf_counter() - t0
                break
            if not isinstance(item, (dict, Rejected)):
                raise StageContractError(f"stage {stage} yielded a {type(item).__name__}, not a sample or Rejected")
            members = writer.add(item)
            produced += 1
            nxt = _carry(item, members) if forward and members is not None else None
            timer.seconds += time.perf_counter() - t0
            if nxt is not None:
                yield nxt
        if produced != consumed[0]:
            raise StageContractError(f"stage {stage} yielded {produced} results for {consumed[0]} inputs in shard "
                                     f"{stem}: every input needs a kept sample or a Rejected with a reason")
    except Exception as e:
        _blame(e, stage)
        raise


def _with_slot(samples: Iterable[Any]) -> Iterator[Any]:
    for s in samples:
        s[DECODED] = DecodedImage()
        yield s


def process(chain: Chain, task: ShardTask, progress: Progress | None = None) -> dict:
    """Run the chain's stages over one shard in one pass and commit each stage's shard, in chain order; returns
    {stage: stats}. Called inside a worker; `progress` gets each input sample as it is read.

    Stage i+1 gets each sample stage i keeps as soon as it is written, exactly as it would read it back from stage
    i's tar, so every stage's output (tar, sidecar, stats but their ``seconds``) is byte for byte the unfused run's;
    an image decoded by one stage is handed to the next ones instead of being decoded again (`decode_rgb`), and
    each model is loaded once per process as always. Nothing is committed unless the whole pass succeeds.
    """
    modules = [get_stage(link.stage) for link in chain.links]
    inputs: Iterable[Any] = task.input if isinstance(task.input, list) else shards.read_input(task.input)
    timers = [_Timer() for _ in chain.links]
    with ExitStack() as stack:
        writers = [stack.enter_context(shards.ShardWriter(link.output_dir, task.stem)) for link in chain.links]
        stream: Iterator[Any] = _counted(inputs, [0], progress)
        if len(chain.links) > 1:  # a decoded image is handed to the next stages
            stream = _with_slot(stream)
        passes = []
        for k, (link, module) in enumerate(zip(chain.links, modules)):
            consumed = [0]
            fed = _counted(timers[k].excluding(stream) if k else stream, consumed, None)  # reading: stage 0's
            stream = _commit_each(module.run(fed, link.cfg), writers[k], link.stage, consumed, timers[k],
                                  forward=k + 1 < len(chain.links), stem=task.stem)
            passes.append(stream)
        for rest in (passes[-1], *passes[:-1]):  # the last drives the chain; then the others, should a stage stop early
            for _ in rest:
                pass
        stats = {}
        for link, module, writer, timer in zip(chain.links, modules, writers, timers):
            t0 = time.perf_counter()
            versions = {"surd": surd.__version__, **module.versions()}
            stats[link.stage] = writer.commit({"seconds": round(timer.seconds + time.perf_counter() - t0, 3),
                                               "versions": versions})
        return stats
