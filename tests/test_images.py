"""The resizer: modes, reduce-on-decode, mode conversions and every image rejection reason."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from surd.images import ImageConfig, ImageRejected, process_image
from tests.conftest import bomb_png, jpeg_bytes, odd_mode_images, png_bytes


def _decode(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


@pytest.mark.parametrize("mode,size,expected", [
    ("center_crop", 512, (512, 512)), ("keep_ratio", 512, (683, 512)), ("pad", 512, (512, 512)),
    ("center_crop", 256, (256, 256)), ("none", 512, (1200, 900)),
])
def test_resize_modes(mode, size, expected):
    out = process_image(jpeg_bytes(1200, 900, seed=1), ImageConfig(size=size, resize_mode=mode))
    img = _decode(out.data)
    assert img.size == expected and img.mode == "RGB" and img.format == "JPEG"
    assert (out.width, out.height) == (1200, 900)


def test_pad_mode_letterboxes_with_black():
    out = _decode(process_image(jpeg_bytes(1000, 500, seed=2), ImageConfig(resize_mode="pad")).data)
    arr = np.asarray(out)
    assert arr[:100].mean() < 8 and arr[-100:].mean() < 8 and arr[200:300].mean() > 30


def test_center_crop_keeps_the_center():
    # Left third red, middle green, right third blue: a center crop of a 3:1 image is all green.
    arr = np.zeros((300, 900, 3), np.uint8)
    arr[:, :300, 0] = arr[:, 300:600, 1] = arr[:, 600:, 2] = 255
    out = np.asarray(_decode(process_image(png_bytes(Image.fromarray(arr)), ImageConfig(size=128)).data))
    assert out[:, 8:-8, 1].mean() > 240 and out[:, 8:-8, 0].mean() < 15 and out[:, 8:-8, 2].mean() < 15


def test_large_jpeg_uses_draft_and_matches_full_decode():
    data = jpeg_bytes(2048, 1536, seed=3, quality=95)
    fast = np.asarray(_decode(process_image(data, ImageConfig()).data), dtype=np.float32)
    full = Image.open(io.BytesIO(data)).convert("RGB")
    ref = full.resize((512, 512), Image.Resampling.LANCZOS, box=(256, 0, 1792, 1536))
    assert np.abs(fast - np.asarray(ref, dtype=np.float32)).mean() < 4.0  # reduce-on-decode is near-lossless here


@pytest.mark.parametrize("name", sorted(odd_mode_images()))
def test_odd_modes_are_converted(name):
    out = process_image(odd_mode_images()[name], ImageConfig(size=64))
    assert _decode(out.data).mode == "RGB" and out.converted_from is not None


def test_sixteen_bit_is_rescaled_not_clipped():
    mid = Image.fromarray(np.full((100, 100), 32768, np.uint16))
    out = np.asarray(_decode(process_image(png_bytes(mid), ImageConfig(size=64, image_format="png")).data))
    assert abs(int(out.mean()) - 128) <= 1


def test_alpha_is_composited_on_white():
    transparent = Image.new("RGBA", (100, 100), (255, 0, 0, 0))
    out = np.asarray(_decode(process_image(png_bytes(transparent), ImageConfig(size=64, image_format="png")).data))
    assert out.min() >= 250


@pytest.mark.parametrize("data,reason", [
    (b"", "empty_file"),
    (b"<html>not an image</html>", "not_an_image"),
    (jpeg_bytes(800, 600)[:3000], "decode_error"),
    (jpeg_bytes(40, 40), "too_small"),
    (bomb_png(), "decompression_bomb"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "not_an_image"),
])
def test_rejections(data, reason):
    with pytest.raises(ImageRejected) as e:
        process_image(data, ImageConfig())
    assert e.value.reason == reason


def test_bomb_threshold_is_configurable():
    with pytest.raises(ImageRejected, match="decompression_bomb"):
        process_image(jpeg_bytes(1000, 1000), ImageConfig(max_pixels=500_000))


@pytest.mark.parametrize("kwargs", [{"resize_mode": "stretch"}, {"quality": 0}, {"size": 4}, {"image_format": "gif"}])
def test_bad_config_names_the_fix(kwargs):
    with pytest.raises(ValueError, match="must be"):
        ImageConfig(**kwargs)


def test_area_filter_downscales_like_a_box_average():
    # A 2x2 checkerboard of pixels averages to flat grey under an area filter; Lanczos rings at the edges.
    arr = (np.indices((1024, 1024)).sum(0) % 2 * 255).astype(np.uint8)
    data = png_bytes(Image.fromarray(arr).convert("RGB"))
    area = np.asarray(_decode(process_image(data, ImageConfig(size=512, resample="area", image_format="png")).data))
    assert area.std() < 1.0 and abs(area.mean() - 127.5) < 1.0
    with pytest.raises(ValueError, match="resample must be one of"):
        ImageConfig(resample="nearest")


def _with_exif(data: bytes) -> bytes:
    img = Image.open(io.BytesIO(data))
    exif = Image.Exif()
    exif[0x010F] = "a camera maker"  # Make: any EXIF is metadata a re-encode would strip
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90, exif=exif.tobytes())
    return buf.getvalue()


def test_an_image_already_in_the_output_form_is_kept_byte_for_byte():
    plain = jpeg_bytes(512, 512, seed=3, quality=80)
    out = process_image(plain, ImageConfig())
    assert out.original_bytes and out.data == plain  # no second generation of JPEG loss
    for mode in ("center_crop", "keep_ratio", "pad", "none"):
        assert process_image(plain, ImageConfig(resize_mode=mode)).data == plain


@pytest.mark.parametrize("case", ["other_size", "exif", "grayscale", "png_in_jpg_out", "jpg_in_png_out"])
def test_anything_to_change_means_a_reencode(case):
    data, cfg = {
        "other_size": (jpeg_bytes(600, 512, seed=3), ImageConfig()),
        "exif": (_with_exif(jpeg_bytes(512, 512, seed=3)), ImageConfig()),
        "grayscale": (jpeg_bytes(512, 512, seed=3, mode="L"), ImageConfig()),
        "png_in_jpg_out": (png_bytes(_decode(jpeg_bytes(512, 512, seed=3))), ImageConfig()),
        "jpg_in_png_out": (jpeg_bytes(512, 512, seed=3), ImageConfig(image_format="png")),
    }[case]
    out = process_image(data, cfg)
    assert not out.original_bytes and out.data != data
    assert _decode(out.data).mode == "RGB" and _decode(out.data).size == (512, 512)
