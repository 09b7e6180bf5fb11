"""`surd release` on the command line: counts per rule, refusals as one line (exit 2)."""

from __future__ import annotations

import pytest

from tests.card_run import make_run
from tests.commands.test_card import surd


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("cli-release"))


def test_release_command_reports_what_it_left_out(run_dir, tmp_path):
    r = surd("release", str(run_dir), "--out", str(tmp_path / "rel"), "--exclude-source", "beta", "--max-nsfw",
             "unrated")
    assert r.returncode == 0, r.stderr
    assert "2 samples released (full)" in r.stdout
    assert "left out excluded_source: 3" in r.stdout and "left out excluded_nsfw: 1" in r.stdout
    assert (tmp_path / "rel" / "data" / "train" / "metadata.jsonl").is_file()


@pytest.mark.parametrize("args,message", [
    (["--mode", "urls"], "have no image URL"),
    (["--mode", "zip"], "--mode must be full or urls"),
    (["--max-nsfw", "pg"], "max_nsfw must be one of"),
    (["--rules", "/nonexistent/rules.yaml"], "rule file"),
])
def test_release_command_refusals(run_dir, tmp_path, args, message):
    r = surd("release", str(run_dir), "--out", str(tmp_path / "x"), *args)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x").exists()
