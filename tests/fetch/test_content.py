"""What fetched bytes are (surd.fetch.content): image formats by magic bytes, HTML error pages."""

from __future__ import annotations

from surd.fetch.content import looks_like_html, sniff_image
from tests.conftest import jpeg_bytes, png_bytes
from tests.fault_server import make_bomb_png


def test_sniff_image_by_magic_bytes():
    from PIL import Image

    assert sniff_image(jpeg_bytes(8, 8)) == "jpeg"
    assert sniff_image(png_bytes(Image.new("RGB", (4, 4)))) == "png"
    assert sniff_image(make_bomb_png()) == "png"
    assert sniff_image(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "webp"
    assert sniff_image(b"GIF89a...") == "gif"
    assert sniff_image(b"<html>") is None and sniff_image(b"") is None and sniff_image(b'{"error": 1}') is None


def test_html_error_pages_are_recognised():
    assert looks_like_html(b"  <!DOCTYPE html><html><body>403</body></html>")
    assert looks_like_html(b"<?xml version='1.0'?><html/>") and looks_like_html(b"<HEAD><title>x</title>")
    assert not looks_like_html(jpeg_bytes(8, 8)) and not looks_like_html(b"plain text")
