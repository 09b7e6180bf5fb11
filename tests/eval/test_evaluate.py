"""`surd eval` end to end on tiny models: an adapter trained the way the sample pipeline trains it, generation with
identical seeds, every metric through its library, the report's four tables and grids, resumption, the study's
answers, compare, and the pipeline step."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("pyiqa")
pytest.importorskip("torchmetrics")
pytest.importorskip("matplotlib")

from typer.testing import CliRunner  # noqa: E402

from surd.cli import app  # noqa: E402
from tests.adapter.test_train import make_dataset  # noqa: E402

runner = CliRunner()
PROMPTS = {"format": "surd-eval-prompts", "version": 1, "name": "mini", "prompts": [
    {"id": "count", "type": "counting", "source": "surd", "text": "Three pies on a table.", "object": "pie", "count": 3},
    {"id": "color", "type": "color", "source": "surd", "text": "A red car next to a blue house.",
     "colors": [{"object": "car", "color": "red"}, {"object": "house", "color": "blue"}]},
    {"id": "act", "type": "action", "source": "surd", "text": "A man shooting a basketball.", "subject": "man",
     "action": "shooting a basketball"}]}


def eval_args(adapter: Path, out: Path, prompts: Path, *extra: str) -> list[str]:
    return ["eval", "--base", "tiny", "--adapter", str(adapter), "--prompts", str(prompts), "--images-per-prompt", "2",
            "--steps", "2", "--tiny-metrics", "--device", "cpu", "--out", str(out), *extra]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Train a tiny adapter with the sample pipeline's library call, then evaluate it once."""
    from surd.adapter.train import run_job

    root = tmp_path_factory.mktemp("eval_flow")
    data = make_dataset(root / "04_embed", n=4, shards=1)
    # The sample pipeline's train_adapter step (pipelines/sample.yaml), fewer steps.
    run_job(data, root / "05_train_adapter", {"base": "tiny", "max_steps": 2, "batch_size": 2, "grad_accum": 1,
                                              "checkpoint_every": 2, "lr": 1e-4, "progress": False})
    (root / "prompts.json").write_text(json.dumps(PROMPTS))
    res = runner.invoke(app, eval_args(root / "05_train_adapter", root / "eval", root / "prompts.json"))
    assert res.exit_code == 0, res.output
    return root


def test_report_has_four_tables_charts_and_grids(run):
    out = run / "eval"
    results = json.loads((out / "results.json").read_text())
    assert results["models"] == ["baseline", "05_train_adapter"] and results["seeds"] == [0, 1]
    assert results["timing"]["generated"] == 12 and results["timing"]["scored"] == 12
    for t in ("action", "color", "counting", "all"):
        entry = results["per_type"][t]
        for m in results["models"]:
            assert entry["models"][m]["semantic_accuracy"]["n"] == (6 if t == "all" else 2)
            assert entry["models"][m]["clipscore"]["n"] == (6 if t == "all" else 2)
        paired = entry["paired_clip"]["05_train_adapter"]
        assert paired["baseline"] + paired["adapter"]["mean"] == pytest.approx(1.0)
    for metric in ("brisque", "clip_iqa", "musiq"):
        q = results["quality"][metric]
        assert q["models"]["baseline"]["n"] == 12 // 2 and q["tests"]["05_train_adapter"]["p"] is not None
    for t in ("color", "counting"):  # both judges on counting and colour, and how often they agree
        entry = results["per_type"][t]
        assert all(entry["models"][m]["judges"]["detect"]["n"] == 2 for m in results["models"])
        assert entry["judge_agreement"]["n"] == 4
    assert results["per_type"]["action"]["models"]["baseline"]["judges"]["detect"] is None  # action stays with VQA
    assert results["per_type"]["action"]["judge_agreement"]["n"] == 0
    for metric in ("brisque", "clip_iqa", "musiq"):  # the paper's test and Welch's
        q = results["quality"][metric]
        assert q["tests"]["05_train_adapter"]["df"] == 6 + 6 - 2 and q["welch"]["05_train_adapter"]["p"] is not None
    paper = results["paper"]
    assert paper["setting"] == "DM (1.5) / -" and "2305.05189" in paper["source"]
    got = {(r["metric"], r.get("judge")) for r in paper["tables"]}
    assert {("CLIP score (paired softmax)", None), ("action accuracy %", "vqa"), ("counting accuracy %", "detect"),
            ("brisque", None), ("musiq", None), ("clip_iqa", None)} <= got
    html = (out / "report.html").read_text()
    for title in ("1. CLIP score", "2. Semantic accuracy", "3. Image quality", "4. Preference study",
                  "5. The paper's figures beside this run's", "Tables 1/7: per-prompt accuracy"):
        assert title in html
    for cell in ("baseline · detector", "05_train_adapter · VQA", "VQA vs detector", "paper · SUR-adapter", "0.517",
                 "Welch t, p", "t-test t, p", "detector ✓ found" if "✓ found" in html else "detector ✗ found"):
        assert cell in html
    assert html.count("<table") >= 3 + 3  # three result tables + one grid per prompt; the 4th waits for answers
    for chart in ("semantic_accuracy.png", "clipscore.png", "paired_clip.png", "quality.png"):
        assert (out / "charts" / chart).stat().st_size > 1000 and f"charts/{chart}" in html
    for model in results["models"]:
        for pid in ("count", "color", "act"):
            for seed in (0, 1):
                assert f'src="images/{model}/{pid}/{seed}.png"' in html
                assert (out / "images" / model / pid / f"{seed}.png").is_file()
    rows = (out / "results.csv").read_text().splitlines()
    assert len(rows) == 1 + 12 and rows[0].startswith("model,prompt_id,type")


def test_same_seed_same_noise_and_the_adapter_changes_images(run):
    import numpy as np
    from PIL import Image

    out = run / "eval" / "images"
    base0 = np.asarray(Image.open(out / "baseline" / "count" / "0.png"), dtype=np.int16)
    base1 = np.asarray(Image.open(out / "baseline" / "count" / "1.png"), dtype=np.int16)
    adapted0 = np.asarray(Image.open(out / "05_train_adapter" / "count" / "0.png"), dtype=np.int16)
    assert np.abs(base0 - base1).max() > 0  # different seeds
    # The adapter output is η·adapter + (1-η)·text features, so the same seed gives a related, different image.
    assert np.abs(base0 - adapted0).max() > 0


def test_rerun_resumes_only_what_is_missing(run, tmp_path):
    out = tmp_path / "eval"
    shutil.copytree(run / "eval", out)
    victims = [out / "images" / "baseline" / "color" / "1.png", out / "images" / "05_train_adapter" / "act" / "0.png",
               out / "images" / "05_train_adapter" / "count" / "1.png"]
    before = [v.read_bytes() for v in victims]
    for v in victims:
        v.unlink()
    kept = out / "images" / "baseline" / "count" / "0.png"
    mtime = kept.stat().st_mtime_ns
    res = runner.invoke(app, eval_args(run / "05_train_adapter", out, run / "prompts.json"))
    assert res.exit_code == 0, res.output
    timing = json.loads((out / "results.json").read_text())["timing"]
    # Each image is generated alone from its own seed: regenerated, it has the bytes the uninterrupted run wrote,
    # so its score rows (tied to the bytes) still hold and nothing is rescored.
    assert timing["generated"] == 3 and timing["scored"] == 0
    assert [v.read_bytes() for v in victims] == before and kept.stat().st_mtime_ns == mtime
    shutil.copyfile(victims[1], kept)  # other bytes under a done image's name: its score row is stale
    res = runner.invoke(app, eval_args(run / "05_train_adapter", out, run / "prompts.json"))
    timing = json.loads((out / "results.json").read_text())["timing"]
    assert (timing["generated"], timing["scored"]) == (0, 1)
    # Other sampler settings in the same folder would mix images: refused with the fix.
    res = runner.invoke(app, eval_args(run / "05_train_adapter", out, run / "prompts.json", "--guidance", "3"))
    assert res.exit_code != 0 and "new --out" in str(res.exception)


def test_batch_size_is_a_speed_knob_only(run, tmp_path):
    """Generation does not batch images, so another --batch-size gives the same bytes and may share the folder."""
    out = tmp_path / "eval"
    res = runner.invoke(app, eval_args(run / "05_train_adapter", out, run / "prompts.json", "--batch-size", "1"))
    assert res.exit_code == 0, res.output
    images = sorted(p.relative_to(out) for p in (out / "images").rglob("*.png"))
    assert len(images) == 12 and images == sorted(p.relative_to(run / "eval") for p in (run / "eval" / "images").rglob("*.png"))
    assert all((out / p).read_bytes() == (run / "eval" / p).read_bytes() for p in images)  # the module run used 8
    (out / images[0]).unlink()
    res = runner.invoke(app, eval_args(run / "05_train_adapter", out, run / "prompts.json", "--batch-size", "4"))
    assert res.exit_code == 0, res.output
    assert (out / images[0]).read_bytes() == (run / "eval" / images[0]).read_bytes()


def test_study_answers_become_a_preference_table(run, tmp_path):
    from surd.eval.stats import preference
    from surd.eval.study import KEY_NAME

    out = tmp_path / "eval"
    shutil.copytree(run / "eval", out)
    res = runner.invoke(app, ["eval", "study", "export", str(out), "--out", str(tmp_path / "site")])
    assert res.exit_code == 0, res.output
    data = (tmp_path / "site" / "data" / "study.js").read_text()
    assert "baseline" not in data and "train_adapter" not in data  # blind: nothing names a model
    key = json.loads((out / KEY_NAME).read_text())
    pairs = key["pairs"]
    assert len(pairs) == 6 and {p["left"] for p in pairs.values()} == {"baseline", "05_train_adapter"}
    # Two raters: one always picks the adapter's side, one always the left side, one skip.
    ids = sorted(pairs)
    adapter_side = {pid: ("left" if p["left"] != "baseline" else "right") for pid, p in pairs.items()}
    docs = [{"rater": "ann", "answers": {pid: {"choice": adapter_side[pid]} for pid in ids}},
            {"rater": "bob", "answers": {pid: {"choice": "left"} for pid in ids[:-1]} | {ids[-1]: {"choice": "skip"}}}]
    files = []
    for d in docs:
        f = tmp_path / f"{d['rater']}.json"
        f.write_text(json.dumps({"format": "surd-eval-study-answers", "version": 1, "site_id": key["site_id"], **d}))
        files.append(str(f))
    res = runner.invoke(app, ["eval", "study", "import", str(out), *files])
    assert res.exit_code == 0, res.output
    wins = 6 + sum(pairs[pid]["left"] != "baseline" for pid in ids[:-1])
    expected = preference(wins, 11 - wins)
    got = json.loads((out / "study_results.json").read_text())["adapters"]["05_train_adapter"]
    assert (got["wins"], got["losses"], got["p"]) == (expected["wins"], expected["losses"], expected["p"])
    assert sum(v["n"] for v in got["by_type"].values()) == 11
    html = (out / "report.html").read_text()
    assert "2 rater(s), 11 answers" in html and "binomial p" in html
    # A bad file is refused whole, naming the problem.
    (tmp_path / "bad.json").write_text(json.dumps({"format": "surd-eval-study-answers", "version": 1,
                                                   "site_id": key["site_id"], "rater": "cy",
                                                   "answers": {"nope": {"choice": "left"}}}))
    res = runner.invoke(app, ["eval", "study", "import", str(out), str(tmp_path / "bad.json")])
    assert res.exit_code == 2 and "not in this study" in res.output


def test_study_server_keeps_answers_behind_the_review_servers_checks(run, tmp_path):
    """The study is served by the review server with its own answer store: the token, Content-Type and validation
    checks apply; each rater's whole document is saved to SITE/answers/ and comes back on GET."""
    import threading

    from surd.eval.study import KEY_NAME, SERVER_FORMAT, StudyState, export_study
    from surd.review.server import ServeConfig, make_server
    from tests.review.test_review import JSON, request

    out = tmp_path / "eval"
    shutil.copytree(run / "eval", out)
    export_study(out, tmp_path / "site")
    key = json.loads((out / KEY_NAME).read_text())
    ids = sorted(key["pairs"])
    doc = {"format": "surd-eval-study-answers", "version": 1, "site_id": key["site_id"], "rater": "ann",
           "answers": {ids[0]: {"choice": "left", "ms": 900}, ids[1]: {"choice": "skip", "ms": 400}}}
    token = "s" * 24
    server = make_server(tmp_path / "site", cfg=ServeConfig(port=0, token=token), state_class=StudyState)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port, auth = server.server_port, {"Authorization": f"Bearer {token}"}
    try:
        assert request(port, "GET", "/api/decisions")[0] == 401  # no token
        assert request(port, "POST", "/api/decisions", json.dumps(doc).encode(), JSON)[0] == 401
        assert request(port, "POST", "/api/decisions", json.dumps(doc).encode(), auth)[0] == 415  # not JSON
        status, body = request(port, "POST", "/api/decisions", json.dumps(doc).encode(), {**JSON, **auth})
        assert (status, json.loads(body)) == (200, {"saved": 2})
        bad = {**doc, "answers": {"nope": {"choice": "left"}}}
        status, body = request(port, "POST", "/api/decisions", json.dumps(bad).encode(), {**JSON, **auth})
        assert status == 400 and "not in this study" in json.loads(body)["problems"][0]
        status, body = request(port, "GET", "/api/decisions", headers=auth)
        got = json.loads(body)
        assert status == 200 and got["format"] == SERVER_FORMAT and got["raters"] == {"ann": doc}
        status, body = request(port, "GET", "/api/status", headers=auth)
        assert json.loads(body) == {"n": len(ids), "raters": [{"name": "ann", "answered": 2}]}
        assert request(port, "GET", "/index.html", headers=auth)[0] == 200
    finally:
        server.shutdown()
        server.server_close()
    saved = list((tmp_path / "site" / "answers").glob("*.json"))
    assert len(saved) == 1 and json.loads(saved[0].read_text()) == doc
    with pytest.raises(ValueError, match="not a study page"):  # a review site is not served as a study
        (tmp_path / "rev").mkdir()
        (tmp_path / "rev" / "site.json").write_text(json.dumps({"format": "surd-review-site", "keys": []}))
        StudyState(tmp_path / "rev", ServeConfig(port=0))


def test_compare_two_runs(run, tmp_path):
    shutil.copytree(run / "eval", tmp_path / "layer60")
    res = runner.invoke(app, ["eval", "compare", str(run / "eval"), str(tmp_path / "layer60"), "--out",
                              str(tmp_path / "c")])
    assert res.exit_code == 0, res.output
    result = json.loads((tmp_path / "c" / "compare.json").read_text())
    table = result["table"]
    assert result["runs"] == ["eval", "layer60"] and result["generation_differs"] == []
    brisque = table["BRISQUE ↓"]
    assert set(brisque) == {f"{m} @ {r}" for m in ("baseline", "05_train_adapter") for r in ("eval", "layer60")}
    assert brisque["baseline @ eval"] == brisque["baseline @ layer60"]  # a copy: the same numbers
    assert "semantic accuracy % · counting" in table and "compare.html" in res.output
    assert "semantic accuracy % (detector) · counting" in table
    assert {"BRISQUE ↓ t-test p vs baseline", "BRISQUE ↓ Welch p vs baseline"} <= set(table)


def test_pipeline_step_and_paper_yaml(run, tmp_path):
    from surd.pipeline import load_pipeline

    paper = load_pipeline(REPO / "pipelines" / "paper.yaml")
    step = paper.steps[-1]
    assert step.stage == "eval" and step.config["models"]["vqa"] == "Salesforce/blip-vqa-base"
    from surd.eval.evaluate import run_job

    res = run_job(run / "05_train_adapter", tmp_path / "06_eval",
                  {"base": "tiny", "prompts": "paper-table1", "images_per_prompt": 1, "steps": 1,
                   "models": "tiny", "device": "cpu", "progress": False, "metrics": ["clip", "vqa", "detect"]})
    assert res["models"] == ["baseline", "train_adapter"] and Path(res["report"]).is_file()
    # The nine prompts of Tables 1/7: the paper's per-prompt accuracy beside the run's, per judge.
    table1 = json.loads((tmp_path / "06_eval" / "results.json").read_text())["paper"]["table1"]
    assert [r["prompt_id"] for r in table1] == [f"paper-{t}-0{i}" for t in ("counting", "color", "action")
                                               for i in (1, 2, 3)]
    assert table1[0]["paper_baseline"] == 63.08 and set(table1[0]["run"]["train_adapter"]) == {"vqa", "detect"}
    assert table1[-1]["run"]["baseline"]["detect"] is None  # an action prompt: the detector does not judge it
    html = Path(res["report"]).read_text()
    assert "Four freshly baked pies." in html and "63.08" in html and "73.85" in html


def test_bad_arguments_name_the_fix(tmp_path):
    res = runner.invoke(app, ["eval", "--adapter", str(tmp_path)])
    assert res.exit_code == 2 and "--base" in res.output
    res = runner.invoke(app, ["eval", "--base", "tiny", "--adapter", str(tmp_path / "nope"), "--out", str(tmp_path)])
    assert isinstance(res.exception, FileNotFoundError) and "adapter_config.json" in str(res.exception)
    res = runner.invoke(app, ["eval", "--base", "tiny", "--adapter", f"baseline={tmp_path}"])
    assert isinstance(res.exception, ValueError) and "NAME=DIR" in str(res.exception)
    res = runner.invoke(app, ["eval", "--base", "tiny", "--adapter", str(tmp_path), "--metrics", "fid"])
    assert isinstance(res.exception, ValueError) and "unknown metric" in str(res.exception)


def test_readme_gpu_commands_parse():
    """Every `surd` command of the README's "Reproducing Tables 1–3 on a GPU" block is one the CLI accepts."""
    import shlex

    import typer
    from typer.exceptions import TyperException  # typer's own click: its usage errors derive from this

    text = (REPO / "README.md").read_text()
    block = text.split("### Reproducing Tables 1–3 on a GPU", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [line for line in block.splitlines() if line.startswith("surd ")]
    assert len(commands) >= 9 and any("--prompts paper-table1 --images-per-prompt 130" in c for c in commands)
    root = typer.main.get_command(app)
    for line in [*commands, "surd eval --base x --adapter a --bogus 1", "surd eval judge import"]:
        args = shlex.split(line)[1:]
        cmd, path = root, ["surd"]
        while hasattr(cmd, "commands") and args and args[0] in cmd.commands:
            path.append(args[0])
            cmd = cmd.commands[args.pop(0)]
        try:
            cmd.make_context(" ".join(path), list(args))  # parses every option and argument, runs nothing
        except TyperException as exc:
            assert line not in commands, f"README command does not parse: {line}\n{exc.format_message()}"
        else:
            assert line in commands, f"the check let a bad command through: {line}"
