"""CLIP models for the filter stage: open_clip architectures by name, local folders/checkpoints, or ``tiny``.

``model`` is an open_clip architecture name (``ViT-B-32``), a local folder holding ``open_clip_config.json`` plus
weights (open_clip's ``local-dir:`` layout), or ``tiny`` (a small random open_clip ``CLIP`` built in code).
``pretrained`` is an open_clip tag (``openai``), a local checkpoint file (.safetensors, or a torch file loaded
with weights_only=True), or empty for random weights. The tokenizer is always the real CLIP BPE tokenizer.
OpenAI's weights were trained with QuickGELU: with the ``openai`` tag it is switched on here; with OpenAI weights
from a local file, name the ``ViT-B-32-quickgelu`` architecture.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from surd.deps import require
from surd.models import TINY, ModelCache, ModelLoadError, resolve_device, resolve_dtype

DEFAULT_MODEL = "ViT-B-32"
DEFAULT_PRETRAINED = "openai"
CONTEXT_LENGTH = 77

# A ViT-B-32-shaped CLIP shrunk to run in milliseconds; the vocabulary stays CLIP's (49,408) for the real tokenizer.
TINY_CONFIG: dict[str, Any] = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
    "text_cfg": {"context_length": CONTEXT_LENGTH, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


@dataclass
class ClipModel:
    """A loaded CLIP model, its eval preprocessing, and the real CLIP tokenizer."""

    model: Any
    preprocess: Any
    tokenizer: Any
    device: Any
    dtype: Any
    label: str
    pretrained: str


_MODELS = ModelCache()


def tiny_clip(seed: int = 0) -> Any:
    """A random open_clip ``CLIP`` with :data:`TINY_CONFIG`, identical for a given seed."""
    torch = require("torch", "clip")
    open_clip = require("open_clip", "clip")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = open_clip.CLIP(**TINY_CONFIG)
    return model.eval()


def _pretrained_hint(model: str, pretrained: str, err: Exception) -> str:
    return (
        f"could not load open_clip weights {model!r} / {pretrained!r} (offline, or not a known tag or file): {err}. "
        f"Download them on a machine with access, e.g. `hf download timm/vit_base_patch32_clip_224.openai "
        f"open_clip_pytorch_model.bin --local-dir models/clip` for ViT-B-32/openai, copy the file here and pass "
        f"--model ViT-B-32-quickgelu --pretrained models/clip/open_clip_pytorch_model.bin (OpenAI's weights need "
        f"QuickGELU: a file path carries no tag to tell, the -quickgelu config does); or pass --model tiny for a "
        f"smoke run"
    )


def _create(model: str, pretrained: str, device: Any, precision: str) -> Any:
    open_clip = require("open_clip", "clip")
    if model == TINY:
        net = tiny_clip()
        if pretrained and not os.path.isfile(os.path.expanduser(pretrained)):
            raise FileNotFoundError(f"--model tiny takes --pretrained '' (random weights) or a checkpoint file; "
                                    f"{pretrained!r} is neither")
        if pretrained:
            open_clip.load_checkpoint(net, os.path.expanduser(pretrained), strict=True, weights_only=True)
        return net
    name = model
    if os.path.isdir(os.path.expanduser(model)):
        name = "local-dir:" + str(Path(model).expanduser().resolve())
    tag_cfg = open_clip.get_pretrained_cfg(model, pretrained) if pretrained and not name.startswith("local-dir:") else {}
    kwargs: dict[str, Any] = {"precision": precision, "device": device}
    # OpenAI's weights were trained with QuickGELU; a ViT-B-32 built with plain GELU would score them wrongly.
    if tag_cfg.get("quick_gelu"):
        kwargs["force_quick_gelu"] = True
    pretrained_arg = os.path.expanduser(pretrained) if pretrained and not tag_cfg else (pretrained or None)
    try:
        return open_clip.create_model(name, pretrained=pretrained_arg, **kwargs)
    except (RuntimeError, OSError, ValueError) as e:
        raise ModelLoadError(_pretrained_hint(model, pretrained, e)) from e


def _precision(dtype: Any) -> str:
    torch = require("torch", "clip")
    return {torch.float16: "fp16", torch.bfloat16: "bf16"}.get(dtype, "fp32")


def load_clip(model: str = DEFAULT_MODEL, pretrained: str = DEFAULT_PRETRAINED, *, device: str = "auto",
              dtype: str = "auto") -> ClipModel:
    """Load (once per process) an open_clip model, its eval transform and the CLIP tokenizer."""

    def build() -> ClipModel:
        open_clip = require("open_clip", "clip")
        dev = resolve_device(device)
        dt = resolve_dtype(dtype, dev)
        net = _create(model, pretrained, dev, _precision(dt)).to(device=dev, dtype=dt).eval().requires_grad_(False)
        pp_cfg = open_clip.get_model_preprocess_cfg(net)
        transform = require("open_clip.transform", "clip")
        preprocess = transform.image_transform_v2(transform.PreprocessCfg(**pp_cfg), is_train=False)
        tokenizer = open_clip.get_tokenizer(DEFAULT_MODEL if model == TINY or os.path.isdir(model) else model)
        return ClipModel(net, preprocess, tokenizer, dev, dt, *clip_labels(model, pretrained))

    return _MODELS.get((model, pretrained, device, dtype), build)


def clip_labels(model: str, pretrained: str) -> tuple[str, str]:
    """The (model, pretrained) a loaded CLIP records: local folders and checkpoint files as resolved paths."""
    label = str(Path(model).expanduser().resolve()) if os.path.isdir(os.path.expanduser(model)) else model
    pre_label = str(Path(pretrained).expanduser().resolve()) if pretrained and os.path.isfile(
        os.path.expanduser(pretrained)) else pretrained
    return label, pre_label


def token_count(tokenizer: Any, text: str) -> int:
    """Number of CLIP tokens of ``text`` including <start_of_text> and <end_of_text>, before truncation to 77."""
    encode = getattr(tokenizer, "encode", None)
    if encode is None:
        raise TypeError(f"{type(tokenizer).__name__} has no encode(); use open_clip's SimpleTokenizer")
    return len(encode(text)) + 2


def encode_text(model: Any, tokens: Any) -> Any:
    """``model.encode_text(tokens, normalize=True)``, on the tokens trimmed to the longest sequence in the batch.

    Exact for open_clip's ``CLIP`` text tower: its attention is causal and it pools at the end-of-text token, so the
    padding after the longest sequence never affects the result; only less is computed. Other towers get the plain
    call on the full 77 tokens.
    """
    torch = require("torch", "clip")
    trimmable = (isinstance(model, require("open_clip", "clip").CLIP) and getattr(model, "text_pool_type", "argmax")
                 == "argmax" and model.attn_mask is not None)
    if not trimmable:
        return model.encode_text(tokens, normalize=True)
    # Up to the last end-of-text token (the highest id, where the pooling reads); not "count of non-zero ids",
    # since id 0 is "!" in CLIP's vocabulary and can appear mid-prompt.
    length = int(tokens.argmax(dim=-1).max()) + 1
    tokens = tokens[:, :length]
    cast_dtype = model.transformer.get_cast_dtype()
    x = model.token_embedding(tokens).to(cast_dtype) + model.positional_embedding[:length].to(cast_dtype)
    x = model.transformer(x, attn_mask=model.attn_mask[:length, :length])
    x = model.ln_final(x)
    x = x[torch.arange(x.shape[0], device=x.device), tokens.argmax(dim=-1)]
    x = model.text_projection(x) if isinstance(model.text_projection, torch.nn.Linear) else x @ model.text_projection
    return torch.nn.functional.normalize(x, dim=-1)
