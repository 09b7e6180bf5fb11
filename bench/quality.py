"""Benchmark: the quality stage's aesthetic score with and without reusing clip_filter's clip.npy (ms/image).

N 512² JPEGs; CLIP ViT-B/32 at its real size (random weights: the cost is the architecture's, no download), LAION's
linear aesthetic head layout (512 → 1). "computed" runs CLIP on every image (decode + preprocess + forward);
"reused" reads the stored float16 embedding instead, as after clip_filter with store_embedding. Optionally also
LAION's watermark detector (timm EfficientNet-B3 at 256², random weights), whose cost is the same either way.
Models are loaded before timing (a warm-up batch); torch uses --threads threads. Prints the median of --rounds.

    python bench/quality.py                 # 64 images, 3 rounds
    python bench/quality.py --watermark     # also the watermark detector
"""

from __future__ import annotations

import argparse
import copy
import io
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_samples(n: int, seed: int = 0) -> list[dict]:
    """n 512² photo-like JPEGs (smooth colour fields plus grain) as samples of a finished ingest."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        base = np.asarray(Image.fromarray(small).resize((512, 512), Image.BICUBIC), dtype=np.int16)
        arr = np.clip(base + rng.integers(-12, 13, (512, 512, 1)), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, "JPEG", quality=95)
        out.append({"__key__": f"{i:016x}", "jpg": buf.getvalue(), "json": {"stages": {}}})
    return out


def with_embeddings(samples: list[dict], model: str) -> list[dict]:
    """The samples as clip_filter leaves them: clip.npy (float16, normalised) and its record naming the CLIP."""
    import torch

    from surd.batching import decode_rgb
    from surd.models.clip import load_clip
    from surd.stages.embed import npy_bytes

    clip = load_clip(model, "", device="cpu", dtype="fp32")
    out = copy.deepcopy(samples)
    for s in out:
        with torch.inference_mode():
            emb = clip.model.encode_image(clip.preprocess(decode_rgb(s))[None], normalize=True)[0].numpy()
        s["clip.npy"] = npy_bytes(emb.astype(np.float16))
        s["json"]["stages"]["clip_filter"] = {"model": clip.label, "pretrained": clip.pretrained}
    return out


def timed(samples: list[dict], cfg, rounds: int) -> tuple[float, set[str]]:
    from surd.stages.quality import run

    seconds, how = [], set()
    for _ in range(rounds):
        batch = copy.deepcopy(samples)
        t0 = time.perf_counter()
        out = list(run(batch, cfg))
        seconds.append(time.perf_counter() - t0)
        how |= {o["json"]["stages"]["quality"].get("embedding", "-") for o in out}
    return statistics.median(seconds) * 1000 / len(samples), how


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--watermark", action="store_true")
    args = ap.parse_args()
    import torch

    from surd.stages.quality import Config

    torch.set_num_threads(args.threads)
    samples = make_samples(args.n)
    stored = with_embeddings(samples, "ViT-B-32")
    common = dict(clip_model="ViT-B-32", clip_pretrained="", batch_size=32, device="cpu", dtype="fp32")
    cfg = Config(aesthetic_head="tiny:linear", **common)
    timed(samples[:4], cfg, 1)  # warm-up: CLIP and the head loaded once, as a worker keeps them
    print(f"{args.n} images 512², torch threads {args.threads}, median of {args.rounds}, "
          f"load average {os.getloadavg()[0]:.1f}")
    computed, how_c = timed(samples, cfg, args.rounds)
    reused, how_r = timed(stored, cfg, args.rounds)
    print(f"aesthetic, CLIP ViT-B/32 computed: {computed:8.2f} ms/image  ({'/'.join(sorted(how_c))})")
    print(f"aesthetic, clip.npy reused:        {reused:8.2f} ms/image  ({'/'.join(sorted(how_r))})")
    print(f"reuse saves {computed - reused:.2f} ms/image: {computed / reused:.1f}x less time")
    if args.watermark:
        from surd.models import watermark

        path = ROOT / "runs" / "bench_quality" / "watermark_model_v1.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(watermark.build().state_dict(), path)  # full EfficientNet-B3, LAION's layout, random weights
        wcfg = Config(watermark_model=str(path), **common)
        timed(samples[:4], wcfg, 1)
        both = Config(aesthetic_head="tiny:linear", watermark_model=str(path), **common)
        print(f"watermark detector alone:          {timed(samples, wcfg, args.rounds)[0]:8.2f} ms/image")
        print(f"aesthetic reused + watermark:      {timed(stored, both, args.rounds)[0]:8.2f} ms/image")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
