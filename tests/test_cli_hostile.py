"""No traceback reaches a user (surd.cli.main): hostile and malformed input, case by case, ends in one message that
says what is wrong and what to do, with the exit code the README gives (2: bad input or arguments), and nothing is
written outside the output folder (nothing at all when the input is refused up front)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from surd.cli import main
from tests.conftest import REPO

MANIFEST = REPO / "manifests" / "sample" / "manifest.jsonl"
SAMPLE = yaml.safe_load((REPO / "pipelines" / "sample.yaml").read_text())


def _pipeline(tmp: Path, text: str | None = None, **change) -> str:
    path = tmp / "p.yaml"
    if text is not None:
        path.write_text(text)
        return str(path)
    doc = {**SAMPLE, "stages": [dict(s, config=dict(s.get("config") or {})) for s in SAMPLE["stages"][:3]]}
    doc["stages"][0]["config"]["path"] = str(MANIFEST)
    for key, value in change.items():
        if key.startswith("stage"):  # stage2_batch_size=… → stages[2].config.batch_size
            i, field = key[5:].split("_", 1)
            doc["stages"][int(i)]["config"][field] = value
        else:
            doc[key] = value
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def _tar_cut_mid_member(tmp: Path) -> str:
    from surd import shards

    shards.write_shard(tmp / "d", "00000", [{"__key__": f"k{i}", "json": {"i": i}, "txt": b"x" * 4000} for i in range(3)])
    tar = tmp / "d" / "00000.tar"
    tar.write_bytes(tar.read_bytes()[:5000])
    return str(tmp / "d")


# (id, argv with {tmp} for the test's folder, setup(tmp) or None, expected exit code, message that must appear)
CASES = [
    ("yaml-syntax", ["run", "{p}"], lambda t: _pipeline(t, "name: x\nstages:\n  - stage: ingest\n   config: [\n"), 2,
     "not valid YAML at line"),
    ("yaml-list", ["run", "{p}"], lambda t: _pipeline(t, "- a\n- b\n"), 2, "expected a mapping"),
    ("yaml-binary", ["run", "{p}"], lambda t: (t / "p.yaml").write_bytes(b"\xff\xfe\x00garbage") and str(t / "p.yaml"),
     2, "cannot read the pipeline file"),
    ("yaml-empty-stages", ["run", "{p}"], lambda t: _pipeline(t, "name: x\nstages: []\n"), 2, "non-empty 'stages'"),
    ("unknown-top-key", ["run", "{p}"], lambda t: _pipeline(t, runs=1), 2, "unknown top-level key(s) runs"),
    ("wrong-type-late-stage", ["run", "{p}"], lambda t: _pipeline(t, stage2_batch_size="8"), 2,
     "stages[2] (caption): batch_size must be a whole number, got '8'"),
    ("unknown-stage-key", ["run", "{p}"], lambda t: _pipeline(t, stage1_max_dist=3), 2, "unknown key(s) max_dist"),
    ("job-unknown-key", ["run", "{p}"], lambda t: (t / "p.yaml").write_text(yaml.safe_dump(
        {**SAMPLE, "stages": [dict(s) for s in SAMPLE["stages"][:1]] + [{"stage": "train_adapter", "config": {
            "max_step": 4}}]})) and str(t / "p.yaml"), 2, "stages[1] (train_adapter): unknown key(s) max_step"),
    ("name-dotdot", ["run", "{p}"], lambda t: _pipeline(t, name="../../escape"), 2, "name must be a plain folder name"),
    ("name-slash", ["run", "{p}"], lambda t: _pipeline(t, name="a/b"), 2, "name must be a plain folder name"),
    ("name-not-string", ["run", "{p}"], lambda t: _pipeline(t, name=["x"]), 2, "name must be a plain folder name"),
    ("pipeline-missing", ["run", "{tmp}/nope.yaml"], None, 2, "pipeline file"),
    ("pipeline-is-dir", ["run", "{tmp}"], None, 2, "not found"),
    ("workers-zero", ["run", "{p}", "--workers", "0"], lambda t: _pipeline(t), 2, "workers must be >= 1"),
    ("executor-unknown", ["run", "{p}", "--executor", "slurm"], lambda t: _pipeline(t), 2,
     "executor must be one of local, ray"),
    ("until-unknown", ["run", "{p}", "--until", "nosuch"], lambda t: _pipeline(t), 2, "--until 'nosuch' is not a stage"),
    ("file-workers-bool", ["run", "{p}"], lambda t: _pipeline(t, workers=True), 2, "workers must be a whole number"),
    ("manifest-missing", ["ingest", "manifest", "{tmp}/nope.jsonl", "--out", "{tmp}/o"], None, 2, "not found"),
    ("manifest-is-dir", ["ingest", "manifest", "{tmp}", "--out", "{tmp}/o"], None, 2,
     "is a folder, not a manifest file"),
    ("size-too-small", ["ingest", "manifest", str(MANIFEST), "--out", "{tmp}/o", "--size", "3"], None, 2,
     "size must be >= 16, got 3"),
    ("resize-mode", ["ingest", "manifest", str(MANIFEST), "--out", "{tmp}/o", "--resize-mode", "stretch"], None, 2,
     "resize_mode must be one of"),
    ("out-under-a-file", ["ingest", "manifest", str(MANIFEST), "--out", "{tmp}/afile/o"],
     lambda t: (t / "afile").write_text("x"), 2, "cannot create the output directory"),
    ("rate-negative", ["ingest", "urls", "{tmp}/l.csv", "--out", "{tmp}/o", "--rate-limit", "-1"],
     lambda t: (t / "l.csv").write_text("url,caption\nhttp://a/x.jpg,x\n"), 2, "rate_limit must be >= 0"),
    ("url-list-no-url-column", ["ingest", "urls", "{tmp}/l.csv", "--out", "{tmp}/o"],
     lambda t: (t / "l.csv").write_text("a,b\n1,2\n"), 2, "no URL column"),
    ("lexica-cursor-only", ["ingest", "lexica", "-q", "x", "--out", "{tmp}/o", "--max-pages", "3"], None, 2,
     "apply to the cursor listing only"),
    ("civitai-limit", ["ingest", "civitai", "--out", "{tmp}/o", "--limit", "999"], None, 2, "limit must be <= 200"),
    ("caption-no-input", ["caption", "{tmp}/nothing", "--out", "{tmp}/o", "--model", "tiny"], None, 2,
     "nothing does not exist: run the stage that writes it first"),
    ("caption-beams", ["caption", "{tmp}/in", "--out", "{tmp}/o", "--num-beams", "0"], None, 2,
     "num_beams must be >= 1"),
    ("caption-lengths", ["caption", "{tmp}/in", "--out", "{tmp}/o", "--min-length", "40"], None, 2,
     "need min_length <= max_length"),
    ("embed-layer-zero", ["embed", "{tmp}/in", "--out", "{tmp}/o", "--llm", "tiny", "--layer", "0"], None, 2,
     "layer must be a 1-based block number"),
    ("embed-missing-llm", ["embed", "{tmp}/in", "--out", "{tmp}/o", "--layer", "1"], None, 2, "--llm"),
    ("safety-head", ["safety", "{tmp}/in", "--out", "{tmp}/o", "--classifier", "laion_clip"], None, 2, "needs head"),
    ("safety-classes", ["safety", "{tmp}/in", "--out", "{tmp}/o", "--nudenet-classes", "NOPE"], None, 2,
     "'NOPE' is not one of"),
    ("dedup-distance", ["dedup", "{tmp}/in", "--out", "{tmp}/o", "--max-distance", "40"], None, 2,
     "max_distance must be <= 32"),
    ("serve-port", ["review", "serve", "{tmp}", "--port", "70000"], None, 2, "port must be <= 65535"),
    ("serve-token-and-no-auth", ["review", "serve", "{tmp}", "--token", "t" * 20, "--no-auth"], None, 2,
     "contradict each other"),
    ("review-import-missing-file", ["review", "import", "{tmp}/in", "{tmp}/nope.json", "--out", "{tmp}/o"], None, 2,
     "nope.json"),
    ("inspect-missing", ["inspect", "{tmp}/nothing"], None, 2, "nothing"),
    ("eval-compare-no-results", ["eval", "compare", "{tmp}", "{tmp}"], None, 2, "has no results.json"),
    ("export-truncated-tar", ["export", "imagefolder", "{d}", "--out", "{tmp}/o"], _tar_cut_mid_member, 2, "00000"),
]


@pytest.mark.parametrize("case, argv, setup, code, message", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_message_and_exit_code_never_a_traceback(tmp_path, monkeypatch, capsys, case, argv, setup,
                                                                  code, message):
    work = tmp_path / "work"
    work.mkdir()
    made = setup(work) if setup else None
    monkeypatch.chdir(work)  # relative paths land here: nothing may appear anywhere else
    args = [a.format(tmp=work, p=made, d=made) for a in argv]
    before = set(work.rglob("*"))
    monkeypatch.setattr(sys, "argv", ["surd", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    out = capsys.readouterr()
    text = " ".join((out.out + out.err).split())
    assert exit_info.value.code == code, text
    assert message in text, text
    assert "Traceback" not in text
    created = {p.relative_to(work) for p in set(work.rglob("*")) - before}
    assert all(p.parts[0] == "o" for p in created), f"written outside --out: {sorted(map(str, created))}"
    assert not (tmp_path.parent / "escape").exists()


def test_there_are_at_least_thirty_cases():
    assert len(CASES) >= 30 and len({c[0] for c in CASES}) == len(CASES)


def test_surd_debug_shows_the_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv("SURD_DEBUG", "1")
    monkeypatch.setattr(sys, "argv", ["surd", "ingest", "manifest", str(tmp_path / "nope.jsonl"), "--out",
                                      str(tmp_path / "o")])
    with pytest.raises(FileNotFoundError):
        main()
