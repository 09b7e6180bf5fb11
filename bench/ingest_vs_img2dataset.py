"""Benchmark: `surd ingest urls` vs img2dataset on the same local URL list (images/s; ratio surd/img2dataset last).

Generates N JPEGs of 512–2048 px (≈100–800 KB), serves them from a local HTTP server in its own process, and runs
both tools on the same list: webdataset output, 512² center crop, JPEG quality 95, the same processes and threads,
the same shard size, no retries, OMP_NUM_THREADS=1, both from bytecode. img2dataset runs from its own venv
(bench/setup_img2dataset.sh) via subprocess. Each round prints the load average: on a shared machine, compare
figures taken at a similar load.

    python bench/ingest_vs_img2dataset.py            # 1,000 images
    python bench/ingest_vs_img2dataset.py --quick    # 1,000 images, one round (≈1 minute)
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
I2D_PYTHON = Path(os.environ.get("IMG2DATASET_VENV", "/root/.venvs/img2dataset")) / "bin" / "python"
SERVER = """
import sys
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
class H(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(H, directory=sys.argv[1]))
httpd.daemon_threads = True
print(httpd.server_address[1], flush=True)
httpd.serve_forever()
"""


def generate(folder: Path, n: int, seed: int = 0) -> list[Path]:
    """n JPEGs, 512–2048 px a side, smooth colour fields plus grain (≈100–800 KB, like real photos/renders)."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        path = folder / f"{i:05d}.jpg"
        w, h = int(rng.integers(512, 2049)), int(rng.integers(512, 2049))
        small = rng.integers(0, 256, (max(2, h // 64), max(2, w // 64), 3), dtype=np.uint8)
        if not path.exists():
            base = np.asarray(Image.fromarray(small).resize((w, h), Image.BICUBIC), dtype=np.int16)
            grain = rng.integers(-12, 13, (h, w, 1), dtype=np.int16)
            buf = io.BytesIO()
            Image.fromarray(np.clip(base + grain, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=85)
            path.write_bytes(buf.getvalue())
        paths.append(path)
    return paths


def serve(folder: Path) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(folder)], stdout=subprocess.PIPE, text=True)
    port = int(proc.stdout.readline())
    return proc, port


def count_tar_images(folder: Path) -> int:
    from PIL import Image

    n = 0
    for tar_path in sorted(folder.rglob("*.tar")):
        with tarfile.open(tar_path) as tar:
            for member in tar.getmembers():
                if member.name.endswith(".jpg"):
                    img = Image.open(tar.extractfile(member))
                    assert img.size == (512, 512), (tar_path, member.name, img.size)
                    n += 1
    return n


# Both tools run with this: numpy's OpenBLAS threads spin at start-up (~0.1 s of CPU per process), and neither tool
# does BLAS or OpenMP work (img2dataset's OpenCV keeps its own threads).
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def compile_bytecode() -> None:
    """Run surd from bytecode, as img2dataset runs from its venv's: a checkout (or PYTHONDONTWRITEBYTECODE, set
    here) has no .pyc files, and compiling surd's ~100 modules from source in every process would be counted as
    surd's time (~0.2 s of CPU per process)."""
    import compileall

    compileall.compile_dir(str(ROOT / "surd"), quiet=1)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_img2dataset(url_list: Path, out: Path, procs: int, threads: int, shard: int) -> float:
    args = [str(I2D_PYTHON), "-m", "img2dataset.main", "--url_list", str(url_list), "--input_format", "csv",
            "--url_col", "url", "--caption_col", "caption", "--output_format", "webdataset",
            "--output_folder", str(out), "--processes_count", str(procs), "--thread_count", str(threads),
            "--image_size", "512", "--resize_mode", "center_crop", "--encode_quality", "95",
            "--number_sample_per_shard", str(shard), "--retries", "0", "--timeout", "20",
            "--distributor", "multiprocessing", "--enable_wandb", "False"]  # fmt: skip
    t0 = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True, env={**ENV, "NO_ALBUMENTATIONS_UPDATE": "1"})
    return time.perf_counter() - t0


def surd_resample_args() -> list[str]:
    """img2dataset shrinks with OpenCV's INTER_AREA: use the same filter in surd when this version has the option."""
    sys.path.insert(0, str(ROOT))
    import dataclasses

    from surd.stages.ingest import Config

    return ["--resample", "area"] if "resample" in {f.name for f in dataclasses.fields(Config)} else []


def run_surd(url_list: Path, out: Path, procs: int, threads: int, shard: int) -> float:
    args = [sys.executable, "-m", "surd", "ingest", "urls", str(url_list), "--out", str(out),
            "--workers", str(procs), "--threads", str(threads), "--size", "512", "--resize-mode", "center_crop",
            "--quality", "95", "--shard-size", str(shard), "--download-retries", "0", "--timeout", "20",
            "--rate-limit", "0", "--allow-private-addresses", *surd_resample_args()]  # fmt: skip
    t0 = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True, cwd=ROOT, env=ENV)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000, help="number of images (>= 1000 for the reported figure)")
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds; the best time of each tool counts")
    ap.add_argument("--quick", action="store_true", help="one round")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "surd_bench_images")
    args = ap.parse_args()
    if not I2D_PYTHON.exists():
        sys.exit(f"img2dataset venv not found at {I2D_PYTHON}: run bash bench/setup_img2dataset.sh first")
    rounds = 1 if args.quick else args.rounds
    compile_bytecode()
    paths = generate(args.cache, args.n)
    mb = sum(p.stat().st_size for p in paths) / 1e6
    print(f"surd resize filter: {' '.join(surd_resample_args()) or 'lanczos (no resample option in this version)'}")
    print(f"{len(paths)} JPEGs, {mb:.0f} MB ({mb / len(paths) * 1000:.0f} KB mean), "
          f"{args.processes} processes x {args.threads} threads, {os.cpu_count()} CPUs")
    shard = max(1, -(-len(paths) // (args.processes * 2)))  # two shards per process for both tools
    server, port = serve(args.cache)
    best = {"img2dataset": float("inf"), "surd": float("inf")}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            url_list = Path(tmp) / "urls.csv"
            with open(url_list, "w", newline="") as f:
                writer = csv.writer(f)
                writer.writerow(["url", "caption"])
                writer.writerows([f"http://127.0.0.1:{port}/{p.name}", f"a test image {p.stem}"] for p in paths)
            for r in range(rounds):
                for name, fn in (("img2dataset", run_img2dataset), ("surd", run_surd)):
                    out = Path(tmp) / f"{name}_{r}"
                    cpu0 = _children_cpu()
                    seconds = fn(url_list, out, args.processes, args.threads, shard)
                    cpu = _children_cpu() - cpu0  # the tool's processes only (the server is still running)
                    n_ok = count_tar_images(out)
                    assert n_ok == len(paths), f"{name} wrote {n_ok} of {len(paths)} images"
                    best[name] = min(best[name], seconds)
                    print(f"round {r + 1} {name:<12} {seconds:6.1f} s  {n_ok / seconds:7.1f} images/s  "
                          f"CPU {cpu / n_ok * 1000:5.1f} ms/image  load average {os.getloadavg()[0]:.2f}")
    finally:
        server.terminate()
    rates = {k: len(paths) / v for k, v in best.items()}
    print(json.dumps({k: round(v, 1) for k, v in rates.items()}))
    print(f"ratio surd/img2dataset images/s: {rates['surd'] / rates['img2dataset']:.2f}")


if __name__ == "__main__":
    main()
