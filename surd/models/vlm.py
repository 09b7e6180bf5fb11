"""Any transformers image-to-text or vision-language model as a captioner: BLIP-2, Florence-2, Qwen2-VL (and
Qwen2.5-VL), and any other ``AutoModelForImageTextToText`` with a processor.

How a family is asked for a caption (``instruction``, "" = the family's default):
- ``prefix`` (BLIP-2): the instruction is a text prefix the caption continues ("" = none);
- ``task`` (Florence-2): a task token, ``<CAPTION>`` / ``<DETAILED_CAPTION>`` / ``<MORE_DETAILED_CAPTION>``;
- ``chat`` (Qwen2-VL and any processor with a chat template): a user turn holding the image and the instruction.
Decoder-only models return the prompt before the caption: it is cut off by its token length. The BLIP captioner
(the paper's) stays in `surd.models.blip`.

``tiny-blip2``, ``tiny-florence2`` and ``tiny-qwen2-vl`` are small random models of the real classes, with real
processors over a byte-level BPE vocabulary written here (no merges): for tests and offline smoke runs. Their
decoders may only emit letters and spaces, so a tiny caption is readable text.
"""

from __future__ import annotations

import json
import string
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from surd.deps import require
from surd.models import LoadedModel, ModelCache, ModelLoadError, frozen_on, offline_hint, parse_spec, placement

# model_type → (style, default instruction)
FAMILIES = {"blip-2": ("prefix", ""), "florence2": ("task", "<CAPTION>"),
            "qwen2_vl": ("chat", "Describe this image in one sentence."),
            "qwen2_5_vl": ("chat", "Describe this image in one sentence.")}
CHAT_DEFAULT = "Describe this image in one sentence."
TINY_SPECS = ("tiny-blip2", "tiny-florence2", "tiny-qwen2-vl")
_MODELS = ModelCache()


@dataclass
class VisionLanguageModel(LoadedModel):
    """A loaded image-to-text model, its processor, and how to ask it for a caption."""

    family: str  # the config's model_type
    style: str  # prefix | task | chat

    def default_instruction(self) -> str:
        return FAMILIES.get(self.family, (self.style, CHAT_DEFAULT if self.style == "chat" else ""))[1]


def model_type(spec: str, revision: str | None = None) -> str:
    """The ``model_type`` of a hub id or local folder (``blip`` for the paper's captioner)."""
    if spec in TINY_SPECS:
        return {"tiny-blip2": "blip-2", "tiny-florence2": "florence2", "tiny-qwen2-vl": "qwen2_vl"}[spec]
    tf = require("transformers", "caption")
    parsed = parse_spec(spec)
    try:
        return tf.AutoConfig.from_pretrained(parsed.value, revision=revision).model_type
    except OSError as e:
        if parsed.kind == "hub":
            raise ModelLoadError(offline_hint(parsed.value, "--model") + f" ({e})") from e
        raise ModelLoadError(f"{parsed.value} has no readable config.json (a save_pretrained folder): {e}") from e


def _style(family: str, processor: Any) -> str:
    if family in FAMILIES:
        return FAMILIES[family][0]
    return "chat" if getattr(processor, "chat_template", None) else "prefix"


def load_vlm(spec: str, *, revision: str | None = None, device: str = "auto", dtype: str = "auto"
             ) -> VisionLanguageModel:
    """Load (once per process) an image-to-text model from a hub id, a local folder or a ``tiny-*`` spec."""

    def build() -> VisionLanguageModel:
        dev, dt = placement(device, dtype)
        family = model_type(spec, revision)
        if spec in TINY_SPECS:
            model, processor = TINY_BUILDERS[spec]()
            label, rev = spec, "tiny"
        else:
            tf = require("transformers", "caption")
            parsed = parse_spec(spec)
            try:
                processor = tf.AutoProcessor.from_pretrained(parsed.value, revision=revision)
                model = tf.AutoModelForImageTextToText.from_pretrained(parsed.value, revision=revision, dtype=dt)
            except (OSError, ValueError) as e:
                raise ModelLoadError(f"cannot load {spec!r} as an image-to-text model (AutoModelForImageTextToText "
                                     f"+ AutoProcessor; model_type {family!r}): {e}") from e
            label = parsed.label
            rev = getattr(model.config, "_commit_hash", None) or revision or parsed.kind
        tokenizer = getattr(processor, "tokenizer", None)
        if tokenizer is not None:
            tokenizer.padding_side = "left"  # batched generation: prompts end where the caption starts
        return VisionLanguageModel(frozen_on(model, dev, dt), processor, dev, dt, label, rev, family,
                                   _style(family, processor))

    return _MODELS.get((spec, revision, device, dtype), build)


def prompts(vlm: VisionLanguageModel, instruction: str, n: int) -> list[str] | None:
    """The text half of the processor's input for *n* images (None: images only)."""
    text = instruction or vlm.default_instruction()
    if vlm.style == "chat":
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
        text = vlm.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return [text] * n if text else None


def generate(vlm: VisionLanguageModel, images: list[Any], instruction: str, params: dict[str, Any],
             candidates: int = 1) -> list[list[str]]:
    """*candidates* captions per image (beam search's best first), the prompt cut off, whitespace trimmed."""
    torch = require("torch", "caption")
    text = prompts(vlm, instruction, len(images))
    inputs = vlm.processor(images=images, text=text, return_tensors="pt", **({"padding": True} if text else {}))
    inputs = {k: v.to(vlm.device, vlm.dtype) if torch.is_floating_point(v) else v.to(vlm.device)
              for k, v in inputs.items()}
    with torch.inference_mode():
        out = vlm.model.generate(**inputs, num_beams=max(params["num_beams"], candidates),
                                 num_return_sequences=candidates, max_new_tokens=params["max_length"],
                                 min_new_tokens=params["min_length"],
                                 repetition_penalty=params["repetition_penalty"], do_sample=False)
    ids = inputs.get("input_ids")
    if ids is not None and not vlm.model.config.is_encoder_decoder and out.shape[1] > ids.shape[1]:
        prompt = ids.repeat_interleave(candidates, dim=0)
        if torch.equal(out[:, : ids.shape[1]], prompt):
            out = out[:, ids.shape[1] :]  # decoder-only: the prompt comes back first
    texts = [t.strip() for t in vlm.processor.batch_decode(out, skip_special_tokens=True)]
    if vlm.style == "prefix" and text:
        texts = [t[len(text[0]) :].strip() if t.startswith(text[0]) else t for t in texts]
    return [texts[i * candidates : (i + 1) * candidates] for i in range(len(images))]


# ---------------------------------------------------------------------------------------------- tiny models


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte → printable character table (byte-level BPE's alphabet)."""
    keep = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    extra = [b for b in range(256) if b not in keep]
    return {**{b: chr(b) for b in keep}, **{b: chr(256 + i) for i, b in enumerate(extra)}}


def _bpe_files(folder: str, specials: list[str]) -> tuple[str, str]:
    """vocab.json (specials, then the 256 byte characters) and an empty merges.txt: a byte-level BPE tokenizer."""
    vocab = {t: i for i, t in enumerate(specials)}
    for ch in _bytes_to_unicode().values():
        vocab.setdefault(ch, len(vocab))
    (Path(folder) / "vocab.json").write_text(json.dumps(vocab))
    (Path(folder) / "merges.txt").write_text("#version: 0.2\n")
    return str(Path(folder) / "vocab.json"), str(Path(folder) / "merges.txt")


def _readable_only(model: Any, tokenizer: Any, eos: int) -> Any:
    """Let a random decoder emit only letters, space and its end token (readable tiny captions)."""
    table = _bytes_to_unicode()
    allowed = {tokenizer.convert_tokens_to_ids(table[ord(c)]) for c in string.ascii_lowercase + " "} | {eos}
    suppress = [i for i in range(len(tokenizer)) if i not in allowed]
    for module in model.modules():  # BLIP-2 generates with its language model's own generation config
        if getattr(module, "generation_config", None) is not None:
            module.generation_config.suppress_tokens = suppress
    return model.eval()


def _seeded(build: Any) -> Any:
    torch = require("torch", "caption")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return build()


def tiny_blip2() -> tuple[Any, Any]:
    """Blip2ForConditionalGeneration (ViT + Q-Former + OPT, width 32) with a GPT-2-style tokenizer."""
    tf = require("transformers", "caption")
    with tempfile.TemporaryDirectory() as d:
        tok = tf.GPT2Tokenizer(*_bpe_files(d, ["<pad>", "</s>", "<unk>"]), bos_token="</s>", eos_token="</s>",
                               pad_token="<pad>", unk_token="<unk>")
    processor = tf.Blip2Processor(image_processor=tf.BlipImageProcessor(size={"height": 32, "width": 32}),
                                  tokenizer=tok, num_query_tokens=4)  # adds the <image> token
    layers = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
    config = tf.Blip2Config(
        vision_config=dict(**layers, image_size=32, patch_size=8),
        qformer_config=dict(**layers, vocab_size=len(tok), encoder_hidden_size=32, max_position_embeddings=64),
        text_config=dict(model_type="opt", vocab_size=len(tok), hidden_size=32, ffn_dim=64, num_hidden_layers=2,
                         num_attention_heads=2, word_embed_proj_dim=32, max_position_embeddings=128,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id),
        num_query_tokens=4, image_token_index=tok.convert_tokens_to_ids("<image>"))
    model = _seeded(lambda: tf.Blip2ForConditionalGeneration(config))
    return _readable_only(model, tok, tok.eos_token_id), processor


def tiny_florence2() -> tuple[Any, Any]:
    """Florence2ForConditionalGeneration (DaViT + BART, width 32) with a BART tokenizer and its task prompts."""
    tf = require("transformers", "caption")
    with tempfile.TemporaryDirectory() as d:
        tok = tf.BartTokenizer(*_bpe_files(d, ["<s>", "<pad>", "</s>", "<unk>", "<image>"]),
                               extra_special_tokens={"image_token": "<image>"})
    image_processor = tf.CLIPImageProcessor(size={"height": 64, "width": 64}, crop_size={"height": 64, "width": 64},
                                            do_center_crop=False, image_mean=[0.485, 0.456, 0.406],
                                            image_std=[0.229, 0.224, 0.225])
    image_processor.image_seq_length = 5  # (64 / 32)² patches + the pooled one
    processor = tf.Florence2Processor(image_processor=image_processor, tokenizer=tok)
    config = tf.Florence2Config(
        vision_config=dict(depths=(1, 1, 1, 1), embed_dim=(8, 16, 32, 32), num_heads=(1, 1, 2, 2),
                           num_groups=(1, 1, 2, 2), window_size=2, projection_dim=32, mlp_ratio=2.0),
        text_config=dict(vocab_size=len(tok), d_model=32, encoder_layers=1, decoder_layers=1,
                         encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
                         max_position_embeddings=128, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id, decoder_start_token_id=tok.eos_token_id),
        image_token_id=tok.image_token_id)
    model = _seeded(lambda: tf.Florence2ForConditionalGeneration(config))
    return _readable_only(model, tok, tok.eos_token_id), processor


QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                 "<|image_pad|>", "<|video_pad|>"]
QWEN_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}{% else %}{% for c in message['content'] %}{% if c['type'] == 'image' %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}"
    "{% endif %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def tiny_qwen2_vl() -> tuple[Any, Any]:
    """Qwen2VLForConditionalGeneration (2 vision + 2 text layers, width 32) with Qwen's chat template."""
    tf = require("transformers", "caption")
    with tempfile.TemporaryDirectory() as d:
        tok = tf.Qwen2Tokenizer(*_bpe_files(d, QWEN_SPECIALS), unk_token=None, bos_token=None,
                                eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tok.add_special_tokens({"additional_special_tokens": QWEN_SPECIALS[1:]})
    image_processor = tf.Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=56 * 56, patch_size=14, merge_size=2,
                                               temporal_patch_size=2)
    processor = tf.Qwen2VLProcessor(image_processor=image_processor, tokenizer=tok,
                                    video_processor=tf.Qwen2VLVideoProcessor(), chat_template=QWEN_TEMPLATE)
    ids = {t: tok.convert_tokens_to_ids(t) for t in QWEN_SPECIALS}
    config = tf.Qwen2VLConfig(
        text_config=dict(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=512,
                         rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]},
                         bos_token_id=ids["<|im_start|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=tok.pad_token_id),
        vision_config=dict(depth=2, embed_dim=32, hidden_size=32, num_heads=2, mlp_ratio=2, patch_size=14,
                           spatial_merge_size=2, temporal_patch_size=2, in_channels=3),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
    model = _seeded(lambda: tf.Qwen2VLForConditionalGeneration(config))
    return _readable_only(model, tok, ids["<|im_end|>"]), processor


TINY_BUILDERS = {"tiny-blip2": tiny_blip2, "tiny-florence2": tiny_florence2, "tiny-qwen2-vl": tiny_qwen2_vl}
