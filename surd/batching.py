"""Batched model inference over a stream of samples, shared by the model stages (caption, clip_filter).

Decoding and preprocessing run in background threads while the model computes on the previous batch; samples
are grouped into batches sorted by a cheap key (e.g. token length) inside a bounded window and put back in input
order; a sample that fails to decode becomes ``Rejected(reason="decode_error")`` without losing its batch; an
out-of-memory error halves the batch size and retries.
"""

from __future__ import annotations

import io
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from surd.sample import Rejected, Sample, reject

log = logging.getLogger(__name__)

DECODE_ERROR = "decode_error"
IMAGE_MEMBERS = ("jpg", "jpeg", "png", "webp")


DECODED = "__decoded__"  # a sample's slot for its decoded image while a fused pass carries it between stages


@dataclass
class DecodedImage:
    """A sample's decoded image, kept for the later stages of a fused pass (see `surd.task.process`).

    ``data`` is the image member it was decoded from (compared by identity: a stage that replaces the member's
    bytes gets them decoded anew); ``used`` tells the pass whether the stage it just ran used the image.
    """

    data: bytes | None = None
    image: Any = None
    used: bool = False


_decodes = [0]
_decodes_lock = threading.Lock()


def decode_count() -> int:
    """How many images `decode_rgb` has decoded in this process (a cached image handed out again is no decode)."""
    return _decodes[0]


def decode_rgb(sample: Sample) -> Any:
    """The sample's image member decoded to an RGB PIL image; raises if it is missing or not an image.

    A sample in a fused pass carries a `DecodedImage` under ``DECODED``: the first stage that decodes the image
    fills it, the next ones get a copy of the same pixels instead of decoding again (a copy, so that no stage sees
    another's in-place edits)."""
    for ext in IMAGE_MEMBERS:
        data = sample.get(ext)
        if data:
            slot = sample.get(DECODED)
            if isinstance(slot, DecodedImage) and slot.data is data:
                slot.used = True
                return slot.image.copy()
            try:
                img = Image.open(io.BytesIO(data))
            except Image.UnidentifiedImageError:  # its message holds a memory address: outputs must be reproducible
                raise ValueError(f"the {ext} member is not an image Pillow can read ({len(data)} bytes)") from None
            with img:
                rgb = img.convert("RGB")
            with _decodes_lock:
                _decodes[0] += 1
            if isinstance(slot, DecodedImage):
                slot.data, slot.image, slot.used = data, rgb, True
                return rgb.copy()
            return rgb
    raise ValueError(f"no image member ({', '.join(IMAGE_MEMBERS)}) in sample {sample.get('__key__')}")


@dataclass(frozen=True)
class Done:
    """Returned by ``prepare`` when a sample's output is known without the model (kept as-is, or rejected)."""

    output: Sample | Rejected


@dataclass(frozen=True)
class BatchPlan:
    """How to run one model over samples.

    prepare(sample) -> item | Done     CPU work (decode, preprocess, tokenize) run in a worker thread; an exception
                                       rejects that sample with reason ``decode_error``.
    infer(items) -> list[result]       the model on one batch (main thread), one result per item, same order.
    finish(sample, result) -> output   writes the result into the sample (or rejects it).
    sort_key(sample) -> number         optional: batches are formed from samples of similar key within a window.
    """

    prepare: Callable[[Sample], Any]
    infer: Callable[[list[Any]], list[Any]]
    finish: Callable[[Sample, Any], Sample | Rejected]
    batch_size: int = 16
    threads: int = 2
    sort_key: Callable[[Sample], float] | None = None
    window_batches: int = 4
    prefetch_batches: int = 2

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")


@dataclass
class _Window:
    samples: list[Sample]
    outputs: list[Any] = field(default_factory=list)
    pending_batches: int = 0


@dataclass
class _Batch:
    window: _Window
    indices: list[int]
    futures: list[Future] = field(default_factory=list)


@dataclass
class BackoffState:
    """The batch size in force; halved on every out-of-memory error and kept for the rest of the run."""

    batch_size: int
    oom_events: int = 0


def is_oom(exc: BaseException) -> bool:
    """True for CUDA/MPS/CPU out-of-memory errors (torch raises several types for them)."""
    try:
        import torch  # optional extra: imported on use

        if isinstance(exc, torch.cuda.OutOfMemoryError):
            return True
    except ImportError:
        pass
    return isinstance(exc, (RuntimeError, MemoryError)) and (
        isinstance(exc, MemoryError) or "out of memory" in str(exc).lower()
    )


def _free_accelerator_memory() -> None:
    try:
        import torch  # optional extra: imported on use

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


def infer_with_backoff(infer: Callable[[list[Any]], list[Any]], items: list[Any], state: BackoffState) -> list[Any]:
    """Run ``infer`` over ``items`` in chunks of ``state.batch_size``; on OOM halve it and retry the chunk."""
    results: list[Any] = []
    start = 0
    while start < len(items):
        chunk = items[start : start + state.batch_size]
        try:
            out = infer(chunk)
        except Exception as e:  # noqa: BLE001 - only OOM is handled, everything else re-raised below
            if not is_oom(e) or state.batch_size == 1:
                raise
            state.batch_size = max(1, state.batch_size // 2)
            state.oom_events += 1
            log.warning("out of memory on a batch of %d: retrying with batch size %d", len(chunk), state.batch_size)
            _free_accelerator_memory()
            continue
        if len(out) != len(chunk):
            raise RuntimeError(f"model returned {len(out)} results for a batch of {len(chunk)}")
        results.extend(out)
        start += len(chunk)
    return results


def _safe_prepare(prepare: Callable[[Sample], Any], sample: Sample) -> Any:
    try:
        return prepare(sample)
    except Exception as e:  # noqa: BLE001 - one bad sample must not fail the shard
        return Done(reject(sample, DECODE_ERROR, f"{type(e).__name__}: {e}"))


def _plan_window(window: _Window, plan: BatchPlan) -> list[_Batch]:
    order = list(range(len(window.samples)))
    if plan.sort_key is not None:
        keys = [plan.sort_key(s) for s in window.samples]
        order.sort(key=lambda i: keys[i])
    size = plan.batch_size
    batches = [_Batch(window, order[i : i + size]) for i in range(0, len(order), size)]
    window.outputs = [None] * len(window.samples)
    window.pending_batches = len(batches)
    return batches


def _batches(samples: Iterable[Sample], plan: BatchPlan) -> Iterator[_Batch]:
    window_size = plan.batch_size * plan.window_batches
    buf: list[Sample] = []
    for s in samples:
        buf.append(s)
        if len(buf) == window_size:
            yield from _plan_window(_Window(buf), plan)
            buf = []
    if buf:
        yield from _plan_window(_Window(buf), plan)


def _run_batch(batch: _Batch, plan: BatchPlan, state: BackoffState) -> None:
    samples = batch.window.samples
    todo: list[tuple[int, Any]] = []
    for i, fut in zip(batch.indices, batch.futures):
        item = fut.result()
        if isinstance(item, Done):
            batch.window.outputs[i] = item.output
        else:
            todo.append((i, item))
    if todo:
        results = infer_with_backoff(plan.infer, [item for _, item in todo], state)
        for (i, _), res in zip(todo, results):
            batch.window.outputs[i] = plan.finish(samples[i], res)
    batch.window.pending_batches -= 1


def map_batched(samples: Iterable[Sample], plan: BatchPlan, state: BackoffState | None = None) -> Iterator[Any]:
    """Yield one output per input sample, in input order, running ``plan`` in batches with overlapped decoding."""
    state = state or BackoffState(plan.batch_size)
    batches = _batches(samples, plan)
    inflight: deque[_Batch] = deque()
    with ThreadPoolExecutor(max_workers=plan.threads, thread_name_prefix="surd-decode") as pool:
        def submit_next() -> bool:
            batch = next(batches, None)
            if batch is None:
                return False
            batch.futures = [pool.submit(_safe_prepare, plan.prepare, batch.window.samples[i]) for i in batch.indices]
            inflight.append(batch)
            return True

        while len(inflight) < plan.prefetch_batches + 1 and submit_next():
            pass
        while inflight:
            batch = inflight.popleft()
            # Queue the next batch's decoding before computing this one, so decoding overlaps the model.
            submit_next()
            _run_batch(batch, plan, state)
            if batch.window.pending_batches == 0:
                yield from batch.window.outputs
