"""`surd publish` on the command line: a local folder destination and resume; a failing Hub is one line, exit 1."""

from __future__ import annotations

import pytest

from tests.card_run import make_run
from tests.commands.test_card import surd
from tests.hf_hub_server import HubServer


@pytest.fixture(scope="module")
def rel(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli-publish")
    run = make_run(tmp)
    assert surd("release", str(run), "--out", str(tmp / "rel")).returncode == 0
    return tmp / "rel"


def test_publish_to_a_folder_then_nothing_left_to_send(rel, tmp_path):
    r = surd("publish", str(rel), "--to", str(tmp_path / "mirror"))
    assert r.returncode == 0 and "13 file(s) uploaded, 0 already there" in r.stdout, r.stdout + r.stderr
    assert (tmp_path / "mirror" / "README.md").read_bytes() == (rel / "README.md").read_bytes()
    r = surd("publish", str(rel), "--to", str(tmp_path / "mirror"))
    assert "0 file(s) uploaded, 13 already there" in r.stdout


def test_publish_failure_is_one_line_and_says_how_to_resume(rel, tmp_path, monkeypatch):
    with HubServer() as hub:
        hub.state.fail_commits = [503] * 10
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
        monkeypatch.setenv("HF_TOKEN", "hf_stand_in")
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # tests/hf_datasets.py may have turned the Hub off for datasets
        r = surd("publish", str(rel), "--to", "hf://datasets/me/x", "--retries", "0")
    assert r.returncode == 1 and "rerun the same command" in r.stderr and "Traceback" not in r.stderr
    assert "503" in r.stderr and "POST /api/datasets/me/x/commit/main" in hub.state.requests  # the server said no
