"""Adapter training on tiny SD components: frozen base, loss terms, exact resume (in-process and after SIGKILL),
streaming data, the feature cache, and the CLI."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("accelerate")

from safetensors.torch import load_file  # noqa: E402

from surd.adapter.checkpoint import latest_checkpoint  # noqa: E402
from surd.adapter.config import AdapterConfig, TrainConfig  # noqa: E402
from surd.adapter.data import DataPosition, decode_sample, positioned_stream  # noqa: E402
from surd.adapter.features import FeatureCache, build_feature_cache, compute_features  # noqa: E402
from surd.adapter.model import SURAdapter  # noqa: E402
from surd.adapter.train import adapter_losses, assert_only_adapter_trains, freeze_base  # noqa: E402
from surd.models.sd import tiny_sd_components  # noqa: E402
from surd.shards import write_shard  # noqa: E402
from tests.conftest import jpeg_bytes  # noqa: E402

LLM_DIM = 48


def make_dataset(directory: Path, n: int = 6, shards: int = 2) -> Path:
    """Shards as the embed stage writes them: jpg, json prompts, float16 llm.npy."""
    rng = np.random.default_rng(0)
    per = -(-n // shards)
    for s in range(shards):
        items = []
        for i in range(s * per, min(n, (s + 1) * per)):
            key = f"k{i:04d}"
            vec = io.BytesIO()
            np.save(vec, rng.standard_normal(LLM_DIM).astype(np.float16))
            items.append({"__key__": key, "json": {"key": key, "simple_prompt": f"a photo of a cat number {i}",
                                                   "complex_prompt": f"cat {i}, masterpiece, 8k, artstation"},
                          "jpg": jpeg_bytes(80, 72, seed=i), "llm.npy": vec.getvalue()})
        write_shard(directory, f"{s:05d}", items)
    return directory


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("adapter_data"))


@pytest.fixture(scope="module")
def comps():
    c = tiny_sd_components()
    freeze_base(c)
    return c


def cfg_for(data: Path, out: Path, **kw) -> TrainConfig:
    base = dict(data=str(data), base="tiny", out=str(out), max_steps=6, checkpoint_every=2, lr=1e-3,
                gradient_checkpointing=False, progress=False, adapter={"ff_dim": 64})
    base.update(kw)
    return TrainConfig(**base)


def weights(out: Path) -> dict:
    return load_file(str(out / "adapter_model.safetensors"))


def batch_features(comps, data: Path, n: int = 2):
    stream = positioned_stream(str(data), DataPosition(), seed=0, shuffle_buffer=1)
    items = [decode_sample(s, 64, True, False, 0, 0) for _, s in (next(stream) for _ in range(n))]
    llm = torch.stack([torch.as_tensor(it["llm"]) for it in items])
    return items, compute_features(comps, items, "cpu"), llm


def test_only_adapter_parameters_receive_gradients(comps, data):
    items, feats, llm = batch_features(comps, data)
    torch.manual_seed(0)
    adapter = SURAdapter(AdapterConfig(text_dim=comps.text_dim, llm_dim=LLM_DIM, ff_dim=64)).train()
    opt = torch.optim.AdamW(adapter.trainable_parameters())
    assert_only_adapter_trains(adapter, comps, opt)
    terms = adapter_losses(adapter, comps, feats, llm, cfg_for(data, Path("unused")), torch.Generator().manual_seed(0))
    assert set(terms) == {"loss", "l_simple", "l_llm", "l_cp"} and all(torch.isfinite(v) for v in terms.values())
    terms["loss"].backward()
    assert all(p.grad is not None for p in adapter.parameters())
    assert adapter.g.weight.grad.abs().sum() > 0 and adapter.encoder.layers[0].linear1.weight.grad.abs().sum() > 0
    for m in (comps.unet, comps.vae, comps.text_encoder):
        assert all(p.grad is None for p in m.parameters())
    assert adapter.w0_weight.grad is None
    comps.unet.conv_in.weight.requires_grad_(True)
    try:
        with pytest.raises(AssertionError, match="frozen"):
            assert_only_adapter_trains(adapter, comps, opt)
    finally:
        comps.unet.conv_in.weight.requires_grad_(False)


def test_loss_decreases_on_a_fixed_batch(comps, data):
    _, feats, llm = batch_features(comps, data, n=2)
    torch.manual_seed(0)
    adapter = SURAdapter(AdapterConfig(text_dim=comps.text_dim, llm_dim=LLM_DIM, ff_dim=64, dropout=0.0)).train()
    opt = torch.optim.AdamW(adapter.trainable_parameters(), lr=3e-3)
    cfg = cfg_for(data, Path("unused"), lambda_llm=1e-2, lambda_cp=1e-2)
    losses = []
    for _ in range(30):
        gen = torch.Generator().manual_seed(123)  # same noise and timesteps every step: a fixed objective
        terms = adapter_losses(adapter, comps, feats, llm, cfg, gen)
        opt.zero_grad()
        terms["loss"].backward()
        opt.step()
        losses.append({k: float(v.detach()) for k, v in terms.items()})
    assert losses[-1]["loss"] < 0.9 * losses[0]["loss"]
    assert losses[-1]["l_llm"] < losses[0]["l_llm"] and losses[-1]["l_simple"] < losses[0]["l_simple"]


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory) -> Path:
    """An uninterrupted 6-step run (checkpoints at 2, 4, 6)."""
    from surd.adapter.train import train_adapter

    return train_adapter(cfg_for(data, tmp_path_factory.mktemp("ref")))


def test_run_writes_adapter_checkpoints_and_log(reference):
    assert (reference / "adapter_config.json").exists()
    assert [p.name for p in sorted((reference / "checkpoints").iterdir())] == [
        "step-00000002", "step-00000004", "step-00000006"]
    rows = (reference / "log.csv").read_text().splitlines()
    assert rows[0] == "step,loss,l_simple,l_llm,l_cp,lr" and len(rows) == 7
    trained = SURAdapter.from_pretrained(reference)
    assert trained.g.weight.abs().sum() > 0  # it trained
    assert torch.equal(trained.w0_weight, SURAdapter(trained.config).w0_weight)  # W0 is the seeded one


def test_stop_and_resume_equals_uninterrupted(data, reference, tmp_path):
    from surd.adapter.train import train_adapter

    train_adapter(cfg_for(data, tmp_path, max_steps=2))
    out = train_adapter(cfg_for(data, tmp_path, resume=True))
    ref, got = weights(reference), weights(out)
    assert set(ref) == set(got)
    for k in ref:
        assert torch.equal(ref[k], got[k]), k
    assert len((out / "log.csv").read_text().splitlines()) == 7


def test_sigkill_mid_run_then_resume_equals_uninterrupted(data, reference, tmp_path):
    from surd.adapter.train import train_adapter

    code = ("import sys; from tests.adapter.test_train import cfg_for; from surd.adapter.train import train_adapter; "
            "from pathlib import Path; "
            "train_adapter(cfg_for(Path(sys.argv[1]), Path(sys.argv[2]), checkpoint_every=1))")
    # Same thread count as this process (where the reference ran): CPU reductions are only bit-exact then.
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    proc = subprocess.Popen([sys.executable, "-c", code, str(data), str(tmp_path)], cwd=REPO, env=env)
    deadline = time.monotonic() + 120
    try:
        while latest_checkpoint(tmp_path) is None and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert latest_checkpoint(tmp_path) is not None and not (tmp_path / "adapter_model.safetensors").exists()
    out = train_adapter(cfg_for(data, tmp_path, resume=True))
    ref, got = weights(reference), weights(out)
    for k in ref:
        assert torch.equal(ref[k], got[k]), k


def test_feature_cache_matches_per_step_features(comps, data, tmp_path):
    build_feature_cache(comps, str(data), tmp_path, 64, "cpu", torch.float32, progress=False)
    cache = FeatureCache(tmp_path)
    items, feats, _ = batch_features(comps, data, n=2)
    got = cache.features([{"key": it["key"], "flip": False} for it in items], "cpu", torch.float32)
    for k in feats:
        assert torch.allclose(got[k], feats[k], atol=1e-5), k
    flipped = [dict(it, pixel_values=it["pixel_values"].flip(-1)) for it in items]
    got_f = cache.features([{"key": it["key"], "flip": True} for it in items], "cpu", torch.float32)
    assert torch.allclose(got_f["mean"], compute_features(comps, flipped, "cpu")["mean"], atol=1e-5)
    with pytest.raises(ValueError, match="was built for"):
        build_feature_cache(comps, str(data), tmp_path, 32, "cpu", torch.float32, progress=False)


@pytest.mark.parametrize("mode", ["eager", "lazy"])
def test_cached_features_train_like_per_step_features(data, reference, tmp_path, mode):
    from surd.adapter.train import train_adapter

    out = train_adapter(cfg_for(data, tmp_path, max_steps=6, cache_features=mode))
    cache = out / "feature_cache"
    files = cache.glob("*.safetensors" if mode == "eager" else "*/*.text.safetensors")
    assert len(list(files)) == (2 if mode == "eager" else 6)  # eager: one per shard; lazy: one per sample
    ref, got = weights(reference), weights(out)
    for k in ref:  # same data order, noise and flips: the features differ only by batching round-off
        assert torch.allclose(ref[k], got[k], atol=1e-4), k


@pytest.mark.parametrize("extra", [{"mixed_precision": "bf16", "gradient_checkpointing": True},
                                   {"min_snr_gamma": 5.0, "batch_size": 2, "grad_accum": 1}])
def test_training_options_run(data, tmp_path, extra):
    from surd.adapter.train import train_adapter

    out = train_adapter(cfg_for(data, tmp_path, max_steps=2, **extra))
    rows = (out / "log.csv").read_text().splitlines()[1:]
    assert len(rows) == 2 and all(float(r.split(",")[1]) > 0 for r in rows)


def test_data_stream_resumes_at_a_position(data):
    stream = positioned_stream(str(data), DataPosition(), seed=5)
    full = [(p, s["__key__"]) for _, (p, s) in zip(range(9), stream)]
    keys = [k for _, k in full]
    assert len(set(keys[:6])) == 6  # one epoch covers each sample once
    (pos3, _), rest = full[2], keys[3:]
    again = [s["__key__"] for _, (_, s) in zip(range(6), positioned_stream(str(data), pos3, seed=5))]
    assert again == rest


def test_train_config_validation():
    with pytest.raises(ValueError, match="--max-steps"):
        TrainConfig(data="d", base="tiny", out="o", max_steps=0)
    with pytest.raises(ValueError, match="center crop"):
        TrainConfig(data="d", base="tiny", out="o", cache_features=True, center_crop=False)
    with pytest.raises(ValueError, match="not adapter settings"):
        TrainConfig(data="d", base="tiny", out="o", adapter={"text_dim": 3})


def test_cli_train_then_generate(data, tmp_path):
    from typer.testing import CliRunner

    from surd.cli import app

    out = tmp_path / "ad"
    res = CliRunner().invoke(app, ["train-adapter", str(data), "--base", "tiny", "--out", str(out), "--max-steps",
                                   "1", "--grad-accum", "1", "--no-gradient-checkpointing", "--lr", "1e-3"])
    assert res.exit_code == 0, res.output
    assert (out / "adapter_model.safetensors").exists()
    grid = tmp_path / "grid.png"
    res = CliRunner().invoke(app, ["generate", "--base", "tiny", "--adapter", str(out), "-p", "a cat", "--seed", "1",
                                   "--seed", "2", "--steps", "2", "-o", str(grid)])
    assert res.exit_code == 0, res.output
    from PIL import Image

    assert Image.open(grid).size == (128, 128)  # 2 columns (baseline | adapter) × 2 seeds, 64 px each
