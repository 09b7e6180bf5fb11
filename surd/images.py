"""Image bytes → validated, RGB, resized, re-encoded bytes (the resizer every source shares).

Rejections raise `ImageRejected(reason, detail)`; reasons: empty_file, not_an_image, decode_error, too_small,
decompression_bomb. Odd modes (CMYK, palette, alpha, 16-bit, float) are converted to RGB and recorded.
An image that is already what would be written (RGB, the output size and format, no metadata) is kept byte for
byte: re-encoding it would only add a second generation of JPEG loss.
"""

from __future__ import annotations

import io
import math
import os
import threading
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from surd.options import config, option

RESIZE_MODES = ("center_crop", "keep_ratio", "pad", "none")
# Downscaling filters. "area" is a box filter (OpenCV's INTER_AREA, img2dataset's choice): faster, slightly
# softer than Lanczos. Upscaling always uses Lanczos (a box filter would upscale blockily).
RESAMPLE = {"lanczos": Image.Resampling.LANCZOS, "bicubic": Image.Resampling.BICUBIC, "area": Image.Resampling.BOX}
FORMATS = {"jpg": "JPEG", "webp": "WEBP", "png": "PNG"}
# Header fields Pillow reports for plain encoder output; anything else (EXIF, ICC, XMP, comments, text chunks) is
# metadata a re-encode strips, so an image carrying it is never passed through as is.
PLAIN_INFO = {"jfif", "jfif_version", "jfif_unit", "jfif_density", "dpi", "progressive", "progression", "adobe",
              "adobe_transform"}
# Pillow's own bomb threshold (~89.5 Mpx). Larger images are refused before any pixel is decoded.
DEFAULT_MAX_PIXELS = 89_478_485


class ImageRejected(Exception):
    """An image that cannot be used; `reason` is the snake_case label counted in the stats."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@config
class ImageConfig:
    """How ingest resizes and encodes images (img2dataset's modes; the paper's is center_crop at 512)."""

    size: int = option(512, help='Output side in pixels.', ge=16, le=8192)
    resize_mode: str = option("center_crop", choices=RESIZE_MODES,
                             help="How images become size x size: center_crop (the paper's), keep_ratio, pad, or none.")
    quality: int = option(95, help='JPEG/WebP quality.', ge=1, le=100)
    image_format: str = option("jpg", help='Output image format.', choices=tuple(FORMATS))
    min_size: int = option(64, help='Reject images whose shorter side is below this.', ge=0)
    max_pixels: int = option(DEFAULT_MAX_PIXELS, help='Reject images with more pixels (decompression bombs).', ge=1)
    resample: str = option("lanczos", choices=tuple(RESAMPLE),
                          help="Resize filter: lanczos (sharpest), bicubic, or area (img2dataset's INTER_AREA).")

    def __post_init__(self) -> None:
        if self.resample not in RESAMPLE:
            raise ValueError(f"resample must be one of {', '.join(RESAMPLE)}, got {self.resample!r}")
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(f"resize_mode must be one of {', '.join(RESIZE_MODES)}, got {self.resize_mode!r}")
        if self.image_format not in FORMATS:
            raise ValueError(f"image_format must be one of {', '.join(FORMATS)}, got {self.image_format!r}")
        if not 16 <= self.size <= 8192:
            raise ValueError(f"size must be between 16 and 8192 pixels, got {self.size}")
        if not 1 <= self.quality <= 100:
            raise ValueError(f"quality must be between 1 and 100, got {self.quality}")
        if self.min_size < 0 or self.max_pixels < 1:
            raise ValueError("min_size must be >= 0 and max_pixels >= 1")


@dataclass(frozen=True)
class ProcessedImage:
    data: bytes
    ext: str  # member name in the shard: jpg / webp / png
    width: int  # original size, before resizing
    height: int
    source_format: str
    converted_from: str | None  # original mode when it was not RGB
    original_bytes: bool = False  # True when the input bytes were kept as they were (nothing to change)


def _open(data: bytes, cfg: ImageConfig) -> Image.Image:
    if not data:
        raise ImageRejected("empty_file", "0 bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as e:
        raise ImageRejected("not_an_image", f"{len(data)} bytes, not a known image format") from e
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageRejected("decompression_bomb", str(e)) from e
    except Exception as e:  # malformed headers raise all sorts of errors inside Pillow's plugins
        raise ImageRejected("decode_error", f"{type(e).__name__}: {e}") from e
    w, h = img.size
    if w * h > cfg.max_pixels:
        raise ImageRejected("decompression_bomb", f"{w}x{h} = {w * h} pixels > max_pixels {cfg.max_pixels}")
    if min(w, h) < cfg.min_size:
        raise ImageRejected("too_small", f"{w}x{h} < min_size {cfg.min_size}")
    return img


def _scale(w: int, h: int, cfg: ImageConfig) -> float:
    if cfg.resize_mode == "pad":
        return cfg.size / max(w, h)
    if cfg.resize_mode == "none":
        return 1.0
    return cfg.size / min(w, h)


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any mode → RGB. Alpha is composited on white; 16-bit and float are rescaled, not clipped."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        if mode == "F":
            lo, hi = float(arr.min(initial=0)), float(arr.max(initial=1))
            arr = (arr - lo) / max(hi - lo, 1e-12) * 255.0
        else:
            arr = arr / hi * 255.0
        return Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8)).convert("RGB")
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def _resize(img: Image.Image, cfg: ImageConfig) -> Image.Image:
    w, h = img.size
    s = _scale(w, h, cfg)
    if cfg.resize_mode == "none":
        return img
    fil = RESAMPLE[cfg.resample] if s < 1 else Image.Resampling.LANCZOS
    if cfg.resize_mode == "center_crop":
        side = min(w, h)
        box = ((w - side) / 2, (h - side) / 2, (w + side) / 2, (h + side) / 2)
        return img.resize((cfg.size, cfg.size), fil, box=box, reducing_gap=3.0)
    new = (max(1, round(w * s)), max(1, round(h * s)))
    out = img.resize(new, fil, reducing_gap=3.0)
    if cfg.resize_mode == "keep_ratio":
        return out
    canvas = Image.new("RGB", (cfg.size, cfg.size), (0, 0, 0))
    canvas.paste(out, ((cfg.size - new[0]) // 2, (cfg.size - new[1]) // 2))
    return canvas


def process_image(data: bytes, cfg: ImageConfig) -> ProcessedImage:
    """Validate, decode (reduced on decode for large JPEGs), convert to RGB, resize and encode one image."""
    img = _open(data, cfg)
    w, h, fmt, mode = img.width, img.height, img.format or "", img.mode
    plain = set(img.info) <= PLAIN_INFO and getattr(img, "n_frames", 1) == 1  # no metadata, one frame
    try:
        s = _scale(w, h, cfg)
        if fmt == "JPEG" and s <= 0.5:
            # Let libjpeg decode at 1/2, 1/4 or 1/8 scale: far less work, still ≥ the target resolution.
            img.draft(None, (math.ceil(w * s), math.ceil(h * s)))
        img.load()
        img = ImageOps.exif_transpose(img)
        rgb = _to_rgb(img)
        out = _resize(rgb, cfg)
    except ImageRejected:
        raise
    except Image.DecompressionBombError as e:
        raise ImageRejected("decompression_bomb", str(e)) from e
    except Exception as e:  # truncated streams, bad huffman tables, broken PNG chunks, ...
        raise ImageRejected("decode_error", f"{type(e).__name__}: {e}") from e
    same = plain and mode == "RGB" and fmt == FORMATS[cfg.image_format] and out.size == (w, h)
    return ProcessedImage(data=data if same else encode(out, cfg), ext=cfg.image_format, width=w, height=h,
                          source_format=fmt, converted_from=None if mode == "RGB" else mode, original_bytes=same)


_SCRATCH = threading.local()  # per thread: an in-memory file the encoders write to


def _scratch() -> io.FileIO | None:
    """This thread's in-memory file with a descriptor (Linux memfd), or None where there is none.

    Pillow encodes into a file descriptor with the GIL released, but into a BytesIO holding it: with a descriptor,
    the encodes of a decode pool's threads run in parallel instead of one at a time (the same bytes either way).
    """
    f = getattr(_SCRATCH, "file", None)
    if f is None and hasattr(os, "memfd_create"):
        f = _SCRATCH.file = io.FileIO(os.memfd_create("surd-encode", os.MFD_CLOEXEC), "w+b")
    return f


def encode(img: Image.Image, cfg: ImageConfig) -> bytes:
    """The image in the configured format and quality."""
    fmt = FORMATS[cfg.image_format]
    params = {"optimize": False} if fmt == "PNG" else {"quality": cfg.quality}
    f = _scratch()
    if f is None:
        buf = io.BytesIO()
        img.save(buf, fmt, **params)
        return buf.getvalue()
    f.seek(0)
    f.truncate()
    img.save(f, fmt, **params)
    return os.pread(f.fileno(), f.tell(), 0)
