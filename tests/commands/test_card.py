"""`surd card` on the command line: the files and counts it reports; bad input is one line, exit 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.card_run import make_run
from tests.conftest import REPO


def surd(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "surd", *args], cwd=REPO, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("cli-card"))


def test_card_command_writes_and_reports(run_dir):
    r = surd("card", str(run_dir))
    assert r.returncode == 0, r.stderr
    for name in ("README.md", "croissant.json", "card.html", "provenance.parquet"):
        assert str(run_dir / name) in r.stdout
    assert "6 samples kept of 9 seen" in r.stdout and "NEEDS A PERSON" in r.stdout


def test_card_command_bad_input_is_one_line(run_dir, tmp_path):
    r = surd("card", str(tmp_path / "missing"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "does not exist" in r.stderr
    (tmp_path / "about.yaml").write_text("- not a mapping\n")
    r = surd("card", str(run_dir), "--about", str(tmp_path / "about.yaml"))
    assert r.returncode == 2 and "expected a mapping" in r.stderr and "Traceback" not in r.stderr
