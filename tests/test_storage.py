"""surd.storage: one API for local paths and fsspec URLs. Local paths keep the standard library; URLs are exercised
here with fsspec's in-memory filesystem (the S3 server tests are in test_storage_s3.py)."""

from __future__ import annotations

import pytest

from surd import files, shards, storage
from surd.sample import Rejected

fsspec = pytest.importorskip("fsspec")


@pytest.mark.parametrize("path, scheme", [("s3://b/k", "s3"), ("gs://b", "gs"), ("hf://datasets/x", "hf"),
                                          ("/a/b", "file"), ("a/b", "file"), ("file:///a/b", "file"),
                                          ("C:\\data\\x", "file"), ("memory://x", "memory")])
def test_scheme(path, scheme):
    assert storage.scheme(path) == scheme and storage.is_remote(path) == (scheme != "file")


def test_path_helpers_treat_urls_as_strings():
    assert storage.join("s3://b/run/", "00000.tar") == "s3://b/run/00000.tar"
    assert storage.join("s3://b/run", "a", "b.json") == "s3://b/run/a/b.json"
    assert storage.parent("s3://b/run/x.tar") == "s3://b/run" and storage.basename("s3://b/run/x.tar") == "x.tar"
    assert storage.normalize("s3://b/run/") == "s3://b/run" and storage.normalize("file:///tmp/x") == "/tmp/x"
    assert storage.resolve("s3://b/run") == "s3://b/run"
    with pytest.raises(ValueError, match="remote URL"):
        storage.local("s3://b/x")


def test_local_paths_do_not_import_fsspec(tmp_path):
    import subprocess
    import sys

    code = ("import sys; from surd import storage, shards; shards.write_shard(sys.argv[1], '00000', []); "
            "assert shards.list_done(sys.argv[1]) == ['00000']; assert 'fsspec' not in sys.modules")
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True)


def test_a_shard_round_trips_through_an_fsspec_url():
    base = "memory://surd-test/run/00_x"
    sample = {"__key__": "k1", "json": {"a": 1}, "txt": b"hello"}
    stats = shards.write_shard(base, "00000", [sample, Rejected("k2", "too_small", "3 px")])
    assert stats["in"] == 2 and shards.list_done(base) == ["00000"] and shards.is_done(base, "00000")
    assert list(shards.read_shard(base + "/00000.tar")) == [sample]
    assert [r["reason"] for r in shards.read_sidecar(base, "00000")] == ["", "too_small"]
    assert shards.list_shards(base) == [base + "/00000.tar"] and shards.read_stats(base)["00000"]["kept"] == 1
    files.write_json_atomic(base + "/_config.json", {"stage": "x"})
    assert shards.read_config(base) == {"stage": "x"}
    shards.write_rows(base + "/_state/plan/00000.rows.json.zst", [{"a": "é"}, {"b": [1, 2]}])
    assert shards.read_input(base + "/_state/plan/00000.rows.json.zst") == [{"a": "é"}, {"b": [1, 2]}]


def test_upload_and_download_trees(tmp_path):
    (tmp_path / "src" / "d").mkdir(parents=True)
    (tmp_path / "src" / "a.txt").write_text("a")
    (tmp_path / "src" / "d" / "b.txt").write_text("b")
    assert storage.upload_tree(tmp_path / "src", "memory://surd-tree/t") == 2
    assert list(storage.walk_files("memory://surd-tree/t")) == ["a.txt", "d/b.txt"]
    assert storage.download_tree("memory://surd-tree/t", tmp_path / "back") == 2
    assert (tmp_path / "back" / "d" / "b.txt").read_text() == "b"
