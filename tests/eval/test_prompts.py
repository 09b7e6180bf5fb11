"""Evaluation prompt sets (bundled and user files) and the VQA answer normaliser on real sentences."""

from __future__ import annotations

import json

import pytest

from surd.eval.answers import is_correct, normalise, parse_colors, parse_count, parse_yes_no
from surd.eval.prompts import load_prompt_set, plural


def test_bundled_paper_set_has_15_prompts_per_type_with_questions():
    ps = load_prompt_set("paper")
    assert {t: len(p) for t, p in ps.by_type().items()} == {"action": 15, "color": 15, "counting": 15}
    assert len({p.id for p in ps.prompts}) == 45
    # The paper's 18 printed prompts, six per type, completed with surd's own (tests/eval/test_paper.py: verbatim).
    assert ps.count_by_source() == {"paper": 18, "surd": 27}
    assert all(sum(p.source == "paper" for p in group) == 6 for group in ps.by_type().values())
    by_id = {p.id: p for p in ps.prompts}
    assert [(q.question, q.answer) for q in by_id["paper-counting-01"].questions] == [("How many pies are there?", "4")]
    assert [(q.question, q.answer) for q in by_id["counting-12"].questions] == [("How many people are there?", "2")]
    assert [(q.question, q.answer) for q in by_id["color-01"].questions] == [
        ("What color is the car?", "red"), ("What color is the house?", "blue")]
    assert [(q.question, q.answer) for q in by_id["paper-action-01"].questions] == [
        ("Is the person shooting a basketball?", "yes")]
    assert [(q.question, q.answer) for q in by_id["paper-color-03"].questions] == [
        ("What colors are the clothes?", "blue"), ("What colors are the clothes?", "yellow")]


def test_plural_rules():
    assert [plural(w) for w in ("pie", "bus", "box", "peach", "cherry", "toy")] == [
        "pies", "buses", "boxes", "peaches", "cherries", "toys"]


def test_user_prompt_file_json_and_yaml(tmp_path):
    doc = {"format": "surd-eval-prompts", "version": 1, "name": "mine", "prompts": [
        {"id": "c1", "type": "counting", "text": "two owls on a branch", "object": "owl", "count": 2},
        {"id": "k1", "type": "color", "text": "a grey wolf", "colors": [{"object": "wolf", "color": "grey"}]},
        {"id": "q1", "type": "action", "text": "a cat asleep", "questions": [{"question": "Is the cat asleep?",
                                                                              "answer": "Yes"}]}]}
    (tmp_path / "mine.json").write_text(json.dumps(doc))
    ps = load_prompt_set(str(tmp_path / "mine.json"))
    assert ps.name == "mine" and ps.count_by_source() == {"user": 3}
    assert ps.prompts[1].questions[0].answer == "gray"  # colour synonyms are canonical
    assert ps.prompts[2].questions[0].answer == "yes"


@pytest.mark.parametrize("entry,match", [
    ({"id": "x", "type": "size", "text": "t"}, "type must be one of"),
    ({"id": "x", "type": "counting", "text": "t", "object": "owl", "count": 0}, "integer 1..20"),
    ({"id": "x", "type": "color", "text": "t", "colors": [{"object": "car", "color": "plaid"}]}, "color out of"),
    ({"id": "x", "type": "action", "text": "t", "subject": "man"}, "needs subject and action"),
    ({"id": "a b", "type": "action", "text": "t"}, "id must be"),
    ({"id": "x", "type": "action", "text": "t", "subject": "a", "action": "b", "source": "web"}, "source must be"),
    ({"id": "x", "type": "action", "text": "t", "subject": "a", "action": "b", "source": "paper"}, "paper_table"),
    ({"id": "x", "type": "counting", "text": "t", "object": "a", "count": 2, "detect": "no"}, "detect must be false"),
])
def test_bad_prompt_entries_name_the_fix(tmp_path, entry, match):
    (tmp_path / "p.yaml").write_text(json.dumps({"format": "surd-eval-prompts", "version": 1, "prompts": [entry]}))
    with pytest.raises(ValueError, match=match):
        load_prompt_set(str(tmp_path / "p.yaml"))


def test_duplicate_ids_and_missing_files(tmp_path):
    e = {"id": "x", "type": "action", "text": "t", "subject": "a", "action": "b"}
    (tmp_path / "p.yaml").write_text(json.dumps({"format": "surd-eval-prompts", "version": 1, "prompts": [e, e]}))
    with pytest.raises(ValueError, match="appears twice"):
        load_prompt_set(str(tmp_path / "p.yaml"))
    with pytest.raises(FileNotFoundError, match="bundled set"):
        load_prompt_set("no-such-set")


@pytest.mark.parametrize("answer,count", [
    ("3", 3), ("three", 3), ("There are three pies on the table.", 3), ("I can see 12 apples", 12),
    ("two dogs", 2), ("a pair of cats", 2), ("a couple", 2), ("one", 1), ("a dog", 1), ("a dozen eggs", 12),
    ("none", 0), ("there are no horses", 0), ("It's 4.", 4), ("a few", None), ("a lot of birds", None), ("many", None),
])
def test_count_answers(answer, count):
    assert parse_count(answer) == count


@pytest.mark.parametrize("answer,colors", [
    ("red", {"red"}), ("It is grey.", {"gray"}), ("The car is crimson", {"red"}), ("red and white", {"red", "white"}),
    ("navy blue", {"blue"}), ("dark green", {"green"}), ("golden", {"gold"}), ("no idea", set()),
])
def test_color_answers(answer, colors):
    assert parse_colors(answer) == colors


@pytest.mark.parametrize("answer,yn", [
    ("yes", "yes"), ("Yes, he is.", "yes"), ("yeah", "yes"), ("no", "no"), ("Nope, he is running.", "no"),
    ("he is not", "no"), ("basketball", None),
])
def test_yes_no_answers(answer, yn):
    assert parse_yes_no(answer) == yn


def test_judging_against_the_expected_answer():
    assert is_correct("There are 3 pies.", "3") and not is_correct("two", "3") and not is_correct("pies", "3")
    assert is_correct("it is dark grey", "gray") and is_correct("red and blue", "blue") and not is_correct("red", "blue")
    assert is_correct("Yes.", "yes") and not is_correct("no", "yes") and not is_correct("holding", "yes")
    assert normalise("Two cats.", "2") == "2" and normalise("grey and white", "gray") == "gray,white"
