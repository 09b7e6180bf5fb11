"""Resize throughput: surd's resizer vs a plain PIL open→resize→save loop, same images, same machine, same run.

    python bench/resize.py            # 200 images
    python bench/resize.py --quick    # 60 images

Prints images/s for both; the last line is the ratio surd / plain PIL.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from surd.images import ImageConfig, process_image  # noqa: E402


def make_images(n: int, seed: int = 0) -> list[bytes]:
    """JPEGs of 1024–2048 px with photo-like structure (smooth gradients, shapes, sensor noise)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        w, h = int(rng.integers(1024, 2049)), int(rng.integers(1024, 2049))
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        c = rng.uniform(0, 255, 3)
        arr = np.stack([c[0] * x / w, c[1] * y / h, c[2] * (1 - x / w)], -1)
        arr += 40 * np.sin(x / rng.uniform(20, 80))[..., None]
        arr += rng.normal(0, 6, (h, w, 1))
        buf = io.BytesIO()
        Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def plain_pil(data: bytes, size: int, quality: int) -> bytes:
    img = Image.open(io.BytesIO(data)).convert("RGB")
    img = ImageOps.fit(img, (size, size), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def timed(fn, images: list[bytes]) -> float:
    t0 = time.perf_counter()
    for data in images:
        fn(data)
    return len(images) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--quick", action="store_true", help="60 images")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds; the best of each is kept")
    args = ap.parse_args()
    n = 60 if args.quick else args.n
    images = make_images(n)
    mb = sum(map(len, images)) / 1e6
    print(f"{n} JPEGs, 1024-2048 px, {mb:.1f} MB; target 512x512 center crop, quality 95, one process")
    cfg = ImageConfig(size=512, resize_mode="center_crop", quality=95)
    surd_rates, pil_rates = [], []
    for _ in range(args.rounds):  # interleaved so machine noise hits both alike
        surd_rates.append(timed(lambda d: process_image(d, cfg), images))
        pil_rates.append(timed(lambda d: plain_pil(d, 512, 95), images))
    s, p = max(surd_rates), max(pil_rates)
    print(f"surd resizer: {s:.1f} images/s")
    print(f"plain PIL:    {p:.1f} images/s")
    print(f"ratio surd/plain_pil: {s / p:.2f}x")


if __name__ == "__main__":
    main()
