"""The detector judge (GenEval-style) by hand: overlap and suppression, the exact count with its reason, colours
matched to distinct objects, CLIP's zero-shot colour against its maths, and a whole verdict on the paper's prompts."""

from __future__ import annotations

import pytest
from PIL import Image

from surd.eval.detect import DetectSettings, iou, judge, match, nms, target, verdict
from surd.eval.prompts import load_prompt_set, parse_prompt
from surd.models.detector import Detection

PAPER = {p.id: p for p in load_prompt_set("paper").prompts}


def d(label: str, score: float, box: tuple[float, float, float, float]) -> Detection:
    return Detection(label, score, box)


def test_iou_by_hand():
    assert iou((0, 0, 10, 10), (5, 5, 15, 15)) == pytest.approx(25 / 175)
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0 and iou((0, 0, 1, 1), (2, 2, 3, 3)) == 0.0


def test_nms_keeps_one_box_per_object_and_label():
    dets = [d("pie", 0.9, (0, 0, 10, 10)), d("pie", 0.8, (1, 1, 11, 11)),  # the same pie twice (IoU 0.68)
            d("pie", 0.7, (20, 0, 30, 10)), d("plate", 0.6, (0, 0, 10, 10))]  # another label may overlap
    kept = nms(dets, 0.5, 32)
    assert [(k.label, k.score) for k in kept] == [("pie", 0.9), ("pie", 0.7), ("plate", 0.6)]
    assert [k.score for k in nms(dets, 0.5, 1)] == [0.9, 0.6]  # at most max_objects per label
    assert len(nms(dets, 1.0, 32)) == 4  # nms_iou 1: nothing is a duplicate


def test_colours_go_to_distinct_objects():
    assert match(["blue", "yellow"], ["yellow", "blue"]) == 2
    assert match(["blue", "yellow"], ["blue", "blue"]) == 1  # one person cannot wear both
    assert match(["red", "red"], ["red"]) == 1
    assert match(["a", "b"], ["a", "b", "a"]) == 2 and match(["a", "b"], ["b", "a"]) == 2  # augmenting path
    assert match(["x"], []) == 0


def test_what_the_detector_checks():
    assert target(PAPER["paper-counting-01"]) == {"object": "pie", "plural": "pies", "count": 4}
    assert target(PAPER["paper-counting-02"])["plural"] == "hot air balloons"
    assert target(PAPER["paper-counting-05"]) is None  # kinds of fruit: detect: false
    assert target(PAPER["paper-color-06"]) is None and target(PAPER["paper-action-01"]) is None
    assert target(PAPER["paper-color-02"]) == {"colors": [("glass", "blue"), ("juice", "red")]}
    assert target(PAPER["paper-color-04"]) == {"colors": [("sun", "gold")]}  # detect: {…} replaces the sky's hues
    bad = parse_prompt({"id": "x", "type": "color", "text": "t", "colors": [{"object": "a", "color": "red"}],
                        "detect": {"colors": [{"object": "a", "color": "plaid"}]}}, "test")
    with pytest.raises(ValueError, match="colors"):
        target(bad)


def test_count_is_exact_and_says_why():
    tgt = target(PAPER["paper-counting-01"])
    pies = [d("pie", 0.9, (i * 10, 0, i * 10 + 9, 9)) for i in range(3)]
    assert verdict(tgt, pies, {}) == {"correct": False, "reason": "found 3 pies, want 4"}
    assert verdict(tgt, pies + [d("pie", 0.5, (50, 0, 59, 9))], {})["correct"] is True
    five = pies + [d("pie", 0.5, (50, 0, 59, 9)), d("pie", 0.4, (70, 0, 79, 9))]
    assert verdict(tgt, five, {}) == {"correct": False, "reason": "found 5 pies, want 4"}  # exact, not "at least"
    assert verdict(target(PAPER["paper-counting-03"]), [d("bottle", 0.9, (0, 0, 5, 5))], {})["reason"] == (
        "found 1 bottle, want 7")


def test_colour_verdicts():
    tgt = target(PAPER["paper-color-03"])  # a couple: one person in blue, one in yellow
    people = [d("person", 0.9, (0, 0, 10, 20)), d("person", 0.8, (20, 0, 30, 20))]
    ok = verdict(tgt, people, {0: "yellow", 1: "blue"})
    assert ok == {"correct": True, "reason": "found 2 persons (yellow, blue), want blue and yellow person"}
    bad = verdict(tgt, people, {0: "blue", 1: "blue"})
    assert bad["correct"] is False and bad["reason"].endswith("✗")
    none = verdict(target(PAPER["paper-color-02"]), [d("glass", 0.9, (0, 0, 9, 9))], {0: "blue"})
    assert none == {"correct": False, "reason": "found 1 glass (blue), want blue glass; found 0 juices, want red juice ✗"}


@pytest.fixture(scope="module")
def clip():
    pytest.importorskip("torch")
    pytest.importorskip("open_clip")
    from surd.models.clip import load_clip

    return load_clip("tiny", "", device="cpu", dtype="fp32")


def test_zero_shot_colour_is_clips_maths(clip):
    """The colour head: per colour, the normalised mean of the normalised template embeddings; the crop's colour is
    the argmax of its normalised image embedding against them (clip_benchmark's zero-shot classifier)."""
    import torch

    from surd.eval.answers import COLORS
    from surd.eval.detect import TEMPLATES, ColourClassifier

    crops = [Image.new("RGB", (20, 30), c) for c in ((220, 20, 20), (20, 20, 220), (240, 240, 240))]
    got = ColourClassifier(clip)(crops, "car")
    with torch.no_grad():
        heads = []
        for c in COLORS:
            t = clip.model.encode_text(clip.tokenizer([tp.format(c=c, o="car") for tp in TEMPLATES]))
            t = t / t.norm(dim=-1, keepdim=True)
            m = t.mean(0)
            heads.append(m / m.norm())
        img = clip.model.encode_image(torch.stack([clip.preprocess(c) for c in crops]))
        img = img / img.norm(dim=-1, keepdim=True)
        want = [COLORS[i] for i in (img @ torch.stack(heads, 1)).argmax(1).tolist()]
    assert got == want and len(got) == 3
    assert ColourClassifier(clip)([], "car") == []


class FixedDetector:
    """Stands in for the detector: fixed boxes per label, filtered by the threshold like the pipeline."""

    def __init__(self, dets: list[Detection]):
        self.dets = dets
        self.asked: list[list[str]] = []

    def detect(self, image, labels, threshold):
        self.asked.append(labels)
        return [x for x in self.dets if x.label in labels and x.score >= threshold]


def test_judge_counts_above_the_threshold_after_suppression(clip):
    from surd.eval.detect import ColourClassifier

    img = Image.new("RGB", (64, 64), "white")
    dets = [d("pie", 0.9, (0, 0, 10, 10)), d("pie", 0.85, (1, 1, 11, 11)), d("pie", 0.8, (20, 0, 30, 10)),
            d("pie", 0.7, (40, 0, 50, 10)), d("pie", 0.6, (0, 30, 10, 40)), d("pie", 0.2, (40, 40, 50, 50))]
    fake = FixedDetector(dets)
    res = judge(img, PAPER["paper-counting-01"], fake, ColourClassifier(clip), DetectSettings(threshold=0.3))
    assert fake.asked == [["pie"]] and res["correct"] is True and res["reason"] == "found 4 pies, want 4"
    assert [f["score"] for f in res["found"]] == [0.9, 0.8, 0.7, 0.6] and "color" not in res["found"][0]
    res = judge(img, PAPER["paper-counting-01"], fake, ColourClassifier(clip), DetectSettings(threshold=0.1))
    assert res["reason"] == "found 5 pies, want 4"
    assert judge(img, PAPER["paper-action-01"], fake, ColourClassifier(clip), DetectSettings()) is None
    img.paste((250, 0, 0), (0, 0, 32, 64))
    car = FixedDetector([d("car", 0.9, (0, 0, 32, 64))])
    res = judge(img, PAPER["paper-color-01"], car, ColourClassifier(clip), DetectSettings())
    colour = ColourClassifier(clip)([img.crop((0, 0, 32, 64))], "car")[0]
    assert res["found"][0]["color"] == colour and res["correct"] is (colour == "red")
    assert res["reason"] == f"found 1 car ({colour}), want red car" + ("" if colour == "red" else " ✗")


def test_settings_are_checked():
    with pytest.raises(ValueError, match="threshold"):
        DetectSettings(threshold=1.5)
