"""`surd publish`: to S3 (moto on 127.0.0.1) and to the Hub through huggingface_hub against a local stand-in of the
endpoints it calls (HF_ENDPOINT): batched commits, card files last, resumable after an interruption, 429 backoff."""

from __future__ import annotations

import pytest

from surd import storage
from surd.export.publish import CARD_FILES, PublishConfig, git_blob_id, ordered_files, publish, with_backoff
from surd.export.release import ReleaseConfig, release
from tests.card_run import make_run
from tests.hf_hub_server import HubServer


@pytest.fixture(scope="module")
def rel(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("publish")
    out = tmp / "rel"
    release(make_run(tmp), out, ReleaseConfig(mode="full"))
    return out


def test_card_files_go_last(rel):
    order = ordered_files(rel)
    assert order[-3:] == list(CARD_FILES) and order[-1] == "README.md"
    assert "data/train/metadata.jsonl" in order and len(order) == 6 + 1 + 5 + 1  # images, metadata, card, release.json


@pytest.mark.s3
def test_publish_to_s3_and_resume(rel, s3):
    url = s3.make_bucket("surd-publish") + "/releases/x"
    first = publish(rel, url)
    assert first["uploaded"] == len(ordered_files(rel)) and first["skipped"] == 0
    assert sorted(storage.walk_files(url)) == sorted(ordered_files(rel))
    assert storage.read_bytes(url + "/README.md") == (rel / "README.md").read_bytes()
    storage.remove(url + "/data/train/metadata.jsonl")  # an upload cut short: rerun sends only what is missing
    again = publish(rel, url)
    assert (again["uploaded"], again["skipped"]) == (1, len(ordered_files(rel)) - 1)


@pytest.fixture
def hub(monkeypatch, tmp_path):
    hub_constants = pytest.importorskip("huggingface_hub.constants")
    with HubServer() as server:
        # tests/hf_datasets.py turns the Hub off for `datasets` tests (read once, at import): this stand-in is local
        monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
        monkeypatch.setenv("HF_TOKEN", "hf_stand_in_token")
        yield server


def test_publish_to_the_hub_in_batches_card_last(rel, hub):
    result = publish(rel, "hf://datasets/me/surd-test", PublishConfig(batch_files=4))
    files = hub.state.repos["me/surd-test"]
    assert sorted(files) == sorted(ordered_files(rel))
    assert all(files[p] == (rel / p).read_bytes() for p in files)
    commits = hub.state.commits
    assert result["commits"] == len(commits) >= 4 and all(len(c["files"]) <= 4 for c in commits)
    assert commits[-1]["files"] == ["README.md"]  # the card lands after everything it describes
    assert "POST /api/validate-yaml" in hub.state.requests  # huggingface_hub checked the card's metadata


def test_hub_upload_backs_off_on_429_and_resumes_after_an_interruption(rel, hub):
    hub.state.fail_commits = [429]
    publish(rel, "hf://datasets/me/r", PublishConfig(batch_files=5, retries=3))
    assert len(hub.state.repos["me/r"]) == len(ordered_files(rel))  # the 429 was waited out (Retry-After: 1)

    hub.state.commits.clear()
    hub.state.fail_commits = [None, 500, 500, 500]  # the second commit keeps failing: the run stops with the error
    with pytest.raises(Exception, match="500"):
        publish(rel, "hf://datasets/me/r2", PublishConfig(batch_files=5, retries=2))
    assert hub.state.fail_commits == [] and len(hub.state.commits) == 1
    done_before = set(hub.state.repos["me/r2"])
    assert len(done_before) < len(ordered_files(rel))
    result = publish(rel, "hf://datasets/me/r2", PublishConfig(batch_files=5, retries=2))
    assert result["skipped"] == len(done_before) and result["uploaded"] == len(ordered_files(rel)) - len(done_before)
    assert sorted(hub.state.repos["me/r2"]) == sorted(ordered_files(rel))


def test_backoff_honours_retry_after_then_gives_up():
    class Resp:
        status_code, headers = 429, {"Retry-After": "7"}

    class Err(Exception):
        response = Resp()

    waits: list[float] = []

    def always():
        raise Err("429")

    with pytest.raises(Err):
        with_backoff(always, PublishConfig(retries=2), sleep=waits.append)
    assert waits == [7.0, 7.0]
    assert with_backoff(lambda: 5, PublishConfig(), sleep=waits.append) == 5


def test_bad_destinations_and_folders(rel, tmp_path):
    with pytest.raises(ValueError, match="hf://datasets/OWNER/NAME"):
        publish(rel, "hf://models/me/x")
    with pytest.raises(FileNotFoundError, match="surd release"):
        publish(tmp_path / "nope", str(tmp_path / "dst"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no README.md"):
        publish(tmp_path / "empty", str(tmp_path / "dst"))
    assert git_blob_id(b"") == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"  # git's empty blob
