"""Benchmark `surd review export` on 5,000 samples, and the review page's time to first page in headless Chromium.

Baseline (same run, same data): a plain loop that reads the shards and decodes + re-encodes each image as a
thumbnail with PIL, writing nothing. The export also copies images, writes thumbnails and data chunks, so a ratio
near 1 means the export costs little beyond the unavoidable thumbnail work. The last line is that ratio.

    python bench/review_export.py            # 5,000 samples at 512x512 (the dataset's real size)
    python bench/review_export.py --quick    # 5,000 samples at 128x128
    --workdir DIR puts the temporary files on another disk (file creation speed dominates the export's overhead).
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from surd.review.exporter import ExportConfig, export_review  # noqa: E402
from surd.sample import make_key  # noqa: E402
from surd.shards import iter_dataset, shard_name, write_shard  # noqa: E402


def make_dataset(path: Path, n: int, size: int, per_shard: int = 1000) -> None:
    """n samples with photo-like JPEGs (smooth gradients + mild noise) and CLIP scores, 1,000 per shard."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size]
    for s in range(0, n, per_shard):
        items = []
        for i in range(s, min(n, s + per_shard)):
            base = np.stack([x * 255 / size, y * 255 / size, np.full((size, size), i % 256)], -1)
            arr = np.clip(base + rng.normal(0, 6, (size, size, 3)), 0, 255).astype(np.uint8)
            buf = io.BytesIO()
            Image.fromarray(arr).save(buf, "JPEG", quality=90)
            key = make_key("bench", str(i))
            meta = {"key": key, "simple_prompt": f"a photo of a cat number {i}",
                    "complex_prompt": f"cat {i}, highly detailed, octane render, 8k, artstation, by greg rutkowski",
                    "stages": {"clip_filter": {"simple_score": 0.6, "complex_score": 0.4}}}
            items.append({"__key__": key, "jpg": buf.getvalue(), "json": meta})
        write_shard(path, shard_name(s // per_shard), items)


def baseline(dataset: Path, thumb: int) -> float:
    t0 = time.perf_counter()
    for sample in iter_dataset(dataset):
        with Image.open(io.BytesIO(sample["jpg"])) as im:
            im.thumbnail((thumb, thumb))
            im.convert("RGB").save(io.BytesIO(), "JPEG", quality=82)
    return time.perf_counter() - t0


def first_page_ms(site: Path) -> float | None:
    """Milliseconds from navigation to the first rendered page in headless Chromium; None without chromium."""
    if not Path("/usr/bin/chromium").exists():
        return None
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    with tempfile.TemporaryDirectory() as profile:
        for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     f"--user-data-dir={profile}"):
            opts.add_argument(flag)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
        try:
            driver.get((site / "index.html").as_uri())
            deadline = time.monotonic() + 30
            while not driver.execute_script("return window.SURD_FIRST_PAGE_MS") and time.monotonic() < deadline:
                time.sleep(0.02)
            return driver.execute_script("return window.SURD_FIRST_PAGE_MS")
        finally:
            driver.quit()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="128x128 images instead of 512x512")
    ap.add_argument("-n", type=int, default=5000, help="samples")
    ap.add_argument("--workdir", default=None, help="where the temporary dataset and site go (default: system temp)")
    args = ap.parse_args()
    size = 128 if args.quick else 512
    if args.workdir:
        Path(args.workdir).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="surd-bench-review-", dir=args.workdir))
    try:
        make_dataset(work / "data", args.n, size)
        base_s = baseline(work / "data", 256)
        t0 = time.perf_counter()
        export_review(work / "data", work / "site", ExportConfig(thumb_size=256), progress=False)
        export_s = time.perf_counter() - t0
        page = first_page_ms(work / "site")
        print(f"samples: {args.n} at {size}x{size}")
        print(f"baseline (read shards + PIL thumbnail decode/encode, nothing written): {base_s:.2f}s")
        print(f"surd review export (site, thumbnails 256): {export_s:.2f}s ({args.n / export_s:.0f} samples/s)")
        print("browser first page: " + (f"{page:.0f} ms after navigation" if page else "skipped (no /usr/bin/chromium)"))
        print(f"ratio export/baseline: {export_s / base_s:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
