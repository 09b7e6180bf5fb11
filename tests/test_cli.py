"""The `surd` command: help with examples, the sample pipeline end to end, errors that name the fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from surd.cli import app
from tests.conftest import REPO, jpeg_bytes

runner = CliRunner()


def _commands(typer_app, prefix=()):
    import typer.main

    group = typer.main.get_command(typer_app)
    stack = [(prefix, group)]
    while stack:
        path, cmd = stack.pop()
        yield path, cmd
        for name, sub in getattr(cmd, "commands", {}).items():
            stack.append((path + (name,), sub))


def test_every_command_help_shows_an_example():
    paths = [p for p, _ in _commands(app)]
    assert ("ingest", "manifest") in paths and ("run",) in paths and ("stats",) in paths
    for path, _ in _commands(app):
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Example" in result.output, f"`surd {' '.join(path)} --help` has no example"


def _surd(*args, cwd=REPO):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "surd", *args], cwd=cwd, env=env, capture_output=True, text=True)


def test_sample_pipeline_end_to_end(tmp_path):
    from surd import shards

    runs = tmp_path / "runs"
    proc = _surd("run", "pipelines/sample.yaml", "--runs-dir", str(runs))
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = runs / "sample"
    stats = json.loads(_surd("stats", str(run), "--json").stdout)
    assert list(stats) == ["00_ingest", "01_dedup", "02_caption", "03_clip_filter", "04_safety", "05_quality",
                           "06_embed"]
    assert stats["00_ingest"]["kept"] == stats["00_ingest"]["in"] == 32
    for st in stats.values():
        assert st["in"] == st["kept"] + sum(st["rejected"].values())
    assert stats["02_caption"]["in"] == stats["01_dedup"]["kept"] == 32  # the sample has no near-duplicates
    assert stats["04_safety"]["in"] == stats["03_clip_filter"]["kept"] > 0
    assert stats["05_quality"]["in"] == stats["05_quality"]["kept"] == stats["04_safety"]["kept"] > 0  # no threshold
    assert stats["06_embed"]["in"] == stats["05_quality"]["kept"] > 0
    assert all(s["json"]["simple_prompt"] for s in shards.iter_dataset(run / "02_caption"))
    safe = list(shards.iter_dataset(run / "04_safety"))
    assert all(s["json"]["stages"]["safety"]["embedding"] == "reused" for s in safe)  # clip_filter's clip.npy
    scored = list(shards.iter_dataset(run / "05_quality"))
    assert all(s["json"]["stages"]["quality"]["embedding"] == "reused" for s in scored)  # clip.npy again
    embedded = list(shards.iter_dataset(run / "06_embed"))
    assert embedded and all("llm.npy" in s and "embed" in s["json"]["stages"] for s in embedded)
    adapter = run / "07_train_adapter"
    assert (adapter / "adapter_model.safetensors").exists() and (adapter / "adapter_config.json").exists()
    assert len((adapter / "log.csv").read_text().splitlines()) == 5  # header + 4 steps
    shown = _surd("inspect", str(run / "00_ingest"), "--n", "2").stdout
    assert shown.count("── ") == 2 and "complex:" in shown
    rerun = _surd("run", "pipelines/sample.yaml", "--runs-dir", str(runs))
    assert rerun.returncode == 0 and rerun.stdout.count("(0 written") == 7
    verified = _surd("verify", str(run))
    assert verified.returncode == 0 and "07_train_adapter" in verified.stdout, verified.stderr[-2000:]
    tar = run / "02_caption" / "00001.tar"
    data = bytearray(tar.read_bytes())
    data[5000] ^= 0xFF  # same size, same members: only the checksum sees it
    tar.write_bytes(bytes(data))
    bad = _surd("verify", str(run))
    assert bad.returncode == 1 and "02_caption/00001.tar does not match its stats marker (sha256" in bad.stderr
    after = _surd("dedup", str(run / "02_caption"), "--out", str(tmp_path / "again"), "--retries", "0")
    assert after.returncode == 1 and "00001.tar does not match its stats marker" in after.stderr


def test_ingest_manifest_cli_and_stats_table(tmp_path):
    (tmp_path / "a.jpg").write_bytes(jpeg_bytes(300, 200))
    (tmp_path / "m.csv").write_text("path,text\na.jpg,a red fox\nmissing.jpg,a blue fox\n")
    res = runner.invoke(app, ["ingest", "manifest", str(tmp_path / "m.csv"), "--out", str(tmp_path / "o"),
                              "--image-col", "path", "--prompt-col", "text", "--size", "64"])
    assert res.exit_code == 0, res.output
    assert "1 kept of 2" in res.output and "missing_file: 1" in res.output
    table = runner.invoke(app, ["stats", str(tmp_path / "o")]).output
    assert "missing_file" in table
    rej = runner.invoke(app, ["inspect", str(tmp_path / "o"), "--rejected"]).output
    assert "missing_file" in rej


@pytest.mark.parametrize("args,message", [
    (["ingest", "manifest", "nope.jsonl", "--out", "o"], "manifest nope.jsonl not found"),
    (["ingest", "manifest", "{m}", "--out", "o", "--image-col", "img"], "--image-col"),
    (["ingest", "manifest", "{m}", "--out", "o", "--resize-mode", "stretch"], "resize_mode must be one of"),
    (["run", "nope.yaml"], "pipeline file nope.yaml not found"),
    (["stats", "nowhere"], "nowhere does not exist"),
])
def test_bad_arguments_exit_2_with_the_fix(tmp_path, args, message):
    (tmp_path / "m.jsonl").write_text(json.dumps({"image": "a.jpg", "complex_prompt": "x"}))
    proc = _surd(*[a.replace("{m}", str(tmp_path / "m.jsonl")) for a in args], cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_failed_shards_exit_1_and_are_named(tmp_path):
    (tmp_path / "m.jsonl").write_text(json.dumps({"image": "a.jpg", "complex_prompt": "x"}))
    out = tmp_path / "o"
    out.mkdir()
    (out / "00000.tar").mkdir()  # the final name is taken by a directory: the shard cannot be published
    proc = _surd("ingest", "manifest", str(tmp_path / "m.jsonl"), "--out", str(out), "--retries", "0")
    assert proc.returncode == 1 and "00000:" in proc.stderr and "failed after retries" in proc.stderr


def test_run_until_stops_after_the_named_stage(tmp_path):
    proc = _surd("run", "pipelines/sample.yaml", "--runs-dir", str(tmp_path), "--until", "ingest")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "sample").iterdir()) == ["00_ingest"]
    bad = _surd("run", "pipelines/sample.yaml", "--runs-dir", str(tmp_path), "--until", "nope")
    assert bad.returncode == 2 and "not a stage of" in bad.stderr



def test_cli_imports_no_heavy_dependency():
    """`surd --help` and ingest work with the core install: torch & co. load only in the stages that need them."""
    code = ("import sys, surd.cli; heavy = ('torch', 'transformers', 'diffusers', 'open_clip', 'ray', 'accelerate'); "
            "print(','.join(m for m in heavy if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == ""


class _Left(Exception):
    """What the test's stand-in for os._exit raises: the status the process would have left with."""


@pytest.mark.parametrize("argv,code", [(["surd", "version"], 0), (["surd", "card", "/no/such/run"], 2),
                                       (["surd", "no-such-command"], 2)])
def test_the_process_entry_leaves_with_mains_status_after_the_exit_handlers(monkeypatch, argv, code):
    """`entry` (the console script, python -m surd) exits with main's status, having joined the threads a normal
    exit waits for and run the atexit handlers, then leaves without the interpreter's teardown."""
    import threading
    import time
    import types

    import surd.cli as cli

    events: list[str] = []
    worker = threading.Thread(target=lambda: (time.sleep(0.2), events.append("thread")))
    worker.start()
    # the handlers themselves are not run here: they are this test process's own (pytest's, multiprocessing's)
    monkeypatch.setattr(cli, "atexit", types.SimpleNamespace(_run_exitfuncs=lambda: events.append("atexit")))

    def left(status: int) -> None:
        raise _Left(status)

    monkeypatch.setattr(cli.os, "_exit", left)
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(_Left) as info:
        cli.entry()
    assert info.value.args == (code,) and events == ["thread", "atexit"]


def test_python_m_surd_and_the_console_script_use_the_entry():
    r = subprocess.run([sys.executable, "-m", "surd", "card", "/no/such/run"], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("error: run folder /no/such/run does not exist")
    assert 'surd = "surd.cli:entry"' in (REPO / "pyproject.toml").read_text()
