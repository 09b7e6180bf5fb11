"""The numbers a card states, each checked against what the test run was built to contain."""

from __future__ import annotations

import json

import pytest

from surd.export.figures import PAPER_CLIP, figures, words
from surd.export.runinfo import read_run
from tests.card_run import make_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return read_run(make_run(tmp_path_factory.mktemp("figures")))


def test_funnel_sources_and_rates(run):
    f = figures(run)
    assert [(s["stage"], s["in"], s["kept"], s["rejected"]) for s in f["funnel"]] == [
        ("00_ingest", 9, 8, {"duplicate_image": 1}), ("01_dedup", 8, 8, {}),
        ("02_clip_filter", 8, 6, {"clip_simple_below_complex": 2})]
    assert f["clip_filter"]["rate"] == 6 / 8 and round(100 * f["clip_filter"]["paper_rate"], 1) == 58.2
    assert f["clip_filter"]["paper"] == PAPER_CLIP == {"in": 114_148, "kept": 66_408}
    assert f["near_duplicates"] == {"stage": "01_dedup", "in": 8, "rejected": 0, "rate": 0.0}
    alpha, beta = f["sources"]["alpha"], f["sources"]["beta"]
    assert (alpha["seen"], alpha["kept"], beta["seen"], beta["kept"]) == (5, 3, 4, 3)
    assert alpha["licenses"] == {"CC0-1.0": 5} and beta["licenses"] == {"Beta gallery terms": 4}
    assert alpha["nsfw_levels"] == {"nsfw": 1, "unrated": 4} and alpha["nsfw_rate"] == 1 / 5
    assert f["nsfw_kept"] == 1 and f["robots"] == {"robots_txt": "honoured", "opt_out_headers": "honoured"}
    assert f["fetched"]["start"] <= f["fetched"]["end"]


def test_prompt_lengths_models_and_versions(run):
    f = figures(run)
    pl = f["prompt_lengths"]
    assert pl["simple"]["n"] == pl["complex"]["n"] == 6
    assert pl["simple"]["mean"] < pl["complex"]["mean"]  # "a photo of X" vs the keyword prompt
    assert sum(b["n"] for b in pl["complex"]["histogram"]) == 6
    assert {"stage": "02_clip_filter", "role": "model", "id": "tiny",
            "kind": "tiny: small random model built in code (tests and smoke runs)"} in f["models"]
    assert [v["stage"] for v in f["versions"]] == ["00_ingest", "01_dedup", "02_clip_filter"]
    assert all(len(v["config_sha256"]) == 64 for v in f["versions"])
    assert len(f["scores"]["clip_margin"]) == 8  # every sample the CLIP stage scored, kept or not
    assert words("a, b  c") == 3


def test_review_figures_from_the_decision_files(run, tmp_path):
    stage = run.data_stages[-1]
    keys = [r["key"] for r in run.rows if r["status"] == "kept"]
    a = {"format": "surd-review-decisions", "version": 1,
         "decisions": {k: {"decision": "accept", "note": "", "reviewer": "ann"} for k in keys}}
    b = {"format": "surd-review-decisions", "version": 1,
         "decisions": {k: {"decision": "accept" if i else "reject", "note": "", "reviewer": "bob"}
                       for i, k in enumerate(keys[:4])}}
    files = [tmp_path / "a" / "decisions.json", tmp_path / "b" / "decisions.json"]
    for path, doc in zip(files, (a, b)):
        path.parent.mkdir()
        path.write_text(json.dumps(doc))
    stage.stage, stage.config = "review", {"decisions": [str(p) for p in files], "conflict": "accept"}
    try:
        rv = figures(run)["review"]
    finally:
        stage.stage = "clip_filter"
    assert rv["agreement"]["paired"] == 4 and rv["agreement"]["agree"] == 3 and rv["agreement"]["percent"] == 75.0
