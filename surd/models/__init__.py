"""One place that turns a model spec (hub id, local directory, or ``tiny``) into something loadable.

Family-specific loaders live beside this file (``blip.py``, ``clip.py``, ``llm.py``, ``sd.py``); they share
the spec parsing, device/dtype resolution, lazy imports with install hints and offline error messages here.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from surd.deps import require

TINY = "tiny"
# What every model stage says about where and how its model runs (one text, used by each stage's config).
DTYPES = ("auto", "fp32", "float32", "fp16", "float16", "bf16", "bfloat16")
DEVICE_HELP = "auto (cuda, then mps, then cpu), or a torch device such as cuda:1."
DTYPE_HELP = "auto (bf16/fp16 on GPU, fp32 on CPU), fp32, fp16 or bf16."
DECODE_THREADS_HELP = "Image decoding threads per worker, overlapped with the model."


class ModelLoadError(OSError):
    """A model that cannot be loaded (offline hub id, incomplete folder): retrying a shard cannot fix it,
    so the runner stops the run instead of failing every shard the same way."""


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec: kind is ``tiny`` (random model built in code), ``local`` (a directory) or ``hub``."""

    kind: str
    value: str

    @property
    def label(self) -> str:
        """What to record in sample json as the model id."""
        return self.value if self.kind != "local" else str(Path(self.value).resolve())


def parse_spec(spec: str) -> ModelSpec:
    """``tiny`` → tiny; an existing path (or one starting with ``/``, ``./``, ``~``) → local; else a hub id."""
    if not spec or not str(spec).strip():
        raise ValueError("empty model spec: pass a hub id, a local directory, or 'tiny'")
    spec = str(spec).strip()
    if spec == TINY or spec.startswith(TINY + ":"):
        return ModelSpec(TINY, spec)
    expanded = os.path.expanduser(spec)
    if os.path.exists(expanded) or spec.startswith(("/", "./", "../", "~")):
        if not os.path.exists(expanded):
            raise FileNotFoundError(f"model directory {expanded} does not exist")
        return ModelSpec("local", expanded)
    return ModelSpec("hub", spec)


class ModelCache:
    """Models loaded once per process and shared by every shard a worker runs (thread-safe).

    ``cache.get(key, build)`` returns the model built for *key*, calling ``build()`` only the first time.
    ``ModelCache.loads`` counts the models this process has built (an executor reports it per worker).
    """

    loads = 0  # models built by this process, across every cache
    _count = threading.Lock()  # guards `loads`: two caches may build at once

    def __init__(self, capacity: int | None = None) -> None:
        self.capacity = capacity  # None = keep every model; 1 = keep only the last (LLMs are large)
        self._models: dict[Any, Any] = {}
        self._lock = threading.Lock()

    def get(self, key: Any, build: Callable[[], Any]) -> Any:
        with self._lock:  # held while building: two threads never load the same model twice
            if key not in self._models:
                if self.capacity is not None and len(self._models) >= self.capacity:
                    self._models.clear()  # free the old model before the new one is loaded
                self._models[key] = build()
                with ModelCache._count:
                    ModelCache.loads += 1
            return self._models[key]

    def clear(self) -> None:
        with self._lock:
            self._models.clear()


def offline_hint(hub_id: str, flag: str = "--model") -> str:
    """The message for a hub load that failed (no network, no such repo)."""
    return (
        f"could not load {hub_id!r} from the model hub (offline, or no such model). "
        f"Download it on a machine with access, e.g. `hf download {hub_id} --local-dir models/{hub_id.split('/')[-1]}`, "
        f"copy that folder here and pass {flag} models/{hub_id.split('/')[-1]}; or pass {flag} tiny for an offline smoke run"
    )


def resolve_device(device: str = "auto") -> Any:
    """``auto`` → cuda, then mps, then cpu; anything else is passed to torch.device."""
    torch = require("torch", "caption")
    if device != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_dtype(dtype: str, device: Any) -> Any:
    """``auto`` → bf16 on GPUs that support it, else fp16 on GPU, fp32 on CPU; or an explicit name."""
    torch = require("torch", "caption")
    names = {"fp32": torch.float32, "float32": torch.float32, "fp16": torch.float16, "float16": torch.float16,
             "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}
    if dtype != "auto":
        if dtype not in names:
            raise ValueError(f"unknown dtype {dtype!r}; use auto, {', '.join(names)}")
        return names[dtype]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.float32


def placement(device: str, dtype: str) -> tuple[Any, Any]:
    """The torch device and dtype a model loads to: `resolve_device`, then `resolve_dtype` for that device."""
    dev = resolve_device(device)
    return dev, resolve_dtype(dtype, dev)


def frozen_on(model: Any, device: Any, dtype: Any) -> Any:
    """A loaded model on its device and dtype, in eval mode, with gradients off (how every model stage runs it)."""
    return model.to(device=device, dtype=dtype).eval().requires_grad_(False)


@dataclass
class LoadedModel:
    """A loaded transformers model with its processor, where it runs, and what a stage records about it (the
    captioners' common part: `surd.models.blip.Captioner`, `surd.models.vlm.VisionLanguageModel`)."""

    model: Any
    processor: Any
    device: Any
    dtype: Any
    label: str
    revision: str


def model_revision(model: Any) -> str:
    """The hub commit a transformers/diffusers model was loaded from, or ``local``/``tiny``."""
    cfg = getattr(model, "config", None)
    rev = getattr(cfg, "_commit_hash", None) if cfg is not None else None
    return rev or "local"
