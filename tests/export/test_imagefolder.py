"""`surd export imagefolder`: what the official SUR-adapter trainer and Hugging Face `datasets` read, checked by
loading it with `datasets` itself (the trainer's own `load_dataset` call included), and round-tripped through
`surd ingest folder`. Also: `datasets` reads surd's webdataset shards directly."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from surd import shards
from surd.export.imagefolder import ExportConfig, export_imagefolder
from surd.pipeline import run_pipeline
from surd.runner import run_stage
from tests.conftest import REPO
from tests.hf_datasets import load


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory) -> Path:
    """The sample pipeline up to embed (tiny models): runs/sample/0N_<stage>/."""
    runs = tmp_path_factory.mktemp("runs")
    for _, res in run_pipeline(REPO / "pipelines" / "sample.yaml", runs, until="embed", progress=False):
        assert res.ok
    return runs / "sample"


def _stage_dir(run: Path, stage: str) -> Path:
    """runs/sample/NN_<stage>, whatever NN the sample pipeline gives it."""
    (found,) = run.glob(f"[0-9][0-9]_{stage}")
    return found


def _samples(stage: Path) -> dict[str, dict]:
    return {s["__key__"]: s for s in shards.iter_dataset(stage)}


def _pixels(data: bytes | Image.Image) -> np.ndarray:
    img = data if isinstance(data, Image.Image) else Image.open(io.BytesIO(data))
    return np.asarray(img.convert("RGB"))


def _layer(stage: Path) -> int:
    return next(iter(_samples(stage).values()))["json"]["stages"]["embed"]["layer"] - 1  # official 0-based index


def test_imagefolder_loads_with_the_official_trainers_columns_and_prompt2vec(sample_run, tmp_path):
    import torch

    stage, out = _stage_dir(sample_run, "embed"), tmp_path / "export"
    ours = _samples(stage)
    summary = export_imagefolder(stage, out, ExportConfig(test_fraction=0.25, prompt2vec=f"tiny/{_layer(stage)}"),
                                 progress=False)
    assert summary["splits"] == {"train": 18, "test": 6} and summary["without_simple_prompt"] == 0

    by_dir = load("imagefolder", tmp_path / "hf", data_dir=str(out))
    assert {k: v.num_rows for k, v in by_dir.items()} == {"train": 18, "test": 6}
    # SUR_adapter_train.py: load_dataset("imagefolder", data_files={"train": os.path.join(train_data_dir, "**")})
    official = load("imagefolder", tmp_path / "hf2", data_files={"train": os.path.join(str(out), "**")})["train"]
    assert official.column_names[:3] == ["image", "text", "prompt"] and official.num_rows == len(ours)
    # its prompt2vec: torch.load(f"prompt2vec/{args.llm}/{args.llm_layer}.pt"), indexed by the caption column
    prompt2vec = torch.load(out / "prompt2vec" / "tiny" / f"{_layer(stage)}.pt", weights_only=True)
    for row in official:
        s = ours[row["key"]]
        assert row["text"] == s["json"]["simple_prompt"] and row["prompt"] == s["json"]["complex_prompt"]
        assert row["negative_prompt"] == s["json"]["negative_prompt"] and row["source_id"] == s["json"]["source_id"]
        assert np.array_equal(_pixels(row["image"]), _pixels(s["jpg"]))
        vec = np.load(io.BytesIO(s["llm.npy"]))
        assert np.array_equal(prompt2vec[row["text"]].numpy(), vec)  # llm_prompt2vec[p] for p in caption_text
        (path,) = [p / f"{row['key']}.jpg" for p in (out / "train", out / "test") if (p / f"{row['key']}.jpg").exists()]
        assert path.read_bytes() == s["jpg"]  # the stored bytes, not re-encoded


def test_datasets_reads_surd_webdataset_shards_directly(sample_run, tmp_path):
    stage = _stage_dir(sample_run, "embed")
    ours = _samples(stage)
    tars = [str(p) for p in shards.list_shards(stage)]
    theirs = load("webdataset", tmp_path / "hf", data_files={"train": tars})["train"]
    assert {"jpg", "json", "llm.npy", "__key__"} <= set(theirs.column_names) and theirs.num_rows == len(ours)
    for row in theirs:
        s = ours[row["__key__"]]
        assert row["json"]["simple_prompt"] == s["json"]["simple_prompt"]
        assert row["json"]["complex_prompt"] == s["json"]["complex_prompt"]
        assert np.array_equal(_pixels(row["jpg"]), _pixels(s["jpg"]))
        assert np.array_equal(np.asarray(row["llm.npy"], dtype=np.float16), np.load(io.BytesIO(s["llm.npy"])))


@pytest.mark.parametrize("test_fraction", [0.0, 0.25])
def test_round_trip_export_then_ingest_folder_gives_the_same_samples(sample_run, tmp_path, test_fraction):
    stage = _stage_dir(sample_run, "embed")
    export_imagefolder(stage, tmp_path / "export", ExportConfig(test_fraction=test_fraction), progress=False)
    res = run_stage("ingest", {"source": "folder", "path": str(tmp_path / "export")}, tmp_path / "back", progress=False)
    ours, back = _samples(stage), _samples(tmp_path / "back")
    assert res.stats["kept"] == len(ours) and set(back) == set(ours)  # same (source, source_id) → same keys
    for key, s in ours.items():
        b = back[key]["json"]
        for field in ("simple_prompt", "complex_prompt", "negative_prompt", "source", "source_id", "license",
                      "provenance"):
            assert b[field] == s["json"][field], field
        assert np.array_equal(_pixels(back[key]["jpg"]), _pixels(s["jpg"]))  # pixel-identical
        assert back[key]["jpg"] == s["jpg"] and b["stages"]["ingest"]["original_bytes"]  # and byte-identical


def test_prompt2vec_request_is_checked_before_anything_is_written(sample_run, tmp_path):
    stage, out = _stage_dir(sample_run, "embed"), tmp_path / "export"
    with pytest.raises(ValueError, match=f"pass --prompt2vec tiny/{_layer(stage)}"):
        export_imagefolder(stage, out, ExportConfig(prompt2vec="tiny/0"), progress=False)
    with pytest.raises(ValueError, match="13B means 5120-d vectors"):
        export_imagefolder(stage, out, ExportConfig(prompt2vec=f"13B/{_layer(stage)}"), progress=False)
    with pytest.raises(ValueError, match="no LLM vectors"):
        export_imagefolder(_stage_dir(sample_run, "ingest"), out, ExportConfig(prompt2vec="13B/39"), progress=False)
    with pytest.raises(ValueError, match="LLM/LAYER"):
        ExportConfig(prompt2vec="13B")
    assert not out.exists() and not list(tmp_path.glob(".export.partial-*"))


def test_an_export_appears_whole_or_not_at_all(sample_run, tmp_path, monkeypatch):
    import surd.export.imagefolder as mod

    stage, out = _stage_dir(sample_run, "embed"), tmp_path / "export"

    def crash(*args, **kwargs):
        raise RuntimeError("killed while writing prompt2vec")

    monkeypatch.setattr(mod, "export_prompt2vec", crash)
    with pytest.raises(RuntimeError, match="killed"):
        export_imagefolder(stage, out, ExportConfig(prompt2vec=f"tiny/{_layer(stage)}"), progress=False)
    assert not out.exists() and not list(tmp_path.glob(".export.partial-*"))
    monkeypatch.undo()
    (out / "something").parent.mkdir()
    (out / "something").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        export_imagefolder(stage, out, progress=False)


def test_cli_exports_an_uncaptioned_stage_and_says_text_is_empty(sample_run, tmp_path):
    from typer.testing import CliRunner

    from surd.cli import app

    result = CliRunner().invoke(app, ["export", "imagefolder", str(_stage_dir(sample_run, "ingest")), "--out",
                                      str(tmp_path / "e"), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "train 32 samples" in result.output and "32 have no simple prompt yet" in result.output
    theirs = load("imagefolder", tmp_path / "hf", data_dir=str(tmp_path / "e"))["train"]
    assert theirs.num_rows == 32 and set(theirs["text"]) == {""}
