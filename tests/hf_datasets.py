"""Hugging Face `datasets` for the format tests, kept offline: nothing is asked of the hub, caches stay in tmp."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

# Read by `datasets` when it is first imported: never reach for the hub, even to check a packaged loader.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import datasets  # noqa: E402  (after the environment above)

datasets.disable_progress_bars()


def load(builder: str, cache: Path, **kwargs: Any) -> Any:
    """`datasets.load_dataset(builder, …)` with the cache under *cache* (tests never share or keep one)."""
    return datasets.load_dataset(builder, cache_dir=str(cache), **kwargs)
