"""Atomic file writes (surd.files): a published file appears whole or not at all."""

from __future__ import annotations

import json
import os
import stat

import pytest

from surd.files import clean_temp_files, write_bytes_atomic, write_json_atomic


def test_written_files_are_whole_and_readable_like_any_file(tmp_path):
    write_bytes_atomic(tmp_path / "a.bin", b"x" * 1000)
    write_json_atomic(tmp_path / "b.json", {"z": 1, "a": "é"})
    assert (tmp_path / "a.bin").read_bytes() == b"x" * 1000
    assert (tmp_path / "b.json").read_text() == '{\n  "a": "é",\n  "z": 1\n}\n'  # sorted, UTF-8, newline
    mode = stat.S_IMODE(os.stat(tmp_path / "a.bin").st_mode)
    assert mode & 0o044, "published files are readable by others (mkstemp's 0600 is not kept)"
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_write_that_fails_at_the_rename_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch):
    write_json_atomic(tmp_path / "c.json", {"old": True})

    def crash(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk gone"):
        write_json_atomic(tmp_path / "c.json", {"new": True})
    assert json.loads((tmp_path / "c.json").read_text()) == {"old": True}
    assert not list(tmp_path.glob(".*.tmp"))


def test_temp_files_of_a_killed_writer_are_cleaned(tmp_path):
    (tmp_path / ".00000.tar.abc.tmp").write_bytes(b"partial")
    (tmp_path / "00001.tar").write_bytes(b"done")
    assert clean_temp_files(tmp_path) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["00001.tar"]
