"""surd.batching: input order, decode failures isolated, OOM back-off, decoding overlapped with the model."""

from __future__ import annotations

import io
import threading

import pytest
import torch
from PIL import Image

from surd.batching import BackoffState, BatchPlan, Done, decode_rgb, infer_with_backoff, is_oom, map_batched
from surd.sample import Rejected, reject
from tests.conftest import jpeg_bytes


def _samples(n: int) -> list[dict]:
    return [{"__key__": f"k{i:03d}", "json": {"n": i, "text": "x" * ((i * 7) % 11)}} for i in range(n)]


def _plan(calls: list[list[int]] | None = None, **kw) -> BatchPlan:
    def prepare(s):
        if s["json"].get("corrupt"):
            raise OSError("broken data stream")
        return s["json"]["n"]

    def infer(items):
        if calls is not None:
            calls.append(list(items))
        return [x * 10 for x in items]

    def finish(s, r):
        s["json"]["out"] = r
        return s

    return BatchPlan(prepare=prepare, infer=infer, finish=finish, **kw)


@pytest.mark.parametrize("batch_size", [1, 3, 8])
@pytest.mark.parametrize("sorted_", [False, True])
def test_one_output_per_input_in_input_order(batch_size: int, sorted_: bool) -> None:
    calls: list[list[int]] = []
    key = (lambda s: len(s["json"]["text"])) if sorted_ else None
    out = list(map_batched(_samples(23), _plan(calls, batch_size=batch_size, sort_key=key, window_batches=2)))
    assert [o["__key__"] for o in out] == [f"k{i:03d}" for i in range(23)]
    assert [o["json"]["out"] for o in out] == [i * 10 for i in range(23)]
    assert all(len(c) <= batch_size for c in calls)
    assert sorted(x for c in calls for x in c) == list(range(23))
    if sorted_ and batch_size == 3:
        # Within a window (2 batches = 6 samples), batches are formed from samples of similar key.
        for c in calls:
            lengths = [len(_samples(23)[i]["json"]["text"]) for i in c]
            assert lengths == sorted(lengths)


def test_corrupt_sample_in_the_middle_of_a_batch_does_not_lose_the_batch() -> None:
    samples = _samples(8)
    samples[3]["json"]["corrupt"] = True
    calls: list[list[int]] = []
    out = list(map_batched(samples, _plan(calls, batch_size=8)))
    assert len(out) == 8
    assert isinstance(out[3], Rejected) and out[3].reason == "decode_error" and "broken data stream" in out[3].detail
    assert [o["json"]["out"] for i, o in enumerate(out) if i != 3] == [i * 10 for i in range(8) if i != 3]
    assert calls == [[0, 1, 2, 4, 5, 6, 7]]


def test_done_outputs_skip_the_model() -> None:
    samples = _samples(6)

    def prepare(s):
        n = s["json"]["n"]
        if n % 2:
            return Done(reject(s, "odd", ""))
        if n == 4:
            return Done(s)
        return n

    calls: list[list[int]] = []
    plan = BatchPlan(prepare=prepare, infer=lambda items: calls.append(items) or items,
                     finish=lambda s, r: s, batch_size=4)
    out = list(map_batched(samples, plan))
    assert [type(o).__name__ for o in out] == ["dict", "Rejected", "dict", "Rejected", "dict", "Rejected"]
    assert [x for c in calls for x in c] == [0, 2]


def test_oom_halves_the_batch_and_retries() -> None:
    seen: list[int] = []

    def infer(items):
        seen.append(len(items))
        if len(items) > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return [x + 1 for x in items]

    state = BackoffState(8)
    assert infer_with_backoff(infer, list(range(11)), state) == [x + 1 for x in range(11)]
    assert state.batch_size == 2 and state.oom_events == 2
    assert seen[:3] == [8, 4, 2] and max(seen[3:]) == 2  # the halved size is kept for the rest of the run


def test_oom_through_map_batched_keeps_every_sample() -> None:
    def infer(items):
        if len(items) > 3:
            raise RuntimeError("MPS backend out of memory (MPS allocated: 1 GB)")
        return list(items)

    state = BackoffState(16)
    plan = BatchPlan(prepare=lambda s: s["json"]["n"], infer=infer, finish=lambda s, r: {**s, "r": r}, batch_size=16)
    out = list(map_batched(_samples(40), plan, state))
    assert [o["r"] for o in out] == list(range(40))
    assert state.batch_size == 2


def test_oom_at_batch_size_one_and_other_errors_propagate() -> None:
    def oom(items):
        raise torch.cuda.OutOfMemoryError("out of memory")

    with pytest.raises(torch.cuda.OutOfMemoryError):
        infer_with_backoff(oom, [1, 2], BackoffState(2))

    def bug(items):
        raise ValueError("shape mismatch")

    state = BackoffState(4)
    with pytest.raises(ValueError, match="shape mismatch"):
        infer_with_backoff(bug, [1, 2, 3], state)
    assert state.batch_size == 4
    with pytest.raises(RuntimeError, match="2 results for a batch of 3"):
        infer_with_backoff(lambda items: items[:2], [1, 2, 3], BackoffState(4))


def test_is_oom() -> None:
    assert is_oom(torch.cuda.OutOfMemoryError("x"))
    assert is_oom(RuntimeError("CUDA error: out of memory"))
    assert is_oom(MemoryError())
    assert not is_oom(RuntimeError("expected scalar type Float"))
    assert not is_oom(ValueError("out of memory"))


def test_decoding_overlaps_the_model() -> None:
    """While the model runs on batch 0, the next batch is already being decoded in a worker thread."""
    second_batch_started = threading.Event()
    threads: set[str] = set()

    def prepare(s):
        threads.add(threading.current_thread().name)
        if s["json"]["n"] >= 4:
            second_batch_started.set()
        return s["json"]["n"]

    def infer(items):
        if items[0] == 0:
            # Without prefetching this wait would time out: nobody decodes batch 1 until batch 0 returns.
            assert second_batch_started.wait(timeout=10), "batch 1 was not decoded while batch 0 ran"
        return items

    plan = BatchPlan(prepare=prepare, infer=infer, finish=lambda s, r: s, batch_size=4, threads=2)
    assert len(list(map_batched(_samples(12), plan))) == 12
    assert threading.current_thread().name not in threads
    assert all(name.startswith("surd-decode") for name in threads)


def test_decode_rgb_members() -> None:
    jpg = jpeg_bytes(40, 30)
    buf = io.BytesIO()
    Image.open(io.BytesIO(jpg)).convert("RGBA").save(buf, "PNG")
    assert decode_rgb({"__key__": "a", "jpg": jpg}).size == (40, 30)
    png = decode_rgb({"__key__": "b", "png": buf.getvalue()})
    assert png.mode == "RGB" and png.size == (40, 30)
    with pytest.raises(ValueError, match="no image member"):
        decode_rgb({"__key__": "c", "json": {}})
    with pytest.raises(OSError):
        decode_rgb({"__key__": "d", "jpg": jpg[: len(jpg) // 3]})


def test_plan_validation() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        _plan(batch_size=0)
    with pytest.raises(ValueError, match="threads"):
        _plan(threads=0)
