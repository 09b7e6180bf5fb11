"""Open-vocabulary object detection through transformers' ``zero-shot-object-detection`` pipeline (OWLv2, OWL-ViT or
Grounding DINO): a hub id, a local folder, or ``tiny`` (a random Owlv2ForObjectDetection with the real CLIP tokenizer,
for tests and offline smoke runs). The default is google/owlv2-base-patch16-ensemble."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from surd.deps import require
from surd.models import TINY, ModelCache, ModelLoadError, offline_hint, parse_spec, resolve_device
from surd.models.tokenizers import CLIP_VOCAB_SIZE, clip_tokenizer

DEFAULT_DETECTOR = "google/owlv2-base-patch16-ensemble"
TINY_SIZE = 64  # the tiny detector's input side (pixels)
_MODELS = ModelCache()


@dataclass(frozen=True)
class Detection:
    """One detected object: its query label, confidence (0..1) and box (x0, y0, x1, y1) in image pixels."""

    label: str
    score: float
    box: tuple[float, float, float, float]


@dataclass
class Detector:
    """A loaded zero-shot detection pipeline."""

    pipe: Any
    label: str

    def detect(self, image: Any, labels: list[str], threshold: float) -> list[Detection]:
        """Every box whose score for one of *labels* passes *threshold*, best first, clipped to the image.

        Each label is queried as "a photo of a {label}" (OWL-ViT's prompt template); the label comes back bare.
        """
        queries = {f"a photo of a {lab}": lab for lab in labels}
        found = self.pipe(image, candidate_labels=list(queries), threshold=threshold)
        w, h = image.size
        out = []
        for d in found:
            b = d["box"]
            box = (min(max(float(b["xmin"]), 0.0), w), min(max(float(b["ymin"]), 0.0), h),
                   min(max(float(b["xmax"]), 0.0), w), min(max(float(b["ymax"]), 0.0), h))
            if box[2] > box[0] and box[3] > box[1]:  # a box wholly outside the image shows nothing
                out.append(Detection(queries[d["label"]], float(d["score"]), box))
        return sorted(out, key=lambda d: -d.score)


def tiny_detector(seed: int = 0) -> tuple[Any, Any, Any]:
    """(model, tokenizer, image processor): a random Owlv2ForObjectDetection of a few layers, the same per seed."""
    torch = require("torch", "eval")
    tf = require("transformers", "eval")
    cfg = tf.Owlv2Config(
        text_config={"vocab_size": CLIP_VOCAB_SIZE, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                     "num_attention_heads": 2, "max_position_embeddings": 16},
        vision_config={"image_size": TINY_SIZE, "patch_size": 16, "hidden_size": 32, "intermediate_size": 64,
                       "num_hidden_layers": 2, "num_attention_heads": 2},
        projection_dim=32)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = tf.Owlv2ForObjectDetection(cfg)
    processor = tf.Owlv2ImageProcessor(size={"height": TINY_SIZE, "width": TINY_SIZE})
    return model.eval(), clip_tokenizer(16), processor


def _build(spec: str, device: str) -> Detector:
    tf = require("transformers", "eval")
    parsed = parse_spec(spec)
    dev = resolve_device(device)
    if parsed.kind == TINY:
        model, tokenizer, processor = tiny_detector()
        pipe = tf.pipeline("zero-shot-object-detection", model=model, tokenizer=tokenizer, image_processor=processor,
                           device=dev)
        return Detector(pipe, parsed.label)
    try:
        pipe = tf.pipeline("zero-shot-object-detection", model=parsed.value, device=dev)
    except (OSError, ValueError) as e:  # missing files, or a folder holding another kind of model
        if parsed.kind == "hub":
            raise ModelLoadError(offline_hint(parsed.value, "--detector") + f" ({e})") from e
        raise ModelLoadError(f"could not load a zero-shot object detector from {parsed.value}: the folder needs "
                             f"config.json, weights and the processor files of save_pretrained ({e})") from e
    return Detector(pipe, parsed.label)


def load_detector(spec: str = DEFAULT_DETECTOR, *, device: str = "auto") -> Detector:
    """Load (once per process) an open-vocabulary detector: OWLv2 / OWL-ViT / Grounding DINO id or folder, or tiny."""
    return _MODELS.get((spec, device), lambda: _build(spec, device))
