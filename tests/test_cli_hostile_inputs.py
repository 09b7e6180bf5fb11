"""The `surd` command fed as an attacker or a careless user would feed it: one table of hostile and malformed inputs,
each with its exit code and the message that names the problem, and nothing written outside ``--out``.

Each case builds its inputs under ``inputs/`` and names the command; the test runs it as a user would (a
subprocess, so the real entry point and its error handling), then checks the exit code, the message, that no
traceback was printed, and that every file it wrote lies under ``out/`` (the files under ``inputs/`` are unchanged).
Add a row to CASES for a new class of hostile input.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from surd import shards
from surd.sample import make_key
from tests.conftest import REPO, jpeg_bytes


@dataclass(frozen=True)
class Case:
    name: str
    setup: Callable[[Path, Path], list[str]]  # (inputs dir, out dir) → the command's arguments
    code: int
    message: str  # in stdout + stderr
    absent: str = ""  # a string that must not appear (e.g. a reason that would mean the file was read)


def _url_list(inp: Path, refs: list[str]) -> Path:
    (inp / "secret.jpg").write_bytes(jpeg_bytes(64, 64, seed=7))
    path = inp / "list.jsonl"
    path.write_text("".join(json.dumps({"url": r, "caption": "a cat"}) + "\n" for r in refs))
    return path


def _stage_dir(inp: Path, n_shards: int = 2) -> Path:
    d = inp / "stage"
    for i in range(n_shards):
        samples = [{"__key__": make_key("t", f"{i}-{j}"), "json": {"key": make_key("t", f"{i}-{j}"),
                                                                   "complex_prompt": "p", "simple_prompt": "s"},
                    "jpg": jpeg_bytes(48, 48, seed=10 * i + j)} for j in range(3)]
        shards.write_shard(d, shards.shard_name(i), samples)
    return d


def _cut_between_members(tar: Path) -> None:
    with tarfile.open(tar) as t:
        cut = t.getmembers()[2].offset  # the second sample's header: still a valid, shorter tar
    tar.write_bytes(tar.read_bytes()[:cut] + b"\0" * 1024)


def local_file_url(inp, out):
    return ["ingest", "urls", str(_url_list(inp, [f"file://{inp}/secret.jpg"])), "--out", str(out), "--size", "32"]


def bare_path_url(inp, out):
    return ["ingest", "urls", str(_url_list(inp, [str(inp / "secret.jpg")])), "--out", str(out), "--size", "32"]


def bare_path_url_opted_in(inp, out):
    return [*bare_path_url(inp, out), "--allow-local-files"]


def malformed_urls(inp, out):
    refs = ["http://[::1", "http://h:99999/x", "http:///x", f"file://{inp}/secret.jpg"]
    return ["ingest", "urls", str(_url_list(inp, refs)), "--out", str(out), "--size", "32"]


def manifest_outside(inp, out):
    (inp / "secret.jpg").write_bytes(jpeg_bytes(64, 64))
    (inp / "m").mkdir()
    (inp / "m" / "m.jsonl").write_text(json.dumps({"image": str(inp / "secret.jpg"), "complex_prompt": "x"}) + "\n"
                                       + json.dumps({"image": "../secret.jpg", "complex_prompt": "y"}) + "\n")
    return ["ingest", "manifest", str(inp / "m" / "m.jsonl"), "--out", str(out), "--size", "32"]


def manifest_outside_allowed(inp, out):
    return [*manifest_outside(inp, out), "--allow-root", str(inp)]


def folder_symlink_out(inp, out):
    (inp / "secret.png").write_bytes(jpeg_bytes(64, 64))
    (inp / "f").mkdir()
    os.symlink(inp / "secret.png", inp / "f" / "a.png")
    (inp / "f" / "metadata.jsonl").write_text(json.dumps({"file_name": "a.png", "prompt": "p", "text": "t"}) + "\n")
    return ["ingest", "folder", str(inp / "f"), "--out", str(out), "--size", "32"]


def pipeline_name_escapes(inp, out):
    (inp / "p.yaml").write_text("name: ../../escaped\nstages:\n  - stage: ingest\n    config: {path: x.jsonl}\n")
    return ["run", str(inp / "p.yaml"), "--runs-dir", str(out)]


def unfinished_input(inp, out):
    d = _stage_dir(inp)
    (d / "00001.stats.json").unlink()
    return ["dedup", str(d), "--out", str(out)]


def truncated_input(inp, out):
    d = _stage_dir(inp)
    _cut_between_members(d / "00000.tar")
    return ["dedup", str(d), "--out", str(out), "--retries", "0"]


def flipped_input(inp, out):
    d = _stage_dir(inp)
    data = bytearray((d / "00001.tar").read_bytes())
    data[1200] ^= 0xFF
    (d / "00001.tar").write_bytes(bytes(data))
    return ["dedup", str(d), "--out", str(out), "--retries", "0"]


def truncated_sidecar_verify(inp, out):
    d = _stage_dir(inp)
    side = d / "00001.samples.parquet"
    side.write_bytes(side.read_bytes()[:-30])
    return ["verify", str(d)]


def truncated_export(inp, out):
    d = _stage_dir(inp)
    _cut_between_members(d / "00001.tar")
    return ["export", "imagefolder", str(d), "--out", str(out)]


CASES = [
    Case("file:// URL in a URL list", local_file_url, 0, "local_file_refused: 1", absent="0 kept of 0"),
    Case("bare local path in a URL list", bare_path_url, 0, "local_file_refused: 1"),
    Case("bare local path, opted in", bare_path_url_opted_in, 0, "1 kept of 1", absent="local_file_refused"),
    Case("malformed URLs are one row each", malformed_urls, 0, "bad_url: 3"),
    Case("manifest image outside its folder", manifest_outside, 0, "outside_root: 2"),
    Case("manifest image outside, root allowed", manifest_outside_allowed, 0, "1 kept of 2", absent="outside_root"),
    Case("symlink out of an ingested folder", folder_symlink_out, 0, "outside_root: 1"),
    Case("pipeline name with ..", pipeline_name_escapes, 2, "name must be a plain folder name"),
    Case("stage input with an unfinished shard", unfinished_input, 2, "00001.tar has no stats marker"),
    Case("stage input cut between two members", truncated_input, 2, "00000.tar does not match its stats marker (size"),
    Case("stage input with a flipped byte", flipped_input, 1, "00001.tar does not match its stats marker (sha256"),
    Case("verify a truncated sidecar", truncated_sidecar_verify, 1, "00001.samples.parquet does not match"),
    Case("export of a truncated tar", truncated_export, 2, "00001.tar does not match its stats marker (size"),
]


def _files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() and not p.is_symlink()
            else "link" for p in sorted(root.rglob("*")) if not p.is_dir() or p.is_symlink()}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input(tmp_path, case):
    inp, out, cwd = tmp_path / "inputs", tmp_path / "out", tmp_path / "cwd"
    inp.mkdir()
    cwd.mkdir()
    args = case.setup(inp, out)
    before = _files(inp)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "surd", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)
    said = proc.stdout + proc.stderr
    assert proc.returncode == case.code, said[-3000:]
    assert case.message in said, said[-3000:]
    assert "Traceback" not in said, said[-3000:]
    assert not case.absent or case.absent not in said
    assert _files(inp) == before, "an input was changed"
    assert not list(cwd.iterdir()), "something was written in the working directory"
    outside = [p for p in tmp_path.iterdir() if p.name not in ("inputs", "out", "cwd")]
    assert not outside and not (tmp_path.parent / "escaped").exists(), outside
