"""Shared fixtures: images made in code, and manifests mixing good rows with every kind of bad input."""

from __future__ import annotations

import io
import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]

# Ray advertises this machine's interface address unless told otherwise (read at import time): tests keep
# every server on 127.0.0.1. No usage stats are sent anywhere.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"


def jpeg_bytes(w: int = 640, h: int = 480, seed: int = 0, quality: int = 90, mode: str = "RGB") -> bytes:
    """A deterministic image with some structure (gradients + noise), encoded as JPEG."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([(x * 255 / max(w - 1, 1)), (y * 255 / max(h - 1, 1)), np.full((h, w), 40 + seed % 200)], -1)
    arr = np.clip(base + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)
    img = Image.fromarray(arr)
    if mode != "RGB":
        img = img.convert(mode)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def bomb_png(w: int = 30000, h: int = 30000) -> bytes:
    """A tiny PNG whose header declares w×h pixels: opening it must not decode ~GBs of pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def odd_mode_images() -> dict[str, bytes]:
    """Images in modes ingest must convert to RGB (kept, with converted_from recorded)."""
    rgb = Image.open(io.BytesIO(jpeg_bytes(200, 160, seed=7)))
    rgba = rgb.convert("RGBA")
    rgba.putalpha(128)
    gray16 = Image.fromarray((np.linspace(0, 65535, 200 * 160).reshape(160, 200)).astype(np.uint16))
    cmyk = io.BytesIO()
    rgb.convert("CMYK").save(cmyk, "JPEG", quality=90)
    return {
        "cmyk.jpg": cmyk.getvalue(),
        "palette.png": png_bytes(rgb.convert("P", palette=Image.Palette.ADAPTIVE)),
        "alpha.png": png_bytes(rgba),
        "gray16.png": png_bytes(gray16),
    }


@pytest.fixture
def bad_manifest(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A JSONL manifest mixing good rows with every kind of bad input; returns (path, source_id → expected)."""
    img = tmp_path / "img"
    img.mkdir()
    files: dict[str, bytes] = {f"good{i}.jpg": jpeg_bytes(900 + 40 * i, 700, seed=i) for i in range(4)}
    files.update(odd_mode_images())
    full = jpeg_bytes(800, 600, seed=99)
    files.update({
        "truncated.jpg": full[: len(full) // 2],
        "zero.jpg": b"",
        "text.jpg": b"<html><body>404 not found</body></html>",
        "tiny.jpg": jpeg_bytes(32, 32, seed=5),
        "bomb.png": bomb_png(),
        "dup_of_good0.jpg": files["good0.jpg"],
    })
    for name, data in files.items():
        (img / name).write_bytes(data)
    expected = {f"img/good{i}.jpg": "kept" for i in range(4)}
    expected.update({f"img/{n}": "kept" for n in odd_mode_images()})
    expected.update({
        "img/truncated.jpg": "decode_error", "img/zero.jpg": "empty_file", "img/text.jpg": "not_an_image",
        "img/tiny.jpg": "too_small", "img/bomb.png": "decompression_bomb", "img/missing.jpg": "missing_file",
        "img/dup_of_good0.jpg": "duplicate_image", "empty-prompt": "empty_prompt",
    })
    rows = [{"image": sid, "complex_prompt": f"a scene {sid}, masterpiece, best quality, 8k"}
            for sid in expected if sid.startswith("img/")]
    rows.append({"image": "img/good1.jpg", "complex_prompt": "   \t ", "source_id": "empty-prompt"})
    rows.append({"image": "img/good2.jpg", "complex_prompt": "listed twice", "source_id": "img/good2.jpg"})
    lines = [json.dumps(r).encode() for r in rows]
    lines.insert(3, b'{"image": "img/good3.jpg", "complex_prompt": "caf\xe9 au lait"}')  # Latin-1, not UTF-8
    path = tmp_path / "manifest.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path, expected


@pytest.fixture(autouse=True)
def _fresh_http_clients():
    """Each test gets new downloader clients and a clean per-host schedule: robots.txt verdicts, pools and an earlier
    test's Retry-After pause never leak into a test that happens to reuse an earlier test server's host."""
    from surd.fetch.budget import LOCAL
    from surd.fetch.http import client_for

    client_for.cache_clear()
    LOCAL.schedule.clear()
    yield


@pytest.fixture
def server():
    """The fault-injection server (Civitai, Lexica and an image host) on 127.0.0.1."""
    from tests.fault_server import FaultServer

    with FaultServer() as srv:
        yield srv


@pytest.fixture
def connections(monkeypatch):
    """Record every address urllib3 opens a socket to: nothing may leave 127.0.0.1."""
    import urllib3

    seen: list[str] = []
    real = urllib3.util.connection.create_connection

    def recording(address, *args, **kwargs):
        seen.append(address[0])
        return real(address, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", recording)
    yield seen
    assert all(host == "127.0.0.1" for host in seen), seen


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """An S3-compatible server (moto) on 127.0.0.1 for one test module; its `env` points boto/s3fs at it."""
    from tests.s3_server import S3Server

    with S3Server(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture(scope="module")
def bucket(s3):
    """A bucket on that server holding the bundled sample under manifests/sample; its s3:// URL."""
    from surd import storage

    url = s3.make_bucket("surd-test")
    storage.upload_tree(REPO / "manifests" / "sample", url + "/manifests/sample")
    return url
