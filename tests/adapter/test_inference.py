"""Adapter inference: prompt embeddings through the adapter, used unchanged by diffusers pipelines (tiny models)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from surd.adapter.config import AdapterConfig  # noqa: E402
from surd.adapter.inference import encode_prompts, generate_grid, text_features  # noqa: E402
from surd.adapter.model import SURAdapter  # noqa: E402
from surd.models.sd import build_pipeline, load_sd, save_components, tiny_controlnet, tiny_sd_components  # noqa: E402

CALL = dict(num_inference_steps=2, guidance_scale=7.5, height=64, width=64)


@pytest.fixture(scope="module")
def comps():
    return tiny_sd_components()


@pytest.fixture(scope="module")
def adapter(comps):
    torch.manual_seed(0)
    ad = SURAdapter(AdapterConfig(text_dim=comps.text_dim, llm_dim=16, ff_dim=64, eta=0.5)).eval()
    with torch.no_grad():  # as if trained: g non-zero, so images must change
        ad.g.weight.normal_(0, 0.5)
    return ad


def run(pipe, pe, npe, seed=0, **kw):
    gen = torch.Generator().manual_seed(seed)
    return pipe(prompt_embeds=pe, negative_prompt_embeds=npe, generator=gen, output_type="np", **{**CALL, **kw}).images


def test_fresh_adapter_embeddings_are_scaled_base_embeddings(comps):
    fresh = SURAdapter(AdapterConfig(text_dim=comps.text_dim, llm_dim=16, ff_dim=64, eta=0.1))
    pe, npe = encode_prompts(comps, fresh, ["a cat", "a dog"])
    base, neg = encode_prompts(comps, None, ["a cat", "a dog"])
    assert pe.shape == (2, 77, comps.text_dim) and npe.shape == pe.shape
    assert torch.allclose(pe, 0.9 * base) and torch.allclose(npe, 0.9 * neg)
    assert torch.equal(neg[0], text_features(comps, [""])[0])  # default negative: the empty prompt


def test_precomputed_embeddings_go_through_the_adapter(comps, adapter):
    # What compel (or any custom weighting) hands over: a [B, 77, d] tensor instead of strings.
    weighted = text_features(comps, ["a (cat)++ on a sofa"]) * 1.2
    pe, _ = encode_prompts(comps, adapter, weighted)
    with torch.no_grad():
        assert torch.allclose(pe, adapter(weighted))
    with pytest.raises(ValueError, match="negative"):
        encode_prompts(comps, adapter, ["a", "b"], ["only one"])


def test_stable_diffusion_pipeline_with_adapter(comps, adapter):
    pipe = build_pipeline(comps)
    base_pe, base_npe = encode_prompts(pipe, None, ["a cat"])
    by_string = pipe(prompt="a cat", generator=torch.Generator().manual_seed(0), output_type="np", **CALL).images
    baseline = run(pipe, base_pe, base_npe)
    np.testing.assert_allclose(baseline, by_string, atol=1e-5)  # embeddings path == the pipeline's own encoding
    pe, npe = encode_prompts(pipe, adapter, ["a cat"])
    adapted = run(pipe, pe, npe)
    assert adapted.shape == (1, 64, 64, 3) and np.isfinite(adapted).all()
    assert np.abs(adapted - baseline).max() > 1e-3
    np.testing.assert_array_equal(run(pipe, pe, npe), adapted)  # same seed, same image


def test_controlnet_pipeline_with_adapter(comps, adapter):
    pipe = build_pipeline(comps, tiny_controlnet(comps), kind="controlnet")
    pe, npe = encode_prompts(pipe, adapter, ["a cat"])
    control = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    out = run(pipe, pe, npe, image=control)
    assert out.shape == (1, 64, 64, 3) and np.isfinite(out).all()


@pytest.mark.parametrize("kind,kw", [("sag", {"sag_scale": 0.75}), ("panorama", {"width": 128, "view_batch_size": 1})])
def test_sag_and_panorama_pipelines_take_adapter_embeddings(comps, adapter, kind, kw):
    pipe = build_pipeline(comps, kind=kind)
    pe, npe = encode_prompts(pipe, adapter, ["a cat"])
    out = run(pipe, pe, npe, **kw)
    assert out.shape == (1, 64, kw.get("width", 64), 3) and np.isfinite(out).all()


def test_generate_grid_side_by_side(comps, adapter):
    pipe = build_pipeline(comps)
    grid, rows = generate_grid(pipe, adapter, ["a cat", "a dog"], [1, 2], **CALL)
    assert grid.size == (128, 256) and len(rows) == 4
    base, adapted = np.asarray(rows[0][0], dtype=np.int16), np.asarray(rows[0][1], dtype=np.int16)
    assert np.abs(base - adapted).max() > 0


def test_width_mismatch_is_refused(comps):
    wide = SURAdapter(AdapterConfig(text_dim=64, llm_dim=16, ff_dim=64))
    with pytest.raises(ValueError, match="width 64.*width 32"):
        encode_prompts(comps, wide, ["a cat"])


def test_local_diffusers_folder_loads(comps, tmp_path):
    save_components(comps, str(tmp_path))
    loaded = load_sd(str(tmp_path))
    assert loaded.text_dim == comps.text_dim and loaded.native_resolution == 64
    ids = comps.tokenizer(["a cat"], return_tensors="pt").input_ids
    assert torch.equal(loaded.tokenizer(["a cat"], return_tensors="pt").input_ids, ids)
    with torch.no_grad():
        assert torch.allclose(loaded.text_encoder(ids)[0], comps.text_encoder(ids)[0])
    with pytest.raises(OSError, match="not a diffusers"):
        load_sd(str(tmp_path / "unet"))
