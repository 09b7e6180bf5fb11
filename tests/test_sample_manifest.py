"""The bundled sample (manifests/sample): manifest rows, shipped JPEGs, size budget, provenance, reproducibility."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO

SAMPLE_DIR = REPO / "manifests" / "sample"
MANIFEST = SAMPLE_DIR / "manifest.jsonl"
GENERATOR = REPO / "tools" / "sample_data" / "make_sample.py"
KEYS = {"image", "complex_prompt", "negative_prompt", "source", "source_id", "license", "provenance"}
LICENSES = {"CC0-1.0", "public-domain"}
MAX_TOTAL_BYTES = 3 * 1024 * 1024


def _rows() -> list[dict]:
    lines = MANIFEST.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return _rows()


@pytest.fixture(scope="module")
def make_sample():
    """The generator script imported as a module (its sibling scene modules come with it)."""
    spec = importlib.util.spec_from_file_location("surd_make_sample", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look the module up by name while building classes
    spec.loader.exec_module(module)
    return module


def test_manifest_rows_have_the_contract_keys(rows: list[dict]) -> None:
    assert 28 <= len(rows) <= 36, f"expected about 32 sample rows, got {len(rows)}"
    for r in rows:
        assert set(r) == KEYS, r.get("source_id")
        assert all(isinstance(r[k], str) for k in KEYS), r["source_id"]
        assert r["source"] == "sample"
        assert r["complex_prompt"].strip(), r["source_id"]
        assert r["license"] in LICENSES, (r["source_id"], r["license"])
        assert r["provenance"].strip(), r["source_id"]
        assert r["image"] == f"images/{r['source_id']}.jpg", "image paths are relative to the manifest"


def test_no_duplicate_ids_or_images(rows: list[dict]) -> None:
    ids = [r["source_id"] for r in rows]
    assert len(set(ids)) == len(ids), sorted(i for i in ids if ids.count(i) > 1)
    digests = [hashlib.sha256((SAMPLE_DIR / r["image"]).read_bytes()).hexdigest() for r in rows]
    assert len(set(digests)) == len(digests), "two rows ship byte-identical images"


def test_every_image_decodes_and_the_set_fits_the_budget(rows: list[dict]) -> None:
    total, shapes = 0, set()
    for r in rows:
        path = SAMPLE_DIR / r["image"]
        data = path.read_bytes()
        total += len(data)
        with Image.open(io.BytesIO(data)) as im:
            assert im.format == "JPEG", r["image"]
            im.load()  # a truncated file fails here, not at open
            assert im.mode in ("RGB", "L"), (r["image"], im.mode)
            assert min(im.size) >= 256, (r["image"], im.size)
            shapes.add((im.width > im.height) - (im.width < im.height))
    assert total < MAX_TOTAL_BYTES, f"sample images total {total} bytes; the repo budget is {MAX_TOTAL_BYTES}"
    assert shapes == {-1, 0, 1}, "the sample should hold landscape, square and portrait sources so resizing has work"
    shipped = {p.name for p in (SAMPLE_DIR / "images").iterdir()}
    assert shipped == {Path(r["image"]).name for r in rows}, "images/ holds files no row names (or misses some)"


def test_mix_of_real_photos_and_drawn_scenes(rows: list[dict]) -> None:
    photos = [r for r in rows if r["provenance"].startswith("scikit-image ")]
    drawn = [r for r in rows if r["provenance"].startswith("drawn in code by manifests/sample/make_sample.py")]
    assert len(photos) + len(drawn) == len(rows), "every row names where its image came from"
    assert 6 <= len(photos) <= 12, len(photos)
    assert all(r["license"] == "CC0-1.0" for r in drawn)
    assert sum(bool(r["negative_prompt"]) for r in rows) >= 8, "several rows should carry a negative prompt"


def test_provenance_doc_lists_every_image(rows: list[dict]) -> None:
    doc = (SAMPLE_DIR / "PROVENANCE.md").read_text(encoding="utf-8")
    missing = [r["image"] for r in rows if f"`{r['image']}`" not in doc]
    assert not missing, f"PROVENANCE.md has no table row for {missing}"
    assert "make_sample.py" in doc


def test_some_prompts_exceed_the_clip_context(rows: list[dict]) -> None:
    pytest.importorskip("transformers")
    pytest.importorskip("open_clip")
    from surd.models.tokenizers import clip_tokenizer

    tok = clip_tokenizer()
    lengths = {r["source_id"]: len(tok(r["complex_prompt"])["input_ids"]) for r in rows}
    long_ones = [k for k, n in lengths.items() if n > 77]
    assert 2 <= len(long_ones) <= 5, lengths


def test_generator_redraws_the_shipped_scenes(make_sample, rows: list[dict]) -> None:
    by_id = {r["source_id"]: r for r in rows}
    for d in make_sample.DRAWN:
        data, provenance = make_sample.render_drawn(d)
        assert provenance == by_id[d.source_id]["provenance"]
        assert d.prompt == by_id[d.source_id]["complex_prompt"]
        fresh = np.asarray(Image.open(io.BytesIO(data)), np.int16)
        shipped = np.asarray(Image.open(SAMPLE_DIR / by_id[d.source_id]["image"]), np.int16)
        assert fresh.shape == shipped.shape, d.source_id
        # Pixels, not bytes: another libjpeg build may encode the same drawing slightly differently.
        assert np.abs(fresh - shipped).mean() < 2.0, d.source_id


def test_generator_reencodes_the_shipped_photos(make_sample, rows: list[dict]) -> None:
    pytest.importorskip("skimage")
    by_id = {r["source_id"]: r for r in rows}
    data_dir = make_sample.skimage_data_dir()
    for p in make_sample.PHOTOS:
        data, _ = make_sample.render_photo(p, data_dir)
        fresh = np.asarray(Image.open(io.BytesIO(data)), np.int16)
        shipped = np.asarray(Image.open(SAMPLE_DIR / by_id[p.source_id]["image"]), np.int16)
        assert fresh.shape == shipped.shape and np.abs(fresh - shipped).mean() < 2.0, p.source_id
