"""LAION's aesthetic predictors: their layouts from their tensor names, loaded from .pth (weights_only) and
safetensors, and their maths checked against a hand computation in numpy."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from surd.models import ModelLoadError, aesthetic  # noqa: E402


def improved_state_dict(in_dim: int, seed: int) -> dict[str, torch.Tensor]:
    """Tensors named as improved-aesthetic-predictor's MLP saves them (layers.0, .2, .4, .6, .7)."""
    g = torch.Generator().manual_seed(seed)
    dims = (in_dim, 1024, 128, 64, 16, 1)
    sd = {}
    for k, idx in enumerate(aesthetic.MLP_LAYERS):
        sd[f"layers.{idx}.weight"] = torch.randn(dims[k + 1], dims[k], generator=g) / dims[k] ** 0.5
        sd[f"layers.{idx}.bias"] = torch.randn(dims[k + 1], generator=g)
    return sd


def by_hand(sd: dict, x: np.ndarray) -> np.ndarray:
    """The predictors' maths in float64: Linear after Linear with no activation (Dropout is identity in eval)."""
    y = x.astype(np.float64)
    names = [f"layers.{i}" for i in aesthetic.MLP_LAYERS] if "layers.0.weight" in sd else [""]
    for n in names:
        pre = f"{n}." if n else ""
        y = y @ sd[pre + "weight"].double().numpy().T + sd[pre + "bias"].double().numpy()
    return y[:, 0]


@pytest.mark.parametrize("layout", ["mlp", "linear"])
@pytest.mark.parametrize("fmt", ["pth", "safetensors"])
def test_laion_files_load_and_score_as_computed_by_hand(tmp_path, layout, fmt):
    in_dim = 768 if layout == "mlp" else 512
    sd = improved_state_dict(in_dim, 1) if layout == "mlp" else {
        "weight": torch.randn(1, in_dim, generator=torch.Generator().manual_seed(2)) / 20, "bias": torch.tensor([5.0])}
    path = tmp_path / f"head.{fmt}"
    if fmt == "pth":
        torch.save(sd, path)
    else:
        from safetensors.torch import save_file

        save_file(sd, str(path))
    head, label = aesthetic.load_head(str(path), in_dim)
    assert head.kind == layout and label == str(path)
    x = np.random.default_rng(0).normal(size=(4, in_dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)  # the predictors read L2-normalised CLIP embeddings
    with torch.inference_mode():
        got = head(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, by_hand(sd, x), rtol=1e-4, atol=1e-4)
    if layout == "mlp":  # the improved predictor's module names and order, Dropout in its three places
        assert [type(m).__name__ for m in head.layers] == ["Linear", "Dropout"] * 3 + ["Linear", "Linear"]


def test_foreign_files_and_wrong_clip_sizes_name_the_fix(tmp_path):
    torch.save({"fc.weight": torch.zeros(1, 8)}, tmp_path / "other.pth")
    with pytest.raises(ModelLoadError, match="not a LAION aesthetic predictor"):
        aesthetic.load_head(str(tmp_path / "other.pth"), 8)
    torch.save(improved_state_dict(768, 0), tmp_path / "l14.pth")
    with pytest.raises(ModelLoadError, match="reads 768-d CLIP embeddings but clip_model gives 512-d"):
        aesthetic.load_head(str(tmp_path / "l14.pth"), 512)
    with pytest.raises(ValueError, match="neither a local file nor a hub id"):
        aesthetic._hub_file("camenduru/improved-aesthetic-predictor")


def test_tiny_heads_have_the_real_layouts():
    mlp, _ = aesthetic.load_head("tiny", 32)
    lin, _ = aesthetic.load_head("tiny:linear", 32)
    assert aesthetic.kind_of(mlp.state_dict()) == ("mlp", 32) and aesthetic.kind_of(lin.state_dict()) == ("linear", 32)
    again = aesthetic.tiny_head("mlp", 32)
    assert all(torch.equal(a, b) for a, b in zip(mlp.state_dict().values(), again.state_dict().values()))
