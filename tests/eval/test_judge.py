"""People as the reference judge: the blind yes/no page, answers journaled by the review server behind its access
checks, imported labels → the human accuracy per type and each automated judge's accuracy and Cohen's κ against
people (checked by hand), and the disagreement list in the report."""

from __future__ import annotations

import json
import shutil
import threading

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")

from typer.testing import CliRunner  # noqa: E402

from surd.cli import app  # noqa: E402
from surd.eval.judge import KEY_NAME, SERVER_FORMAT, JudgeState, checks, export_judge  # noqa: E402
from surd.eval.prompts import load_prompt_set  # noqa: E402
from surd.review.journal import read_journal  # noqa: E402
from surd.review.server import ServeConfig, make_server  # noqa: E402
from tests.eval.test_evaluate import PROMPTS, eval_args  # noqa: E402

runner = CliRunner()
FORMAT = "surd-eval-judge-answers"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Images of a baseline and an (untrained, non-zero) adapter, judged by VQA and the detector."""
    import torch

    from surd.adapter.config import AdapterConfig
    from surd.adapter.model import SURAdapter

    root = tmp_path_factory.mktemp("eval_judge")
    torch.manual_seed(0)
    adapter = SURAdapter(AdapterConfig(text_dim=32, llm_dim=16, ff_dim=64, eta=0.5))
    with torch.no_grad():
        adapter.g.weight.normal_(0, 0.5)
    adapter.save_pretrained(root / "05_train_adapter")
    (root / "prompts.json").write_text(json.dumps(PROMPTS))
    res = runner.invoke(app, eval_args(root / "05_train_adapter", root / "eval", root / "prompts.json",
                                       "--metrics", "clip,vqa,detect"))
    assert res.exit_code == 0, res.output
    return root


def answers_doc(site_id: str, rater: str, answers: dict[str, str]) -> dict:
    return {"format": FORMAT, "version": 1, "site_id": site_id, "rater": rater,
            "answers": {k: {"answer": a} for k, a in answers.items()}}


def test_checks_say_what_the_prompt_asks():
    paper = {p.id: p for p in load_prompt_set("paper").prompts}
    assert checks(paper["paper-counting-01"]) == ["exactly 4 pies (count them)"]
    assert checks(paper["paper-color-02"]) == ["the glass is blue", "the juice is red"]
    assert checks(paper["paper-action-03"]) == ["the chef is tossing pizza dough in the air"]
    assert checks(paper["paper-action-02"]) == ["Are the giraffes eating trees? → yes"]


def test_export_is_blind_and_keyed(run, tmp_path):
    out = tmp_path / "eval"
    shutil.copytree(run / "eval", out)
    res = runner.invoke(app, ["eval", "judge", "export", str(out), "--out", str(tmp_path / "site")])
    assert res.exit_code == 0, res.output
    data = (tmp_path / "site" / "data" / "judge.js").read_text()
    assert "baseline" not in data and "train_adapter" not in data  # nothing names a model
    key = json.loads((out / KEY_NAME).read_text())
    assert len(key["items"]) == 12 and {i["model"] for i in key["items"].values()} == {"baseline", "05_train_adapter"}
    assert "exactly 3 pies (count them)" in data and "the car is red" in data
    assert len(list((tmp_path / "site" / "images").glob("*.png"))) == 12
    # a sample of one model's counting images only
    res = runner.invoke(app, ["eval", "judge", "export", str(out), "--out", str(tmp_path / "s2"), "--images", "1",
                              "--model", "baseline", "--type", "counting"])
    assert res.exit_code == 0, res.output
    key = json.loads((out / KEY_NAME).read_text())
    assert [(i["model"], i["type"]) for i in key["items"].values()] == [("baseline", "counting")]
    with pytest.raises(FileExistsError, match="not empty"):
        export_judge(out, tmp_path / "s2")
    with pytest.raises(ValueError, match="unknown model"):
        export_judge(out, tmp_path / "s3", cfg=__import__("surd.eval.judge", fromlist=["JudgeConfig"]).JudgeConfig(
            models=("nope",)))


def test_served_answers_are_journaled_behind_the_access_checks(run, tmp_path):
    from tests.review.test_review import JSON, request

    out = tmp_path / "eval"
    shutil.copytree(run / "eval", out)
    export_judge(out, tmp_path / "site")
    key = json.loads((out / KEY_NAME).read_text())
    ids = sorted(key["items"])
    token = "j" * 24
    server = make_server(tmp_path / "site", cfg=ServeConfig(port=0, token=token), state_class=JudgeState)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port, auth = server.server_port, {"Authorization": f"Bearer {token}"}
    doc = answers_doc(key["site_id"], "ann", {ids[0]: "yes", ids[1]: "no", ids[2]: "skip"})
    try:
        assert request(port, "GET", "/api/decisions")[0] == 401
        assert request(port, "POST", "/api/decisions", json.dumps(doc).encode(), JSON)[0] == 401
        assert request(port, "POST", "/api/decisions", json.dumps(doc).encode(), auth)[0] == 415
        status, body = request(port, "POST", "/api/decisions", json.dumps(doc).encode(), {**JSON, **auth})
        assert (status, json.loads(body)) == (200, {"saved": 3})
        doc["answers"][ids[1]] = {"answer": "yes"}  # a changed mind: the page sends the rater's whole document
        assert request(port, "POST", "/api/decisions", json.dumps(doc).encode(), {**JSON, **auth})[0] == 200
        bad = answers_doc(key["site_id"], "bob", {"nope": "yes"})
        status, body = request(port, "POST", "/api/decisions", json.dumps(bad).encode(), {**JSON, **auth})
        assert status == 400 and "not on this judging page" in json.loads(body)["problems"][0]
        bad = answers_doc(key["site_id"], "bob", {ids[0]: "maybe"})
        status, body = request(port, "POST", "/api/decisions", json.dumps(bad).encode(), {**JSON, **auth})
        assert status == 400 and "yes, no or skip" in json.loads(body)["problems"][0]
        status, body = request(port, "GET", "/api/decisions", headers=auth)
        got = json.loads(body)
        # "can't tell" on an image never answered stores nothing (it counts for neither and is asked again later)
        assert got["format"] == SERVER_FORMAT and got["raters"]["ann"]["answers"] == {
            ids[0]: {"answer": "yes"}, ids[1]: {"answer": "yes"}}
        status, body = request(port, "GET", "/api/status", headers=auth)
        assert json.loads(body) == {"n": 12, "raters": [{"name": "ann", "answered": 2}]}
    finally:
        server.shutdown()
        server.server_close()
    journal = read_journal(tmp_path / "site" / "decisions.jsonl")  # every answer, in order, by its rater
    assert [(r["key"], r["decision"], r["reviewer"]) for r in journal.records] == [
        (f"{ids[0]}|ann", "accept", "ann"), (f"{ids[1]}|ann", "reject", "ann"), (f"{ids[1]}|ann", "accept", "ann")]
    with pytest.raises(ValueError, match="not a judge page"):
        (tmp_path / "rev").mkdir()
        (tmp_path / "rev" / "site.json").write_text(json.dumps({"format": "surd-eval-study-site", "keys": []}))
        JudgeState(tmp_path / "rev", ServeConfig(port=0))


def kappa_by_hand(pairs: list[tuple[bool, bool]]) -> float:
    n = len(pairs)
    p_o = sum(a == b for a, b in pairs) / n
    ya, yb = sum(a for a, _ in pairs) / n, sum(b for _, b in pairs) / n
    p_e = ya * yb + (1 - ya) * (1 - yb)
    return (p_o - p_e) / (1 - p_e)


def test_imported_labels_give_human_accuracy_and_each_judges_kappa(run, tmp_path):
    from surd.eval.evaluate import load_config
    from surd.eval.score import load_all_scores

    out = tmp_path / "eval"
    shutil.copytree(run / "eval", out)
    export_judge(out, tmp_path / "site")
    key = json.loads((out / KEY_NAME).read_text())
    scores = load_all_scores(load_config(out), ["baseline", "05_train_adapter"])
    items = sorted(key["items"].items())
    row = {iid: scores[i["model"]][(i["prompt_id"], i["seed"])] for iid, i in items}
    vqa = {iid: bool(r["correct"]) for iid, r in row.items()}
    # People: ann agrees with VQA except on the first three images, bob says yes to all but the last two, cy says
    # what ann says; so the majority is ann's (cy sides with her).
    ann = {iid: ("yes" if (v if n >= 3 else not v) else "no") for n, (iid, v) in enumerate(vqa.items())}
    bob = {iid: ("yes" if n < len(items) - 2 else "no") for n, (iid, _) in enumerate(items)}
    files = []
    for name, answers in (("ann", ann), ("bob", bob), ("cy", ann)):
        f = tmp_path / f"{name}.json"
        f.write_text(json.dumps(answers_doc(key["site_id"], name, answers)))
        files.append(str(f))
    res = runner.invoke(app, ["eval", "judge", "import", str(out), *files])
    assert res.exit_code == 0, res.output
    results = json.loads((out / "results.json").read_text())
    human = results["human"]
    people = {iid: ann[iid] == "yes" for iid in vqa}
    pairs = [(vqa[iid], people[iid]) for iid in vqa]
    assert human["raters"] == ["ann", "bob", "cy"] and human["images"] == 12
    assert human["judges"]["vqa"]["n"] == 12 and human["judges"]["vqa"]["accuracy"] == pytest.approx(9 / 12)
    expected_kappa = kappa_by_hand(pairs)
    assert human["judges"]["vqa"]["kappa"] == pytest.approx(expected_kappa) if expected_kappa == expected_kappa else \
        human["judges"]["vqa"]["kappa"] is None
    det = {iid: r["detect"]["correct"] for iid, r in row.items() if "detect" in r}
    assert human["judges"]["detect"]["n"] == len(det) == 8  # counting and colour images only
    assert human["judges"]["detect"]["accuracy"] == pytest.approx(
        sum(det[i] == people[i] for i in det) / len(det))
    # The human accuracy per type is the share of images people said yes to.
    for t in ("action", "color", "counting"):
        for m in ("baseline", "05_train_adapter"):
            mine = [people[iid] for iid, i in items if i["model"] == m and i["type"] == t]
            h = results["per_type"][t]["models"][m]["judges"]["human"]
            assert (h["k"], h["n"]) == (sum(mine), len(mine))
    # Disagreements: three for VQA (the flipped images), each linking to its image in the grid.
    vqa_dis = [x for x in human["disagreements"] if x["judge"] == "vqa"]
    assert len(vqa_dis) == 3 and all(x["judge_says"] != x["people_say"] for x in vqa_dis)
    html = (out / "report.html").read_text()
    assert "The judges against people" in html and "3 rater(s), 12 image(s)" in html and "people say" in html
    for x in vqa_dis:
        anchor = f"i-{x['model']}-{x['prompt_id']}-{x['seed']}"
        assert f'href="#{anchor}"' in html and f'id="{anchor}"' in html and f'href="{x["image"]}"' in html
    assert "baseline · people" in html
    # Raters' own agreement: ann = cy always; bob differs from them where their answers differ.
    ra = human["rater_agreement"]
    same = sum(ann[i] == bob[i] for i in ann)
    assert ra["n"] == 3 * 12 and ra["agree"] == pytest.approx((12 + 2 * same) / 36)


def test_bad_answers_are_refused_whole(run, tmp_path):
    out = tmp_path / "eval"
    shutil.copytree(run / "eval", out)
    export_judge(out, tmp_path / "site")
    key = json.loads((out / KEY_NAME).read_text())
    good = tmp_path / "good.json"
    good.write_text(json.dumps(answers_doc(key["site_id"], "ann", {next(iter(key["items"])): "yes"})))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(answers_doc("other", "bob", {})))
    res = runner.invoke(app, ["eval", "judge", "import", str(out), str(good), str(bad)])
    assert res.exit_code == 2 and "different judge page" in res.output
    assert not (out / "judge_labels.json").exists()
    res = runner.invoke(app, ["eval", "judge", "import", str(out), str(good), str(good)])
    assert res.exit_code == 2 and "appears twice" in res.output
    res = runner.invoke(app, ["eval", "judge", "import", str(out), str(tmp_path / "site")])
    assert res.exit_code == 2 and "was this judging page served" in res.output
