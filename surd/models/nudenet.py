"""NudeNet's detector: the ``nudenet`` wheel ships ``320n.onnx`` (a YOLOv8n with 18 body-part classes), run here with
onnxruntime, so a real NSFW model works offline.

Pre- and post-processing follow nudenet 3.4's ``nudenet.py`` so the detections equal ``NudeDetector().detect``:
pad right/bottom with black to a square; resize to the model side (bilinear with half-pixel centres on 8-bit pixels,
as OpenCV's INTER_LINEAR); scale to [0, 1]; planes in B, G, R order (nudenet converts twice, RGBA2BGR on an image
already BGR and then swapRB, so its model receives BGR); anchors whose best class scores >= 0.2 become boxes; NMS
over all classes (score > 0.25, IoU 0.45). All in numpy: neither OpenCV nor nudenet's module is imported (the model
file is found inside the installed package).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from surd.deps import require
from surd.models import ModelCache, ModelLoadError

BUNDLED = "bundled"  # the wheel's own 320n.onnx
BUNDLED_FILE = "320n.onnx"
LABELS = (
    "FEMALE_GENITALIA_COVERED", "FACE_FEMALE", "BUTTOCKS_EXPOSED", "FEMALE_BREAST_EXPOSED", "FEMALE_GENITALIA_EXPOSED",
    "MALE_BREAST_EXPOSED", "ANUS_EXPOSED", "FEET_EXPOSED", "BELLY_COVERED", "FEET_COVERED", "ARMPITS_COVERED",
    "ARMPITS_EXPOSED", "FACE_MALE", "BELLY_EXPOSED", "MALE_GENITALIA_EXPOSED", "ANUS_COVERED", "FEMALE_BREAST_COVERED",
    "BUTTOCKS_COVERED",
)  # fmt: skip
UNSAFE = ("FEMALE_GENITALIA_EXPOSED", "MALE_GENITALIA_EXPOSED", "FEMALE_BREAST_EXPOSED", "BUTTOCKS_EXPOSED",
          "ANUS_EXPOSED")
MIN_BOX_SCORE, NMS_SCORE, NMS_IOU = 0.2, 0.25, 0.45
_MODELS = ModelCache()  # detectors loaded once per process


def bundled_model_path() -> str:
    """The 320n.onnx inside the installed nudenet package (found without importing it: that would need OpenCV)."""
    spec = importlib.util.find_spec("nudenet")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the nudenet package (it ships the detector's ONNX file) is needed: pip install 'surd[safety]'")
    path = Path(next(iter(spec.submodule_search_locations))) / BUNDLED_FILE
    if not path.is_file():
        raise ModelLoadError(f"{path} is missing from the installed nudenet package: reinstall it (nudenet>=3.4)")
    return str(path)


def _axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights of a half-pixel-centred linear resize along one axis (edges clamped)."""
    src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    i0 = np.floor(src).astype(np.int64)
    frac = (src - i0).astype(np.float32)
    frac[i0 < 0] = 0.0
    i0 = np.clip(i0, 0, n_in - 1)
    frac[i0 >= n_in - 1] = 0.0
    return i0, np.minimum(i0 + 1, n_in - 1), frac


def resize_linear(img: np.ndarray, side: int) -> np.ndarray:
    """(H, W, C) uint8 → (side, side, C) uint8, bilinear with half-pixel centres, rounded like OpenCV's."""
    y0, y1, fy = _axis(img.shape[0], side)
    x0, x1, fx = _axis(img.shape[1], side)
    f = img.astype(np.float32)
    rows = f[y0] * (1 - fy)[:, None, None] + f[y1] * fy[:, None, None]
    out = rows[:, x0] * (1 - fx)[None, :, None] + rows[:, x1] * fx[None, :, None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Geometry:
    """The original size and the padding that made it square: maps model boxes back to the image."""

    width: int
    height: int
    x_pad: int
    y_pad: int


def preprocess(image: Any, side: int = 320) -> tuple[np.ndarray, Geometry]:
    """A PIL image → ((3, side, side) float32 BGR blob in [0, 1], geometry)."""
    bgr = np.asarray(image.convert("RGB"))[..., ::-1]
    h, w = bgr.shape[:2]
    size = max(h, w)
    square = np.zeros((size, size, 3), dtype=np.uint8)
    square[:h, :w] = bgr
    blob = resize_linear(square, side).astype(np.float32) / np.float32(255.0)
    return np.ascontiguousarray(blob.transpose(2, 0, 1)), Geometry(w, h, size - w, size - h)


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one (x, y, w, h) box with many, as OpenCV's Rect2d overlap: two empty boxes overlap fully."""
    x1, y1 = np.maximum(box[0], boxes[:, 0]), np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[0] + box[2], boxes[:, 0] + boxes[:, 2])
    y2 = np.minimum(box[1] + box[3], boxes[:, 1] + boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    areas = box[2] * box[3] + boxes[:, 2] * boxes[:, 3]
    empty = areas <= np.finfo(np.float32).eps
    return np.where(empty, 1.0, inter / np.where(empty, 1.0, areas - inter))


def _nms(boxes: np.ndarray, scores: np.ndarray) -> list[int]:
    """Greedy NMS by descending score: boxes scoring > 0.25 that overlap no kept box by IoU > 0.45."""
    kept: list[int] = []
    for i in sorted(np.flatnonzero(scores > NMS_SCORE).tolist(), key=lambda k: -scores[k]):
        if not kept or (_iou(boxes[i], boxes[kept]) <= NMS_IOU).all():
            kept.append(i)
    return kept


def postprocess(output: np.ndarray, geo: Geometry, side: int = 320) -> list[dict[str, Any]]:
    """One image's model output (4 + 18, anchors) → [{"class", "score", "box": [x, y, w, h]}], best first."""
    rows = np.asarray(output, dtype=np.float32).T
    scores = rows[:, 4:]
    best, cls = scores.max(1), scores.argmax(1)
    keep = np.flatnonzero(best >= MIN_BOX_SCORE)
    cx, cy, w, h = (rows[keep, k].astype(np.float64) for k in range(4))
    sx, sy = (geo.width + geo.x_pad) / side, (geo.height + geo.y_pad) / side
    x = np.clip((cx - w / 2) * sx, 0, geo.width)
    y = np.clip((cy - h / 2) * sy, 0, geo.height)
    boxes = np.stack([x, y, np.minimum(w * sx, geo.width - x), np.minimum(h * sy, geo.height - y)], 1)
    return [{"class": LABELS[cls[keep[k]]], "score": float(best[keep[k]]), "box": [int(v) for v in boxes[k]]}
            for k in _nms(boxes, best[keep])]


def unsafe_score(detections: list[dict[str, Any]], classes: tuple[str, ...] = UNSAFE) -> float:
    """The highest score among detections of `classes` (0.0 when none)."""
    return max((d["score"] for d in detections if d["class"] in classes), default=0.0)


class NudeDetector:
    """An onnxruntime session over a NudeNet ONNX file; `detect` takes a batch of preprocessed blobs."""

    def __init__(self, path: str, side: int = 320, label: str = ""):
        ort = require("onnxruntime", "safety")
        try:
            available = ort.get_available_providers()  # onnxruntime-gpu lists CUDA; TensorRT needs its own setup
            providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
            self.session = ort.InferenceSession(path, providers=providers)
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own types for bad files
            raise ModelLoadError(f"cannot load the NudeNet ONNX model {path}: {e}") from e
        self.input = self.session.get_inputs()[0].name
        self.path, self.side, self.label = path, side, label or path

    def detect(self, blobs: list[np.ndarray], geos: list[Geometry]) -> list[list[dict[str, Any]]]:
        """Detections for each image of a batch."""
        out = self.session.run(None, {self.input: np.stack(blobs)})[0]  # (B, 22, anchors)
        return [postprocess(o, g, self.side) for o, g in zip(out, geos)]


def load_detector(model: str = BUNDLED, side: int = 320) -> NudeDetector:
    """The bundled 320n.onnx, or a local .onnx file of NudeNet's (e.g. 640m.onnx with side 640), once per process."""
    path = bundled_model_path() if model == BUNDLED else str(Path(model).expanduser())
    if model != BUNDLED and not Path(path).is_file():
        raise FileNotFoundError(f"NudeNet model file {path} not found: pass {BUNDLED!r} for the wheel's 320n.onnx")
    label = f"nudenet/{BUNDLED_FILE}" if model == BUNDLED else str(Path(path).resolve())
    return _MODELS.get((path, side), lambda: NudeDetector(path, side, label))
