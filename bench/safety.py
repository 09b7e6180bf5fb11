"""`surd safety` with the LAION CLIP head: reusing clip_filter's stored embeddings vs a second CLIP pass, same run.

    python bench/safety.py              # 256 samples of 512x512 JPEG, open_clip ViT-B-32 (random weights), CPU
    python bench/safety.py --quick      # 64 samples
    python bench/safety.py --device cuda --n 4096 --batch 256

Setup (untimed): the samples go through clip_filter (ViT-B-32, simple prompt = complex prompt so every sample is
kept), which stores clip.npy. Timed, after a warm-up, best of --repeats: the safety stage (classifier laion_clip,
a head of LAION's B/32 layout 512 → 32 → 32 → 1) on (a) those samples, reusing clip.npy, and (b) the same samples
without clip.npy, so it decodes and runs CLIP again. Both are checked to give the same scores. The last line is
the ratio of (b) to (a).
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from model_stages import make_samples  # noqa: E402

from surd.models.clip import load_clip  # noqa: E402
from surd.stages import clip_filter, safety  # noqa: E402


def best_of(repeats: int, fn) -> tuple[float, list]:
    best, out = float("inf"), []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1, help="decode threads")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.n, args.repeats = 64, 2
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 2) - args.threads))
    samples = make_samples(args.n, seed=2)
    for s in samples:
        s["json"]["simple_prompt"] = s["json"]["complex_prompt"]  # a tie: clip_filter keeps every sample
    common = {"batch_size": args.batch, "decode_threads": args.threads, "device": args.device}
    stored = list(clip_filter.run(samples, clip_filter.Config(model="ViT-B-32", pretrained="", **common)))
    assert all("clip.npy" in s for s in stored), "clip_filter should keep and embed every sample"
    bare = [{k: v for k, v in s.items() if k != "clip.npy"} for s in stored]
    cfg = safety.Config(classifier="laion_clip", head="tiny", clip_model="ViT-B-32", clip_pretrained="", **common)
    load_clip("ViT-B-32", "", device=args.device)  # loaded once per worker in a real run: not part of either figure
    list(safety.run(copy.deepcopy(stored[:8]), cfg))
    list(safety.run(copy.deepcopy(bare[:8]), cfg))

    reuse_s, reused = best_of(args.repeats, lambda: list(safety.run(copy.deepcopy(stored), cfg)))
    second_s, computed = best_of(args.repeats, lambda: list(safety.run(copy.deepcopy(bare), cfg)))
    recs = [[o["json"]["stages"]["safety"] for o in out] for out in (reused, computed)]
    assert {r["embedding"] for r in recs[0]} == {"reused"} and {r["embedding"] for r in recs[1]} == {"computed"}
    worst = max(abs(a["score"] - b["score"]) for a, b in zip(*recs))
    print(f"device={args.device} torch threads={torch.get_num_threads()} decode threads={args.threads} "
          f"batch={args.batch}; scores agree within {worst:.1e}")
    print(f"reusing clip.npy: {args.n} samples in {reuse_s:.2f} s ({args.n / reuse_s:.0f} samples/s)")
    print(f"second CLIP pass: {args.n} samples in {second_s:.2f} s ({args.n / second_s:.0f} samples/s)")
    print(f"ratio second pass / reuse: {second_s / reuse_s:.1f}x")


if __name__ == "__main__":
    main()
