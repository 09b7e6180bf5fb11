"""``tar:`` refs: one range read per member at the offset the listing found; cut, missing and oversized members are
reasons, not exceptions."""

from __future__ import annotations

import io
import tarfile

from surd.fetch import fetch_all
from surd.fetch.tar import parse_ref, tar_ref


def _tar(path, members: dict[str, bytes]) -> dict[str, tuple[int, int]]:
    with tarfile.open(path, "w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    with tarfile.open(path) as tf:
        return {m.name: (m.offset_data, m.size) for m in tf.getmembers()}


def test_members_are_read_by_offset(tmp_path):
    spans = _tar(tmp_path / "a.tar", {"x.jpg": b"first" * 200, "y.jpg": b"second" * 300})
    refs = [tar_ref(str(tmp_path / "a.tar"), *spans[n], n) for n in ("y.jpg", "x.jpg")]
    assert fetch_all(refs, {}) == [b"second" * 300, b"first" * 200]
    assert parse_ref(refs[0])[3] == "y.jpg"


def test_cut_missing_oversized_and_malformed_refs_are_reasons(tmp_path):
    spans = _tar(tmp_path / "a.tar", {"x.jpg": b"z" * 5000})
    data = (tmp_path / "a.tar").read_bytes()
    (tmp_path / "cut.tar").write_bytes(data[: spans["x.jpg"][0] + 10])
    refs = [tar_ref(str(tmp_path / "cut.tar"), *spans["x.jpg"], "x.jpg"),
            tar_ref(str(tmp_path / "gone.tar"), *spans["x.jpg"], "x.jpg"),
            tar_ref(str(tmp_path / "a.tar"), *spans["x.jpg"], "x.jpg"),
            f"tar:{tmp_path / 'a.tar'}#x.jpg"]
    got = fetch_all(refs, {"max_bytes": 4000})
    assert [g.reason for g in got] == ["too_large", "too_large", "too_large", "invalid_ref"]
    got = fetch_all(refs[:2], {})
    assert [g.reason for g in got] == ["truncated_member", "missing_file"]
