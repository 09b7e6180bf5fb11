"""`surd ingest folder`: every folder layout in use imports with every sample kept, 512² RGB out.

Layouts are built from their owners' files: the official SUR-adapter repository (Qrange-group/SUR-adapter:
`data_collect/` — `data/metadata.jsonl` written by `processing.ipynb` with `file_name` = the image name without
extension, images saved by `SUR_image.py` as `image/<name>.png` although the bytes are Civitai's `/width=450/` JPEG
renditions — and `sur_data_small/train/` — `metadata.jsonl` with `file_name` "<name>.png" beside the image), and
Hugging Face imagefolder (split folders, nested subfolders, metadata.jsonl or metadata.csv), each checked by loading
it with `datasets` itself.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from PIL import Image

from surd import shards
from surd.runner import run_stage
from surd.sample import make_key
from tests.conftest import jpeg_bytes, png_bytes
from tests.hf_datasets import load

# The two rows of the official data_collect sample, verbatim from its metadata.jsonl.
OFFICIAL_ROWS = [
    {"file_name": "dd9b038c-bd15-43ab-86ab-66e145ad7ff2", "text": "a woman in a black dress holding a golden zodiac sign",
     "prompt": "8k portrait of beautiful cyborg with brown hair, intricate, elegant, highly detailed, majestic, digital "
               "photography, art by artgerm and ruan jia and greg rutkowski surreal painting gold butterfly filigree, "
               "broken glass, (masterpiece, sidelighting, finely detailed beautiful eyes: 1.2), hdr, (detailed "
               "background window to a new dimension, plants and flowers:0.7) <lora:more_details:0.5> infinity, "
               "infinite symbol,"},
    {"file_name": "1c1d4f13-21b0-4068-acd0-51a3ec1c18bc", "text": "a woman in a white dress with blue hair and angel wings",
     "prompt": "(anime coloring, anime screencap, ghibli, mappa, anime style), 1girl, hatsune miku, white gown, angel, "
               "angel wings, golden halo, dark background, upper body, (closed mouth:1.2), looking at viewer, arms "
               "behind back, blue theme, stars, starry night"},
]


def _rgba_png(w: int, h: int) -> bytes:
    img = Image.open(io.BytesIO(jpeg_bytes(w, h, seed=11))).convert("RGBA")
    img.putalpha(96)
    return png_bytes(img)


def _palette_png(w: int, h: int) -> bytes:
    return png_bytes(Image.open(io.BytesIO(jpeg_bytes(w, h, seed=12))).convert("P", palette=Image.Palette.ADAPTIVE))


def _webp(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.open(io.BytesIO(jpeg_bytes(w, h, seed=13))).save(buf, "WEBP", quality=90)
    return buf.getvalue()


def _images() -> dict[str, tuple[str, bytes]]:
    """name (no extension) → (extension, bytes): the official JPEG-in-.png pair, plus RGBA/palette PNGs < 512 px."""
    return {
        OFFICIAL_ROWS[0]["file_name"]: (".png", jpeg_bytes(450, 600, seed=1)),  # JPEG bytes under .png, as shipped
        OFFICIAL_ROWS[1]["file_name"]: (".png", jpeg_bytes(450, 675, seed=2)),
        "rgba-small": (".png", _rgba_png(300, 200)),
        "palette-small": (".png", _palette_png(200, 300)),
        "photo": (".jpeg", jpeg_bytes(700, 500, seed=3)),
        "render": (".webp", _webp(640, 640)),
    }


def _rows() -> list[dict[str, str]]:
    rows = [dict(r) for r in OFFICIAL_ROWS]
    rows += [{"file_name": n, "text": f"simple {n}", "prompt": f"complex {n}, masterpiece"} for n in list(_images())[2:]]
    return rows


def _write_jsonl(path: Path, rows: list[dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def official_layout(root: Path, variant: str) -> Path:
    """The official layouts. Returns the folder to pass to `surd ingest folder`."""
    images, rows = _images(), _rows()
    meta_dir, image_dir, with_ext = {
        "data_collect": (root / "data", root / "image", False),  # data/metadata.jsonl + image/<name>.png
        "image_beside": (root, root / "image", False),  # metadata.jsonl with an image/ folder next to it
        "images_folder": (root, root / "images", False),
        "sur_data_small": (root / "train", root / "train", True),  # file_name with extension, images beside
    }[variant]
    image_dir.mkdir(parents=True, exist_ok=True)
    for name, (ext, data) in images.items():
        (image_dir / (name + ext)).write_bytes(data)
    if with_ext:
        rows = [{**r, "file_name": r["file_name"] + images[r["file_name"]][0]} for r in rows]
    _write_jsonl(meta_dir / "metadata.jsonl", rows)
    if variant == "data_collect":  # the listing files data_collect also holds: not metadata, ignored
        (root / "data" / "data.json").write_text(json.dumps({"metadata": {}, "items": []}))
    return root


def _hf_rows(split: str) -> list[tuple[str, str, bytes]]:
    """(file_name relative to the split's metadata, name, bytes): nested subfolders, every extension."""
    images = _images()
    return [(f"{sub}{name}{images[name][0]}", name, images[name][1]) for sub, name in zip(
        ("cyborgs/", "anime/wings/", "", "small/", "photos/2024/", ""), images) if (split == "train") == (name != "render")]


def hf_layout(root: Path, variant: str) -> Path:
    """Hugging Face imagefolder: train/ and test/ split folders with their own metadata (jsonl), or one metadata.csv."""
    splits = ("train", "test") if variant == "hf_splits" else ("",)
    for split in splits:
        base = root / split if split else root
        entries = _hf_rows(split or "train") + (_hf_rows("test") if not split else [])
        rows = []
        for file_name, name, data in entries:
            (base / file_name).parent.mkdir(parents=True, exist_ok=True)
            (base / file_name).write_bytes(data)
            rows.append({"file_name": file_name, "text": f"simple {name}", "prompt": f"complex {name}, 8k"})
        if variant == "hf_csv":
            with open(base / "metadata.csv", "w", newline="") as f:
                writer = csv.DictWriter(f, ["file_name", "text", "prompt"])
                writer.writeheader()
                writer.writerows(rows)
        else:
            _write_jsonl(base / "metadata.jsonl", rows)
    return root


def _ingest(folder: Path, out: Path):
    return run_stage("ingest", {"source": "folder", "path": str(folder)}, out, progress=False)


def _kept_512_rgb(out: Path) -> list[dict]:
    metas = []
    for s in shards.iter_dataset(out):
        img = Image.open(io.BytesIO(s["jpg"]))
        assert img.size == (512, 512) and img.mode == "RGB", (s["json"]["source_id"], img.size, img.mode)
        metas.append(s["json"])
    return metas


@pytest.mark.parametrize("variant", ["data_collect", "image_beside", "images_folder", "sur_data_small"])
def test_official_layouts_import_every_sample(tmp_path, variant):
    folder = official_layout(tmp_path / "SUR", variant)
    res = _ingest(folder, tmp_path / "out")
    assert res.stats["rejected"] == {} and res.stats["kept"] == res.stats["in"] == 6
    metas = {m["complex_prompt"]: m for m in _kept_512_rgb(tmp_path / "out")}
    for row in OFFICIAL_ROWS:
        m = metas[row["prompt"].strip()]
        assert m["simple_prompt"] == row["text"] and m["source"] == "surd" and m["source_format"] == "JPEG"
    modes = {m["source_id"].rsplit("/", 1)[-1].split(".")[0]: m["converted_from"] for m in metas.values()}
    assert modes["rgba-small"] == "RGBA" and modes["palette-small"] == "P" and modes["photo"] is None


def test_data_collect_keys_and_ids_are_the_listed_names(tmp_path):
    folder = official_layout(tmp_path / "data_collect", "data_collect")
    _ingest(folder, tmp_path / "out")
    ids = {m["source_id"]: m["key"] for m in _kept_512_rgb(tmp_path / "out")}
    sid = "data/" + OFFICIAL_ROWS[0]["file_name"]  # the name as the metadata lists it, from the folder passed
    assert ids[sid] == make_key("surd", sid)


@pytest.mark.parametrize("variant", ["hf_splits", "hf_csv"])
def test_hugging_face_imagefolder_layouts_import_every_sample(tmp_path, variant):
    folder = hf_layout(tmp_path / "hf", variant)
    theirs = load("imagefolder", tmp_path / "hf_cache", data_dir=str(folder))  # the layout is valid for datasets
    their_rows = {r["prompt"]: r for split in theirs.values() for r in split}
    assert len(their_rows) == 6 and set(theirs) == ({"train", "test"} if variant == "hf_splits" else {"train"})
    res = _ingest(folder, tmp_path / "out")
    assert res.stats["rejected"] == {} and res.stats["kept"] == 6
    metas = _kept_512_rgb(tmp_path / "out")
    assert {m["complex_prompt"] for m in metas} == set(their_rows)
    assert all(m["simple_prompt"] == their_rows[m["complex_prompt"]]["text"] for m in metas)
    if variant == "hf_splits":
        splits = {m["source_id"]: m["extra"]["split"] for m in metas}
        assert splits["test/render.webp"] == "test" and splits["train/anime/wings/" + OFFICIAL_ROWS[1]["file_name"]
                                                                + ".png"] == "train"


def test_a_name_that_matches_two_files_is_rejected_never_picked(tmp_path):
    root = tmp_path / "amb"
    (root / "image").mkdir(parents=True)
    (root / "images").mkdir()
    (root / "image" / "twoext.png").write_bytes(jpeg_bytes(300, 300, seed=1))
    (root / "image" / "twoext.jpg").write_bytes(jpeg_bytes(300, 300, seed=2))
    (root / "image" / "twodirs.png").write_bytes(jpeg_bytes(300, 300, seed=3))
    (root / "images" / "twodirs.png").write_bytes(jpeg_bytes(300, 300, seed=4))
    (root / "image" / "one.webp").write_bytes(_webp(300, 300))
    (root / "exact.png").write_bytes(jpeg_bytes(300, 300, seed=5))  # exact path: the imagefolder rule, no search
    (root / "image" / "exact.png").write_bytes(jpeg_bytes(300, 300, seed=6))
    names = ["twoext", "twodirs.png", "one", "exact.png", "absent", "../outside.png", "/etc/passwd"]
    _write_jsonl(root / "metadata.jsonl", [{"file_name": n, "text": "t", "prompt": f"p {n}"} for n in names])
    res = _ingest(root, tmp_path / "out")
    by_id = {r["meta"]["source_id"]: r for stem in shards.list_done(tmp_path / "out")
             for r in shards.read_sidecar(tmp_path / "out", stem)}
    assert {k: (r["reason"] or "kept") for k, r in by_id.items()} == {
        "twoext": "ambiguous_file", "twodirs.png": "ambiguous_file", "one": "kept", "exact.png": "kept",
        "absent": "missing_file", "../outside.png": "bad_file_name", "/etc/passwd": "bad_file_name"}
    assert "image/twoext.jpg, image/twoext.png" in by_id["twoext"]["detail"]
    assert "image/, images/" in by_id["absent"]["detail"]
    assert res.stats["in"] == res.stats["kept"] + sum(res.stats["rejected"].values())


def test_folder_without_metadata_names_what_it_reads(tmp_path):
    (tmp_path / "pics").mkdir()
    (tmp_path / "pics" / "a.png").write_bytes(jpeg_bytes(100, 100))
    with pytest.raises(FileNotFoundError, match="no metadata.jsonl or metadata.csv"):
        _ingest(tmp_path / "pics", tmp_path / "out")


def test_a_missing_prompt_column_names_the_option(tmp_path):
    _write_jsonl(tmp_path / "f" / "metadata.jsonl", [{"file_name": "a.png", "text": "only a caption"}])
    with pytest.raises(ValueError, match="--prompt-col"):
        _ingest(tmp_path / "f", tmp_path / "out")


def test_cli_ingest_folder_takes_other_column_names(tmp_path):
    from typer.testing import CliRunner

    from surd.cli import app

    root = tmp_path / "pokemon"  # the imagefolder shape of lambdalabs/pokemon-blip-captions: image + text only
    root.mkdir()
    (root / "0.jpg").write_bytes(jpeg_bytes(400, 400))
    _write_jsonl(root / "metadata.jsonl", [{"file_name": "0.jpg", "text": "a drawing of a green pokemon"}])
    result = CliRunner().invoke(app, ["ingest", "folder", str(root), "--prompt-col", "text", "--simple-col", "",
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    (meta,) = _kept_512_rgb(tmp_path / "out")
    assert meta["complex_prompt"] == "a drawing of a green pokemon" and meta["simple_prompt"] is None
