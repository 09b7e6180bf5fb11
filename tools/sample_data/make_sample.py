"""Regenerate the bundled sample data in manifests/sample/: images/*.jpg and manifest.jsonl (32 prompt/image pairs).

Run from anywhere with the project venv:  python tools/sample_data/make_sample.py
Real photos come from scikit-image's bundled data files (install scikit-image only to run this script; surd itself
does not need it). Every other image is drawn in code by sample_scenes.py with fixed seeds. See PROVENANCE.md.
"""

from __future__ import annotations

import io
import json
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from sample_scenes import SCENES  # noqa: E402  (sibling module, importable once HERE is on the path)

SAMPLE_DIR = HERE.parent.parent / "manifests" / "sample"  # the data this program writes
IMAGES_DIR = SAMPLE_DIR / "images"
MANIFEST = SAMPLE_DIR / "manifest.jsonl"
JPEG_QUALITY = 85
MAX_TOTAL_BYTES = 3 * 1024 * 1024
DRAWN_LICENSE = "CC0-1.0"
# The provenance text keeps the generator's first path (manifests/sample/), where the shipped rows were made: changing
# it would change every sample shard's bytes. The program now lives in tools/sample_data/.
DRAWN_PROVENANCE = "drawn in code by manifests/sample/make_sample.py (sample_scenes.py:{fn}, seed {seed})"

NEG_PEOPLE = (
    "lowres, bad anatomy, bad hands, extra fingers, deformed, blurry, watermark, signature, text, jpeg artifacts"
)
NEG_SCENE = "lowres, blurry, watermark, text, signature, jpeg artifacts, oversaturated, ugly, duplicate, cropped"


@dataclass(frozen=True)
class Photo:
    """A real photo shipped inside scikit-image's wheel, with the origin and license its docstring records."""

    source_id: str
    file: str
    license: str
    origin: str
    prompt: str
    negative: str = ""
    max_side: int = 0  # downscale the longest side to this many pixels (0: keep) to stay inside the size budget


@dataclass(frozen=True)
class Drawn:
    """A scene drawn by scenes.SCENES[source_id] at `size` (width, height)."""

    source_id: str
    size: tuple[int, int]
    prompt: str
    negative: str = ""


PHOTOS = [
    Photo(
        "astronaut",
        "astronaut.png",
        "public-domain",
        "NASA Great Images (Eileen Collins); public domain",
        "portrait photo of a smiling female astronaut in an orange space suit, white helmet beside her, american flag "
        "and a space shuttle model in the background, nasa, 35mm photograph, sharp focus, studio lighting, "
        "highly detailed, 8k, award winning photography",
        NEG_PEOPLE,
    ),
    Photo(
        "chelsea",
        "chelsea.png",
        "CC0-1.0",
        "photograph of Chelsea the cat by Stefan van der Walt; CC0",
        "close up of a cute tabby cat face, big green eyes, pink nose, whiskers, bokeh, soft natural light, "
        "national geographic, 85mm lens, f/1.8, hyperrealistic, trending on 500px",
    ),
    Photo(
        "coffee",
        "coffee.png",
        "CC0-1.0",
        "photograph by Rachel Michetti, courtesy of Pikolo Espresso Bar; CC0",
        "a red cup of espresso with crema on a red saucer with a silver spoon, wooden table, cozy cafe, top view, "
        "shallow depth of field, food photography, highly detailed, 4k, instagram, masterpiece",
        NEG_SCENE,
    ),
    Photo(
        "rocket_launch",
        "rocket.jpg",
        "public-domain",
        "SpaceX photo of the Falcon 9 / DSCOVR launch (SpaceX Photos on Flickr); released into the public domain",
        "a falcon 9 rocket standing on the launch pad at dusk between lightning towers, glowing floodlights, lens "
        "flares, deep blue sky, cape canaveral, epic, cinematic, ultra wide angle, 8k uhd, dslr, photorealistic",
    ),
    Photo(
        "hubble_deep_field",
        "hubble_deep_field.jpg",
        "public-domain",
        "NASA/HubbleSite, Hubble eXtreme Deep Field (2012); NASA media, public domain",
        "deep space, thousands of distant galaxies, spiral galaxies, nebula, cosmic, hubble telescope image, "
        "astrophotography, james webb, ultra detailed, 8k, dark background, stunning, wallpaper",
    ),
    Photo(
        "camera_man",
        "camera.png",
        "CC0-1.0",
        "photograph by Lav Varshney; CC0",
        "black and white photograph of a photographer standing behind a vintage camera on a tripod, overcoat, "
        "buildings in the distance, film grain, monochrome, street photography, leica, henri cartier-bresson style",
        NEG_PEOPLE,
    ),
    Photo(
        "retina",
        "retina.jpg",
        "CC0-1.0",
        "Wikimedia Commons, Fundus_photograph_of_normal_left_eye.jpg (Mikael Haggstrom); CC0 1.0",
        "macro photograph of the inside of a human eye, glowing orange retina, red blood vessels branching, dark "
        "vignette, scientific illustration, medical imaging, intricate, sharp focus, 8k",
        "",
        max_side=900,
    ),
    Photo(
        "brick_wall",
        "brick.png",
        "CC0-1.0",
        "CC0Textures Bricks25 (perspective-warped, grayscale by scikit-image); CC0",
        "an old brick wall in perspective, weathered bricks, mortar lines, grayscale, texture, photorealistic, "
        "highly detailed, octane render, pbr material, seamless, 4k",
    ),
]

LONG_SUNSET = (
    "a breathtaking sunset over majestic purple mountains reflected in a perfectly calm alpine lake, layers of "
    "purple and violet ridges fading into the distance, the sun glowing on the horizon, warm orange and pink sky, "
    "golden hour, volumetric lighting, god rays, atmospheric perspective, matte painting, by albert bierstadt and "
    "thomas kinkade and greg rutkowski, trending on artstation, highly detailed, sharp focus, 8k, unreal engine 5, "
    "cinematic composition, masterpiece, best quality"
)
LONG_LIGHTHOUSE = (
    "a red and white striped lighthouse standing on a dark rocky cliff at night, a bright beam of light sweeping "
    "across the sky, full moon, thousands of stars, milky way, dark blue ocean with small waves below, lonely, "
    "peaceful, moody atmosphere, volumetric lighting, digital painting, concept art, by greg rutkowski and "
    "studio ghibli and makoto shinkai, trending on artstation, highly detailed, 8k, masterpiece, best quality, "
    "ultra realistic, octane render"
)
LONG_CASTLE = (
    "an epic fantasy castle with three tall towers and red flags on a green hill, sunset sky with dramatic clouds, "
    "warm light in the windows, stone walls with battlements, a great arched gate, medieval kingdom, magical "
    "atmosphere, by thomas kinkade, by jordan grimmer, by greg rutkowski, dnd, lord of the rings, fantasy art, "
    "matte painting, trending on artstation, cgsociety, 4k, 8k, highly detailed, intricate, sharp focus, "
    "masterpiece, best quality, award winning"
)

DRAWN = [
    Drawn("sunset_lake", (1024, 768), LONG_SUNSET, NEG_SCENE),
    Drawn(
        "red_house",
        (800, 600),
        "a cute red farmhouse with a white door and a chimney next to a big green tree, "
        "green hill, blue sky with fluffy clouds, children's book illustration, flat colors, storybook, whimsical, "
        "simple shapes, by beatrix potter, cute, 4k",
    ),
    Drawn("lighthouse", (600, 800), LONG_LIGHTHOUSE, NEG_SCENE),
    Drawn(
        "sailboat",
        (960, 540),
        "a small white sailboat on the deep blue sea, seagulls flying, bright sun, calm "
        "waves, summer, minimalism, vector art, clean, digital illustration, behance, dribbble, 4k wallpaper",
    ),
    Drawn(
        "snowman",
        (720, 720),
        "a happy snowman with a black top hat, carrot nose and red scarf in a snowy field, "
        "pine trees, falling snow, christmas card, winter wonderland, cozy, cute, illustration, highly detailed, "
        "trending on artstation",
        "lowres, blurry, watermark, text, scary, creepy",
    ),
    Drawn(
        "city_skyline",
        (1280, 512),
        "panoramic view of a city skyline at dusk, skyscrapers with glowing windows "
        "reflected in a river, purple and orange sky, first stars, ultra wide, cinematic, cityscape, synthwave "
        "colors, by liam wong, 8k, hdr, highly detailed",
        NEG_SCENE,
    ),
    Drawn(
        "fruit_bowl",
        (800, 600),
        "still life of a white porcelain bowl of red apples, oranges, a banana and purple "
        "grapes on a wooden table, oil painting, by paul cezanne, impressionism, soft light, canvas texture, "
        "masterpiece, museum quality",
    ),
    Drawn(
        "hot_air_balloon",
        (600, 800),
        "a colorful striped hot air balloon floating over green rolling hills, "
        "morning sky, soft clouds, red yellow blue stripes, wicker basket, whimsical, gouache painting, pastel "
        "colors, dreamy, studio ghibli, high quality",
    ),
    Drawn(
        "rainbow_hills",
        (1024, 576),
        "a vivid rainbow arching over green rolling hills with wildflowers, blue sky, "
        "spring, idyllic countryside, bright colors, happy, digital painting, windows xp wallpaper, 4k, "
        "highly detailed",
    ),
    Drawn(
        "cartoon_rocket",
        (480, 800),
        "a cartoon rocket ship blasting off into a starry night sky, red nose cone, "
        "round blue window, huge orange flame, clouds of smoke, pixar style, 3d render, cute, vibrant colors, "
        "octane render, cgsociety",
        "lowres, blurry, watermark, realistic, photo",
    ),
    Drawn(
        "misty_forest",
        (1000, 700),
        "a misty pine forest at dawn, layers of trees fading into thick fog, god rays "
        "through the trees, mysterious, atmospheric, muted green, nature photography, fantasy landscape, "
        "by ivan shishkin, hyperdetailed, 8k",
        NEG_SCENE,
    ),
    Drawn(
        "desert_cacti",
        (1024, 640),
        "a hot desert landscape with tall saguaro cacti and sand dunes, a red mesa in "
        "the distance, blazing sun, clear blue sky, arizona, wild west, western movie, by moebius, bold colors, "
        "concept art, highly detailed",
    ),
    Drawn(
        "underwater_reef",
        (900, 600),
        "underwater coral reef with orange clownfish swimming, colorful corals, "
        "bubbles, sun rays from the surface, turquoise water, marine life, national geographic, vibrant, "
        "underwater photography, 8k, highly detailed",
        NEG_SCENE,
    ),
    Drawn(
        "aurora_cabin",
        (1280, 720),
        "green and purple aurora borealis dancing over snowy mountains, a small wooden "
        "cabin with warm glowing windows, pine trees, starry night, norway, iceland, long exposure, "
        "breathtaking, 8k wallpaper, trending on artstation",
    ),
    Drawn("castle", (768, 1024), LONG_CASTLE, NEG_SCENE),
    Drawn(
        "windmill_tulips",
        (900, 600),
        "a traditional dutch windmill behind endless rows of red, yellow and pink "
        "tulips, netherlands, spring, blue sky, leading lines, vibrant colors, landscape photography, sharp focus, "
        "4k",
    ),
    Drawn(
        "ringed_planet",
        (800, 800),
        "a giant ringed gas planet like saturn floating in deep space, colorful purple "
        "and blue nebula, thousands of stars, sci-fi, space art, cosmic, by chesley bonestell, octane render, "
        "8k, highly detailed",
        "lowres, blurry, watermark, text",
    ),
    Drawn(
        "volcano",
        (640, 480),
        "an erupting volcano at night, rivers of glowing lava flowing down the slopes, "
        "fountains of sparks, ash cloud, red sky, apocalyptic, dramatic, epic scale, concept art, by greg "
        "rutkowski, artstation, 4k",
        NEG_SCENE,
    ),
    Drawn(
        "synthwave",
        (1024, 576),
        "retrowave sunset, striped neon sun over a glowing magenta grid, purple "
        "mountains, starry sky, 80s aesthetic, outrun, synthwave, vaporwave, neon lights, digital art, "
        "album cover, trending on artstation",
    ),
    Drawn(
        "tropical_beach",
        (1000, 600),
        "a tropical beach with a leaning coconut palm tree, turquoise water, white "
        "sand, gentle surf, bright sun, paradise, maldives, summer vacation, travel poster, vibrant colors, "
        "highly detailed, 4k",
    ),
    Drawn(
        "sunflowers",
        (600, 750),
        "a bouquet of sunflowers in a blue ceramic vase against a warm ochre wall, "
        "still life, oil painting, by vincent van gogh, thick brush strokes, post-impressionism, masterpiece",
        "lowres, blurry, watermark, signature, frame",
    ),
    Drawn(
        "cherry_torii",
        (720, 960),
        "a red japanese torii gate under blooming cherry blossoms, mount fuji with snow "
        "in the background, pink petals falling, spring, serene, ukiyo-e, by hokusai, by makoto shinkai, anime "
        "background, highly detailed",
        NEG_SCENE,
    ),
    Drawn(
        "cozy_cabin_night",
        (640, 480),
        "a cozy log cabin in the snowy woods at night, warm light glowing from the "
        "windows, smoke rising from the chimney, snowfall, pine trees, stars, hygge, christmas, by thomas kinkade, "
        "digital painting, highly detailed",
    ),
    Drawn(
        "cupcakes",
        (768, 512),
        "three frosted cupcakes with colorful sprinkles and a cherry on top, pink and "
        "chocolate frosting, pastel background, food photography, studio lighting, bokeh, delicious, commercial "
        "photo, 8k",
        "lowres, blurry, watermark, text, ugly, messy",
    ),
]


def seed_of(name: str) -> int:
    """A fixed per-scene seed derived from the name, so adding a scene never reshuffles the others."""
    return zlib.crc32(name.encode())


def encode_jpeg(img: Image.Image) -> bytes:
    """Baseline JPEG at JPEG_QUALITY: grayscale stays single-channel, everything else RGB."""
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return buf.getvalue()


def skimage_data_dir() -> Path:
    """The folder of data files inside the installed scikit-image wheel (no network: only bundled files)."""
    try:
        import skimage
    except ImportError as exc:
        raise SystemExit("make_sample.py needs scikit-image for its bundled photos: pip install scikit-image") from exc
    return Path(skimage.__file__).parent / "data"


def render_photo(p: Photo, data_dir: Path) -> tuple[bytes, str]:
    """JPEG bytes and provenance string for one bundled scikit-image photo."""
    path = data_dir / p.file
    if not path.exists():
        raise SystemExit(f"{path} is not in the installed scikit-image; pick a file its wheel bundles")
    import skimage

    with Image.open(path) as im:
        img = im.convert("L" if im.mode in ("L", "I;16", "1") else "RGB")
    note = ""
    if p.max_side and max(img.size) > p.max_side:
        scale = p.max_side / max(img.size)
        img = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.LANCZOS)
        note = f", downscaled to {img.width}x{img.height}"
    prov = f"scikit-image {skimage.__version__} data/{p.file} ({p.origin}){note}, re-encoded as JPEG q{JPEG_QUALITY}"
    return encode_jpeg(img), prov


def render_drawn(d: Drawn) -> tuple[bytes, str]:
    """JPEG bytes and provenance string for one scene drawn with its fixed seed."""
    seed = seed_of(d.source_id)
    img = SCENES[d.source_id](np.random.default_rng(seed), d.size)
    assert img.size == d.size and img.mode == "RGB", (d.source_id, img.size, img.mode)
    return encode_jpeg(img), DRAWN_PROVENANCE.format(fn=SCENES[d.source_id].__name__, seed=seed)


def row(source_id: str, prompt: str, negative: str, license_: str, provenance: str) -> dict[str, str]:
    """One manifest line, in the column names `surd ingest` reads by default."""
    return {
        "image": f"images/{source_id}.jpg",
        "complex_prompt": prompt,
        "negative_prompt": negative,
        "source": "sample",
        "source_id": source_id,
        "license": license_,
        "provenance": provenance,
    }


def main() -> int:
    """Write images/*.jpg and manifest.jsonl, drop stale images, print sizes; non-zero if over the size budget."""
    IMAGES_DIR.mkdir(parents=True, exist_ok=True)
    data_dir = skimage_data_dir()
    rows, blobs = [], {}
    for p in PHOTOS:
        blobs[p.source_id], prov = render_photo(p, data_dir)
        rows.append(row(p.source_id, p.prompt, p.negative, p.license, prov))
    for d in DRAWN:
        blobs[d.source_id], prov = render_drawn(d)
        rows.append(row(d.source_id, d.prompt, d.negative, DRAWN_LICENSE, prov))
    wanted = {f"{k}.jpg" for k in blobs}
    for stale in IMAGES_DIR.glob("*.jpg"):
        if stale.name not in wanted:
            stale.unlink()
    for source_id, data in blobs.items():
        (IMAGES_DIR / f"{source_id}.jpg").write_bytes(data)
    MANIFEST.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    total = sum(len(b) for b in blobs.values())
    for source_id, data in blobs.items():
        with Image.open(io.BytesIO(data)) as im:
            print(f"  {source_id:<20} {im.width:>5}x{im.height:<5} {im.mode:<4} {len(data) / 1024:7.1f} KiB")
    print(f"{len(rows)} rows -> {MANIFEST.relative_to(SAMPLE_DIR.parent.parent)}; images total {total / 1024 / 1024:.2f} MiB")
    if total > MAX_TOTAL_BYTES:
        print(f"images exceed the {MAX_TOTAL_BYTES} byte budget: lower JPEG_QUALITY or sizes", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
