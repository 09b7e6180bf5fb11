"""Adapter files: ``adapter_config.json`` + ``adapter_model.safetensors`` (peft-style fixed names), and import of
the official SUR-adapter checkpoints (``adapter_checkpoint<step>.pt`` / ``adapter.pt`` state dicts)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import surd
from surd.adapter.config import AdapterConfig
from surd.deps import require
from surd.files import write_bytes_atomic, write_json_atomic

CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter_model.safetensors"
FORMAT = "surd-sur-adapter"
FORMAT_VERSION = 1

# Official module names (Qrange-group/SUR-adapter, SUR_adapter.py: class Adapter) → ours (surd/adapter/model.py).
OFFICIAL_KEY_MAP = (
    (r"^transformer_encoder\.layers\.(\d+)\.", r"encoder.layers.\1."),
    (r"^attention\.query_layer\.", "attention.query."),
    (r"^attention\.key_layer\.", "attention.key."),
    (r"^attention\.output_layer\.(0|2)\.", r"attention.mlp.\1."),
    (r"^fc\.", "g."),
)
# Present in official state dicts but unused by its forward: the template layer it keeps as an attribute
# (nn.TransformerEncoder deep-copies it) and the value projection (its attention uses V = x).
OFFICIAL_UNUSED = (r"^encoder_layer\.", r"^attention\.value_layer\.")


def save_adapter_files(directory: str | os.PathLike, config: AdapterConfig, state_dict: dict[str, Any],
                       extra: dict[str, Any] | None = None) -> Path:
    """Write a config and every tensor of a state dict (W0 included) under the fixed names."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "format_version": str(FORMAT_VERSION)}
    write_bytes_atomic(out / WEIGHTS_NAME, safetensors_bytes(state_dict, meta))
    doc = {"format": FORMAT, "format_version": FORMAT_VERSION, "surd_version": surd.__version__, **config.to_dict()}
    if extra:
        doc["extra"] = extra
    write_json_atomic(out / CONFIG_NAME, doc)
    return out


# torch dtype name → safetensors dtype code (the format's spec: huggingface/safetensors, "Format")
_DTYPES = {"float64": "F64", "float32": "F32", "float16": "F16", "bfloat16": "BF16", "int64": "I64", "int32": "I32",
           "int16": "I16", "int8": "I8", "uint8": "U8", "bool": "BOOL"}


def safetensors_bytes(state_dict: dict[str, Any], metadata: dict[str, str]) -> bytes:
    """A safetensors file, byte-identical for the same tensors on every run and machine.

    ``safetensors.torch.save`` writes ``__metadata__`` in the order of a Rust HashMap, which changes from process
    to process, so the same adapter gave different files. Here the header is json with sorted keys and no spaces
    (padded with spaces to 8 bytes, as the format asks), tensors laid out by (itemsize descending, name), the order
    safetensors itself uses so every tensor stays aligned. `safetensors.torch.load_file` reads it back.
    """
    import torch  # the adapter extra: only adapter code writes tensors

    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    order = sorted(tensors, key=lambda k: (-tensors[k].element_size(), k))
    header: dict[str, Any] = {"__metadata__": dict(sorted(metadata.items()))}
    blobs, offset = [], 0
    for name in order:
        t = tensors[name]
        dtype = str(t.dtype).removeprefix("torch.")
        if dtype not in _DTYPES:
            raise ValueError(f"tensor {name!r} has dtype {dtype}, which surd does not write to safetensors")
        data = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": _DTYPES[dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    head = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    return len(head).to_bytes(8, "little") + head + b"".join(blobs)


def read_adapter_config(directory: str | os.PathLike) -> AdapterConfig:
    path = Path(directory) / CONFIG_NAME
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: pass the folder written by `surd train-adapter --out` "
                                f"(it holds {CONFIG_NAME} and {WEIGHTS_NAME})")
    doc = json.loads(path.read_text())
    if doc.pop("format", FORMAT) != FORMAT:
        raise ValueError(f"{path} is not a surd SUR-adapter config")
    if int(doc.pop("format_version", 1)) > FORMAT_VERSION:
        raise ValueError(f"{path} was written by a newer surd (format {doc}); upgrade surd")
    doc.pop("surd_version", None)
    doc.pop("extra", None)
    return AdapterConfig.from_dict(doc)


def check_base_width(cfg: AdapterConfig, base_text_dim: int | None, where: str) -> None:
    """Refuse an adapter trained on a text encoder of another width (SD 1.x is 768, SD 2.x is 1024)."""
    if base_text_dim is not None and int(base_text_dim) != cfg.text_dim:
        base = f" (trained on {cfg.base_model})" if cfg.base_model else ""
        raise ValueError(f"adapter {where}{base} expects text features of width {cfg.text_dim}, but the base model's "
                         f"text encoder has width {base_text_dim}: use the base model family it was trained with "
                         f"(768 = SD 1.x, 1024 = SD 2.x) or train an adapter for this base")


def read_adapter_tensors(directory: str | os.PathLike) -> dict[str, Any]:
    """The saved state dict (safetensors: no code runs while reading)."""
    from safetensors.torch import load_file  # torch-backed: an optional extra

    return load_file(str(Path(directory) / WEIGHTS_NAME), device="cpu")


def map_official_state_dict(state: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Rename an official state dict's keys to ours; returns (mapped, dropped keys). Unknown keys are an error."""
    mapped, dropped, unknown = {}, [], []
    for key, value in state.items():
        key_n = key[len("module."):] if key.startswith("module.") else key  # saved from a DDP wrapper
        if any(re.match(p, key_n) for p in OFFICIAL_UNUSED):
            dropped.append(key)
            continue
        for pattern, repl in OFFICIAL_KEY_MAP:
            if re.match(pattern, key_n):
                mapped[re.sub(pattern, repl, key_n)] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise ValueError(f"not an official SUR-adapter state dict: unknown keys {unknown[:5]}")
    return mapped, dropped


def read_official_checkpoint(path: str | os.PathLike, llm_dim: int, eta: float = 0.1, w0_seed: int = 0,
                             base_model: str = "") -> tuple[AdapterConfig, dict[str, Any]]:
    """An official ``adapter_checkpoint*.pt`` (a plain state dict) → (its config, the state dict in our names).

    Only tensors are unpickled (``torch.load(weights_only=True)``). Width, depth and feed-forward size are read
    from the tensors; ``eta`` is the run's ``--adapter_weight`` (0.1 in the official run.sh). The official code
    never saved W0, so the config asks for a fresh one from ``w0_seed`` (W0 only matters for further training).
    The official encoder was trained on [1, 77, d] read as (sequence 1, batch 77), i.e. per token: the config
    keeps that (``encoder_attention="per_token"``), so the outputs equal the official model's at batch size 1.
    """
    torch = require("torch", "adapter")
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a state dict")
    mapped, _ = map_official_state_dict(state)
    if "g.weight" not in mapped:
        raise ValueError(f"{path} has no 'fc.weight': not an official SUR-adapter checkpoint")
    layers = {int(m.group(1)) for k in mapped if (m := re.match(r"encoder\.layers\.(\d+)\.", k))}
    cfg = AdapterConfig(text_dim=int(mapped["g.weight"].shape[0]), llm_dim=llm_dim, n_layers=max(layers) + 1,
                        ff_dim=int(mapped["encoder.layers.0.linear1.weight"].shape[0]), eta=eta, w0_seed=w0_seed,
                        encoder_attention="per_token", base_model=base_model)
    return cfg, mapped
