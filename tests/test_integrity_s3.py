"""Shard integrity on object storage (moto's S3 server on 127.0.0.1): the marker's records are checked there too."""

from __future__ import annotations

import pytest

from surd import shards, storage
from surd.audit import input_shards, verify_run
from surd.integrity import ShardCorrupt, ShardUnfinished
from surd.sample import make_key
from tests.conftest import jpeg_bytes

pytestmark = pytest.mark.s3


def _write(d: str, n_shards: int = 2) -> None:
    for i in range(n_shards):
        shards.write_shard(d, shards.shard_name(i), [{"__key__": make_key("t", f"{i}-{j}"), "json": {"j": j},
                                                      "jpg": jpeg_bytes(32, 32, seed=j)} for j in range(3)])


def test_a_cut_or_unfinished_shard_on_s3_is_refused(bucket):
    d = bucket + "/integrity/a"
    _write(d)
    assert [s.n for s in input_shards(d)] == [3, 3] and not verify_run(d)[0][0].problems
    tar = d + "/00001.tar"
    data = storage.read_bytes(tar)
    storage.put_bytes(tar, data[:1536] + b"\0" * 1024)  # cut after the first sample's members
    with pytest.raises(ShardCorrupt, match=r"00001\.tar does not match its stats marker \(size"):
        list(shards.read_shard(tar))
    assert any("00001.tar does not match" in p for p in verify_run(d)[0][0].problems)
    storage.remove(d + "/00000.stats.json")
    with pytest.raises(ShardUnfinished, match="00000.tar has no stats marker"):
        input_shards(d)
