"""How close whole `surd ingest urls` comes to its image floor: CPU ms/image of ingest vs `process_image` alone.

On the ingest benchmark's images (bench/ingest_vs_img2dataset.py: 1,000 JPEGs of 512–2048 px, cached in the same
folder), the floor is `surd.images.process_image` (JPEG draft decode, 512² center crop with the area filter,
quality-95 encode) called on every image's bytes in one thread of this process: the work no ingest can skip.
Against it runs the whole command, `python -m surd ingest urls` with the ingest benchmark's settings (2 processes
x 16 threads, two shards per process), its images served from a local HTTP server in another process: start-up,
imports, planning, download, validation, hashing, tar + parquet + stats writing, all counted as the CPU time of
the command and its worker processes (the server's is not). Both run from bytecode with OMP_NUM_THREADS=1, as in
the ingest benchmark. Each round also runs the command over 8 images: less their floor, that is what a run costs
before its images (start-up, imports, planning, worker processes), printed with the per-image cost beyond it.
Rounds alternate and the best of each side counts; each round prints the load average. The floor is also
measured in as many processes at once as the ingest runs (every core busy costs the same work more CPU time), and
the per-image cost beyond the fixed cost is printed against both floors.

    python bench/ingest_floor.py            # 1,000 images, 3 rounds
    python bench/ingest_floor.py --quick    # 1,000 images, 2 rounds

The last line is ``ratio surd ingest / process_image CPU: <r>`` (the issue's target: <= 1.08).
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ingest_vs_img2dataset as bench  # noqa: E402  (same images, server and command line)

from surd.images import ImageConfig, process_image  # noqa: E402


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def floor_cpu(datas: list[bytes], cfg: ImageConfig) -> float:
    """CPU seconds of `process_image` over every image, one thread."""
    c0 = time.process_time()
    for data in datas:
        process_image(data, cfg)
    return time.process_time() - c0


def _floor_part(paths: list[Path], cfg: ImageConfig) -> float:
    datas = [p.read_bytes() for p in paths]
    process_image(datas[0], cfg)
    return floor_cpu(datas, cfg)


def floor_cpu_parallel(paths: list[Path], cfg: ImageConfig, processes: int) -> float:
    """CPU seconds of `process_image` over every image split across `processes` spawned processes running at the
    same time, as the ingest's worker processes do: with every core busy, the same work costs more CPU time (shared
    caches and memory bandwidth, clock), and a floor measured on one busy core would flatter nothing."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    with ProcessPoolExecutor(processes, mp_context=get_context("spawn")) as pool:
        return sum(pool.map(_floor_part, [paths[i::processes] for i in range(processes)], [cfg] * processes))


def surd_cpu(url_list: Path, out: Path, processes: int, threads: int, shard: int) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of the whole `surd ingest urls` command and its workers."""
    c0 = children_cpu()
    wall = bench.run_surd(url_list, out, processes, threads, shard)
    return children_cpu() - c0, wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds; the best of each side counts")
    ap.add_argument("--quick", action="store_true", help="2 rounds")
    ap.add_argument("--few", type=int, default=8, help="images of the small run that measures the fixed cost")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "surd_bench_images")
    args = ap.parse_args()
    rounds = 2 if args.quick else args.rounds
    bench.compile_bytecode()
    paths = bench.generate(args.cache, args.n)
    datas = [p.read_bytes() for p in paths]
    resample = "area" if bench.surd_resample_args() else "lanczos"  # the filter the ingest benchmark gives surd
    cfg = ImageConfig(size=512, resize_mode="center_crop", quality=95, resample=resample)
    process_image(datas[0], cfg)  # first-call set-up (codec plugins) is not per-image work
    shard = max(1, -(-len(paths) // (args.processes * 2)))
    print(f"{len(paths)} JPEGs, {sum(map(len, datas)) / len(datas) / 1000:.0f} KB mean, {resample} filter; "
          f"surd ingest: {args.processes} processes x {args.threads} threads, shards of {shard}; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    server, port = bench.serve(args.cache)
    best = {"floor": float("inf"), "floor_busy": float("inf"), "surd": float("inf"), "fixed": float("inf")}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            lists = {}
            for name, subset in (("all", paths), ("few", paths[: args.few])):
                lists[name] = Path(tmp) / f"urls_{name}.csv"
                with open(lists[name], "w", newline="") as f:
                    w = csv.writer(f)
                    w.writerow(["url", "caption"])
                    w.writerows([f"http://127.0.0.1:{port}/{p.name}", f"a test image {p.stem}"] for p in subset)
            for r in range(rounds):
                floor = floor_cpu(datas, cfg)
                best["floor"] = min(best["floor"], floor)
                busy = floor_cpu_parallel(paths, cfg, args.processes)
                best["floor_busy"] = min(best["floor_busy"], busy)
                out = Path(tmp) / f"surd_{r}"
                cpu, wall = surd_cpu(lists["all"], out, args.processes, args.threads, shard)
                n_ok = bench.count_tar_images(out)
                assert n_ok == len(paths), f"surd ingest wrote {n_ok} of {len(paths)} images"
                best["surd"] = min(best["surd"], cpu)
                # The same command over a few images (one shard per process): what a run costs before its images.
                few_cpu, _ = surd_cpu(lists["few"], Path(tmp) / f"few_{r}", args.processes, args.threads,
                                      max(1, -(-args.few // args.processes)))
                best["fixed"] = min(best["fixed"], few_cpu - floor / len(paths) * args.few * 1.0)
                print(f"round {r + 1}: process_image {floor / len(paths) * 1000:5.2f} ms/image (in {args.processes} "
                      f"processes at once {busy / len(paths) * 1000:5.2f}); surd ingest "
                      f"{cpu / len(paths) * 1000:5.2f} ms/image CPU ({wall:.1f} s wall); {args.few} images "
                      f"{few_cpu:.2f} s CPU; load average {os.getloadavg()[0]:.2f}")
    finally:
        server.terminate()
    n = len(paths)
    floor_ms, surd_ms = best["floor"] / n * 1000, best["surd"] / n * 1000
    marginal_ms = (best["surd"] - best["fixed"]) / n * 1000
    print(f"fixed cost of a run (start-up, imports, planning, worker processes, finalize; from the {args.few}-image "
          f"run less its images' floor): {best['fixed']:.2f} s CPU = {best['fixed'] / n * 1000:.2f} ms/image here")
    busy_ms = best["floor_busy"] / n * 1000
    print(f"per image beyond it: {marginal_ms:.2f} ms (download, hashing, writing, hand-offs) = "
          f"{marginal_ms / floor_ms:.3f}x the floor, {marginal_ms / busy_ms:.3f}x the floor with {args.processes} "
          f"processes at once ({busy_ms:.2f} ms/image, the ingest's own layout)")
    print(f"process_image {floor_ms:.2f} ms/image CPU; surd ingest {surd_ms:.2f} ms/image CPU, whole command "
          f"(+{surd_ms - floor_ms:.2f} ms/image)")
    print(f"ratio surd ingest / process_image CPU: {surd_ms / floor_ms:.3f}")


if __name__ == "__main__":
    main()
