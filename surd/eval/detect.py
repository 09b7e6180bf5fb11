"""The second judge of counting and colour prompts, GenEval-style: an open-vocabulary detector finds the prompt's
objects (``surd.models.detector``), the count must be exact at a confidence threshold (after non-maximum
suppression), and each counted object's colour is CLIP's zero-shot choice on its masked crop (GenEval's three
templates; GenEval paints grey outside an instance mask, then crops to its box: a box detector's mask is its box, so
the masked crop is the box crop). Every verdict carries its reason ("found 3 pies, want 4"). Action prompts stay with VQA.

A prompt says what the detector checks with its own fields (counting: object + count; color: colors) or with
``detect: {…}`` in their place; ``detect: false`` leaves it to the other judges (``detect_note`` says why).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PIL import Image

from surd.deps import require
from surd.eval.answers import COLORS, canonical_color
from surd.eval.prompts import EvalPrompt, plural
from surd.models.clip import encode_text
from surd.models.detector import Detection

TEMPLATES = ("a photo of a {c} {o}", "a photo of a {c}-colored {o}", "a photo of a {c} object")  # GenEval's


@dataclass(frozen=True)
class DetectSettings:
    """threshold: minimum detector confidence; nms_iou: boxes of one label overlapping more are one object."""

    threshold: float = 0.3
    nms_iou: float = 0.5
    max_objects: int = 32

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0 or not 0.0 < self.nms_iou <= 1.0 or self.max_objects < 1:
            raise ValueError("detector threshold must be in (0, 1), nms_iou in (0, 1] and max_objects at least 1")


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    iw, ih = max(0.0, min(a[2], b[2]) - max(a[0], b[0])), max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def nms(dets: list[Detection], max_iou: float, limit: int) -> list[Detection]:
    """Greedy non-maximum suppression per label, best first: a box overlapping a kept one of its label is dropped."""
    kept: list[Detection] = []
    for d in sorted(dets, key=lambda d: -d.score):
        if not any(k.label == d.label and iou(k.box, d.box) > max_iou for k in kept):
            kept.append(d)
    by_label: dict[str, list[Detection]] = {}
    for d in kept:
        by_label.setdefault(d.label, []).append(d)
    return [d for ds in by_label.values() for d in ds[:limit]]


def target(prompt: EvalPrompt) -> dict[str, Any] | None:
    """What the detector checks for *prompt* ({object, count} or {colors}), or None (not a detector's question)."""
    spec = prompt.spec.get("detect", prompt.spec)
    if spec is False or prompt.type == "action":
        return None
    if not isinstance(spec, dict):
        raise ValueError(f"prompt {prompt.id}: detect must be false or a mapping of what the detector checks")
    if prompt.type == "counting":
        if not isinstance(spec.get("object"), str) or not isinstance(spec.get("count"), int):
            raise ValueError(f"prompt {prompt.id}: the detector needs object and count")
        return {"object": spec["object"], "plural": spec.get("plural") or plural(spec["object"]),
                "count": spec["count"]}
    pairs = [(p.get("object"), canonical_color(str(p.get("color", "")))) for p in spec.get("colors") or []
             if isinstance(p, dict)]
    if not pairs or any(not isinstance(o, str) or c is None for o, c in pairs):
        raise ValueError(f"prompt {prompt.id}: the detector needs colors: [{{object, color}}] out of {COLORS}")
    return {"colors": pairs}


def match(needs: list[str], have: list[str]) -> int:
    """How many of the needed colours distinct objects can cover (maximum bipartite matching, Kuhn's algorithm)."""
    owner: dict[int, int] = {}  # object index → need index

    def assign(i: int, seen: set[int]) -> bool:
        for j, c in enumerate(have):
            if c == needs[i] and j not in seen:
                seen.add(j)
                if j not in owner or assign(owner[j], seen):
                    owner[j] = i
                    return True
        return False

    return sum(assign(i, set()) for i in range(len(needs)))


def _n(k: int, obj: str, plural_form: str) -> str:
    return f"{k} {obj if k == 1 else plural_form}"


def verdict(tgt: dict[str, Any], found: list[Detection], colours: dict[int, str]) -> dict[str, Any]:
    """Correct or not, and why, from the kept detections and the colour of each (by its index in *found*)."""
    if "count" in tgt:
        k = sum(d.label == tgt["object"] for d in found)
        ok = k == tgt["count"]
        return {"correct": ok, "reason": f"found {_n(k, tgt['object'], tgt['plural'])}, want {tgt['count']}"}
    parts, ok = [], True
    for obj in dict.fromkeys(o for o, _ in tgt["colors"]):
        needs = [c for o, c in tgt["colors"] if o == obj]
        have = [colours[i] for i, d in enumerate(found) if d.label == obj]
        covered = match(needs, have)
        ok = ok and covered == len(needs)
        seen = f"found {_n(len(have), obj, plural(obj))}" + (f" ({', '.join(have)})" if have else "")
        parts.append(f"{seen}, want {' and '.join(needs)} {obj}" + ("" if covered == len(needs) else " ✗"))
    return {"correct": ok, "reason": "; ".join(parts)}


def crop(image: Image.Image, box: tuple[float, ...]) -> Image.Image:
    """The object's masked crop: its box cut out of the image (at least one pixel each way)."""
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    return image.convert("RGB").crop((x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)))


class ColourClassifier:
    """CLIP zero-shot colour of a crop: the colour whose averaged template embedding is closest (clip_benchmark's
    zero-shot classifier, as GenEval uses it)."""

    def __init__(self, clip: Any):
        self.clip = clip
        self._heads: dict[str, Any] = {}

    def head(self, obj: str) -> Any:
        """[e, len(COLORS)]: per colour, the normalised mean of its normalised template embeddings."""
        torch = require("torch", "eval")
        if obj not in self._heads:
            c = self.clip
            cols = []
            with torch.inference_mode():
                for colour in COLORS:
                    texts = [t.format(c=colour, o=obj) for t in TEMPLATES]
                    emb = encode_text(c.model, c.tokenizer(texts).to(c.device)).float()  # [3, e], normalised
                    cols.append(torch.nn.functional.normalize(emb.mean(0), dim=-1))
            self._heads[obj] = torch.stack(cols, dim=1)  # [e, C]
        return self._heads[obj]

    def __call__(self, crops: list[Image.Image], obj: str) -> list[str]:
        torch = require("torch", "eval")
        if not crops:
            return []
        c = self.clip
        x = torch.stack([c.preprocess(im) for im in crops]).to(c.device, c.dtype)  # [N, 3, H, W]
        with torch.inference_mode():
            img = c.model.encode_image(x, normalize=True).float()  # [N, e]
        return [COLORS[i] for i in (img @ self.head(obj)).argmax(1).tolist()]


def judge(image: Image.Image, prompt: EvalPrompt, detector: Any, colours: ColourClassifier,
          settings: DetectSettings) -> dict[str, Any] | None:
    """The detector's verdict on one image: {correct, reason, found: [{label, score, box, color?}]}, or None."""
    tgt = target(prompt)
    if tgt is None:
        return None
    labels = [tgt["object"]] if "count" in tgt else list(dict.fromkeys(o for o, _ in tgt["colors"]))
    found = nms(detector.detect(image, labels, settings.threshold), settings.nms_iou, settings.max_objects)
    named: dict[int, str] = {}
    if "colors" in tgt:
        for obj in labels:
            idx = [i for i, d in enumerate(found) if d.label == obj]
            named.update(zip(idx, colours([crop(image, found[i].box) for i in idx], obj)))
    out = verdict(tgt, found, named)
    out["found"] = [{"label": d.label, "score": round(d.score, 4), "box": [round(v, 1) for v in d.box],
                     **({"color": named[i]} if i in named else {})} for i, d in enumerate(found)]
    return out
