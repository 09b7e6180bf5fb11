"""Model specs shared by every family: device and dtype resolution on this machine."""

from __future__ import annotations

import copy

import torch

from surd.models import clip


def test_device_and_dtype_auto_on_this_machine() -> None:
    m = clip.load_clip("tiny", "", device="cpu", dtype="auto")
    assert m.device.type == "cpu" and m.dtype == torch.float32
    assert next(m.model.parameters()).dtype == torch.float32
    half = clip.load_clip("tiny", "", device="cpu", dtype="bf16")
    assert next(half.model.parameters()).dtype == torch.bfloat16
    assert copy.copy(half.label) == "tiny"


def test_one_model_cache_builds_each_model_once_across_threads_and_counts_the_loads():
    import threading
    import time

    from surd.models import ModelCache

    cache, built, before = ModelCache(), [], ModelCache.loads

    def build():
        time.sleep(0.05)  # a slow load: the other threads must wait for it, not build their own
        built.append(1)
        return object()

    got = []
    threads = [threading.Thread(target=lambda: got.append(cache.get("m", build))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(built) == 1 and len({id(g) for g in got}) == 1 and ModelCache.loads == before + 1
    small = ModelCache(capacity=1)
    small.get("a", object)
    small.get("b", object)
    assert ModelCache.loads == before + 3 and len(small._models) == 1  # capacity 1 keeps only the last


def test_every_model_loader_uses_the_one_cache():
    """No loader keeps models in a module dict of its own (two kinds of cache, not thread-safe)."""
    import re

    from tests.conftest import REPO

    for path in (REPO / "surd" / "models").glob("*.py"):
        text = path.read_text()
        assert not re.search(r"^_CACHE\s*[:=]", text, re.M), f"{path.name}: use surd.models.ModelCache"
