"""BLIP visual question answering (transformers' BlipForQuestionAnswering): a hub id, a local folder, or ``tiny``.

``tiny`` is built like the tiny captioner in ``blip.py`` (same tokenizer and sizes), with the VQA head: random
answers, for tests and offline smoke runs. The default is Salesforce/blip-vqa-base (ViT-B, VQAv2-finetuned).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from surd.deps import require
from surd.models import TINY, ModelCache, ModelLoadError, frozen_on, offline_hint, parse_spec, placement
from surd.models.blip import tiny_model, tiny_processor

DEFAULT_VQA = "Salesforce/blip-vqa-base"


@dataclass
class VQAModel:
    """A loaded VQA model and its processor."""

    model: Any
    processor: Any
    device: Any
    dtype: Any
    label: str

    def answer(self, images: list[Any], questions: list[str], max_new_tokens: int = 10) -> list[str]:
        """One short answer per (image, question) pair, in a single batch."""
        torch = require("torch", "eval")
        inputs = self.processor(images=images, text=questions, return_tensors="pt", padding=True)
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=max_new_tokens)
        return [a.strip() for a in self.processor.batch_decode(out, skip_special_tokens=True)]


_MODELS = ModelCache()  # VQA models loaded once per process


def load_vqa(spec: str = DEFAULT_VQA, *, device: str = "auto", dtype: str = "auto") -> VQAModel:
    """Load (once per process) a BLIP VQA model from a hub id, a local folder or ``tiny``."""
    return _MODELS.get((spec, device, dtype), lambda: _build_vqa(spec, device, dtype))


def _build_vqa(spec: str, device: str, dtype: str) -> VQAModel:
    tf = require("transformers", "eval")
    parsed = parse_spec(spec)
    dev, dt = placement(device, dtype)
    if parsed.kind == TINY:
        processor = tiny_processor()
        model = tiny_model(processor, cls="BlipForQuestionAnswering")
    else:
        try:
            model = tf.BlipForQuestionAnswering.from_pretrained(parsed.value, dtype=dt)
            processor = tf.BlipProcessor.from_pretrained(parsed.value)
        except OSError as e:
            if parsed.kind == "hub":
                raise ModelLoadError(offline_hint(parsed.value, "--vqa-model") + f" ({e})") from e
            raise ModelLoadError(f"could not load a BLIP VQA model from {parsed.value}: the folder needs "
                                 f"config.json, weights and the processor files of save_pretrained ({e})") from e
    return VQAModel(frozen_on(model, dev, dt), processor, dev, dt, parsed.label)
