"""The paper's prompts and figures as shipped: verbatim against the shared copy of the paper, the bundled prompt sets
against them character for character, and the report's paper columns placed where the run's numbers are."""

from __future__ import annotations

import pytest
import yaml

from surd.eval.paper import FIGURES_PATH, comparison, figures, rows_for, setting_for, settings, table1_rows
from surd.eval.prompts import load_prompt_set
from tests.conftest import REPO

SHARED = REPO.parent / "shared" / "paper" / "sur-adapter-eval.yaml"


@pytest.mark.skipif(not SHARED.exists(), reason="the project's shared copy of the paper's figures is not beside the repo")
def test_shipped_figures_are_the_shared_file_byte_for_byte():
    assert FIGURES_PATH.read_bytes() == SHARED.read_bytes()


def test_paper_prompts_are_verbatim():
    printed = figures()["prompts"]
    assert len(printed) == 18 and {p["type"] for p in printed} == {"action", "color", "counting"}
    paper = load_prompt_set("paper")
    ours = [p for p in paper.prompts if p.source == "paper"]
    assert len(ours) == 18
    by_text = {p["text"]: p for p in printed}
    for p in ours:
        fig = by_text[p.text]  # Table 7's wording, character for character (a KeyError names the prompt)
        assert (p.type, p.spec["paper_table"]) == (fig["type"], fig["table"])
        assert p.spec.get("text_table1") == fig.get("text_table1")
    assert {p.text for p in ours} == set(by_text)
    assert sum("text_table1" in p.spec for p in ours) == 2
    # surd's own prompts never reuse a printed text.
    assert not {p.text for p in paper.prompts if p.source == "surd"} & set(by_text)


def test_table1_set_is_the_nine_prompts_of_tables_1_and_7():
    t1 = load_prompt_set("paper-table1")
    paper = {p.id: p for p in load_prompt_set("paper").prompts}
    expected = [p["text"] for p in figures()["prompts"] if p["table"] == "1, 7"]
    assert [p.text for p in t1.prompts] == expected and len(expected) == 9
    for p in t1.prompts:  # the same entries (ids, questions, detector fields) as in the full set
        assert (p.source, p.questions, p.spec) == (paper[p.id].source, paper[p.id].questions, paper[p.id].spec)


def test_figures_are_what_the_paper_prints():
    t2, t3 = rows_for("DM (1.5) / -")
    assert t2["clip_score"] == [0.498, 0.517] and t2["counting_pct"] == [14.67, 36.67]
    assert t3["brisque"] == [13.85, 14.78, True] and t3["user_preference_pct"] == [48.31, 51.69]
    assert len(settings()) == 12 and "DM (cartoon) / MultiDiffusion" in settings()
    raw = yaml.safe_load(FIGURES_PATH.read_text())
    assert [r["method"] for r in raw["table2"]["rows"]] == [r["method"] for r in raw["table3"]["rows"]]


@pytest.mark.parametrize("config, expected", [
    ({"base": "runwayml/stable-diffusion-v1-5", "pipeline": "sd"}, "DM (1.5) / -"),
    ({"base": "tiny", "pipeline": "sag"}, "DM (1.5) / Self-attention Guidance"),
    ({"base": "nitrosocke/Ghibli-Diffusion", "pipeline": "panorama"}, "DM (cartoon) / MultiDiffusion"),
    ({"base": "tiny", "pipeline": "sd", "paper_setting": "DM (cartoon) / ControlNet (canny)"},
     "DM (cartoon) / ControlNet (canny)"),
])
def test_setting_matches_the_run_or_the_one_named(config, expected):
    assert setting_for(config) == expected


def test_unknown_setting_lists_the_papers():
    with pytest.raises(ValueError, match="DM \\(1.5\\) / MultiDiffusion"):
        setting_for({"base": "tiny", "paper_setting": "DM (2.1) / -"})


def _p(k: int, n: int) -> dict:
    return {"k": k, "n": n, "rate": k / n, "ci95": [0.0, 1.0]}


def test_comparison_puts_each_figure_beside_the_runs():
    results = {
        "config": {"base": "tiny", "pipeline": "sd"}, "models": ["baseline", "sur"],
        "per_type": {
            "all": {"paired_clip": {"sur": {"adapter": {"mean": 0.6}, "baseline": 0.4}}, "models": {}},
            "counting": {"paired_clip": {}, "models": {
                "baseline": {"judges": {"vqa": _p(1, 4), "detect": _p(2, 4)}},
                "sur": {"judges": {"vqa": _p(3, 4), "detect": None}}}},
        },
        "per_prompt": {"paper-counting-01": {"type": "counting", "text": "Four freshly baked pies.",
                                             "models": {"baseline": {"vqa": _p(1, 2)}, "sur": {"vqa": _p(2, 2)}}},
                       "counting-02": {"type": "counting", "text": "Two dogs playing in the snow.",
                                       "models": {"baseline": {"vqa": _p(0, 2)}, "sur": {"vqa": _p(0, 2)}}}},
        "quality": {"brisque": {"models": {"baseline": {"mean": 20.0}, "sur": {"mean": 21.0}},
                                "tests": {"sur": {"unchanged": False}}}},
        "preference": {"adapters": {"sur": {"rate": 0.75}}},
    }
    c = comparison(results)
    assert c["setting"] == "DM (1.5) / -" and "2305.05189" in c["source"]
    rows = {(r["metric"], r.get("judge")): r for r in c["tables"]}
    assert rows[("CLIP score (paired softmax)", None)]["run"] == {"sur": 0.6, "baseline": 0.4}
    assert (rows[("CLIP score (paired softmax)", None)]["paper_baseline"],
            rows[("CLIP score (paired softmax)", None)]["paper_sur_adapter"]) == (0.498, 0.517)
    assert rows[("counting accuracy %", "vqa")]["run"] == {"baseline": 25.0, "sur": 75.0}
    assert rows[("counting accuracy %", "detect")]["run"] == {"baseline": 50.0, "sur": None}
    assert rows[("counting accuracy %", "vqa")]["paper_sur_adapter"] == 36.67
    assert ("action accuracy %", "vqa") not in rows  # no action prompts in this run
    b = rows[("brisque", None)]
    assert (b["paper_baseline"], b["paper_sur_adapter"], b["paper_unchanged"], b["run_unchanged"]) == (
        13.85, 14.78, True, {"sur": False})
    assert rows[("user preference %", None)]["run"] == {"sur": 75.0, "baseline": 25.0}
    t1 = table1_rows(results)
    assert [r["prompt_id"] for r in t1] == ["paper-counting-01"]  # surd's own prompts have no paper figure
    assert (t1[0]["paper_baseline"], t1[0]["paper_sur_adapter"]) == (63.08, 73.85)
    assert t1[0]["run"] == {"baseline": {"vqa": 50.0}, "sur": {"vqa": 100.0}} and t1[0]["images"]["sur"] == 2
