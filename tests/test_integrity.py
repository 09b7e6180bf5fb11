"""Stats markers vouch for every committed file (size, sample count, SHA-256), and readers hold shards to them:
each corruption below fails loudly, naming the file and what was expected vs found, never a shorter read."""

from __future__ import annotations

import hashlib
import json
import tarfile

import pytest

from surd import shards
from surd.integrity import ShardCorrupt, ShardUnfinished, mismatch
from surd.sample import Rejected, make_key
from tests.conftest import jpeg_bytes


def _write(d, n=4, stem="00000"):
    samples = [{"__key__": make_key("t", str(i)), "json": {"i": i}, "jpg": jpeg_bytes(32, 32, seed=i)}
               for i in range(n)]
    return shards.write_shard(d, stem, [*samples, Rejected(make_key("t", "bad"), "decode_error", "x", {})])


def _member_offsets(tar_path):
    with tarfile.open(tar_path) as tar:
        return [m.offset for m in tar.getmembers()]


def test_marker_records_every_committed_file(tmp_path):
    stats = _write(tmp_path)
    marker = json.loads((tmp_path / "00000.stats.json").read_text())
    assert marker["files"] == stats["files"]
    for name, samples in (("00000.tar", 4), ("00000.samples.parquet", 5)):
        data = (tmp_path / name).read_bytes()
        assert stats["files"][name] == {"size": len(data), "samples": samples,
                                        "sha256": hashlib.sha256(data).hexdigest()}


def test_a_tar_cut_between_two_members_is_refused_not_read_short(tmp_path):
    _write(tmp_path)
    tar = tmp_path / "00000.tar"
    cut = _member_offsets(tar)[4]  # the header of the third sample: what is left is a valid, shorter tar
    tar.write_bytes(tar.read_bytes()[:cut] + b"\0" * 1024)
    assert sum(1 for _ in shards.read_shard(tar, verify=False)) == 2  # the silent loss this guards against
    with pytest.raises(ShardCorrupt, match=r"00000\.tar does not match its stats marker \(size: expected \d+, found"):
        list(shards.read_shard(tar))


def test_a_flipped_byte_fails_the_checksum(tmp_path):
    _write(tmp_path)
    tar = tmp_path / "00000.tar"
    data = bytearray(tar.read_bytes())
    data[_member_offsets(tar)[1] + 600] ^= 0xFF  # inside the first jpg's bytes: same size, same count
    tar.write_bytes(bytes(data))
    with pytest.raises(ShardCorrupt, match="sha256: expected"):
        list(shards.read_shard(tar))


def test_a_tar_cut_inside_a_member_names_the_file(tmp_path):
    _write(tmp_path)
    tar = tmp_path / "00000.tar"
    tar.write_bytes(tar.read_bytes()[: _member_offsets(tar)[3] + 700])
    with pytest.raises(ShardCorrupt, match="00000.tar"):
        list(shards.read_shard(tar))


def test_a_marker_without_file_records_still_vouches_for_the_count(tmp_path):
    _write(tmp_path)
    marker = tmp_path / "00000.stats.json"
    legacy = json.loads(marker.read_text())
    del legacy["files"]
    marker.write_text(json.dumps(legacy))
    tar = tmp_path / "00000.tar"
    assert len(list(shards.read_shard(tar))) == 4
    tar.write_bytes(tar.read_bytes()[: _member_offsets(tar)[4]] + b"\0" * 1024)
    with pytest.raises(ShardCorrupt, match="samples: expected 4, found 2"):
        list(shards.read_shard(tar))


def test_a_shard_without_its_marker_is_unfinished(tmp_path):
    _write(tmp_path)
    (tmp_path / "00000.stats.json").unlink()
    with pytest.raises(ShardUnfinished, match="00000.tar has no stats marker"):
        list(shards.read_shard(tmp_path / "00000.tar"))
    with pytest.raises(ShardUnfinished):
        shards.read_sidecar(tmp_path, "00000")


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage_marker"])
def test_a_damaged_sidecar_or_marker_fails_loudly(tmp_path, damage):
    _write(tmp_path)
    side = tmp_path / "00000.samples.parquet"
    if damage == "truncate":
        side.write_bytes(side.read_bytes()[:-50])
    elif damage == "flip":
        data = bytearray(side.read_bytes())
        data[40] ^= 1
        side.write_bytes(bytes(data))
    else:
        (tmp_path / "00000.stats.json").write_text("{not json")
    with pytest.raises(ShardCorrupt, match="00000"):
        shards.read_sidecar(tmp_path, "00000")


def test_drop_samples_rewrites_the_records(tmp_path):
    _write(tmp_path)
    key = make_key("t", "1")
    stats = shards.drop_samples(tmp_path, "00000", {key: ("duplicate_image", "same bytes")})
    assert stats["files"]["00000.tar"]["samples"] == 3 and stats["files"]["00000.samples.parquet"]["samples"] == 5
    assert [s["__key__"] for s in shards.read_shard(tmp_path / "00000.tar")].count(key) == 0  # verified read
    assert len(shards.read_sidecar(tmp_path, "00000")) == 5


def test_drop_samples_refuses_a_corrupt_shard_and_leaves_it_alone(tmp_path):
    _write(tmp_path)
    tar = tmp_path / "00000.tar"
    tar.write_bytes(tar.read_bytes()[: _member_offsets(tar)[4]] + b"\0" * 1024)
    before = tar.read_bytes()
    with pytest.raises(ShardCorrupt):
        shards.drop_samples(tmp_path, "00000", {make_key("t", "0"): ("duplicate_image", "")})
    assert tar.read_bytes() == before and (tmp_path / "00000.stats.json").exists()
    assert not list(tmp_path.glob(".*.tmp"))


def test_mismatch_lists_only_what_differs():
    rec = {"size": 10, "samples": 2, "sha256": "ab"}
    assert mismatch("f", rec, size=10, samples=2, digest="ab") is None
    assert mismatch("f", rec, size=9, samples=2) == "f does not match its stats marker (size: expected 10, found 9)"
