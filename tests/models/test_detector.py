"""The open-vocabulary detector behind the eval's second judge: the tiny OWLv2 through transformers'
zero-shot-object-detection pipeline, its scores against the model's own head computed by hand, and folders."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from PIL import Image  # noqa: E402

from surd.models import ModelLoadError  # noqa: E402
from surd.models.detector import Detection, load_detector, tiny_detector  # noqa: E402


def _image() -> Image.Image:
    img = Image.new("RGB", (80, 80), (230, 230, 230))
    img.paste((200, 20, 20), (10, 10, 40, 50))
    return img


def test_tiny_detector_scores_are_the_heads_sigmoid():
    """A box's score is sigmoid(class logit) of its query (OWLv2's head); the pipeline keeps those over the threshold,
    best first, labels bare, boxes clipped to the image."""
    import transformers as tf

    det = load_detector("tiny", device="cpu")
    assert isinstance(det.pipe.model, tf.Owlv2ForObjectDetection) and det.label == "tiny"
    img = _image()
    found = det.detect(img, ["pie", "car"], threshold=0.01)
    assert found and all(isinstance(d, Detection) for d in found)
    assert [d.score for d in found] == sorted((d.score for d in found), reverse=True)
    assert {d.label for d in found} <= {"pie", "car"}
    assert all(0 <= d.box[0] < d.box[2] <= 80 and 0 <= d.box[1] < d.box[3] <= 80 for d in found)
    model, tokenizer, processor = tiny_detector()
    proc = tf.Owlv2Processor(image_processor=processor, tokenizer=tokenizer)
    inputs = proc(text=[["a photo of a pie"]], images=img, return_tensors="pt")
    with torch.no_grad():
        out = model(**inputs)
    scores = torch.sigmoid(out.logits[0, :, 0])  # [boxes]: the class head's logit for the one query
    cx, cy, w, h = out.pred_boxes[0].unbind(-1)  # [boxes] each, relative to the (square, unpadded) input
    xyxy = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1) * 80  # [boxes, 4] in pixels
    t = float(scores.median())
    expected = []
    for sc, b in zip(scores.tolist(), xyxy.tolist()):
        box = tuple(min(max(v, 0.0), 80.0) for v in b)
        if sc > t and box[2] - box[0] >= 1 and box[3] - box[1] >= 1:
            expected.append((sc, box))
    got = load_detector("tiny", device="cpu").detect(img, ["pie"], threshold=t)
    assert len(got) == len(expected) > 0
    # The same boxes (as sets: a saturated random head ties many scores at 1.0, in no defined order).
    assert sorted(round(d.score, 4) for d in got) == sorted(round(sc, 4) for sc, _ in expected)
    unmatched = list(expected)
    for d in got:  # each detection is one of the head's boxes, to the pixel (the pipeline rounds to whole pixels)
        hit = next(e for e in unmatched if abs(e[0] - d.score) < 1e-4 and all(abs(a - b) <= 1.0 for a, b in zip(
            e[1], d.box)))
        unmatched.remove(hit)


def test_detector_from_a_local_folder(tmp_path):
    model, tokenizer, processor = tiny_detector()
    model.save_pretrained(tmp_path / "owl")
    tokenizer.save_pretrained(tmp_path / "owl")
    processor.save_pretrained(tmp_path / "owl")
    local = load_detector(str(tmp_path / "owl"), device="cpu")
    tiny = load_detector("tiny", device="cpu")
    img = _image()
    a, b = local.detect(img, ["pie"], 0.5), tiny.detect(img, ["pie"], 0.5)
    assert [(d.label, d.box) for d in a] == [(d.label, d.box) for d in b]
    assert [d.score for d in a] == pytest.approx([d.score for d in b], abs=1e-5)  # same weights, reloaded
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="zero-shot object detector"):
        load_detector(str(tmp_path / "empty"), device="cpu")
