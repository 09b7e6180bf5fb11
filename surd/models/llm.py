"""Language models for `surd embed`: a spec (alias, hub id, local path, ``tiny``) → a model cut after block L.

Only what the embedding needs is loaded: the base model (never the LM head), truncated to its first L
transformer blocks (hub/local loads build the config with L blocks, so the weights above are never read).
Decoder LMs (LLaMA, Llama 2/3, Mistral, Qwen, ...) and encoders (BERT-like, e.g. MiniLM) share this path.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from surd.deps import require
from surd.models import (
    ModelLoadError,
    ModelSpec,
    model_revision,
    offline_hint,
    parse_spec,
    resolve_device,
    resolve_dtype,
)

# The paper's LLaMA-1 checkpoints (the paper's "33B" is Meta's 30B release, 60 blocks x 6656).
ALIASES: dict[str, str] = {
    "7b": "huggyllama/llama-7b",
    "13b": "huggyllama/llama-13b",
    "33b": "huggyllama/llama-30b",
    "30b": "huggyllama/llama-30b",
    "65b": "huggyllama/llama-65b",
}
QUANTIZE = ("8bit", "4bit")
TINY_SEED = 0
TINY_CONFIG = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4,
                   num_key_value_heads=2, max_position_embeddings=128, rms_norm_eps=1e-6)
# Attribute names of the final norm after the block loop, by family (LLaMA/Mistral/Qwen, GPT-2, OPT, NeoX).
FINAL_NORM_NAMES = ("norm", "ln_f", "final_layer_norm", "final_layernorm", "decoder.final_layer_norm")
# Text the tiny tokenizer's BPE merges are learned from: caption-like, so prompts split into realistic tokens.
_TINY_CORPUS = """a woman with long hair and a black dress standing in front of a window
a man in a suit and tie sitting on a chair in a room
a painting of a castle on top of a mountain at sunset
a close up of a cat with green eyes on a blue background
a group of people walking down a street in the rain
a colorful animal with big eyes on a blue background
a picture of a city at night with lights and tall buildings
a drawing of a girl with a red hat and a white shirt
a large dragon flying over a forest with trees and a river
a bowl of fruit on a wooden table next to a glass of water
an old house in the middle of a field with flowers and grass
a robot standing on a beach near the ocean with clouds in the sky
a portrait of a young boy wearing glasses and a blue jacket
a car parked on the side of a road in the snow
a statue of a lion in a park with a fountain behind it
two dogs playing with a ball on the green grass
a spaceship in space with stars and a planet in the background
a bird sitting on a branch of a tree with pink flowers
a fantasy landscape with a waterfall and a bridge over a lake
an illustration of a knight in armor holding a sword and a shield"""


@dataclass
class LoadedLLM:
    """A base model cut after block ``layer`` plus its tokenizer and what to record about it.

    ``blocks`` is the model's ModuleList of transformer blocks (``layer`` of them kept); ``final_norm`` is the
    norm the model applies after its block loop, or None for post-norm encoders (BERT) that have none.
    """

    model: Any
    tokenizer: Any
    label: str
    revision: str
    n_layers: int  # depth of the full model, before truncation
    layer: int  # 1-based block whose output is embedded
    blocks: Any
    final_norm: Any
    dim: int
    max_length: int
    dtype: str
    quantized: str | None = None

    @property
    def input_device(self) -> Any:
        """Where input ids go: the embedding's device (differs from the blocks' under device_map='auto')."""
        return self.model.get_input_embeddings().weight.device


def resolve_llm_spec(spec: str) -> ModelSpec:
    """``7b``/``13b``/``33b``/``65b`` → the LLaMA-1 hub ids; else the shared spec parsing (tiny/local/hub)."""
    alias = ALIASES.get(str(spec).strip().lower())
    return ModelSpec("hub", alias) if alias else parse_spec(spec)


def resolve_layer(layer: int, n_layers: int, label: str) -> int:
    """1-based layer (``-1`` = last) → 1..n_layers, or a ValueError naming the valid range and the depth."""
    resolved = n_layers if layer == -1 else layer
    if not isinstance(layer, int) or not 1 <= resolved <= n_layers:
        raise ValueError(
            f"layer {layer} is out of range for {label}, which has {n_layers} transformer blocks: "
            f"pass a layer in 1..{n_layers} (1-based: layer L = output of block L; -1 = the last block)"
        )
    return resolved


def num_layers(config: Any) -> int:
    """Depth (number of transformer blocks) from a transformers config."""
    for name in ("num_hidden_layers", "n_layer", "num_layers"):
        n = getattr(config, name, None)
        if isinstance(n, int) and n > 0:
            return n
    raise ValueError(f"cannot tell the depth of {type(config).__name__}: it has no num_hidden_layers")


def truncate_config(config: Any, layer: int) -> None:
    """Make ``config`` describe only the first ``layer`` blocks, so loading skips the weights above."""
    config.num_hidden_layers = layer
    types = getattr(config, "layer_types", None)
    if isinstance(types, list) and len(types) > layer:
        config.layer_types = types[:layer]


def find_blocks(model: Any, n: int) -> Any:
    """The shallowest ModuleList of length ``n`` in ``model``: its transformer blocks."""
    torch = require("torch", "llm")
    found = [(name.count("."), name, m) for name, m in model.named_modules()
             if isinstance(m, torch.nn.ModuleList) and len(m) == n]
    if not found:
        raise ValueError(f"{type(model).__name__} has no list of {n} transformer blocks: unsupported architecture")
    return min(found, key=lambda t: (t[0], t[1]))[2]


def find_final_norm(model: Any) -> Any:
    """The norm the model applies after its block loop, or None (post-norm encoders have none)."""
    for name in FINAL_NORM_NAMES:
        mod = model
        for part in name.split("."):
            mod = getattr(mod, part, None)
        if mod is not None and callable(mod):
            return mod
    return None


def truncate_blocks(model: Any, layer: int) -> Any:
    """Drop the blocks above ``layer`` of an already-built model (in place); returns the kept ModuleList."""
    torch = require("torch", "llm")
    n = num_layers(model.config)
    blocks = find_blocks(model, n)
    kept = torch.nn.ModuleList(list(blocks)[:layer])
    parent_name = next(name for name, m in model.named_modules() if m is blocks)
    parent = model.get_submodule(parent_name.rsplit(".", 1)[0]) if "." in parent_name else model
    setattr(parent, parent_name.rsplit(".", 1)[-1], kept)
    truncate_config(model.config, layer)
    return kept


def base_model(model: Any) -> Any:
    """The backbone without any head (LlamaForCausalLM → LlamaModel; a BertModel is its own base)."""
    return getattr(model, "base_model", model)


def ensure_pad_token(tokenizer: Any) -> None:
    """Give a pad token to tokenizers without one (LLaMA) by reusing an existing special token.

    Never adds a token (that would need a resized embedding); padded positions are masked out of the mean,
    so which id pads does not change any vector.
    """
    if tokenizer.pad_token is not None:
        return
    for name in ("eos_token", "unk_token", "bos_token"):
        tok = getattr(tokenizer, name, None)
        if tok is not None:
            tokenizer.pad_token = tok
            return
    raise ValueError("the tokenizer has no pad, eos, unk or bos token to pad batches with")


def wrap_model(model: Any, tokenizer: Any, *, label: str, layer: int, revision: str | None = None,
               n_layers: int | None = None, quantized: str | None = None) -> LoadedLLM:
    """Wrap a built/loaded transformers model: take its backbone, cut it after ``layer`` blocks."""
    base = base_model(model).eval()
    full = n_layers or num_layers(base.config)
    layer = resolve_layer(layer, full, label)
    present = num_layers(base.config)
    blocks = truncate_blocks(base, layer) if present > layer else find_blocks(base, present)
    ensure_pad_token(tokenizer)
    # Tokenizers without a real limit report a huge sentinel model_max_length; ignore it.
    limits = [v for v in (getattr(base.config, "max_position_embeddings", None),
                          getattr(tokenizer, "model_max_length", None)) if isinstance(v, int) and 0 < v < 1_000_000]
    max_length = min(limits) if limits else 2048
    weight = base.get_input_embeddings().weight
    return LoadedLLM(model=base, tokenizer=tokenizer, label=label, revision=revision or model_revision(base),
                     n_layers=full, layer=layer, blocks=blocks, final_norm=find_final_norm(base),
                     dim=int(weight.shape[-1]), max_length=int(max_length),
                     dtype=str(weight.dtype).replace("torch.", ""), quantized=quantized)


def load_llm(spec: str, layer: int, *, device: str = "auto", dtype: str = "auto", quantize: str | None = None,
             revision: str | None = None) -> LoadedLLM:
    """Load ``spec`` cut after block ``layer`` (1-based, -1 = last), on ``device`` in ``dtype``.

    ``quantize`` (``8bit``/``4bit``, bitsandbytes) changes the numbers: vectors from a quantized model are
    not the paper's; the stage records it in every sample.
    """
    if quantize is not None and quantize not in QUANTIZE:
        raise ValueError(f"quantize must be one of {QUANTIZE} or None, got {quantize!r}")
    parsed = resolve_llm_spec(spec)
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    if parsed.kind == "tiny":
        if quantize:
            raise ValueError("quantize is for real checkpoints; the tiny model is tested in full precision")
        model, tok = tiny_llama(), tiny_tokenizer()
        loaded = wrap_model(model, tok, label=parsed.label, layer=layer, revision=f"tiny-seed{TINY_SEED}")
        loaded.model.to(device=dev, dtype=torch_dtype)
        loaded.dtype = str(torch_dtype).replace("torch.", "")
        return loaded
    return _load_pretrained(parsed, layer, dev, torch_dtype, quantize, revision)


def _load_pretrained(parsed: ModelSpec, layer: int, dev: Any, torch_dtype: Any, quantize: str | None,
                     revision: str | None) -> LoadedLLM:
    transformers = require("transformers", "llm")
    torch = require("torch", "llm")
    where = {"revision": revision} if revision else {}
    try:
        config = transformers.AutoConfig.from_pretrained(parsed.value, **where)
        tokenizer = transformers.AutoTokenizer.from_pretrained(parsed.value, **where)
    except OSError as e:
        if parsed.kind == "hub":
            raise ModelLoadError(offline_hint(parsed.value, "--llm")) from e
        raise
    n_layers = num_layers(config)
    layer = resolve_layer(layer, n_layers, parsed.label)
    truncate_config(config, layer)
    kwargs: dict[str, Any] = {"config": config, "dtype": torch_dtype, **where}
    if quantize:
        try:
            import bitsandbytes  # noqa: F401
        except ImportError as e:
            raise ImportError(f"quantize={quantize} needs bitsandbytes: pip install bitsandbytes") from e
        bits = {"load_in_8bit": True} if quantize == "8bit" else {"load_in_4bit": True,
                                                                   "bnb_4bit_compute_dtype": torch_dtype}
        kwargs["quantization_config"] = transformers.BitsAndBytesConfig(**bits)
        kwargs["device_map"] = "auto"
    elif dev.type == "cuda" and torch.cuda.device_count() > 1:
        kwargs["device_map"] = "auto"  # larger than one GPU: accelerate spreads the kept blocks over all GPUs
    model = transformers.AutoModel.from_pretrained(parsed.value, **kwargs)
    if "device_map" not in kwargs:
        model.to(dev)
    rev = model_revision(model)
    if parsed.kind == "local":
        rev = local_fingerprint(parsed.value)
    elif revision and rev == "local":
        rev = revision
    loaded = wrap_model(model, tokenizer, label=parsed.label, layer=layer, revision=rev, n_layers=n_layers,
                        quantized=quantize)
    loaded.dtype = str(torch_dtype).replace("torch.", "")
    return loaded


def local_fingerprint(path: str | os.PathLike) -> str:
    """A revision for a local model folder: hash of its config and of its weight files' names and sizes.

    Cheap (no weight bytes read) and changes when the folder is replaced by another model, so cached
    vectors of an older copy are not served for a new one.
    """
    root = Path(path)
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file() and (p.name.endswith((".json", ".safetensors", ".bin", ".model", ".txt"))):
            rel = p.relative_to(root).as_posix()
            h.update(rel.encode() + b"\0")
            h.update(p.read_bytes() if p.suffix == ".json" else str(p.stat().st_size).encode())
    return "local-" + h.hexdigest()[:16]


@lru_cache(maxsize=1)
def _tiny_tokenizer_json() -> str:
    tokenizers = require("tokenizers", "llm")
    tok = tokenizers.Tokenizer(tokenizers.models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(
        vocab_size=1024, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False,
        initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_TINY_CORPUS.splitlines(), trainer=trainer)
    # LLaMA-style: BOS before every prompt, no EOS.
    tok.post_processor = tokenizers.processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return tok.to_str()


def tiny_tokenizer() -> Any:
    """A small byte-level BPE tokenizer built offline, LLaMA-like: ``<s>`` BOS added, no pad token.

    Byte-level, so any text tokenizes (no unknown tokens); merges learned from a fixed caption-like corpus.
    """
    transformers = require("transformers", "llm")
    tokenizers = require("tokenizers", "llm")
    tok = tokenizers.Tokenizer.from_str(_tiny_tokenizer_json())
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                                unk_token="<unk>", model_max_length=TINY_CONFIG[
                                                    "max_position_embeddings"])


def tiny_llama(**overrides: Any) -> Any:
    """A small random LlamaForCausalLM (same classes as the real LLaMA), seeded so every build is identical."""
    transformers = require("transformers", "llm")
    torch = require("torch", "llm")
    vocab = json.loads(_tiny_tokenizer_json())["model"]["vocab"]
    cfg = transformers.LlamaConfig(vocab_size=len(vocab), bos_token_id=1, eos_token_id=2, pad_token_id=None,
                                   **{**TINY_CONFIG, **overrides})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED)
        model = transformers.LlamaForCausalLM(cfg)
    return model.eval()
