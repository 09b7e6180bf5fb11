"""The manifest source (surd.sources.manifest): rows from a local table, images relative to it, a bad line or an
empty image column a row with its reason, a missing column an error naming the option to set."""

from __future__ import annotations

import json

import pytest

from surd.sources.manifest import Config, list_rows


def _write(tmp_path, lines: list[str]) -> str:
    path = tmp_path / "m.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_rows_resolve_images_next_to_the_manifest_and_keep_extra_columns(tmp_path):
    path = _write(tmp_path, [json.dumps({"image": "images/a.jpg", "complex_prompt": "a cat", "seed": 7}),
                             json.dumps({"image": "", "complex_prompt": "no image"}), "{broken"])
    rows = list(list_rows(Config(path=path)))
    assert rows[0]["image"] == str(tmp_path / "images" / "a.jpg") and rows[0]["complex_prompt"] == "a cat"
    assert rows[0]["extra"] == {"seed": 7} and rows[0]["source"] == "local" and not rows[0].get("error")
    assert rows[1]["error"] == "missing_image_ref"
    assert rows[2]["error"] and rows[2]["source_id"].startswith("row-sha1:")  # a stable id for a line with no fields


def test_a_missing_column_names_the_option_to_set(tmp_path):
    path = _write(tmp_path, [json.dumps({"img": "a.jpg", "complex_prompt": "a cat"})])
    with pytest.raises(ValueError, match="column 'image' not in .*pass --image-col NAME"):
        list(list_rows(Config(path=path)))
    assert list(list_rows(Config(path=path, image_col="img")))[0]["image"].endswith("a.jpg")


def test_zip_and_tar_refs_name_a_container_that_obeys_the_same_roots(tmp_path):
    """A manifest cannot reach a file outside its folder through a zip: or tar: ref (the container is a local file)."""
    (tmp_path / "inside.zip").write_bytes(b"PK")
    path = _write(tmp_path, [json.dumps({"image": "tar:/etc/passwd#0:10:x.jpg", "complex_prompt": "a"}),
                             json.dumps({"image": "zip:///etc/x.zip#a.jpg", "complex_prompt": "b"}),
                             json.dumps({"image": "zip:inside.zip#a.jpg", "complex_prompt": "c"})])
    rows = list(list_rows(Config(path=path)))
    assert [r["error"] for r in rows[:2]] == ["outside_root", "outside_root"]
    assert not rows[2]["error"] and rows[2]["image"] == f"zip:{tmp_path / 'inside.zip'}#a.jpg"
