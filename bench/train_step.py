"""Adapter training step on CPU: surd (cached VAE latents + text features) vs a loop shaped like the official one.

Both loops train the same adapter on the same samples with the same frozen tiny-to-mid SD model (random weights,
real classes, SD-like proportions: VAE downsampling 8×, 4-layer CLIP text encoder, 3-level UNet). A step is one
micro-batch: data → features → three losses → backward → optimizer step. The official-shaped loop decodes the
JPEG, runs the VAE encoder and two text-encoder passes every step; surd reads them from its feature cache.
Also printed: the adapter's share of a 20-step generation, and each phase's peak memory (separate processes).

    python bench/train_step.py                  # mid-size model, 20 timed steps per loop
    python bench/train_step.py --quick          # same model, 4 timed steps (~1-2 min)
    python bench/train_step.py --size small     # a smaller model (VAE and UNet lighter; smaller speed-up)
The last line is the speed-up: official-shaped step time / surd step time.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
THREADS = int(os.environ.get("SURD_BENCH_THREADS", "1"))  # 1: stable numbers on a shared, busy machine
sys.path.insert(0, str(REPO))

SIZES = {  # name → (text_dim, text_layers, unet_channels, vae_channels, resolution, latent side)
    "small": (256, 4, (64, 128, 256), (32, 64, 128, 128), 128, 16),
    "mid": (384, 6, (96, 192, 384), (64, 128, 256, 256), 256, 32),
}


def build(size: str):
    from surd.adapter.train import freeze_base
    from surd.models.sd import tiny_sd_components

    d, layers, unet_ch, vae_ch, _, latent = SIZES[size]
    # layers_per_block=2 in both UNet and VAE, as in SD 1.x/2.x.
    comps = tiny_sd_components(text_dim=d, unet_channels=unet_ch, vae_channels=vae_ch, text_layers=layers,
                               layers_per_block=2, vae_layers_per_block=2, sample_size=latent)
    freeze_base(comps)
    return comps


def make_data(directory: Path, n: int, llm_dim: int, side: int) -> None:
    from PIL import Image

    from surd.shards import write_shard

    rng = np.random.default_rng(0)
    items = []
    for i in range(n):
        img = Image.fromarray(rng.integers(0, 255, (side + 40, side + 24, 3), dtype=np.uint8))
        buf, vec = io.BytesIO(), io.BytesIO()
        img.save(buf, "JPEG", quality=90)
        np.save(vec, rng.standard_normal(llm_dim).astype(np.float16))
        items.append({"__key__": f"k{i:05d}", "json": {"simple_prompt": f"a photo of a red cat number {i} on a sofa",
                      "complex_prompt": f"cat {i}, masterpiece, best quality, 8k, artstation, by greg rutkowski"},
                      "jpg": buf.getvalue(), "llm.npy": vec.getvalue()})
    write_shard(directory, "00000", items)


class Loop:
    """One training loop (its own adapter, optimizer, noise generator, data stream); `step()` times one micro-batch."""

    def __init__(self, comps, data: Path, mode: str, res: int, cache=None):
        import torch

        from surd.adapter.config import AdapterConfig, TrainConfig
        from surd.adapter.data import DataPosition, positioned_stream
        from surd.adapter.model import SURAdapter

        self.comps, self.mode, self.res, self.cache = comps, mode, res, cache
        self.cfg = TrainConfig(data=str(data), base="tiny", out=str(data / "out"), gradient_checkpointing=False,
                               cache_features=mode == "surd")
        torch.manual_seed(0)
        self.adapter = SURAdapter(AdapterConfig(text_dim=comps.text_dim, llm_dim=4096)).train()
        self.opt = torch.optim.AdamW(self.adapter.trainable_parameters(), lr=1e-5)
        self.gen = torch.Generator().manual_seed(0)
        self.stream = positioned_stream(str(data), DataPosition(), seed=0)
        self.times: list[float] = []

    def step(self) -> None:
        import torch

        from surd.adapter.data import decode_sample
        from surd.adapter.features import compute_features
        from surd.adapter.train import _cache_item, adapter_losses

        t0 = time.perf_counter()
        pos, sample = next(self.stream)
        if self.mode == "surd":
            items = [_cache_item(sample, self.cfg, pos.epoch)]
            feats = self.cache.features(items, "cpu", torch.float32)
        else:
            items = [decode_sample(sample, self.res, True, True, 0, pos.epoch)]
            feats = compute_features(self.comps, items, "cpu")
        llm = torch.stack([torch.as_tensor(it["llm"]) for it in items])
        terms = adapter_losses(self.adapter, self.comps, feats, llm, self.cfg, self.gen)
        terms["loss"].backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        self.times.append(time.perf_counter() - t0)


def phase_train(size: str, data: Path, steps: int) -> dict:
    """Both loops in one process, steps interleaved, so machine load affects both alike; medians per step."""
    import torch

    from surd.adapter.features import FeatureCache, build_feature_cache

    comps = build(size)
    res = SIZES[size][4]
    t0 = time.perf_counter()
    build_feature_cache(comps, str(data), data / "cache", res, "cpu", torch.float32, progress=False)
    cache_s = time.perf_counter() - t0
    surd = Loop(comps, data, "surd", res, FeatureCache(data / "cache"))
    official = Loop(comps, data, "official", res)
    for _ in range(steps + 2):
        official.step()
        surd.step()
    return {"surd_s": statistics.median(surd.times[2:]), "official_s": statistics.median(official.times[2:]),
            "cache_s": cache_s, "peak_rss_mb": peak_rss_mb()}


def phase_generate(size: str, steps: int = 20) -> dict:
    """Adapter share of a generation: the adapter runs once (prompt + negative), the UNet 2× per step (CFG)."""
    import torch

    from surd.adapter.config import AdapterConfig
    from surd.adapter.inference import apply_adapter, encode_prompts
    from surd.adapter.model import SURAdapter
    from surd.models.sd import build_pipeline

    comps = build(size)
    pipe = build_pipeline(comps)
    adapter = SURAdapter(AdapterConfig(text_dim=comps.text_dim, llm_dim=4096)).eval()
    x, nx = encode_prompts(pipe, None, ["a photo of a red cat on a sofa"])
    apply_adapter(adapter, x)  # warm-up
    runs = []
    for _ in range(10):
        t0 = time.perf_counter()
        apply_adapter(adapter, x), apply_adapter(adapter, nx)
        runs.append(time.perf_counter() - t0)
    adapter_s = statistics.median(runs)
    res = SIZES[size][4]
    t0 = time.perf_counter()
    pe, npe = encode_prompts(pipe, adapter, ["a photo of a red cat on a sofa"])
    pipe(prompt_embeds=pe, negative_prompt_embeds=npe, num_inference_steps=steps, height=res, width=res,
         generator=torch.Generator().manual_seed(0), output_type="np")
    total_s = time.perf_counter() - t0
    return {"adapter_s": adapter_s, "generation_s": total_s, "peak_rss_mb": peak_rss_mb()}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def child(args: list[str]) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(THREADS)}
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, env=env, cwd=REPO)
    if proc.returncode:
        raise RuntimeError(f"phase {args} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer timed steps (~1-2 min)")
    ap.add_argument("--size", choices=sorted(SIZES), default="mid", help="model size (default mid, SD-like ratios)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per loop")
    ap.add_argument("--phase", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    a = ap.parse_args()
    size = a.size
    steps = a.steps or (4 if a.quick else 20)
    if a.phase == "train":
        print(json.dumps(phase_train(size, Path(a.data), steps)))
        return
    if a.phase == "generate":
        print(json.dumps(phase_generate(size)))
        return
    d, layers, unet_ch, vae_ch, res, latent = SIZES[size]
    print(f"config {size}: text d={d} ×{layers} layers, UNet {unet_ch}, VAE {vae_ch} ({res}px → {latent}px latent), "
          f"adapter 2×(8 heads, ff 2048), batch 1, fp32, {THREADS} CPU thread(s) (SURD_BENCH_THREADS)")
    with tempfile.TemporaryDirectory() as tmp:
        make_data(Path(tmp), steps + 4, 4096, res)
        train = child(["--phase", "train", "--data", tmp, "--steps", str(steps), "--size", size])
    gen = child(["--phase", "generate", "--size", size])
    share = gen["adapter_s"] / gen["generation_s"]
    print(f"official-shaped step (JPEG decode + VAE encode + 2 text-encoder passes): "
          f"{train['official_s'] * 1e3:.1f} ms")
    print(f"surd step (cached latents + text features):                     {train['surd_s'] * 1e3:.1f} ms "
          f"(one-off cache build {train['cache_s']:.1f} s for {steps + 4} samples)")
    per_sample = train["cache_s"] / (steps + 4)
    saved = train["official_s"] - train["surd_s"]
    print(f"cache build {per_sample:.2f} s/sample (image + flip): pays for itself after "
          f"{per_sample / saved if saved > 0 else float('inf'):.1f} uses of each sample (epochs)")
    print(f"peak RSS: training process (both loops) {train['peak_rss_mb']:.0f} MB, "
          f"generation process {gen['peak_rss_mb']:.0f} MB")
    print(f"adapter share of a 20-step generation: {share * 100:.3f}%  (adapter on prompt + negative "
          f"{gen['adapter_s'] * 1e3:.2f} ms of {gen['generation_s']:.2f} s)")
    print(f"speed-up, official-shaped / surd step: {train['official_s'] / train['surd_s']:.2f}x")


if __name__ == "__main__":
    main()
