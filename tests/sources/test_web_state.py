"""Resumable listings (surd.sources.web_state): pages saved before use, torn lines dropped, other queries refused."""

from __future__ import annotations

import pytest

from surd.fetch.http import DownloadConfig
from surd.fetch.probe import Unreachable
from surd.sources.web_state import PageLog, require_network
from tests.s3_server import free_port


def test_pages_survive_a_restart_and_a_torn_last_line_is_dropped(tmp_path):
    log = PageLog(tmp_path / "civitai.jsonl", {"q": "castle"})
    log.append({"cursor": None, "items": [1, 2]})
    log.append({"cursor": "c2", "items": [3]})
    with open(tmp_path / "civitai.jsonl", "ab") as f:
        f.write(b'{"cursor": "c3", "ite')  # the process died while writing the third page
    again = PageLog(tmp_path / "civitai.jsonl", {"q": "castle"})
    assert again.pages() == [{"cursor": None, "items": [1, 2]}, {"cursor": "c2", "items": [3]}]
    again.append({"cursor": "c3", "items": [4]})
    assert [p["cursor"] for p in PageLog(tmp_path / "civitai.jsonl", {"q": "castle"}).pages()] == [None, "c2", "c3"]


def test_state_saved_for_another_query_is_refused(tmp_path):
    PageLog(tmp_path / "lexica.jsonl", {"q": "cat"}).append({"items": []})
    with pytest.raises(ValueError, match="different query"):
        PageLog(tmp_path / "lexica.jsonl", {"q": "dog"})


def test_no_network_stops_at_once_with_what_to_do(tmp_path):
    unused_tcp_port = free_port()  # nothing listens there
    cfg = DownloadConfig(allowed_networks=("127.0.0.0/8",), timeout=1.0)
    with pytest.raises(Unreachable, match="needs the network") as info:
        require_network("civitai", f"http://127.0.0.1:{unused_tcp_port}/api/v1/images", cfg, tmp_path)
    assert "surd ingest folder" in str(info.value) and str(tmp_path) in str(info.value)
