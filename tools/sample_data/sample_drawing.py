"""Small deterministic drawing helpers (gradients, value noise, glows, ridges) for the bundled sample's scenes."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

RGB = tuple[int, int, int]
Stops = Sequence[tuple[float, RGB]]


def gradient(size: tuple[int, int], stops: Stops, horizontal: bool = False) -> Image.Image:
    """An RGB image whose colour runs through `stops` ((position 0..1, colour) pairs) top to bottom."""
    w, h = size
    n = w if horizontal else h
    t = np.linspace(0.0, 1.0, n)
    pos = [s[0] for s in stops]
    cols = np.stack([np.interp(t, pos, [s[1][c] for s in stops]) for c in range(3)], axis=-1)
    arr = np.broadcast_to(cols[None, :, :], (h, w, 3)) if horizontal else np.broadcast_to(cols[:, None, :], (h, w, 3))
    return Image.fromarray(np.ascontiguousarray(arr).astype(np.uint8), "RGB")


def value_noise(rng: np.random.Generator, size: tuple[int, int], cells: int, octaves: int = 3) -> np.ndarray:
    """Smooth fractal noise in [0, 1], shape (h, w): random grids upsampled bicubically and summed."""
    w, h = size
    total = np.zeros((h, w), np.float32)
    weight = 0.0
    for o in range(octaves):
        c = cells * 2**o
        grid = rng.random((max(2, c * h // max(w, h) + 1), c + 1)).astype(np.float32)
        layer = np.asarray(Image.fromarray(grid, "F").resize((w, h), Image.Resampling.BICUBIC))
        amp = 0.5**o
        total += amp * layer
        weight += amp
    total /= weight
    return np.clip((total - total.min()) / max(1e-6, float(total.max() - total.min())), 0.0, 1.0)


def texture(
    img: Image.Image, rng: np.random.Generator, strength: float = 10.0, grain: float = 3.0, cells: int = 6
) -> Image.Image:
    """Modulate an image with smooth noise plus a little film grain, so flat fills look less synthetic."""
    arr = np.asarray(img, np.float32)
    smooth = (value_noise(rng, img.size, cells) - 0.5) * 2.0 * strength
    fine = rng.normal(0.0, grain, arr.shape[:2]).astype(np.float32)
    arr = arr + (smooth + fine)[..., None]
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def glow(img: Image.Image, center: tuple[float, float], radius: float, color: RGB, blur: float) -> Image.Image:
    """Add (light) a blurred disc of `color` onto `img`: suns, moons, lamps, lava."""
    layer = Image.new("RGB", img.size, (0, 0, 0))
    x, y = center
    ImageDraw.Draw(layer).ellipse([x - radius, y - radius, x + radius, y + radius], fill=color)
    return ImageChops.add(img, layer.filter(ImageFilter.GaussianBlur(blur)))


def overlay(img: Image.Image, draw_fn: Callable[[ImageDraw.ImageDraw], None], blur: float = 0.0) -> Image.Image:
    """Draw translucent shapes (RGBA fills) on a separate layer, optionally blurred, and composite them."""
    layer = Image.new("RGBA", img.size, (0, 0, 0, 0))
    draw_fn(ImageDraw.Draw(layer))
    if blur:
        layer = _blur_premultiplied(layer, blur)
    return Image.alpha_composite(img.convert("RGBA"), layer).convert("RGB")


def _blur_premultiplied(layer: Image.Image, radius: float) -> Image.Image:
    # Blurring straight RGBA mixes the transparent black into the edges (grey halos); blur colour*alpha instead.
    arr = np.asarray(layer, np.float32)
    alpha = arr[..., 3:4] / 255.0
    soft = ImageFilter.GaussianBlur(radius)
    prem = np.asarray(Image.fromarray((arr[..., :3] * alpha).astype(np.uint8)).filter(soft), np.float32)
    a = np.asarray(layer.getchannel("A").filter(soft), np.float32)[..., None]
    rgb = np.clip(prem / np.maximum(a / 255.0, 1e-3), 0, 255)
    return Image.fromarray(np.concatenate([rgb, a], axis=-1).astype(np.uint8), "RGBA")


def ridge(rng: np.random.Generator, width: int, base: float, amp: float, rough: float = 0.55) -> list[float]:
    """A mountain skyline by midpoint displacement: one y per x column, around `base`, spread `amp`."""
    n = 1
    while n < width:
        n *= 2
    ys = np.zeros(n + 1)
    ys[0], ys[n] = rng.uniform(-amp, amp, 2)
    step, scale = n, amp
    while step > 1:
        half = step // 2
        for i in range(half, n, step):
            ys[i] = (ys[i - half] + ys[i + half]) / 2 + rng.uniform(-scale, scale)
        step, scale = half, scale * rough
    return [base + v for v in ys[:width]]


def ridge_polygon(ys: Sequence[float], height: int) -> list[tuple[float, float]]:
    """Close a skyline into a polygon down to the bottom edge."""
    pts = [(float(x), float(y)) for x, y in enumerate(ys)]
    return pts + [(len(ys) - 1, height), (0, height)]


def stars(draw: ImageDraw.ImageDraw, rng: np.random.Generator, box: tuple[int, int, int, int], n: int) -> None:
    """Scatter `n` stars of varied size and brightness inside box (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = box
    for _ in range(n):
        x, y = rng.uniform(x0, x1), rng.uniform(y0, y1)
        b = int(rng.uniform(120, 255))
        r = rng.choice([0.6, 0.8, 1.0, 1.6], p=[0.5, 0.3, 0.15, 0.05])
        draw.ellipse([x - r, y - r, x + r, y + r], fill=(b, b, min(255, b + 20)))


def reflect(img: Image.Image, horizon: int, darken: float, rng: np.random.Generator, ripple: int = 3) -> Image.Image:
    """Mirror what is above `horizon` into the water below it, darkened and broken into horizontal ripples."""
    w, h = img.size
    depth = h - horizon
    src = np.asarray(img.crop((0, max(0, horizon - depth), w, horizon)).transpose(Image.Transpose.FLIP_TOP_BOTTOM))
    src = src[:depth]
    out = np.array(img)
    for row in range(src.shape[0]):
        shift = int(rng.integers(-ripple, ripple + 1)) if row % 2 else 0
        # Shift by edge-padding rather than np.roll, so ripples never wrap colour across the frame.
        line = np.pad(src[row], ((abs(shift), abs(shift)), (0, 0)), mode="edge")
        out[horizon + row] = line[abs(shift) - shift : abs(shift) - shift + w] * darken
    return Image.fromarray(out.astype(np.uint8), "RGB")


def pine(draw: ImageDraw.ImageDraw, x: float, base: float, height: float, color: RGB, tiers: int = 4) -> None:
    """A stylised conifer: a trunk and `tiers` stacked triangles."""
    width = height * 0.42
    draw.rectangle([x - width * 0.06, base - height * 0.12, x + width * 0.06, base], fill=(70, 45, 30))
    for i in range(tiers):
        top = base - height + i * height * 0.2
        bottom = top + height * 0.42
        half = width * (0.35 + 0.17 * i) / 1.2
        draw.polygon([(x, top), (x - half, bottom), (x + half, bottom)], fill=color)
