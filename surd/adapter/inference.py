"""Adapter inference without forking a pipeline: prompts → ``prompt_embeds`` / ``negative_prompt_embeds``.

Every diffusers pipeline that accepts embeddings takes the result as is — StableDiffusionPipeline, ControlNet,
Self-Attention Guidance, Panorama (MultiDiffusion) — and embeddings made elsewhere (e.g. compel's weighted
prompts) go through the adapter by passing them instead of strings.
"""

from __future__ import annotations

from typing import Any

from PIL import Image

from surd.adapter.io import check_base_width
from surd.deps import require


def _text_parts(pipe_or_components: Any) -> tuple[Any, Any]:
    tok = getattr(pipe_or_components, "tokenizer", None)
    enc = getattr(pipe_or_components, "text_encoder", None)
    if tok is None or enc is None:
        raise TypeError("pass a diffusers pipeline or SDComponents (anything with .tokenizer and .text_encoder)")
    return tok, enc


def text_features(pipe_or_components: Any, prompts: list[str]) -> Any:
    """The base model's own conditioning for ``prompts``: the text encoder's last hidden state [B, 77, d]."""
    torch = require("torch", "adapter")
    tok, enc = _text_parts(pipe_or_components)
    ids = tok(prompts, padding="max_length", max_length=tok.model_max_length, truncation=True,
              return_tensors="pt").input_ids  # [B, 77]
    with torch.no_grad():
        return enc(ids.to(enc.device))[0]  # [B, 77, d]


def apply_adapter(adapter: Any, x: Any) -> Any:
    """x [B, T, d] → c' [B, T, d], in the adapter's dtype/device and back to x's (no grad, eval mode)."""
    torch = require("torch", "adapter")
    param = next(adapter.parameters())
    was_training = adapter.training
    adapter.eval()
    try:
        with torch.no_grad():
            return adapter(x.to(param.device, param.dtype)).to(x.device, x.dtype)
    finally:
        adapter.train(was_training)


def _as_list(prompts: str | list[str] | None) -> list[str] | None:
    return [prompts] if isinstance(prompts, str) else (list(prompts) if prompts is not None else None)


def encode_prompts(pipe_or_components: Any, adapter: Any, prompts: str | list[str] | Any = None,
                   negative_prompts: str | list[str] | Any = None, adapt_negative: bool = True) -> tuple[Any, Any]:
    """Prompts (or precomputed embeddings [B, T, d]) → (prompt_embeds, negative_prompt_embeds) through the adapter.

    ``negative_prompts`` defaults to empty strings, one per prompt (what pipelines use for classifier-free
    guidance). The official pipeline runs the negative prompt through the adapter too (``adapt_negative``).
    With ``adapter=None`` the base model's own embeddings come back: the baseline of a side-by-side comparison.
    """
    torch = require("torch", "adapter")
    _check_width(pipe_or_components, adapter)
    x = prompts if torch.is_tensor(prompts) else text_features(pipe_or_components, _as_list(prompts) or [""])
    if negative_prompts is None:
        negative_prompts = [""] * x.shape[0]
    if torch.is_tensor(negative_prompts):
        nx = negative_prompts
    else:
        nx = text_features(pipe_or_components, _as_list(negative_prompts))
    if nx.shape[0] != x.shape[0]:
        raise ValueError(f"{x.shape[0]} prompts but {nx.shape[0]} negative prompts: pass one negative per prompt")
    if adapter is None:
        return x, nx
    return apply_adapter(adapter, x), (apply_adapter(adapter, nx) if adapt_negative else nx)


def _check_width(pipe_or_components: Any, adapter: Any) -> None:
    if adapter is None:
        return

    _, enc = _text_parts(pipe_or_components)
    check_base_width(adapter.config, int(enc.config.hidden_size), "in use")


def make_grid(rows: list[list[Any]]) -> Any:
    """PIL images in rows (all the same size) → one image."""

    w, h = rows[0][0].size
    grid = Image.new("RGB", (w * max(len(r) for r in rows), h * len(rows)), "white")
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            grid.paste(img, (j * w, i * h))
    return grid


def generate_grid(pipe: Any, adapter: Any, prompts: list[str], seeds: list[int], negative_prompt: str = "",
                  **call_kwargs: Any) -> tuple[Any, list[list[Any]]]:
    """One row per (prompt, seed): baseline | adapter, same seed, same pipeline. Returns (grid, rows).

    ``call_kwargs`` go to the pipeline (num_inference_steps, guidance_scale, height, width, image= for ControlNet…).
    """
    torch = require("torch", "adapter")
    rows = []
    for prompt in prompts:
        base = encode_prompts(pipe, None, [prompt], [negative_prompt])
        adapted = encode_prompts(pipe, adapter, [prompt], [negative_prompt])
        for seed in seeds:
            row = []
            for pe, npe in (base, adapted):
                gen = torch.Generator(device="cpu").manual_seed(int(seed))
                out = pipe(prompt_embeds=pe, negative_prompt_embeds=npe, generator=gen, output_type="pil",
                           **call_kwargs)
                row.append(out.images[0])
            rows.append(row)
    return make_grid(rows), rows
