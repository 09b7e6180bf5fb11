"""embed stage: json.simple_prompt → ``llm.npy`` (float16 mean of one LLM layer's hidden states) + json record.

Layer L is 1-based: the output of block L before the final norm (``layer=40`` on LLaMA-13B reproduces the
official ``prompt2vec/13B/39.pt``); ``-1`` is the last block; ``final_norm=True`` applies the model's norm.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from surd.embed.cache import open_cache
from surd.embed.core import PADDING_SIDES, Embedder, Embedding, EmbedSettings
from surd.models import DEVICE_HELP, DTYPE_HELP, DTYPES, ModelCache
from surd.models.llm import QUANTIZE, LoadedLLM, load_llm
from surd.options import config, option
from surd.sample import Rejected, Sample, record_stage, reject

NAME = "embed"
USES_GPU = True
CHUNK = 4096  # samples held in memory at once (images included); prompts are deduplicated within and across
QUANTIZED_NOTE = "weights quantized with bitsandbytes: vectors differ from the full-precision model's"


@config
class Config:
    """Which model and layer to embed with, and how to batch (see `surd embed --help`)."""

    llm: str = option(help="7b, 13b, 33b, 65b (LLaMA-1), a hub id, a local model folder, or tiny.")
    layer: int = option(help="1-based block whose output is averaged (-1 = last). --layer 40 on 13b reproduces the "
                        "official prompt2vec/13B/39.pt.")
    final_norm: bool = option(False, help="Apply the model's final norm to the layer output.")
    exclude_bos: bool = option(False, help="Leave the BOS/CLS token out of the mean (the official recipe includes it).")
    batch_size: int = option(32, help="Prompts per forward (sorted by length, so padding stays small).", ge=1)
    max_length: int | None = option(None, help="Cut longer prompts to this many tokens (default: the model's "
                                    "context); cut prompts are flagged truncated in their json.", ge=1)
    device: str = option("auto", help=DEVICE_HELP + " Several GPUs are used together through device_map=auto.")
    dtype: str = option("auto", help=DTYPE_HELP, choices=DTYPES)
    quantize: str | None = option(None, help="8bit or 4bit (bitsandbytes) to fit big models; CHANGES the vectors.",
                                  choices=QUANTIZE)
    cache_dir: str | None = option(None, help="Shared vector cache folder: reruns and repeated prompts cost nothing.")
    padding_side: str = option("right", help="right or left; both give the same vectors.", choices=PADDING_SIDES)
    revision: str | None = option(None, help="Hub revision (branch, tag or commit) of --llm.")

    def __post_init__(self) -> None:
        if not str(self.llm).strip():
            raise ValueError("llm is empty: pass 7b/13b/33b/65b, a hub id, a local model directory, or tiny")
        if not (self.layer >= 1 or self.layer == -1):
            raise ValueError(f"layer must be a 1-based block number (1 = first block's output) or -1 for the last, "
                             f"got {self.layer!r}; the official 13B/39.pt is layer 40")
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
    """A fresh Embedder over the process's model, with the vector cache (folder or URL) when ``cache_dir`` is set."""
    cache = open_cache(cfg.cache_dir) if cfg.cache_dir else None
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

