"""`surd export prompt2vec`: an embed stage's output → the official trainer's ``{prompt: tensor}`` file.

Format (safetensors, the default): one tensor per distinct simple prompt, **the prompt itself is the tensor
name**, value float16 of shape (dim,) exactly as stored in ``llm.npy``; the file's ``__metadata__`` records
model, revision, layer (1-based), official_index (the 0-based block index the official files are named by,
``prompt2vec/13B/39.pt`` = layer 40), pooling, final_norm and dim. ``safetensors.torch.load_file(path)``
therefore returns the dict the official ``SUR_adapter_train.py`` indexes by caption (``llm_prompt2vec[p]``).
``.pt`` (``torch.save`` of the same dict) is written only on request: it is what the official code
``torch.load``s, but pickle-based, so prefer safetensors and load ``.pt`` only with ``weights_only=True``.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from surd import storage
from surd.deps import require
from surd.files import write_bytes_atomic
from surd.shards import iter_dataset

FORMATS = ("safetensors", "pt")
RECORD_KEYS = ("model", "revision", "layer", "pooling", "final_norm", "dim")


def vector_from_npy(data: bytes) -> np.ndarray:
    """The float16 vector of an ``llm.npy`` member (np.save bytes; pickles refused)."""
    arr = np.load(io.BytesIO(data), allow_pickle=False)
    if arr.ndim != 1:
        raise ValueError(f"llm.npy must hold a 1-D vector, got shape {arr.shape}")
    return arr


def collect_prompt2vec(samples: Iterable[dict[str, Any]]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """prompt → vector over samples of one embed run, and the run's metadata; mixed runs are refused."""
    vectors: dict[str, np.ndarray] = {}
    meta: dict[str, str] | None = None
    for s in samples:
        record = s.get("json", {}).get("stages", {}).get("embed")
        if "llm.npy" not in s or record is None:
            raise ValueError(f"sample {s['__key__']} has no llm.npy: export the output directory of `surd embed`")
        this = {k: str(record.get(k)) for k in RECORD_KEYS}
        if meta is None:
            meta = this
        elif this != meta:
            raise ValueError(f"sample {s['__key__']} was embedded with {this}, others with {meta}: "
                             "export one embed run at a time")
        prompt, vec = s["json"]["simple_prompt"], vector_from_npy(s["llm.npy"])
        if prompt in vectors and not np.array_equal(vectors[prompt], vec):
            raise ValueError(f"prompt {prompt!r} has two different vectors in one run: the dataset is corrupt")
        vectors[prompt] = vec
    if meta is None:
        raise ValueError("no samples to export: the dataset is empty")
    meta["official_index"] = str(int(meta["layer"]) - 1)
    meta["count"] = str(len(vectors))
    meta["format"] = "surd-prompt2vec-1: tensor name = prompt"
    return vectors, meta


def export_prompt2vec(dataset_dir: str | os.PathLike, out: str | os.PathLike, *, fmt: str = "safetensors",
                      progress: bool = True) -> dict[str, str]:
    """Write ``dataset_dir``'s vectors to ``out`` as safetensors (default) or ``.pt``; returns the metadata."""

    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    torch = require("torch", "llm")
    vectors, meta = collect_prompt2vec(tqdm(iter_dataset(dataset_dir), desc="prompt2vec", unit="sample",
                                            disable=not progress))
    tensors = {p: torch.from_numpy(v.copy()) for p, v in vectors.items()}
    storage.makedirs(storage.parent(out))  # out may be a URL: then one object, put whole
    if fmt == "safetensors":
        if "__metadata__" in tensors:
            raise ValueError("a prompt is literally '__metadata__', which safetensors reserves: export with --pt")
        from safetensors.torch import save  # optional extra: imported on use

        write_bytes_atomic(out, save(tensors, metadata=meta))
    else:
        buf = io.BytesIO()
        torch.save(tensors, buf)
        write_bytes_atomic(out, buf.getvalue())
    return meta


def load_prompt2vec(path: str | os.PathLike) -> dict[str, Any]:
    """``{prompt: tensor}`` from a safetensors export, or from a ``.pt`` one (``weights_only=True``)."""
    torch = require("torch", "llm")
    path = Path(path)
    if path.suffix == ".pt":
        obj = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(obj, dict):
            raise ValueError(f"{path} does not hold a dict prompt -> tensor")
        return obj
    from safetensors.torch import load_file  # optional extra: imported on use

    return load_file(str(path))


def read_prompt2vec_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors export (model, layer, official_index, pooling, ...)."""
    from safetensors import safe_open  # optional extra: imported on use

    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata() or {})
