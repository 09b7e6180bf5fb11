"""Near-duplicate search at scale: `surd dedup`'s multi-index hashing vs comparing every pair, same hashes, same run.

    python bench/dedup.py               # 1,000,000 hashes, 10% planted near-duplicates, threshold 8; brute force
                                        # on the first 100,000
    python bench/dedup.py --quick       # 200,000 hashes, brute force on 30,000

Synthetic 64-bit hashes: uniform random, then a tenth of them replaced by copies of other hashes with 0..t random
bits flipped (the planted pairs). Measured: time and peak memory (tracemalloc, numpy included) of every pair within
the threshold over all hashes, and of the whole keep/drop decision (`first_wins`: the search on distinct
values plus the walk in order); recall of the planted pairs
(must be 100%); on a subset, the same search by brute force, checked to return the identical pairs. The last line
is the measured speed-up over brute force on that subset.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from surd.dedup.decide import first_wins  # noqa: E402
from surd.dedup.index import brute_force_pairs, near_pairs, plan_blocks  # noqa: E402


def planted_hashes(n: int, t: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hashes, copy index, original index): `fraction` of the hashes are originals with 0..t bits flipped."""
    rng = np.random.default_rng(seed)
    h = rng.integers(0, 2**63, size=n, dtype=np.uint64) * np.uint64(2) + rng.integers(0, 2, size=n, dtype=np.uint64)
    copies = rng.choice(n, int(n * fraction), replace=False)
    originals = rng.choice(np.setdiff1d(np.arange(n), copies), len(copies))
    bits = rng.random((len(copies), 64)).argsort(axis=1)[:, :t].astype(np.uint64)  # t distinct bit positions each
    used = np.arange(t)[None, :] < rng.integers(0, t + 1, len(copies))[:, None]  # flip the first 0..t of them
    flips = np.bitwise_or.reduce(np.where(used, np.uint64(1) << bits, np.uint64(0)), axis=1)
    h[copies] = h[originals] ^ flips
    return h, copies, originals


def measured(fn, memory: bool = True):
    """(result, seconds, peak MiB traced): timed untraced, then run again under tracemalloc for the peak (tracing
    slows Python-level loops, so it must not be in the timing)."""
    t0 = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - t0
    if not memory:
        return out, seconds, 0.0
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return out, seconds, peak


def recall(pairs: tuple[np.ndarray, ...], copies: np.ndarray, originals: np.ndarray, n: int) -> float:
    lo, hi = np.minimum(copies, originals), np.maximum(copies, originals)
    found = pairs[0].astype(np.int64) * n + pairs[1]
    return float(np.isin(lo.astype(np.int64) * n + hi, found).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--subset", type=int, default=100_000, help="hashes compared by brute force too")
    ap.add_argument("--max-distance", type=int, default=8)
    ap.add_argument("--fraction", type=float, default=0.1, help="share of hashes that are planted near-duplicates")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.n, args.subset = 200_000, 30_000
    t = args.max_distance
    h, copies, originals = planted_hashes(args.n, t, args.fraction, args.seed)
    blocks = plan_blocks(args.n, t)
    print(f"{args.n:,} hashes, {len(copies):,} planted near-duplicates (0..{t} bits flipped), threshold {t}; "
          f"blocks {[b.bits for b in blocks]} bits, radii {[b.radius for b in blocks]}")

    pairs, secs, peak = measured(lambda: near_pairs(h, t))
    rec = recall(pairs, copies, originals, args.n)
    print(f"near pairs: {len(pairs[0]):,} within {t} bits in {secs:.1f} s, peak {peak:.0f} MiB traced; "
          f"recall of planted pairs {rec:.2%}")
    assert rec == 1.0, "multi-index hashing missed a planted pair"
    drops, dsecs, dpeak = measured(lambda: first_wins(h, t))
    print(f"keep/drop decision (first in order wins): {len(drops):,} drops in {dsecs:.1f} s, peak {dpeak:.0f} MiB "
          f"traced; process max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")

    sub = h[: args.subset]
    fast, fast_s, _ = measured(lambda: near_pairs(sub, t), memory=False)
    slow, slow_s, _ = measured(lambda: brute_force_pairs(sub, t), memory=False)
    assert all(np.array_equal(a, b) for a, b in zip(fast, slow)), "brute force and the index disagree"
    full_brute = slow_s * (args.n / args.subset) ** 2
    print(f"subset of {args.subset:,}: index {fast_s:.2f} s, brute force {slow_s:.1f} s, identical {len(fast[0]):,} "
          f"pairs; brute force on all {args.n:,} would take ~{full_brute / 60:.0f} min ({full_brute / secs:.0f}x "
          f"the index, extrapolated quadratically)")
    print(f"speed-up over brute force on {args.subset:,} hashes: {slow_s / fast_s:.1f}x")


if __name__ == "__main__":
    main()
