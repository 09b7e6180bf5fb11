"""Hugging Face datasets written by `datasets` itself (save_to_disk, parquet, imagefolder): columns detected or named,
splits, provenance, bad rows as reasons, and the pipeline / CLI entry points."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import yaml
from typer.testing import CliRunner

import tests.hf_datasets  # noqa: F401  (sets the offline environment before `datasets` is imported)
from surd import shards
from surd.cli import app
from surd.pipeline import run_pipeline
from surd.runner import run_stage
from surd.sample import make_key
from surd.sources import hf
from tests.conftest import jpeg_bytes

datasets = pytest.importorskip("datasets")


def _dataset(n: int = 5, **extra_columns):
    features = datasets.Features({"image": datasets.Image(), "caption": datasets.Value("string"),
                                  "aesthetic": datasets.Value("float32"),
                                  **{k: datasets.Value("string") for k in extra_columns}})
    data = {"image": [{"bytes": jpeg_bytes(160 + 10 * i, 120, seed=i), "path": None} for i in range(n)],
            "caption": [f"a painted fox number {i}, 8k" for i in range(n)],
            "aesthetic": [float(i) for i in range(n)], **extra_columns}
    return datasets.Dataset.from_dict(data, features=features)


def _rows(out) -> list[dict]:
    return [r for stem in shards.list_done(out) for r in shards.read_sidecar(out, stem)]


def test_save_to_disk_splits_detected_columns_and_provenance(tmp_path):
    ds = _dataset(5)
    datasets.DatasetDict({"train": ds.select(range(3)), "test": ds.select(range(3, 5))}).save_to_disk(tmp_path / "d")
    res = run_stage("ingest", {"source": "hf", "path": str(tmp_path / "d"), "size": 64,
                               "options": {"spool_images": 2}}, tmp_path / "o", progress=False)
    assert res.ok and res.stats["in"] == res.stats["kept"] == 5
    samples = {s["json"]["source_id"]: s["json"] for s in shards.iter_dataset(tmp_path / "o")}
    assert set(samples) == {"train/0", "train/1", "train/2", "test/0", "test/1"}
    meta = samples["test/1"]
    assert meta["complex_prompt"] == "a painted fox number 4, 8k" and meta["key"] == make_key("hf", "test/1")
    assert meta["provenance"]["split"] == "test" and meta["provenance"]["row"] == 1
    assert meta["provenance"]["metadata"] == {"aesthetic": 4.0}
    assert (meta["width"], meta["height"]) == (200, 120)  # the original image, read from the spooled tar
    only = list(hf.list_rows(hf.Config(path=str(tmp_path / "d"), split="test"), str(tmp_path / "s")))
    assert [r["source_id"] for r in only] == ["test/0", "test/1"]
    with pytest.raises(ValueError, match="its splits: train, test"):
        list(hf.list_rows(hf.Config(path=str(tmp_path / "d"), split="validation"), str(tmp_path / "s")))


def test_parquet_written_by_datasets_with_an_id_column_and_named_columns(tmp_path):
    ds = _dataset(3, uid=["a", "b", "c"]).rename_column("caption", "words")
    (tmp_path / "pq").mkdir()
    ds.to_parquet(str(tmp_path / "pq" / "train-00000.parquet"))
    with pytest.raises(ValueError, match="--prompt-col"):
        list(hf.list_rows(hf.Config(path=str(tmp_path / "pq")), str(tmp_path / "s")))
    rows = list(hf.list_rows(hf.Config(path=str(tmp_path / "pq"), prompt_col="words", id_col="uid"),
                             str(tmp_path / "s")))
    assert [r["source_id"] for r in rows] == ["a", "b", "c"] and rows[2]["complex_prompt"].endswith("2, 8k")
    assert all(r["image"].startswith("tar:") and not r["error"] for r in rows)


def test_imagefolder_images_are_read_from_their_paths(tmp_path):
    folder = tmp_path / "imgf" / "train"
    folder.mkdir(parents=True)
    for i in range(2):
        (folder / f"{i}.jpg").write_bytes(jpeg_bytes(150, 150, seed=i))
    (folder / "metadata.jsonl").write_text("".join(json.dumps({"file_name": f"{i}.jpg", "text": f"cat {i}"}) + "\n"
                                                   for i in range(2)))
    res = run_stage("ingest", {"source": "hf", "path": str(tmp_path / "imgf"), "size": 64}, tmp_path / "o",
                    progress=False)
    assert res.stats["kept"] == 2, res.stats
    prompts = sorted(s["json"]["complex_prompt"] for s in shards.iter_dataset(tmp_path / "o"))
    assert prompts == ["cat 0", "cat 1"]


def test_rows_without_image_or_prompt_are_rejected_with_a_reason(tmp_path):
    features = datasets.Features({"image": datasets.Image(), "prompt": datasets.Value("string")})
    good = {"bytes": jpeg_bytes(120, 120), "path": None}
    datasets.Dataset.from_dict({"image": [good, None, good, good], "prompt": ["ok", "no image", None, "   "]},
                               features=features).save_to_disk(tmp_path / "d")
    run_stage("ingest", {"source": "hf", "path": str(tmp_path / "d"), "size": 64}, tmp_path / "o", progress=False)
    reasons = {r["meta"]["source_id"]: r["reason"] or "kept" for r in _rows(tmp_path / "o")}
    assert reasons == {"train/0": "kept", "train/1": "missing_image", "train/2": "missing_caption",
                       "train/3": "empty_prompt"}


def test_pipeline_file_and_cli(tmp_path):
    _dataset(2).save_to_disk(tmp_path / "d")
    pipe = tmp_path / "p.yaml"
    pipe.write_text(yaml.safe_dump({"name": "h", "stages": [{"stage": "ingest", "config": {
        "source": "multi", "size": 64, "options": {"sources": [{"source": "hf", "path": str(tmp_path / "d")}]}}}]}))
    run_pipeline(str(pipe), str(tmp_path / "runs"), progress=False)
    assert Counter(r["reason"] or "kept" for r in _rows(tmp_path / "runs" / "h" / "00_ingest")) == {"kept": 2}
    res = CliRunner().invoke(app, ["ingest", "hf", str(tmp_path / "d"), "--out", str(tmp_path / "o"),
                                   "--size", "64", "--split", "train"])
    assert res.exit_code == 0, res.output
    assert "2 kept of 2" in res.output
