"""BLIP captioning models: load transformers' BlipForConditionalGeneration from a hub id, a local folder, or ``tiny``.

``tiny`` is a small random BlipForConditionalGeneration with a real BertTokenizer over a small WordPiece vocabulary
written here (BLIP's tokenizer is bert-base-uncased plus ``[DEC]`` as BOS and ``[ENC]``).

The paper ran LAVIS ``blip_caption`` ``base_coco``, whose weights are LAVIS's ``blip_coco_caption_base.pth``
(ViT-B/16 at 384 px + BERT-base decoder, the architecture of Salesforce/blip-image-captioning-base).
:func:`load_lavis_checkpoint` renames that checkpoint's keys into these transformers classes
(``lavis_checkpoint=`` in the caption config), so the paper's weights run without LAVIS, whose pins
(transformers<4.27) cannot share an environment with this one.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from surd.deps import require
from surd.models import TINY, LoadedModel, ModelCache, ModelLoadError, frozen_on, offline_hint, parse_spec, placement

DEFAULT_MODEL = "Salesforce/blip-image-captioning-base"

# Special tokens first, in BLIP's roles: pad=0, [SEP] ends a caption, [DEC] is the decoder BOS.
_TINY_SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]", "[ENC]"]
_TINY_WORDS = (
    "a an the of on in with and at to is are by near next its two three some picture photo image painting drawing "
    "portrait close up view man woman person people girl boy child dog cat bird horse car street city building house "
    "room table chair bed window tree trees flower flowers field grass water sea beach mountain sky cloud clouds sun "
    "night light dark red blue green yellow white black brown pink purple orange gold silver small large big old young "
    "standing sitting walking holding wearing looking dress hat hair face eyes hand fantasy castle forest river road "
    "sunset anime character art style digital colorful beautiful "
).split()
_TINY_PUNCT = list(".,!?'-:;()\"") + [str(d) for d in range(10)]
_TINY_LETTERS = [chr(c) for c in range(ord("a"), ord("z") + 1)]


def tiny_vocab() -> list[str]:
    """The tiny model's WordPiece vocabulary: BLIP's special tokens, common caption words, letters and subwords."""
    return _TINY_SPECIAL + _TINY_PUNCT + _TINY_LETTERS + ["##" + c for c in _TINY_LETTERS] + _TINY_WORDS


@dataclass
class Captioner(LoadedModel):
    """A loaded BLIP captioning model with what a stage needs to run and record it."""


_MODELS = ModelCache()


def tiny_processor() -> Any:
    """BlipProcessor with a real BertTokenizer on the tiny vocabulary and a 32-pixel BlipImageProcessor."""
    tf = require("transformers", "caption")
    with tempfile.TemporaryDirectory() as d:
        vocab = Path(d) / "vocab.txt"
        vocab.write_text("\n".join(tiny_vocab()) + "\n")
        tok = tf.BertTokenizer(str(vocab), do_lower_case=True, bos_token="[DEC]", model_max_length=64)
        tok.add_special_tokens({"additional_special_tokens": ["[ENC]"]})
    image_processor = tf.BlipImageProcessor(size={"height": 32, "width": 32})
    return tf.BlipProcessor(image_processor=image_processor, tokenizer=tok)


def tiny_model(processor: Any, seed: int = 0, cls: str = "BlipForConditionalGeneration") -> Any:
    """A random BLIP model (2 vision + 2 text layers, width 32), the same for a given seed.

    ``cls`` is the transformers class: BlipForConditionalGeneration (captions) or BlipForQuestionAnswering (VQA).
    """
    tf = require("transformers", "caption")
    torch = require("torch", "caption")
    tok = processor.tokenizer
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                  image_size=32, patch_size=8)
    text = dict(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                encoder_hidden_size=32, max_position_embeddings=64, pad_token_id=tok.pad_token_id,
                bos_token_id=tok.bos_token_id, sep_token_id=tok.sep_token_id, eos_token_id=tok.sep_token_id)
    config = tf.BlipConfig(vision_config=vision, text_config=text)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = getattr(tf, cls)(config)
        # The default init gives near-constant logits; wider weights make captions depend on the image.
        for name, p in model.named_parameters():
            if p.dim() >= 2 and "embedding" not in name:
                torch.nn.init.normal_(p, std=0.3)
        # A trained BLIP never emits [PAD]/[CLS]/[MASK]/[DEC]/[ENC]; keep the random one from doing so either.
        never = [i for i in tok.all_special_ids if i != tok.sep_token_id]
        with torch.no_grad():
            model.text_decoder.cls.predictions.bias[never] = -100.0
    return model.eval()


def _load_pretrained(spec_value: str, kind: str, revision: str | None, dtype: Any) -> tuple[Any, Any]:
    tf = require("transformers", "caption")
    try:
        model = tf.BlipForConditionalGeneration.from_pretrained(spec_value, revision=revision, dtype=dtype)
        processor = tf.BlipProcessor.from_pretrained(spec_value, revision=revision)
    except OSError as e:
        if kind == "hub":
            raise ModelLoadError(offline_hint(spec_value, "--model") + f" ({e})") from e
        raise ModelLoadError(
            f"could not load a BLIP captioning model from {spec_value}: the folder needs config.json, model weights "
            f"and the processor files written by save_pretrained ({e})"
        ) from e
    return model, processor


def load_captioner(spec: str = DEFAULT_MODEL, *, revision: str | None = None, lavis_checkpoint: str | None = None,
                   device: str = "auto", dtype: str = "auto") -> Captioner:
    """Load (once per process) a BLIP captioner from a hub id, a local folder or ``tiny``."""

    def build() -> Captioner:
        parsed = parse_spec(spec)
        dev, dt = placement(device, dtype)
        if parsed.kind == TINY:
            processor = tiny_processor()
            model, rev = tiny_model(processor), TINY
        else:
            model, processor = _load_pretrained(parsed.value, parsed.kind, revision, dt)
            rev = getattr(model.config, "_commit_hash", None) or revision or parsed.kind
        if lavis_checkpoint:
            load_lavis_checkpoint(model, lavis_checkpoint)
            rev = f"lavis:{Path(lavis_checkpoint).name}"
        return Captioner(frozen_on(model, dev, dt), processor, dev, dt, parsed.label, rev)

    return _MODELS.get((spec, revision, lavis_checkpoint, device, dtype), build)


# LAVIS/BLIP names → transformers names, applied in order (the same renames as transformers' BLIP conversion script).
_LAVIS_TO_HF = [
    (r"^visual_encoder\.cls_token$", "vision_model.embeddings.class_embedding"),
    (r"^visual_encoder\.pos_embed$", "vision_model.embeddings.position_embedding"),
    (r"^visual_encoder\.patch_embed\.proj\.", "vision_model.embeddings.patch_embedding."),
    (r"^visual_encoder\.norm\.", "vision_model.post_layernorm."),
    (r"^visual_encoder\.blocks\.(\d+)\.norm1\.", r"vision_model.encoder.layers.\1.layer_norm1."),
    (r"^visual_encoder\.blocks\.(\d+)\.norm2\.", r"vision_model.encoder.layers.\1.layer_norm2."),
    (r"^visual_encoder\.blocks\.(\d+)\.attn\.qkv\.", r"vision_model.encoder.layers.\1.self_attn.qkv."),
    (r"^visual_encoder\.blocks\.(\d+)\.attn\.proj\.", r"vision_model.encoder.layers.\1.self_attn.projection."),
    (r"^visual_encoder\.blocks\.(\d+)\.mlp\.", r"vision_model.encoder.layers.\1.mlp."),
    (r"^text_decoder\.", "text_decoder."),
]
# Keys in LAVIS checkpoints that the captioning model does not use (momentum encoders, queues, ITM heads).
_LAVIS_UNUSED = re.compile(r"(_m\.|_m$|queue|^text_encoder\.|^vision_proj|^text_proj|^itm_head|^temp$|position_ids$)")
LAVIS_VIT_LAYER_NORM_EPS = 1e-6  # LAVIS's ViT uses LayerNorm(eps=1e-6); transformers' BLIP config defaults to 1e-5


def lavis_to_hf_key(key: str) -> str | None:
    """The transformers BLIP name of a LAVIS ``blip_caption`` state-dict key, or None for keys captioning ignores."""
    if _LAVIS_UNUSED.search(key):
        return None
    for pattern, repl in _LAVIS_TO_HF:
        new, n = re.subn(pattern, repl, key)
        if n:
            return new
    raise KeyError(f"unexpected key {key!r} in a LAVIS blip_caption checkpoint (is it a BLIP caption checkpoint?)")


def convert_lavis_state_dict(state_dict: dict[str, Any]) -> dict[str, Any]:
    """Rename a LAVIS/BLIP caption checkpoint's state dict for ``BlipForConditionalGeneration``."""
    out = {}
    for key, value in state_dict.items():
        new = lavis_to_hf_key(key)
        if new is not None:
            out[new] = value
    return out


def read_checkpoint(path: str) -> dict[str, Any]:
    """A state dict from .safetensors, or from a torch file loaded with weights_only=True (no pickle code runs)."""
    torch = require("torch", "caption")
    if str(path).endswith(".safetensors"):
        from safetensors.torch import load_file  # optional extra: imported on use

        return load_file(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise RuntimeError(
            f"{path} holds more than tensors, so it is not loaded here (weights_only=True). If you trust the file, "
            f"re-save its 'model' state dict with safetensors.torch.save_file in a separate session (loading it "
            f"there with weights_only=False) and pass the .safetensors file ({e})"
        ) from e
    return ckpt.get("model", ckpt) if isinstance(ckpt, dict) else ckpt


def load_lavis_checkpoint(model: Any, path: str) -> None:
    """Load a LAVIS/BLIP caption checkpoint into a transformers BLIP model of the same size (ViT-B/16 + BERT-base)."""
    sd = convert_lavis_state_dict(read_checkpoint(path))
    expected = model.state_dict()
    for key, value in sd.items():
        if key in expected and tuple(expected[key].shape) != tuple(value.shape):
            raise ValueError(
                f"{path}: {key} has shape {tuple(value.shape)} but the model expects {tuple(expected[key].shape)}; "
                f"pass --model a transformers BLIP of the same size (e.g. {DEFAULT_MODEL} for base_coco)"
            )
    missing, unexpected = model.load_state_dict(sd, strict=False)
    # The LM head's decoder weight is tied to the word embeddings; absent from some checkpoints.
    missing = [k for k in missing if not k.endswith(("decoder.weight", "decoder.bias", "position_ids"))]
    if missing or unexpected:
        raise ValueError(f"{path}: missing keys {missing[:8]}, unexpected keys {list(unexpected)[:8]}")
    for module in model.vision_model.modules():
        if module.__class__.__name__ == "LayerNorm":
            module.eps = LAVIS_VIT_LAYER_NORM_EPS
