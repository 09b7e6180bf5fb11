"""LAION's watermark detector (LAION-AI/LAION-5B-WatermarkDetection), in timm, from its own weight file.

The model is timm's EfficientNet-B3 (their ``efficientnet_b3a``: the same layers) with the classifier replaced by
Linear(1536, 625), ReLU, Dropout(0.3), Linear(625, 256), ReLU, Linear(256, 2); input: the image resized to 256×256
(bilinear), scaled to [0, 1] and normalised with ImageNet's mean and std; p(watermark) = softmax(logits)[:, 0]
(their ``example_use.py``). ``models/watermark_model_v1.pt`` is a plain state dict: read with
``torch.load(weights_only=True)`` (or a .safetensors copy), never unpickled.

A spec is ``tiny`` (a seeded random EfficientNet of timm's class with two small blocks and LAION's 1536-wide
classifier, for tests and offline runs), a local ``.pt``/``.safetensors`` file, or a hub id ``owner/repo:file``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from surd.deps import require
from surd.models import TINY, ModelCache, ModelLoadError, offline_hint, parse_spec, resolve_device, resolve_dtype
from surd.models.nsfw import read_state_dict

ARCH = "efficientnet_b3"
FEATURES = 1536  # EfficientNet-B3's pooled features: the classifier's input
INPUT_SIZE = 256
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
TINY_BLOCKS = [["ds_r1_k3_s1_e1_c8"], ["ir_r1_k3_s2_e2_c16_se0.25"]]  # timm's block strings: MBConv as in B3
_MODELS = ModelCache()


def classifier() -> Any:
    """LAION's classifier head, the layer indices their state dict names (classifier.0, .3, .5)."""
    nn = require("torch", "safety").nn
    return nn.Sequential(nn.Linear(FEATURES, 625), nn.ReLU(), nn.Dropout(p=0.3), nn.Linear(625, 256), nn.ReLU(),
                         nn.Linear(256, 2))


def build(tiny: bool = False, seed: int = 0) -> Any:
    """EfficientNet-B3 (or its tiny stand-in) with LAION's classifier, random weights."""
    torch = require("torch", "safety")
    timm = require("timm", "safety")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if tiny:
            from timm.models._efficientnet_builder import decode_arch_def  # optional extra: with timm
            from timm.models.efficientnet import EfficientNet  # optional extra: with timm

            model = EfficientNet(decode_arch_def(TINY_BLOCKS), num_classes=2, num_features=FEATURES, stem_size=8)
        else:
            model = timm.create_model(ARCH, pretrained=False, num_classes=2)
        model.classifier = classifier()
    return model.eval().requires_grad_(False)


def preprocess(image: Image.Image, size: int = INPUT_SIZE) -> np.ndarray:
    """(3, size, size) float32: torchvision's Resize((size, size)) on a PIL image (PIL bilinear), ToTensor,
    Normalize(ImageNet mean, std), as LAION's example does."""
    arr = np.asarray(image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32) / 255.0
    return ((arr - MEAN) / STD).transpose(2, 0, 1)


def _hub_file(hub_id: str) -> str:
    repo, _, filename = hub_id.partition(":")
    try:
        return require("huggingface_hub", "safety").hf_hub_download(repo, filename or "watermark_model_v1.pt")
    except Exception as e:  # noqa: BLE001 - offline, no such repo or file: all one message
        raise ModelLoadError(offline_hint(repo, "watermark_model:") + f" ({type(e).__name__}: {e})") from e


def load_detector(spec: str, device: str = "auto", dtype: str = "auto") -> tuple[Any, str, Any, Any]:
    """(model, label, torch device, torch dtype), loaded once per process."""

    def make() -> tuple[Any, str, Any, Any]:
        dev = resolve_device(device)
        dt = resolve_dtype(dtype, dev)
        parsed = parse_spec(spec)
        if parsed.kind == TINY:
            model, label = build(tiny=True), TINY
        else:
            path = parsed.value if parsed.kind == "local" else _hub_file(parsed.value)
            model = build()
            try:
                model.load_state_dict({k: v.float() for k, v in read_state_dict(path).items()}, strict=True)
            except (ValueError, RuntimeError, OSError) as e:
                raise ModelLoadError(f"cannot load LAION's watermark detector from {path} (timm {ARCH} with their "
                                     f"classifier): {e}") from e
            label = parsed.label
        return model.to(dev, dt), label, dev, dt

    return _MODELS.get((spec, device, dtype), make)


def watermark_probability(model: Any, batch: np.ndarray, device: Any, dtype: Any) -> np.ndarray:
    """p(watermark) per image of a (B, 3, H, W) batch: softmax over LAION's two logits, index 0."""
    torch = require("torch", "safety")
    with torch.inference_mode():
        logits = model(torch.from_numpy(batch).to(device, dtype)).float()
        return torch.softmax(logits, dim=1)[:, 0].cpu().numpy()
