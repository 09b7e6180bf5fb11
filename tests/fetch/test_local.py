"""Local files as image refs (surd.fetch.local): plain paths and file:// URLs; every unusable file has a reason."""

from __future__ import annotations

from surd.fetch import FetchError, fetch_all
from surd.fetch.local import fetch_many, local_path


def test_local_files_and_their_reasons(tmp_path):
    (tmp_path / "ok.jpg").write_bytes(b"\xff\xd8\xffdata")
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "big.jpg").write_bytes(b"x" * 100_000)
    (tmp_path / "dir.jpg").mkdir()
    refs = [str(tmp_path / "ok.jpg"), (tmp_path / "ok.jpg").as_uri(), str(tmp_path / "empty.jpg"),
            str(tmp_path / "big.jpg"), str(tmp_path / "dir.jpg"), str(tmp_path / "missing.jpg")]
    got = fetch_many(refs, {"max_bytes": 50_000})
    assert got[0] == got[1] == b"\xff\xd8\xffdata"
    assert [g.reason for g in got[2:]] == ["empty_file", "too_large", "not_a_file", "missing_file"]
    assert local_path((tmp_path / "a b.jpg").as_uri()) == str(tmp_path / "a b.jpg")


def test_fetch_all_dispatches_by_scheme_and_keeps_order(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"A")
    got = fetch_all(["ftp://host/x.jpg", str(tmp_path / "a.jpg"), "gopher://x"], {})
    assert got[1] == b"A"
    assert isinstance(got[0], FetchError) and got[0].reason == "unsupported_scheme" and "ftp" in got[0].detail
    assert got[2].reason == "unsupported_scheme"
