"""`surd card`: README.md (a Hugging Face dataset card), croissant.json, card.html and provenance.parquet from a run's
own records, read back with the libraries others use (datasets, mlcroissant, pyarrow)."""

from __future__ import annotations

import json
import shutil

import pyarrow.parquet as pq
import pytest
import yaml

from surd.export.card import NEEDS_PERSON, card, load_about, run_job, size_category
from surd.pipeline import load_pipeline, run_pipeline
from tests.card_run import REPO, make_run

ABOUT = {"pretty_name": "Card test set", "motivation": "To test the card.", "maintainer": "Jo Doe",
         "contact": "jo@example.org", "uses": ["training the SUR-adapter"], "out_of_scope": "faces",
         "limitations": "tiny", "maintenance": "none", "personal_information": "none known", "funding": "none",
         "sources": {"alpha": {"license_link": "https://creativecommons.org/publicdomain/zero/1.0/",
                               "terms": "CC0"}, "beta": {"terms": "beta gallery terms of use"}}}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("card"))


def front(path):
    text = path.read_text()
    assert text.startswith("---\n")
    head, _, body = text[4:].partition("\n---\n")
    return yaml.safe_load(head), body


def test_card_writes_the_four_files_into_the_run(run_dir):
    result = card(str(run_dir))
    for name in ("README.md", "croissant.json", "card.html", "provenance.parquet", "LICENSE.md"):
        assert (run_dir / name).is_file(), name
    assert (result["kept"], result["seen"]) == (6, 9)
    meta, body = front(run_dir / "README.md")
    assert meta["task_categories"] == ["text-to-image"] and meta["size_categories"] == ["n<1K"]
    # two sources under different terms: "other", the terms in LICENSE.md
    assert (meta["license"], meta["license_name"], meta["license_link"]) == ("other", "per-source-licenses",
                                                                             "LICENSE.md")
    assert "not-for-all-audiences" in meta["tags"]  # the sailboat is kept and its source flags it NSFW
    assert meta["source_datasets"] == ["original"] and {"alpha", "beta"} <= set(meta["tags"])
    assert meta["configs"] == [{"config_name": "provenance", "data_files": [{"split": "train",
                                                                             "path": "provenance.parquet"}]}]
    assert meta["dataset_info"][0]["splits"][0]["num_examples"] == 9
    for section in ("Motivation", "Composition", "Collection process", "Preprocessing, cleaning and labelling",
                    "Uses", "Distribution", "Maintenance"):
        assert f"## {section}\n" in body, section
    assert "duplicate_image 1" in body and "clip_simple_below_complex 2" in body
    assert "kept 6 of 8 = 75.0% (the paper: 66,408 of 114,148 = 58.2%)" in body
    assert result["needs_person"] > 0 and NEEDS_PERSON in body


def test_the_card_loads_with_datasets_and_the_split_sizes_are_checked(run_dir, tmp_path):
    datasets = pytest.importorskip("datasets")
    card(str(run_dir))
    prov = datasets.load_dataset(str(run_dir), "provenance", split="train", cache_dir=str(tmp_path / "hf"))
    assert prov.num_rows == 9 and sorted(prov["status"]).count("kept") == 6


def test_about_fills_what_only_a_person_knows(run_dir, tmp_path):
    about = tmp_path / "about.yaml"
    about.write_text(yaml.safe_dump(ABOUT))
    out = tmp_path / "card"
    result = card(str(run_dir), str(out), str(about))
    meta, body = front(out / "README.md")
    assert meta["pretty_name"] == "Card test set" and result["needs_person"] == 0 and NEEDS_PERSON not in body
    assert "Jo Doe (jo@example.org)" in body and "beta gallery terms of use" in (out / "LICENSE.md").read_text()
    assert "`surd release` makes a folder" in body


def test_provenance_parquet_has_a_row_per_sample_and_each_decision(run_dir):
    card(str(run_dir))
    t = pq.read_table(run_dir / "provenance.parquet").to_pylist()
    assert len(t) == 9
    assert {"key", "source", "source_id", "url", "creator", "license", "fetch_time", "sha256", "phash",
            "ingest_status", "dedup_reason", "clip_filter_reason", "rejected_at", "reason"} <= set(t[0])
    assert sorted(r["reason"] for r in t if r["status"] == "rejected") == [
        "clip_simple_below_complex", "clip_simple_below_complex", "duplicate_image"]


def test_bad_about_files_are_refused_with_what_is_allowed(tmp_path):
    bad = tmp_path / "a.yaml"
    bad.write_text("motivaton: typo\n")
    with pytest.raises(ValueError, match="unknown field.*motivaton.*known"):
        load_about(bad)
    with pytest.raises(FileNotFoundError):
        load_about(tmp_path / "missing.yaml")


@pytest.mark.parametrize("n,label", [(0, "n<1K"), (999, "n<1K"), (1000, "1K<n<10K"), (57_603, "10K<n<100K"),
                                     (114_148, "100K<n<1M")])
def test_size_categories_follow_the_hub_labels(n, label):
    assert size_category(n) == label


def test_card_as_the_last_step_of_a_pipeline(tmp_path):
    about = tmp_path / "about.yaml"
    about.write_text(yaml.safe_dump({"pretty_name": "Piped"}))
    rows = [{"image": f"images/{n}.jpg", "complex_prompt": f"a {n}, 8k"} for n in ("castle", "coffee", "volcano")]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    shutil.copytree(REPO / "manifests" / "sample" / "images", tmp_path / "images")
    pipe = tmp_path / "p.yaml"
    pipe.write_text(yaml.safe_dump({"name": "piped", "stages": [
        {"stage": "ingest", "config": {"source": "manifest", "path": str(tmp_path / "m.jsonl")}},
        {"stage": "dedup", "config": {"max_distance": 8}},
        {"stage": "card", "config": {"about": str(about)}}]}))
    results = run_pipeline(pipe, tmp_path / "runs", progress=False)
    assert results[-1][0].stage == "card" and results[-1][1]["kept"] == 3
    out = tmp_path / "runs" / "piped" / "02_card"
    meta, body = front(out / "README.md")
    assert meta["pretty_name"] == "Piped" and "| 01_dedup | 3 | 3 |" in body
    assert "02_card" not in body  # the card's own folder is not a stage of the run
    with pytest.raises(ValueError, match="unknown config key"):
        run_job(str(out), str(out), {"abut": "x"})


def test_paper_sfw_pipeline_ends_with_its_card():
    last = load_pipeline(REPO / "pipelines" / "paper_sfw.yaml").steps[-1]
    assert (last.stage, last.dirname) == ("card", "10_card")
    about = load_about(REPO / last.config["about"])
    assert about.get("motivation") and set(about.get("sources")) == {"civitai", "lexica", "sdonline"}
