"""Prompt → mean of one layer's hidden states: dedup, length-sorted padded batches, early stop, fp32 masked mean.

The model runs only up to block L: a forward hook on block L captures its output and stops the forward, so
nothing above (blocks, final norm, head) is computed even if the model was not truncated.
"""

from __future__ import annotations

import inspect
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from surd.deps import require
from surd.models.llm import LoadedLLM

PADDING_SIDES = ("right", "left")


@dataclass(frozen=True)
class EmbedSettings:
    """How prompts are pooled and batched (the model and layer are fixed by the LoadedLLM)."""

    final_norm: bool = False
    exclude_bos: bool = False
    batch_size: int = 32
    max_length: int | None = None
    padding_side: str = "right"

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.max_length is not None and self.max_length < 2:
            raise ValueError(f"max_length must be >= 2 tokens (or None for the model's context), got {self.max_length}")
        if self.padding_side not in PADDING_SIDES:
            raise ValueError(f"padding_side must be 'right' or 'left', got {self.padding_side!r}")

    @property
    def pooling(self) -> str:
        """The pooling label recorded with every vector."""
        return "mean_exclude_bos" if self.exclude_bos else "mean"


@dataclass(frozen=True)
class Embedding:
    """One prompt's vector (float16, shape (dim,)), whether the prompt was cut to the context, its token count."""

    vector: np.ndarray
    truncated: bool
    tokens: int


class _StopForward(Exception):
    """Raised by the hook on block L once its output is captured: nothing above it runs."""

    def __init__(self, hidden: Any):
        super().__init__()
        self.hidden = hidden


def _capture_hook(_module: Any, _args: Any, output: Any) -> None:
    raise _StopForward(output[0] if isinstance(output, (tuple, list)) else output)


def run_to_layer(llm: LoadedLLM, input_ids: Any, attention_mask: Any, position_ids: Any) -> Any:
    """Hidden states (batch, tokens, dim) output by block ``llm.layer``, before any final norm."""
    params = inspect.signature(llm.model.forward).parameters
    kwargs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask}
    if "position_ids" in params:
        kwargs["position_ids"] = position_ids  # left padding: positions must start at each prompt's first token
    if "use_cache" in params:
        kwargs["use_cache"] = False
    handle = llm.blocks[llm.layer - 1].register_forward_hook(_capture_hook)
    try:
        llm.model(**kwargs)
    except _StopForward as stop:
        return stop.hidden
    finally:
        handle.remove()
    raise RuntimeError(f"block {llm.layer} of {llm.label} never ran: the model's forward skipped its blocks")


def pad_batch(ids: Sequence[Sequence[int]], pad_id: int, side: str) -> tuple[Any, Any, Any]:
    """(input_ids, attention_mask, position_ids) tensors for token id lists padded on ``side``."""
    torch = require("torch", "llm")
    width = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for i, x in enumerate(ids):
        span = slice(0, len(x)) if side == "right" else slice(width - len(x), width)
        input_ids[i, span] = torch.tensor(list(x), dtype=torch.long)
        mask[i, span] = 1
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    return input_ids, mask, position_ids


def masked_mean(hidden: Any, mask: Any) -> Any:
    """fp32 mean over positions where ``mask`` is true. Padded rows may hold anything (even NaN): never read."""
    torch = require("torch", "llm")
    keep = mask.bool().unsqueeze(-1)
    total = torch.where(keep, hidden.float(), torch.zeros((), dtype=torch.float32, device=hidden.device)).sum(1)
    return total / keep.sum(1).clamp(min=1).to(torch.float32)


def pooling_mask(ids: Sequence[Sequence[int]], mask: Any, side: str, drop_first: set[int]) -> Any:
    """The attention mask, minus each prompt's first token when it is one of ``drop_first`` (BOS/CLS)."""
    if not drop_first:
        return mask
    pool = mask.clone()
    width = mask.shape[1]
    for i, x in enumerate(ids):
        if len(x) > 1 and x[0] in drop_first:
            pool[i, 0 if side == "right" else width - len(x)] = 0
    return pool


def embed_batch(llm: LoadedLLM, ids: Sequence[Sequence[int]], settings: EmbedSettings) -> np.ndarray:
    """fp32 vectors (batch, dim) for one batch of token id lists."""
    torch = require("torch", "llm")
    input_ids, mask, position_ids = pad_batch(ids, llm.tokenizer.pad_token_id, settings.padding_side)
    dev = llm.input_device
    with torch.inference_mode():
        hidden = run_to_layer(llm, input_ids.to(dev), mask.to(dev), position_ids.to(dev))
        if settings.final_norm:
            hidden = llm.final_norm(hidden)
        drop = set(llm.tokenizer.all_special_ids) if settings.exclude_bos else set()
        pool = pooling_mask(ids, mask, settings.padding_side, drop).to(hidden.device)
        return masked_mean(hidden, pool).cpu().numpy()


class Embedder:
    """Embeds prompts with one loaded model: in-memory memo, optional shared on-disk cache, batched misses.

    ``forward_calls`` counts model forwards, so callers (and tests) can see that cache hits cost none.
    """

    def __init__(self, llm: LoadedLLM, settings: EmbedSettings, cache: Any = None, memo_bytes: int = 256 << 20):
        if settings.final_norm and llm.final_norm is None:
            raise ValueError(f"{llm.label} has no final norm after its blocks (a post-norm encoder): "
                             "leave final_norm off")
        if settings.max_length is not None and settings.max_length > llm.max_length:
            raise ValueError(f"max_length {settings.max_length} exceeds the context of {llm.label} "
                             f"({llm.max_length} tokens): pass a value <= {llm.max_length} or leave it unset")
        self.llm, self.settings, self.cache = llm, settings, cache
        self.max_length = settings.max_length or llm.max_length
        self._memo: OrderedDict[str, Embedding] = OrderedDict()
        self._memo_cap = max(1, memo_bytes // (2 * llm.dim))
        self.forward_calls = 0

    def namespace(self) -> dict[str, Any]:
        """Everything besides the prompt that decides the vector: the cache key prefix."""
        llm, s = self.llm, self.settings
        return {"model": llm.label, "revision": llm.revision, "layer": llm.layer, "pooling": s.pooling,
                "final_norm": s.final_norm, "dtype": llm.dtype, "quantized": llm.quantized,
                "max_length": self.max_length}

    def tokenize(self, prompts: Sequence[str]) -> list[tuple[list[int], bool]]:
        """Token ids per prompt and whether it was cut to ``max_length``."""
        tok = self.llm.tokenizer
        full = tok(list(prompts), truncation=False, verbose=False)["input_ids"]
        long = [i for i, ids in enumerate(full) if len(ids) > self.max_length]
        out = [(list(ids), False) for ids in full]
        if long:
            cut = tok([prompts[i] for i in long], truncation=True, max_length=self.max_length)["input_ids"]
            for i, ids in zip(long, cut):
                out[i] = (list(ids), True)
        return out

    def embed(self, prompts: Sequence[str]) -> list[Embedding]:
        """One Embedding per prompt, in order. Identical prompts are computed once; known ones not at all."""
        unique = list(dict.fromkeys(prompts))
        found = {p: self._memo[p] for p in unique if p in self._memo}
        missing = [p for p in unique if p not in found]
        if missing and self.cache is not None:
            found.update(self.cache.get_many(self.namespace(), missing))
            missing = [p for p in unique if p not in found]
        if missing:
            computed = dict(self._compute(missing))
            if self.cache is not None:
                self.cache.put_many(self.namespace(), computed)
            found.update(computed)
        for p in unique:
            self._remember(p, found[p])
        return [found[p] for p in prompts]

    def _compute(self, prompts: list[str]) -> Iterator[tuple[str, Embedding]]:
        tokens = self.tokenize(prompts)
        # Longest first: similar lengths share a batch (little padding), and an out-of-memory shows at once.
        order = sorted(range(len(prompts)), key=lambda i: -len(tokens[i][0]))
        bs = self.settings.batch_size
        for start in range(0, len(order), bs):
            idx = order[start:start + bs]
            vecs = self._embed_ids([tokens[i][0] for i in idx])
            for row, i in enumerate(idx):
                ids, cut = tokens[i]
                yield prompts[i], Embedding(vecs[row].astype(np.float16), cut, len(ids))

    def _embed_ids(self, ids: list[list[int]]) -> np.ndarray:
        """One batch; on GPU out-of-memory, the two halves separately (vectors do not depend on the batch)."""
        torch = require("torch", "llm")
        try:
            self.forward_calls += 1
            return embed_batch(self.llm, ids, self.settings)
        except torch.OutOfMemoryError:
            if len(ids) == 1:
                raise
            torch.cuda.empty_cache()
            half = len(ids) // 2
            return np.concatenate([self._embed_ids(ids[:half]), self._embed_ids(ids[half:])])

    def _remember(self, prompt: str, emb: Embedding) -> None:
        self._memo[prompt] = emb
        self._memo.move_to_end(prompt)
        while len(self._memo) > self._memo_cap:
            self._memo.popitem(last=False)
