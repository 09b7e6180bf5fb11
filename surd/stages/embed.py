"""embed stage: json.simple_prompt → ``llm.npy`` (float16 mean of one LLM layer's hidden states) + json record.

Layer L is 1-based: the output of block L before the final norm (``layer=40`` on LLaMA-13B reproduces the
official ``prompt2vec/13B/39.pt``); ``-1`` is the last block; ``final_norm=True`` applies the model's norm.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from surd.embed.cache import EmbedCache
from surd.embed.core import PADDING_SIDES, Embedder, Embedding, EmbedSettings
from surd.models import ModelCache
from surd.models.llm import QUANTIZE, LoadedLLM, load_llm
from surd.sample import Rejected, Sample, record_stage, reject

NAME = "embed"
USES_GPU = True
CHUNK = 4096  # samples held in memory at once (images included); prompts are deduplicated within and across
DTYPES = ("auto", "fp32", "float32", "fp16", "float16", "bf16", "bfloat16")
QUANTIZED_NOTE = "weights quantized with bitsandbytes: vectors differ from the full-precision model's"


@dataclass(frozen=True)
class Config:
    """Which model and layer to embed with, and how to batch (see `surd embed --help`)."""

    llm: str
    layer: int
    final_norm: bool = False
    exclude_bos: bool = False
    batch_size: int = 32
    max_length: int | None = None
    device: str = "auto"
    dtype: str = "auto"
    quantize: str | None = None
    cache_dir: str | None = None
    padding_side: str = "right"
    revision: str | None = None

    def __post_init__(self) -> None:
        if not str(self.llm).strip():
            raise ValueError("llm is empty: pass 7b/13b/33b/65b, a hub id, a local model directory, or tiny")
        if not isinstance(self.layer, int) or isinstance(self.layer, bool) or not (self.layer >= 1 or self.layer == -1):
            raise ValueError(f"layer must be a 1-based block number (1 = first block's output) or -1 for the last, "
                             f"got {self.layer!r}; the official 13B/39.pt is layer 40")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.quantize is not None and self.quantize not in QUANTIZE:
            raise ValueError(f"quantize must be one of {', '.join(QUANTIZE)} or unset, got {self.quantize!r}")
        if self.padding_side not in PADDING_SIDES:
            raise ValueError(f"padding_side must be 'right' or 'left', got {self.padding_side!r}")
        self.settings()  # validates batch_size and max_length

    def settings(self) -> EmbedSettings:
        return EmbedSettings(final_norm=self.final_norm, exclude_bos=self.exclude_bos, batch_size=self.batch_size,
                             max_length=self.max_length, padding_side=self.padding_side)


# One model per process: (model-relevant config fields) → loaded model. LLMs are large, so only one is kept.
_MODEL_FIELDS = ("llm", "layer", "device", "dtype", "quantize", "revision")
_MODELS = ModelCache(capacity=1)


def load_model(cfg: Config) -> LoadedLLM:
    """The model for ``cfg``, loaded once per process (cut after block ``cfg.layer``)."""
    key = tuple(getattr(cfg, f) for f in _MODEL_FIELDS)
    return _MODELS.get(key, lambda: load_llm(cfg.llm, cfg.layer, device=cfg.device, dtype=cfg.dtype,
                                             quantize=cfg.quantize, revision=cfg.revision))


def make_embedder(cfg: Config) -> Embedder:
    """A fresh Embedder over the process's model, with the on-disk cache when ``cache_dir`` is set."""
    cache = EmbedCache(cfg.cache_dir) if cfg.cache_dir else None
    return Embedder(load_model(cfg), cfg.settings(), cache=cache)


def _prompt(sample: Sample) -> str | None:
    meta = sample.get("json") if isinstance(sample.get("json"), dict) else {}
    prompt = meta.get("simple_prompt")
    return prompt if isinstance(prompt, str) and prompt.strip() else None


def npy_bytes(vector: np.ndarray) -> bytes:
    """``np.save`` bytes of a float16 vector: the ``llm.npy`` member."""
    buf = io.BytesIO()
    np.save(buf, np.asarray(vector, dtype=np.float16), allow_pickle=False)
    return buf.getvalue()


def _record(embedder: Embedder, emb: Embedding) -> dict[str, Any]:
    llm, s = embedder.llm, embedder.settings
    record = {"model": llm.label, "revision": llm.revision, "layer": llm.layer, "n_layers": llm.n_layers,
              "pooling": s.pooling, "dim": llm.dim, "final_norm": s.final_norm, "truncated": emb.truncated,
              "tokens": emb.tokens, "max_length": embedder.max_length, "dtype": llm.dtype,
              "quantized": llm.quantized}
    if llm.quantized:
        record["note"] = QUANTIZED_NOTE
    return record


def _embed_chunk(chunk: list[Sample], embedder: Embedder) -> Iterator[Sample | Rejected]:
    prompts = [_prompt(s) for s in chunk]
    vectors = iter(embedder.embed([p for p in prompts if p is not None]))
    for sample, prompt in zip(chunk, prompts):
        if prompt is None:
            yield reject(sample, "missing_simple_prompt", "json.simple_prompt is missing or empty")
            continue
        emb = next(vectors)
        out = dict(sample)
        out["json"] = {**sample["json"], "stages": dict(sample["json"].get("stages") or {})}
        out["llm.npy"] = npy_bytes(emb.vector)
        record_stage(out, NAME, _record(embedder, emb))
        yield out


def run(samples: Iterable[Sample], cfg: Config) -> Iterator[Sample | Rejected]:
    """Add ``llm.npy`` to every sample with a simple prompt; reject the others (``missing_simple_prompt``)."""
    embedder = make_embedder(cfg)
    chunk: list[Sample] = []
    for sample in samples:
        chunk.append(sample)
        if len(chunk) >= CHUNK:
            yield from _embed_chunk(chunk, embedder)
            chunk = []
    if chunk:
        yield from _embed_chunk(chunk, embedder)


def versions() -> dict[str, str]:
    """Library versions that decide the numbers, recorded in each shard's stats."""
    import torch  # optional extra: imported on use
    import transformers  # optional extra: imported on use

    return {"torch": torch.__version__, "transformers": transformers.__version__}

