"""Scenes drawn in code with PIL for the bundled sample: one function per scene, (rng, size) -> RGB image."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter
from sample_drawing import glow, gradient, overlay, pine, reflect, ridge, ridge_polygon, stars, texture, value_noise

Size = tuple[int, int]


def sunset_lake(rng: np.random.Generator, size: Size) -> Image.Image:
    """Sunset over layered mountains, mirrored in a calm lake."""
    w, h = size
    horizon = int(h * 0.62)
    img = gradient(size, [(0, (48, 28, 92)), (0.35, (196, 72, 88)), (0.55, (250, 150, 70)), (0.62, (255, 205, 120))])
    sx, sy, sr = w * 0.62, h * 0.3, h * 0.06
    img = glow(img, (sx, sy), sr * 1.3, (255, 170, 90), h * 0.06)
    d = ImageDraw.Draw(img)
    d.ellipse([sx - sr, sy - sr, sx + sr, sy + sr], fill=(255, 236, 180))
    for i, col in enumerate([(120, 70, 110), (80, 50, 90), (45, 32, 60)]):
        ys = ridge(rng, w, horizon - h * (0.25 - 0.08 * i), h * (0.12 - 0.02 * i))
        d.polygon(ridge_polygon([min(y, horizon) for y in ys], horizon), fill=col)
    img = texture(img, rng, strength=5, grain=2)
    return reflect(img, horizon, 0.75, rng, ripple=4)


def red_house(rng: np.random.Generator, size: Size) -> Image.Image:
    """A red farmhouse with a white door, a chimney, and a big leafy tree on a green hill."""
    w, h = size
    img = gradient(size, [(0, (90, 150, 230)), (0.6, (180, 215, 245)), (1, (180, 215, 245))])
    img = overlay(
        img,
        lambda d: [
            d.ellipse([x, y, x + w * 0.18, y + h * 0.07], fill=(255, 255, 255, 200))
            for x, y in [(w * 0.1, h * 0.1), (w * 0.16, h * 0.07), (w * 0.62, h * 0.15)]
        ],
        blur=6,
    )
    d = ImageDraw.Draw(img)
    d.ellipse([-w * 0.3, h * 0.62, w * 1.3, h * 1.6], fill=(80, 160, 60))
    hx, hy, hw, hh = w * 0.22, h * 0.45, w * 0.34, h * 0.28
    d.rectangle([hx + hw * 0.7, hy - hh * 0.55, hx + hw * 0.8, hy - hh * 0.1], fill=(110, 60, 50))
    d.rectangle([hx, hy, hx + hw, hy + hh], fill=(190, 35, 35))
    d.polygon([(hx - hw * 0.08, hy), (hx + hw / 2, hy - hh * 0.7), (hx + hw * 1.08, hy)], fill=(70, 50, 45))
    d.rectangle([hx + hw * 0.42, hy + hh * 0.45, hx + hw * 0.58, hy + hh], fill=(245, 245, 240))
    for fx in (0.12, 0.7):
        d.rectangle([hx + hw * fx, hy + hh * 0.25, hx + hw * (fx + 0.18), hy + hh * 0.55], fill=(250, 235, 160))
        d.line(
            [hx + hw * (fx + 0.09), hy + hh * 0.25, hx + hw * (fx + 0.09), hy + hh * 0.55],
            fill=(255, 255, 255),
            width=3,
        )
    tx, ty = w * 0.75, h * 0.72
    d.rectangle([tx - w * 0.02, ty - h * 0.25, tx + w * 0.02, ty], fill=(100, 65, 35))
    for _ in range(40):
        cx, cy, r = (
            tx + rng.normal(0, w * 0.06),
            ty - h * 0.36 + rng.normal(0, h * 0.07),
            rng.uniform(h * 0.05, h * 0.09),
        )
        g = int(rng.uniform(90, 150))
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(30, g, 40))
    return texture(img, rng, strength=6, grain=2.5)


def lighthouse(rng: np.random.Generator, size: Size) -> Image.Image:
    """A striped lighthouse on a cliff at night, its beam cutting through a starry sky above the sea."""
    w, h = size
    img = gradient(size, [(0, (5, 8, 30)), (0.6, (20, 35, 80)), (0.7, (25, 45, 90)), (1, (8, 15, 40))])
    d = ImageDraw.Draw(img)
    stars(d, rng, (0, 0, w, int(h * 0.6)), 260)
    img = glow(img, (w * 0.82, h * 0.12), w * 0.05, (200, 200, 170), w * 0.03)
    ImageDraw.Draw(img).ellipse([w * 0.78, h * 0.09, w * 0.86, h * 0.09 + w * 0.08], fill=(240, 240, 215))
    lx, top = w * 0.36, h * 0.3
    img = overlay(
        img,
        lambda d: d.polygon(
            [(lx, top + h * 0.03), (w * 1.1, top - h * 0.12), (w * 1.1, top + h * 0.14)], fill=(255, 240, 170, 150)
        ),
        blur=8,
    )
    img = glow(img, (lx, top + h * 0.03), w * 0.04, (255, 230, 150), w * 0.05)
    d = ImageDraw.Draw(img)
    d.polygon(
        [(0, h * 0.55), (w * 0.2, h * 0.52), (w * 0.55, h * 0.58), (w * 0.65, h * 0.75), (0, h * 0.8)],
        fill=(30, 30, 35),
    )
    base, tw = h * 0.55, w * 0.12
    for i in range(5):
        y0, y1 = top + (base - top) * i / 5, top + (base - top) * (i + 1) / 5
        k0, k1 = 0.7 + 0.3 * i / 5, 0.7 + 0.3 * (i + 1) / 5
        col = (200, 30, 40) if i % 2 == 0 else (235, 235, 235)
        d.polygon(
            [(lx - tw / 2 * k0, y0), (lx + tw / 2 * k0, y0), (lx + tw / 2 * k1, y1), (lx - tw / 2 * k1, y1)], fill=col
        )
    d.rectangle([lx - tw * 0.3, top - h * 0.01, lx + tw * 0.3, top + h * 0.05], fill=(255, 235, 160))
    d.polygon([(lx - tw * 0.42, top), (lx, top - h * 0.06), (lx + tw * 0.42, top)], fill=(40, 40, 45))
    for y in np.arange(h * 0.72, h, h * 0.018):
        x0 = rng.uniform(0, w)
        d.line([x0, y, x0 + rng.uniform(20, 80), y], fill=(90, 110, 160), width=2)
    return texture(img, rng, strength=4, grain=3)


def sailboat(rng: np.random.Generator, size: Size) -> Image.Image:
    """A white sailboat on a deep blue sea under a bright sky with seagulls."""
    w, h = size
    horizon = int(h * 0.55)
    img = gradient(size, [(0, (70, 140, 220)), (0.55, (200, 225, 245)), (0.551, (20, 80, 140)), (1, (10, 40, 90))])
    img = glow(img, (w * 0.2, h * 0.18), h * 0.06, (255, 250, 220), h * 0.06)
    d = ImageDraw.Draw(img)
    for y in np.arange(horizon + 4, h, 7):
        for _ in range(int(w / 60)):
            x0 = rng.uniform(0, w)
            d.arc([x0, y, x0 + rng.uniform(15, 40), y + 6], 200, 340, fill=(150, 190, 230), width=2)
    bx, by = w * 0.55, h * 0.72
    d.polygon(
        [(bx - w * 0.13, by), (bx + w * 0.13, by), (bx + w * 0.1, by + h * 0.06), (bx - w * 0.1, by + h * 0.06)],
        fill=(120, 60, 40),
    )
    d.line([bx, by, bx, by - h * 0.5], fill=(80, 60, 40), width=4)
    d.polygon([(bx + 4, by - h * 0.48), (bx + 4, by - h * 0.03), (bx + w * 0.12, by - h * 0.03)], fill=(250, 250, 245))
    d.polygon([(bx - 4, by - h * 0.4), (bx - 4, by - h * 0.04), (bx - w * 0.09, by - h * 0.04)], fill=(235, 235, 230))
    for _ in range(5):
        gx, gy, s = rng.uniform(w * 0.3, w * 0.9), rng.uniform(h * 0.08, h * 0.3), rng.uniform(8, 16)
        d.line([gx - s, gy - s * 0.4, gx, gy, gx + s, gy - s * 0.4], fill=(40, 40, 50), width=2)
    return texture(img, rng, strength=5, grain=2.5)


def snowman(rng: np.random.Generator, size: Size) -> Image.Image:
    """A snowman with a top hat, carrot nose and red scarf in a snowy field with falling snow and pines."""
    w, h = size
    img = gradient(size, [(0, (150, 175, 210)), (0.6, (215, 225, 240)), (0.61, (240, 245, 252)), (1, (225, 232, 245))])
    d = ImageDraw.Draw(img)
    for x in (0.08, 0.2, 0.85, 0.95):
        pine(d, w * x, h * 0.63, h * rng.uniform(0.3, 0.42), (30, 70, 50))
    cx = w * 0.5
    for cy, r in [(0.78, 0.16), (0.55, 0.115), (0.37, 0.08)]:
        d.ellipse(
            [cx - w * r, h * cy - w * r, cx + w * r, h * cy + w * r], fill=(250, 250, 255), outline=(190, 200, 220)
        )
    d.rectangle([cx - w * 0.07, h * 0.285, cx + w * 0.07, h * 0.3], fill=(20, 20, 20))
    d.rectangle([cx - w * 0.045, h * 0.17, cx + w * 0.045, h * 0.29], fill=(20, 20, 20))
    for ex in (-0.03, 0.03):
        d.ellipse([cx + w * ex - 5, h * 0.35 - 5, cx + w * ex + 5, h * 0.35 + 5], fill=(15, 15, 15))
    d.polygon([(cx, h * 0.37), (cx, h * 0.39), (cx + w * 0.08, h * 0.385)], fill=(240, 120, 20))
    d.rectangle([cx - w * 0.085, h * 0.43, cx + w * 0.085, h * 0.46], fill=(200, 30, 40))
    d.rectangle([cx + w * 0.03, h * 0.44, cx + w * 0.065, h * 0.55], fill=(200, 30, 40))
    for s in (-1, 1):
        d.line([cx + s * w * 0.1, h * 0.52, cx + s * w * 0.25, h * 0.42], fill=(90, 60, 30), width=5)
    for cy in (0.5, 0.56, 0.62):
        d.ellipse([cx - 5, h * cy - 5, cx + 5, h * cy + 5], fill=(15, 15, 15))
    img = overlay(
        img,
        lambda dd: [
            dd.ellipse([x - r, y - r, x + r, y + r], fill=(255, 255, 255, 220))
            for x, y, r in zip(rng.uniform(0, w, 200), rng.uniform(0, h, 200), rng.uniform(1, 3.5, 200))
        ],
    )
    return texture(img, rng, strength=4, grain=2)


def city_skyline(rng: np.random.Generator, size: Size) -> Image.Image:
    """A city skyline at dusk with lit windows, reflected in a river: a wide panorama."""
    w, h = size
    horizon = int(h * 0.72)
    img = gradient(size, [(0, (25, 20, 70)), (0.45, (150, 60, 120)), (0.72, (250, 140, 80))])
    d = ImageDraw.Draw(img)
    stars(d, rng, (0, 0, w, int(h * 0.3)), 80)
    x = 0.0
    while x < w:
        bw, bh = rng.uniform(w * 0.025, w * 0.06), rng.uniform(h * 0.15, h * 0.6)
        shade = int(rng.uniform(20, 45))
        d.rectangle([x, horizon - bh, x + bw, horizon], fill=(shade, shade, shade + 15))
        if rng.random() < 0.2:
            d.line([x + bw / 2, horizon - bh, x + bw / 2, horizon - bh - h * 0.06], fill=(60, 60, 70), width=2)
        for wy in np.arange(horizon - bh + 6, horizon - 4, 9):
            for wx in np.arange(x + 4, x + bw - 4, 7):
                if rng.random() < 0.45:
                    d.rectangle([wx, wy, wx + 3, wy + 4], fill=(255, int(rng.uniform(190, 235)), 120))
        x += bw + rng.uniform(0, w * 0.008)
    img = texture(img, rng, strength=3, grain=2)
    return reflect(img, horizon, 0.6, rng, ripple=6)


def fruit_bowl(rng: np.random.Generator, size: Size) -> Image.Image:
    """A still life: a bowl of apples, oranges, grapes and a banana on a wooden table."""
    w, h = size
    img = gradient(size, [(0, (120, 95, 75)), (0.6, (170, 140, 110)), (0.61, (110, 70, 40)), (1, (80, 50, 28))])
    wood = np.asarray(img, np.float32).copy()
    grain = np.sin(np.linspace(0, 90, h)[:, None] + 6 * np.sin(np.linspace(0, 7, w))[None, :]) * 10
    wood[int(h * 0.61) :] += grain[int(h * 0.61) :, :, None]
    img = Image.fromarray(np.clip(wood, 0, 255).astype(np.uint8))
    img = overlay(img, lambda d: d.ellipse([w * 0.2, h * 0.78, w * 0.85, h * 0.92], fill=(0, 0, 0, 90)), blur=12)
    d = ImageDraw.Draw(img)
    cx, cy = w * 0.5, h * 0.62
    fruits = [
        ((200, 30, 35), 0.38, 0.55, 0.07),
        ((240, 140, 20), 0.5, 0.5, 0.075),
        ((190, 25, 40), 0.6, 0.56, 0.068),
        ((120, 180, 40), 0.45, 0.6, 0.065),
        ((245, 150, 25), 0.64, 0.5, 0.06),
    ]
    for gx, gy in zip(rng.normal(0.32, 0.025, 14), rng.normal(0.6, 0.02, 14)):
        d.ellipse([w * gx - 12, h * gy - 12, w * gx + 12, h * gy + 12], fill=(90, 30, 100), outline=(60, 20, 70))
    d.chord([w * 0.42, h * 0.36, w * 0.78, h * 0.56], 160, 350, fill=(245, 215, 60))
    for col, fx, fy, r in fruits:
        d.ellipse([w * fx - w * r, h * fy - w * r, w * fx + w * r, h * fy + w * r], fill=col)
        d.ellipse(
            [w * fx - w * r * 0.5, h * fy - w * r * 0.7, w * fx - w * r * 0.1, h * fy - w * r * 0.3],
            fill=tuple(min(255, c + 60) for c in col),
        )
    d.chord([cx - w * 0.27, cy - h * 0.12, cx + w * 0.27, cy + h * 0.22], 0, 180, fill=(225, 225, 235))
    d.ellipse([cx - w * 0.27, cy - h * 0.015, cx + w * 0.27, cy + h * 0.035], fill=(200, 200, 215))
    return texture(img, rng, strength=6, grain=3)


def hot_air_balloon(rng: np.random.Generator, size: Size) -> Image.Image:
    """A striped hot air balloon drifting over green hills in the morning sky."""
    w, h = size
    img = gradient(size, [(0, (120, 180, 240)), (0.8, (250, 220, 190)), (1, (250, 220, 190))])
    img = overlay(
        img,
        lambda d: [
            d.ellipse([x, y, x + w * 0.4, y + h * 0.05], fill=(255, 255, 255, 180))
            for x, y in zip(rng.uniform(-w * 0.2, w, 6), rng.uniform(0, h * 0.6, 6))
        ],
        blur=8,
    )
    d = ImageDraw.Draw(img)
    for i, col in enumerate([(120, 160, 110), (70, 130, 70)]):
        d.polygon(ridge_polygon(ridge(rng, w, h * (0.82 + 0.07 * i), h * 0.04, 0.45), h), fill=col)
    cx, cy, rx, ry = w * 0.5, h * 0.36, w * 0.28, h * 0.2
    colours = [(220, 40, 40), (250, 200, 30), (40, 110, 200), (250, 250, 250)]
    for i in range(8):
        x0, x1 = cx - rx + 2 * rx * i / 8, cx - rx + 2 * rx * (i + 1) / 8
        mask = Image.new("L", size, 0)
        md = ImageDraw.Draw(mask)
        md.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=255)
        md.polygon(
            [
                (cx - rx * 0.55, cy + ry * 0.6),
                (cx + rx * 0.55, cy + ry * 0.6),
                (cx + rx * 0.2, cy + ry * 1.25),
                (cx - rx * 0.2, cy + ry * 1.25),
            ],
            fill=255,
        )
        stripe = Image.new("L", size, 0)
        ImageDraw.Draw(stripe).rectangle([x0, 0, x1, h], fill=255)
        img.paste(colours[i % 4], (0, 0), Image.fromarray(np.minimum(np.asarray(mask), np.asarray(stripe))))
    d = ImageDraw.Draw(img)
    for s in (-1, 1):
        d.line([cx + s * rx * 0.2, cy + ry * 1.25, cx + s * rx * 0.12, cy + ry * 1.45], fill=(60, 40, 30), width=2)
    d.rectangle([cx - rx * 0.13, cy + ry * 1.45, cx + rx * 0.13, cy + ry * 1.62], fill=(130, 85, 40))
    return texture(img, rng, strength=5, grain=2)


def rainbow_hills(rng: np.random.Generator, size: Size) -> Image.Image:
    """A rainbow arching over rolling green hills dotted with wildflowers."""
    w, h = size
    img = gradient(size, [(0, (80, 140, 220)), (0.7, (190, 220, 245)), (1, (190, 220, 245))])
    bands = [
        (230, 50, 50),
        (245, 140, 40),
        (245, 225, 60),
        (70, 180, 70),
        (60, 110, 220),
        (90, 60, 170),
        (140, 70, 180),
    ]
    cx, cy, r0 = w * 0.5, h * 0.95, w * 0.45
    bw = w * 0.018
    img = overlay(
        img,
        lambda d: [
            d.arc(
                [cx - r0 + i * bw, cy - r0 + i * bw, cx + r0 - i * bw, cy + r0 - i * bw],
                180,
                360,
                fill=c + (150,),
                width=int(bw) + 1,
            )
            for i, c in enumerate(bands)
        ],
        blur=3,
    )
    d = ImageDraw.Draw(img)
    for i, col in enumerate([(110, 170, 80), (80, 150, 60), (60, 125, 45)]):
        xs = np.arange(w)
        ys = h * (0.62 + 0.11 * i) + h * 0.05 * np.sin(xs / w * (3 + i) * math.pi + rng.uniform(0, 6))
        d.polygon(ridge_polygon(list(ys), h), fill=col)
    for x, y in zip(rng.uniform(0, w, 260), rng.uniform(h * 0.7, h, 260)):
        col = [(250, 250, 250), (250, 220, 40), (230, 80, 150)][int(rng.integers(0, 3))]
        d.ellipse([x - 2.5, y - 2.5, x + 2.5, y + 2.5], fill=col)
    return texture(img, rng, strength=5, grain=2.5)


def cartoon_rocket(rng: np.random.Generator, size: Size) -> Image.Image:
    """A cartoon rocket blasting off into a starry night, with a bright flame and billowing smoke."""
    w, h = size
    img = gradient(size, [(0, (5, 5, 25)), (0.7, (30, 30, 80)), (1, (70, 60, 100))])
    stars(ImageDraw.Draw(img), rng, (0, 0, w, h), 220)
    cx, top, bottom = w * 0.5, h * 0.12, h * 0.55
    img = glow(img, (cx, bottom + h * 0.1), w * 0.2, (255, 150, 40), w * 0.12)
    d = ImageDraw.Draw(img)
    d.polygon([(cx - w * 0.08, bottom), (cx + w * 0.08, bottom), (cx, bottom + h * 0.25)], fill=(255, 170, 40))
    d.polygon([(cx - w * 0.045, bottom), (cx + w * 0.045, bottom), (cx, bottom + h * 0.14)], fill=(255, 245, 200))
    d.rectangle([cx - w * 0.1, top + h * 0.1, cx + w * 0.1, bottom], fill=(230, 230, 235))
    d.pieslice([cx - w * 0.1, top - h * 0.02, cx + w * 0.1, top + h * 0.22], 180, 360, fill=(210, 40, 40))
    for s in (-1, 1):
        d.polygon(
            [(cx + s * w * 0.1, bottom - h * 0.12), (cx + s * w * 0.2, bottom + h * 0.02), (cx + s * w * 0.1, bottom)],
            fill=(210, 40, 40),
        )
    d.ellipse(
        [cx - w * 0.05, top + h * 0.16, cx + w * 0.05, top + h * 0.16 + w * 0.1],
        fill=(70, 150, 220),
        outline=(120, 120, 130),
        width=4,
    )
    img = overlay(
        img,
        lambda dd: [
            dd.ellipse([x - r, y - r * 0.7, x + r, y + r * 0.7], fill=(200, 195, 205, 210))
            for x, y, r in zip(
                rng.normal(cx, w * 0.22, 40), rng.normal(h * 0.95, h * 0.04, 40), rng.uniform(w * 0.05, w * 0.14, 40)
            )
        ],
        blur=4,
    )
    return texture(img, rng, strength=4, grain=3)


def misty_forest(rng: np.random.Generator, size: Size) -> Image.Image:
    """A misty pine forest in layers fading into fog, with god rays from the top left."""
    w, h = size
    img = gradient(size, [(0, (200, 215, 210)), (1, (150, 170, 160))])
    for layer in range(5):
        fade = 1 - layer / 5
        col = tuple(int(c * (1 - fade) + f * fade) for c, f in zip((20, 45, 30), (185, 200, 195)))
        d = ImageDraw.Draw(img)
        for x in np.sort(rng.uniform(-20, w + 20, 14 + 4 * layer)):
            pine(d, x, h * (0.55 + 0.1 * layer), h * rng.uniform(0.3, 0.45) * (0.6 + 0.25 * layer), col)
        if layer < 4:
            img = overlay(
                img, lambda dd, y=h * (0.5 + 0.1 * layer): dd.rectangle([0, y, w, h], fill=(210, 220, 215, 70)), blur=30
            )
    img = overlay(
        img,
        lambda dd: [
            dd.polygon(
                [(w * a, 0), (w * (a + 0.05), 0), (w * (a + 0.4), h), (w * (a + 0.25), h)], fill=(255, 250, 220, 45)
            )
            for a in (0.05, 0.18, 0.3)
        ],
        blur=18,
    )
    return texture(img, rng, strength=6, grain=3)


def desert_cacti(rng: np.random.Generator, size: Size) -> Image.Image:
    """A desert at noon: sand dunes, saguaro cacti, a distant mesa and a blazing sun."""
    w, h = size
    img = gradient(size, [(0, (60, 130, 210)), (0.55, (230, 215, 190)), (1, (230, 215, 190))])
    img = glow(img, (w * 0.8, h * 0.15), h * 0.06, (255, 250, 220), h * 0.05)
    d = ImageDraw.Draw(img)
    d.polygon([(w * 0.05, h * 0.56), (w * 0.12, h * 0.4), (w * 0.33, h * 0.4), (w * 0.4, h * 0.56)], fill=(170, 90, 60))
    for i, col in enumerate([(225, 180, 120), (210, 160, 100), (195, 140, 85)]):
        xs = np.arange(w)
        ys = h * (0.55 + 0.13 * i) + h * 0.04 * np.sin(xs / w * (2 + i) * math.pi + i)
        d.polygon(ridge_polygon(list(ys), h), fill=col)
    for cx, ch in [(w * 0.22, h * 0.4), (w * 0.7, h * 0.3), (w * 0.86, h * 0.22)]:
        base, tw = h * 0.9 if ch > h * 0.35 else h * 0.8, ch * 0.1
        d.rounded_rectangle([cx - tw, base - ch, cx + tw, base], radius=tw, fill=(40, 120, 60))
        for s, arm_y in [(-1, 0.55), (1, 0.4)]:
            ax = cx + s * tw * 2.6
            d.rounded_rectangle(
                [min(cx, ax), base - ch * arm_y, max(cx, ax), base - ch * arm_y + tw], radius=tw / 2, fill=(40, 120, 60)
            )
            d.rounded_rectangle(
                [ax - tw * 0.7, base - ch * (arm_y + 0.3), ax + tw * 0.7, base - ch * arm_y + tw],
                radius=tw * 0.7,
                fill=(40, 120, 60),
            )
    return texture(img, rng, strength=8, grain=4, cells=10)


def underwater_reef(rng: np.random.Generator, size: Size) -> Image.Image:
    """A coral reef underwater: sun rays from the surface, orange fish, bubbles and corals."""
    w, h = size
    img = gradient(size, [(0, (40, 170, 210)), (1, (5, 40, 90))])
    img = overlay(
        img,
        lambda d: [
            d.polygon(
                [(w * a, 0), (w * (a + 0.06), 0), (w * (a + 0.2), h), (w * (a + 0.08), h)], fill=(220, 255, 255, 50)
            )
            for a in rng.uniform(0, 0.9, 5)
        ],
        blur=14,
    )
    d = ImageDraw.Draw(img)
    d.polygon(ridge_polygon(ridge(rng, w, h * 0.85, h * 0.05), h), fill=(210, 190, 140))
    for x in rng.uniform(0, w, 9):
        col = [(240, 90, 110), (250, 150, 60), (170, 80, 200)][int(rng.integers(0, 3))]
        for _ in range(6):
            ang = rng.uniform(-1.0, 1.0)
            ln = rng.uniform(h * 0.08, h * 0.2)
            d.line([x, h * 0.88, x + math.sin(ang) * ln, h * 0.88 - math.cos(ang) * ln], fill=col, width=7)
    for fx, fy, s in zip(rng.uniform(w * 0.1, w * 0.9, 7), rng.uniform(h * 0.2, h * 0.6, 7), rng.uniform(14, 30, 7)):
        d.ellipse([fx - s, fy - s * 0.55, fx + s, fy + s * 0.55], fill=(250, 130, 20))
        d.polygon([(fx + s * 0.8, fy), (fx + s * 1.6, fy - s * 0.5), (fx + s * 1.6, fy + s * 0.5)], fill=(250, 130, 20))
        d.line([fx - s * 0.2, fy - s * 0.5, fx - s * 0.2, fy + s * 0.5], fill=(255, 255, 255), width=3)
        d.ellipse([fx - s * 0.7, fy - 3, fx - s * 0.7 + 5, fy + 2], fill=(10, 10, 10))
    for x, y, r in zip(rng.uniform(0, w, 40), rng.uniform(0, h * 0.8, 40), rng.uniform(2, 6, 40)):
        d.ellipse([x - r, y - r, x + r, y + r], outline=(220, 250, 255), width=1)
    return texture(img, rng, strength=7, grain=3)


def aurora_cabin(rng: np.random.Generator, size: Size) -> Image.Image:
    """Green aurora borealis over snowy mountains and a small cabin with warm windows."""
    w, h = size
    img = gradient(size, [(0, (5, 10, 30)), (0.7, (15, 30, 60))])
    stars(ImageDraw.Draw(img), rng, (0, 0, w, int(h * 0.7)), 300)
    ribbon = Image.new("RGB", size, (0, 0, 0))
    rd = ImageDraw.Draw(ribbon)
    for k, col in enumerate([(40, 230, 120), (90, 200, 220), (150, 80, 200)]):
        ys = h * (0.25 + 0.08 * k) + h * 0.08 * np.sin(np.arange(w) / w * 3 * math.pi + k)
        for x in range(0, w, 2):
            rd.line([x, ys[x] - h * 0.12, x, ys[x]], fill=tuple(int(c * 0.6) for c in col), width=2)
    img = ImageChops.add(img, ribbon.filter(ImageFilter.GaussianBlur(10)))
    d = ImageDraw.Draw(img)
    d.polygon(ridge_polygon(ridge(rng, w, h * 0.62, h * 0.1), h), fill=(200, 210, 230))
    d.polygon(ridge_polygon(ridge(rng, w, h * 0.8, h * 0.04, 0.4), h), fill=(230, 235, 245))
    cx, cy = w * 0.62, h * 0.82
    d.rectangle([cx - w * 0.05, cy - h * 0.07, cx + w * 0.05, cy], fill=(90, 55, 35))
    d.polygon(
        [(cx - w * 0.065, cy - h * 0.07), (cx, cy - h * 0.13), (cx + w * 0.065, cy - h * 0.07)], fill=(240, 240, 250)
    )
    d.rectangle([cx - w * 0.03, cy - h * 0.05, cx - w * 0.012, cy - h * 0.025], fill=(255, 200, 90))
    d.rectangle([cx + w * 0.012, cy - h * 0.05, cx + w * 0.03, cy - h * 0.025], fill=(255, 200, 90))
    img = glow(img, (cx, cy - h * 0.04), w * 0.03, (120, 80, 20), w * 0.03)
    for x in (0.15, 0.25, 0.8, 0.9):
        pine(ImageDraw.Draw(img), w * x, h * 0.88, h * 0.22, (15, 40, 30))
    return texture(img, rng, strength=3, grain=3)


def castle(rng: np.random.Generator, size: Size) -> Image.Image:
    """A fantasy castle with towers and flags on a hill under a dramatic sky (portrait)."""
    w, h = size
    img = gradient(size, [(0, (40, 50, 90)), (0.5, (220, 140, 90)), (0.7, (250, 200, 140))])
    img = overlay(
        img,
        lambda d: [
            d.ellipse([x, y, x + w * 0.6, y + h * 0.06], fill=(60, 50, 80, 120))
            for x, y in zip(rng.uniform(-w * 0.3, w, 8), rng.uniform(0, h * 0.4, 8))
        ],
        blur=10,
    )
    d = ImageDraw.Draw(img)
    d.polygon(ridge_polygon(ridge(rng, w, h * 0.72, h * 0.04, 0.45), h), fill=(50, 80, 50))
    stone = (120, 115, 125)
    d.rectangle([w * 0.25, h * 0.48, w * 0.75, h * 0.72], fill=stone)
    for tx, tw, th in [(0.22, 0.1, 0.34), (0.78, 0.1, 0.34), (0.5, 0.14, 0.44)]:
        x0, x1, top = w * (tx - tw / 2), w * (tx + tw / 2), h * (0.72 - th)
        d.rectangle([x0, top, x1, h * 0.72], fill=(105, 100, 112))
        d.polygon([(x0 - w * 0.015, top), (w * tx, top - h * 0.1), (x1 + w * 0.015, top)], fill=(60, 50, 110))
        d.line([w * tx, top - h * 0.1, w * tx, top - h * 0.15], fill=(40, 40, 40), width=2)
        d.polygon(
            [(w * tx, top - h * 0.15), (w * tx + w * 0.05, top - h * 0.135), (w * tx, top - h * 0.12)],
            fill=(200, 30, 40),
        )
        d.rectangle([w * tx - 4, top + h * 0.06, w * tx + 4, top + h * 0.09], fill=(255, 210, 110))
    for x in np.arange(w * 0.25, w * 0.75, w * 0.04):
        d.rectangle([x, h * 0.465, x + w * 0.02, h * 0.48], fill=stone)
    d.pieslice([w * 0.45, h * 0.6, w * 0.55, h * 0.74], 180, 360, fill=(40, 30, 25))
    d.rectangle([w * 0.45, h * 0.67, w * 0.55, h * 0.72], fill=(40, 30, 25))
    return texture(img, rng, strength=6, grain=3)


def windmill_tulips(rng: np.random.Generator, size: Size) -> Image.Image:
    """A Dutch windmill behind rows of red, yellow and pink tulips in perspective."""
    w, h = size
    horizon = h * 0.5
    img = gradient(size, [(0, (100, 160, 230)), (0.5, (210, 230, 245)), (0.501, (60, 120, 50)), (1, (40, 100, 35))])
    d = ImageDraw.Draw(img)
    colours = [(220, 30, 50), (250, 210, 40), (240, 110, 170), (250, 250, 250), (240, 120, 30)]
    vx = w * 0.5
    for i in range(-10, 11):
        col = colours[(i + 10) % len(colours)]
        xa, xb = vx + i * w * 0.12, vx + (i + 0.55) * w * 0.12
        d.polygon([(vx + i * 4, horizon), (vx + (i + 0.55) * 4, horizon), (xb, h), (xa, h)], fill=col)
    mx, base = w * 0.7, horizon + 2
    d.polygon(
        [
            (mx - w * 0.05, base),
            (mx - w * 0.03, base - h * 0.3),
            (mx + w * 0.03, base - h * 0.3),
            (mx + w * 0.05, base),
        ],
        fill=(110, 80, 60),
    )
    d.polygon(
        [(mx - w * 0.035, base - h * 0.3), (mx, base - h * 0.37), (mx + w * 0.035, base - h * 0.3)], fill=(60, 45, 40)
    )
    hub = (mx, base - h * 0.3)
    for k in range(4):
        a = math.radians(20 + 90 * k)
        tip = (hub[0] + math.cos(a) * h * 0.26, hub[1] + math.sin(a) * h * 0.26)
        side = (math.cos(a + math.pi / 2) * 12, math.sin(a + math.pi / 2) * 12)
        d.polygon(
            [hub, tip, (tip[0] + side[0], tip[1] + side[1]), (hub[0] + side[0], hub[1] + side[1])],
            fill=(235, 230, 220),
            outline=(80, 70, 60),
        )
    d.ellipse([hub[0] - 6, hub[1] - 6, hub[0] + 6, hub[1] + 6], fill=(50, 40, 35))
    return texture(img, rng, strength=6, grain=3)


def ringed_planet(rng: np.random.Generator, size: Size) -> Image.Image:
    """A ringed gas giant in deep space with a colourful nebula and stars."""
    w, h = size
    neb = np.zeros((h, w, 3), np.float32)
    for col, cells in [((120, 40, 160), 3), ((30, 80, 170), 4), ((200, 60, 110), 5)]:
        n = np.clip(rng.random() * 0.2 + np.power(value_noise(rng, size, cells, octaves=4), 3) * 1.4, 0, 1)
        neb += n[..., None] * np.array(col, np.float32) * 0.6
    img = Image.fromarray(np.clip(neb, 0, 255).astype(np.uint8))
    stars(ImageDraw.Draw(img), rng, (0, 0, w, h), 400)
    cx, cy, r = w * 0.45, h * 0.5, w * 0.22
    ring_box = [cx - r * 2.0, cy - r * 0.5, cx + r * 2.0, cy + r * 0.5]
    d = ImageDraw.Draw(img)
    d.arc(ring_box, 180, 360, fill=(210, 190, 150), width=int(r * 0.18))
    ball = Image.new("RGB", size)
    bands = gradient(
        size,
        [
            (0, (230, 190, 130)),
            (0.45, (200, 140, 80)),
            (0.5, (240, 210, 160)),
            (0.55, (180, 120, 70)),
            (1, (150, 100, 60)),
        ],
    )
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
    ball.paste(bands)
    shade = gradient(size, [(0, (255, 255, 255)), (1, (60, 60, 60))], horizontal=True)
    img.paste(ImageChops.multiply(ball, shade), (0, 0), mask)
    ImageDraw.Draw(img).arc(ring_box, 0, 180, fill=(225, 205, 165), width=int(r * 0.18))
    return texture(img, rng, strength=3, grain=3)


def volcano(rng: np.random.Generator, size: Size) -> Image.Image:
    """An erupting volcano at night: glowing lava flows, fountains and an ash plume under a red sky."""
    w, h = size
    img = gradient(size, [(0, (20, 10, 15)), (0.6, (120, 30, 20)), (1, (40, 15, 10))])
    img = overlay(
        img,
        lambda d: [
            d.ellipse([x - r, y - r, x + r, y + r], fill=(60, 50, 55, 200))
            for x, y, r in zip(
                rng.normal(w * 0.5, w * 0.08, 30), rng.uniform(0, h * 0.35, 30), rng.uniform(w * 0.05, w * 0.12, 30)
            )
        ],
        blur=8,
    )
    img = glow(img, (w * 0.5, h * 0.38), w * 0.12, (255, 90, 20), w * 0.08)
    d = ImageDraw.Draw(img)
    d.polygon([(0, h), (w * 0.42, h * 0.38), (w * 0.58, h * 0.38), (w, h)], fill=(35, 25, 25))
    for _ in range(7):
        x, y = w * rng.uniform(0.45, 0.55), h * 0.4
        pts = [(x, y)]
        while y < h:
            x += rng.normal(0, w * 0.015) + (x - w * 0.5) * 0.05
            y += h * 0.04
            pts.append((x, y))
        d.line(pts, fill=(255, int(rng.uniform(80, 160)), 20), width=int(rng.uniform(3, 7)))
    for _ in range(60):
        a, ln = rng.uniform(-1.2, 1.2), rng.uniform(h * 0.05, h * 0.2)
        x0, y0 = w * 0.5 + rng.normal(0, w * 0.02), h * 0.38
        d.line([x0, y0, x0 + math.sin(a) * ln, y0 - math.cos(a) * ln], fill=(255, 200, 60), width=2)
    return texture(img, rng, strength=5, grain=3)


def synthwave(rng: np.random.Generator, size: Size) -> Image.Image:
    """Retrowave: a striped neon sun over a glowing magenta grid and purple mountains."""
    w, h = size
    horizon = int(h * 0.6)
    img = gradient(size, [(0, (15, 5, 40)), (0.6, (120, 20, 110)), (0.601, (10, 0, 25)), (1, (25, 0, 45))])
    stars(ImageDraw.Draw(img), rng, (0, 0, w, int(h * 0.4)), 120)
    sun = gradient(size, [(0.1, (255, 230, 80)), (0.55, (255, 60, 140))])
    mask = Image.new("L", size, 0)
    md = ImageDraw.Draw(mask)
    r = h * 0.3
    md.ellipse([w * 0.5 - r, horizon - r * 1.3, w * 0.5 + r, horizon + r * 0.7], fill=255)
    for k in range(6):
        y = horizon - r * 0.2 - k * r * 0.14
        md.rectangle([0, y, w, y + 3 + k * 0.8], fill=0)
    img = glow(img, (w * 0.5, horizon - r * 0.3), r, (120, 20, 80), r * 0.3)
    img.paste(sun, (0, 0), mask)
    d = ImageDraw.Draw(img)
    d.polygon(
        ridge_polygon([min(y, horizon) for y in ridge(rng, w, horizon - h * 0.06, h * 0.08)], horizon),
        fill=(60, 10, 90),
    )
    grid = Image.new("RGB", size, (0, 0, 0))
    gd = ImageDraw.Draw(grid)
    for i in range(-20, 21):
        gd.line([w * 0.5 + i * 10, horizon, w * 0.5 + i * w * 0.12, h], fill=(255, 40, 200), width=2)
    for k in range(1, 14):
        y = horizon + (h - horizon) * (k / 13) ** 2
        gd.line([0, y, w, y], fill=(255, 40, 200), width=2)
    img = ImageChops.add(img, ImageChops.add(grid, grid.filter(ImageFilter.GaussianBlur(4))))
    return texture(img, rng, strength=3, grain=2)


def tropical_beach(rng: np.random.Generator, size: Size) -> Image.Image:
    """A tropical beach: a leaning palm tree, turquoise water, white surf and golden sand."""
    w, h = size
    img = gradient(
        size,
        [
            (0, (60, 150, 230)),
            (0.5, (170, 220, 250)),
            (0.501, (40, 190, 200)),
            (0.68, (90, 215, 210)),
            (0.681, (240, 220, 170)),
            (1, (225, 200, 145)),
        ],
    )
    img = glow(img, (w * 0.15, h * 0.15), h * 0.06, (255, 250, 225), h * 0.06)
    d = ImageDraw.Draw(img)
    for x in np.arange(0, w, 8):
        y = h * 0.68 + 5 * math.sin(x / 25)
        d.ellipse([x - 6, y - 3, x + 6, y + 3], fill=(250, 250, 250))
    pts = [(w * 0.72 - (t**1.6) * w * 0.12, h * 0.95 - t * h * 0.65) for t in np.linspace(0, 1, 20)]
    for i in range(len(pts) - 1):
        d.line([pts[i], pts[i + 1]], fill=(120, 85, 50), width=int(22 - i * 0.6))
    top = pts[-1]
    for k in range(9):
        a = math.radians(-170 + k * 42 + rng.uniform(-8, 8))
        ln = h * rng.uniform(0.18, 0.26)
        frond = [
            (top[0] + math.cos(a) * ln * t, top[1] + math.sin(a) * ln * t + (t**2) * ln * 0.45)
            for t in np.linspace(0, 1, 12)
        ]
        d.line(frond, fill=(40, 130, 50), width=9)
        for fx, fy in frond[2::2]:
            d.line([fx, fy, fx + rng.normal(0, 10), fy + 18], fill=(50, 150, 60), width=3)
    for cx in (-10, 8):
        d.ellipse([top[0] + cx - 9, top[1] + 2, top[0] + cx + 9, top[1] + 20], fill=(90, 60, 30))
    return texture(img, rng, strength=6, grain=3)


def sunflowers(rng: np.random.Generator, size: Size) -> Image.Image:
    """A still life of sunflowers in a blue ceramic vase against a warm wall (portrait)."""
    w, h = size
    img = gradient(size, [(0, (210, 170, 110)), (0.75, (190, 140, 90)), (0.751, (110, 70, 45)), (1, (90, 55, 35))])
    d = ImageDraw.Draw(img)
    vx, vy = w * 0.5, h * 0.62
    heads = [(0.3, 0.3, 0.09), (0.55, 0.2, 0.1), (0.72, 0.36, 0.085), (0.45, 0.42, 0.075)]
    for hx, hy, _ in heads:
        d.line([vx, vy, w * hx, h * hy], fill=(60, 110, 40), width=6)
        d.ellipse(
            [
                w * (hx + vx / w) / 2 - 20,
                h * (hy + vy / h) / 2 - 8,
                w * (hx + vx / w) / 2 + 20,
                h * (hy + vy / h) / 2 + 8,
            ],
            fill=(70, 130, 45),
        )
    for hx, hy, r in heads:
        cx, cy, rr = w * hx, h * hy, w * r
        for k in range(22):
            a = 2 * math.pi * k / 22 + rng.uniform(-0.05, 0.05)
            px, py = cx + math.cos(a) * rr * 0.95, cy + math.sin(a) * rr * 0.95
            d.polygon(
                [
                    (cx + math.cos(a - 0.18) * rr * 0.5, cy + math.sin(a - 0.18) * rr * 0.5),
                    (px, py),
                    (cx + math.cos(a + 0.18) * rr * 0.5, cy + math.sin(a + 0.18) * rr * 0.5),
                ],
                fill=(250, int(rng.uniform(180, 215)), 30),
            )
        d.ellipse([cx - rr * 0.45, cy - rr * 0.45, cx + rr * 0.45, cy + rr * 0.45], fill=(90, 55, 20))
        for _ in range(60):
            sx, sy = cx + rng.normal(0, rr * 0.15), cy + rng.normal(0, rr * 0.15)
            d.point([sx, sy], fill=(50, 30, 10))
    d.polygon(
        [
            (vx - w * 0.08, vy),
            (vx + w * 0.08, vy),
            (vx + w * 0.14, vy + h * 0.12),
            (vx + w * 0.1, h * 0.84),
            (vx - w * 0.1, h * 0.84),
            (vx - w * 0.14, vy + h * 0.12),
        ],
        fill=(40, 90, 170),
    )
    d.line([vx - w * 0.13, vy + h * 0.1, vx + w * 0.13, vy + h * 0.1], fill=(240, 240, 230), width=5)
    return texture(img, rng, strength=7, grain=3)


def cherry_torii(rng: np.random.Generator, size: Size) -> Image.Image:
    """A red torii gate under cherry blossoms with a snow-capped mountain behind (portrait)."""
    w, h = size
    img = gradient(size, [(0, (150, 190, 235)), (0.65, (245, 220, 225)), (0.651, (120, 150, 120)), (1, (90, 120, 90))])
    d = ImageDraw.Draw(img)
    d.polygon([(w * 0.0, h * 0.65), (w * 0.5, h * 0.3), (w * 1.0, h * 0.65)], fill=(110, 120, 160))
    d.polygon(
        [
            (w * 0.38, h * 0.385),
            (w * 0.5, h * 0.3),
            (w * 0.62, h * 0.385),
            (w * 0.56, h * 0.4),
            (w * 0.5, h * 0.37),
            (w * 0.44, h * 0.4),
        ],
        fill=(250, 250, 255),
    )
    red = (200, 40, 30)
    for px in (0.32, 0.68):
        d.rectangle([w * px - w * 0.025, h * 0.45, w * px + w * 0.025, h * 0.9], fill=red)
    d.polygon([(w * 0.15, h * 0.43), (w * 0.85, h * 0.43), (w * 0.88, h * 0.4), (w * 0.12, h * 0.4)], fill=(30, 25, 25))
    d.rectangle([w * 0.17, h * 0.43, w * 0.83, h * 0.46], fill=red)
    d.rectangle([w * 0.22, h * 0.51, w * 0.78, h * 0.535], fill=red)
    img = overlay(
        img,
        lambda dd: [
            dd.ellipse(
                [x - r, y - r, x + r, y + r], fill=(255, int(rng.uniform(170, 215)), int(rng.uniform(200, 230)), 230)
            )
            for x, y, r in zip(
                np.concatenate([rng.normal(0, w * 0.15, 120), rng.normal(w, w * 0.15, 120)]),
                rng.normal(h * 0.12, h * 0.09, 240),
                rng.uniform(6, 16, 240),
            )
        ],
    )
    d = ImageDraw.Draw(img)
    for x, y in zip(rng.uniform(0, w, 90), rng.uniform(0, h, 90)):
        d.ellipse([x - 3, y - 2, x + 3, y + 2], fill=(250, 190, 210))
    return texture(img, rng, strength=5, grain=3)


def cozy_cabin_night(rng: np.random.Generator, size: Size) -> Image.Image:
    """A log cabin in snowy woods at night, warm light in the windows and smoke from the chimney."""
    w, h = size
    img = gradient(size, [(0, (10, 15, 40)), (0.6, (40, 50, 90)), (0.601, (170, 180, 210)), (1, (120, 130, 170))])
    stars(ImageDraw.Draw(img), rng, (0, 0, w, int(h * 0.5)), 150)
    d = ImageDraw.Draw(img)
    for x in np.sort(rng.uniform(0, w, 12)):
        pine(d, x, h * 0.62, h * rng.uniform(0.25, 0.4), (15, 35, 30))
    cx, cy = w * 0.45, h * 0.8
    for k in range(7):
        y = cy - h * 0.2 + k * h * 0.2 / 7
        d.rounded_rectangle(
            [cx - w * 0.18, y, cx + w * 0.18, y + h * 0.2 / 7],
            radius=5,
            fill=(110 - k * 3, 70, 40),
            outline=(70, 45, 25),
        )
    d.polygon([(cx - w * 0.22, cy - h * 0.2), (cx, cy - h * 0.36), (cx + w * 0.22, cy - h * 0.2)], fill=(235, 240, 250))
    d.rectangle([cx + w * 0.1, cy - h * 0.36, cx + w * 0.14, cy - h * 0.26], fill=(90, 80, 80))
    for wx in (-0.12, 0.06):
        img = glow(img, (cx + w * (wx + 0.03), cy - h * 0.1), w * 0.04, (140, 90, 20), w * 0.04)
        ImageDraw.Draw(img).rectangle(
            [cx + w * wx, cy - h * 0.14, cx + w * (wx + 0.06), cy - h * 0.06], fill=(255, 200, 100)
        )
    img = overlay(
        img,
        lambda dd: [
            dd.ellipse(
                [
                    cx + w * 0.12 + k * 8 - 14 - k * 2,
                    cy - h * 0.4 - k * 22 - 12 - k * 2,
                    cx + w * 0.12 + k * 8 + 14 + k * 2,
                    cy - h * 0.4 - k * 22 + 12 + k * 2,
                ],
                fill=(200, 200, 210, 120 - k * 12),
            )
            for k in range(8)
        ],
        blur=5,
    )
    img = overlay(
        img,
        lambda dd: [
            dd.ellipse([x - 1.5, y - 1.5, x + 1.5, y + 1.5], fill=(255, 255, 255, 200))
            for x, y in zip(rng.uniform(0, w, 150), rng.uniform(0, h, 150))
        ],
    )
    return texture(img, rng, strength=4, grain=3)


def cupcakes(rng: np.random.Generator, size: Size) -> Image.Image:
    """Three frosted cupcakes with sprinkles and a cherry on a pastel table (food photography style)."""
    w, h = size
    img = gradient(
        size, [(0, (250, 225, 230)), (0.65, (245, 210, 220)), (0.651, (200, 230, 235)), (1, (170, 210, 220))]
    )
    img = overlay(img, lambda d: d.ellipse([w * 0.05, h * 0.72, w * 0.95, h * 0.85], fill=(0, 0, 0, 60)), blur=14)
    d = ImageDraw.Draw(img)
    frost = [(250, 180, 200), (250, 245, 230), (170, 120, 80)]
    for i, cx in enumerate((0.22, 0.5, 0.78)):
        x, base, r = w * cx, h * 0.78, w * 0.11
        d.polygon(
            [(x - r, base - h * 0.2), (x + r, base - h * 0.2), (x + r * 0.75, base), (x - r * 0.75, base)],
            fill=(120, 180, 230) if i != 1 else (240, 200, 80),
        )
        for k in range(-4, 5):
            d.line([x + k * r * 0.22, base - h * 0.2, x + k * r * 0.17, base], fill=(90, 140, 200), width=2)
        for layer in range(3):
            lr = r * (1.1 - 0.25 * layer)
            y = base - h * 0.22 - layer * h * 0.07
            d.ellipse(
                [x - lr, y - h * 0.06, x + lr, y + h * 0.05], fill=frost[i], outline=tuple(c - 25 for c in frost[i])
            )
        for _ in range(25):
            sx, sy = x + rng.uniform(-r * 0.8, r * 0.8), base - h * rng.uniform(0.22, 0.38)
            col = [(230, 40, 60), (40, 160, 230), (250, 210, 40), (90, 200, 90)][int(rng.integers(0, 4))]
            a = rng.uniform(0, math.pi)
            d.line([sx, sy, sx + 6 * math.cos(a), sy + 6 * math.sin(a)], fill=col, width=3)
        d.ellipse([x - 12, base - h * 0.44 - 12, x + 12, base - h * 0.44 + 12], fill=(200, 20, 40))
    return texture(img, rng, strength=4, grain=2.5)


SCENES = {
    "sunset_lake": sunset_lake,
    "red_house": red_house,
    "lighthouse": lighthouse,
    "sailboat": sailboat,
    "snowman": snowman,
    "city_skyline": city_skyline,
    "fruit_bowl": fruit_bowl,
    "hot_air_balloon": hot_air_balloon,
    "rainbow_hills": rainbow_hills,
    "cartoon_rocket": cartoon_rocket,
    "misty_forest": misty_forest,
    "desert_cacti": desert_cacti,
    "underwater_reef": underwater_reef,
    "aurora_cabin": aurora_cabin,
    "castle": castle,
    "windmill_tulips": windmill_tulips,
    "ringed_planet": ringed_planet,
    "volcano": volcano,
    "synthwave": synthwave,
    "tropical_beach": tropical_beach,
    "sunflowers": sunflowers,
    "cherry_torii": cherry_torii,
    "cozy_cabin_night": cozy_cabin_night,
    "cupcakes": cupcakes,
}
