"""LAION's watermark detector: timm's EfficientNet with LAION's classifier (their tensor names), its preprocessing
and p(watermark) = softmax index 0, checked by hand; weights from a state dict saved as LAION's is."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")
pytest.importorskip("timm")

from surd.models import ModelLoadError, watermark  # noqa: E402


def test_classifier_has_laions_layout_and_names():
    model = watermark.build(tiny=True)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items() if k.startswith("classifier.")}
    assert shapes == {"classifier.0.weight": (625, 1536), "classifier.0.bias": (625,),
                      "classifier.3.weight": (256, 625), "classifier.3.bias": (256,),
                      "classifier.5.weight": (2, 256), "classifier.5.bias": (2,)}
    assert type(model).__name__ == "EfficientNet" and model.num_features == watermark.FEATURES


def test_preprocessing_matches_a_hand_computation():
    img = Image.fromarray(np.random.default_rng(1).integers(0, 256, (40, 60, 3), dtype=np.uint8))
    got = watermark.preprocess(img, 32)
    ref = np.asarray(img.resize((32, 32), Image.Resampling.BILINEAR), dtype=np.float64) / 255.0
    ref = ((ref - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]).transpose(2, 0, 1)
    assert got.shape == (3, 32, 32) and got.dtype == np.float32
    np.testing.assert_allclose(got, ref, atol=1e-5)


def test_probability_is_softmax_index_zero_of_a_state_dict_saved_as_laions(tmp_path):
    model = watermark.build(tiny=True, seed=3)
    torch.save(model.state_dict(), tmp_path / "wm.pt")  # LAION's file is a plain state dict like this one
    batch = np.stack([watermark.preprocess(Image.new("RGB", (50, 50), c), 64) for c in ("red", "white")])
    with torch.inference_mode():
        logits = model(torch.from_numpy(batch)).double().numpy()
    by_hand = np.exp(logits[:, 0]) / np.exp(logits).sum(axis=1)
    got = watermark.watermark_probability(model, batch, "cpu", torch.float32)
    np.testing.assert_allclose(got, by_hand, atol=1e-5)
    torch.save({"classifier.0.weight": torch.zeros(625, 1536)}, tmp_path / "bad.pt")
    with pytest.raises(ModelLoadError, match="efficientnet_b3"):
        watermark.load_detector(str(tmp_path / "bad.pt"), device="cpu", dtype="fp32")


def test_a_full_efficientnet_b3_state_dict_loads_strictly(tmp_path):
    """The real path: timm's efficientnet_b3 with LAION's classifier, saved and loaded back (weights_only)."""
    model = watermark.build(seed=5)
    torch.save(model.state_dict(), tmp_path / "watermark_model_v1.pt")
    loaded, label, dev, dt = watermark.load_detector(str(tmp_path / "watermark_model_v1.pt"), device="cpu",
                                                     dtype="fp32")
    assert label == str(tmp_path / "watermark_model_v1.pt")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
