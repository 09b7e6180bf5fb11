"""Shard layer: round trips, determinism, atomic commits, sidecars and webdataset compatibility."""

from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pytest

from surd import shards
from surd.sample import Rejected, make_key
from tests.conftest import jpeg_bytes


def _samples(n: int = 5) -> list[dict]:
    out = []
    for i in range(n):
        key = make_key("test", str(i))
        vec = io.BytesIO()
        np.save(vec, np.arange(4, dtype=np.float16) + i)
        out.append({"__key__": key, "json": {"key": key, "complex_prompt": f"prompt {i} ünïcode"},
                    "jpg": jpeg_bytes(64, 64, seed=i), "llm.npy": vec.getvalue()})
    return out


def test_round_trip_keeps_members_and_order(tmp_path):
    samples = _samples()
    rej = Rejected(make_key("test", "bad"), "decode_error", "truncated", {"key": "x"})
    stats = shards.write_shard(tmp_path, "00000", samples[:2] + [rej] + samples[2:])
    assert stats["in"] == 6 and stats["kept"] == 5 and stats["rejected"] == {"decode_error": 1}
    back = list(shards.read_shard(tmp_path / "00000.tar"))
    assert [s["__key__"] for s in back] == [s["__key__"] for s in samples]
    for a, b in zip(samples, back):
        assert a["json"] == b["json"] and a["jpg"] == b["jpg"] and a["llm.npy"] == b["llm.npy"]
    vec = np.load(io.BytesIO(back[3]["llm.npy"]), allow_pickle=False)
    assert vec.dtype == np.float16 and vec[0] == 3
    rows = shards.read_sidecar(tmp_path, "00000")
    assert [r["status"] for r in rows].count("kept") == 5
    assert rows[2] == {"key": rej.key, "status": "rejected", "reason": "decode_error", "detail": "truncated",
                       "meta": {"key": "x"}}


def test_tars_are_deterministic(tmp_path):
    for d in ("a", "b"):
        shards.write_shard(tmp_path / d, "00000", _samples())
    for suffix in (".tar", shards.SIDECAR_SUFFIX):
        assert (tmp_path / "a" / f"00000{suffix}").read_bytes() == (tmp_path / "b" / f"00000{suffix}").read_bytes()
    with tarfile.open(tmp_path / "a" / "00000.tar") as tar:
        members = tar.getmembers()
    assert {m.mtime for m in members} == {0} and {m.uid for m in members} == {0}
    names = [m.name for m in members]
    assert names[:3] == sorted(names[:3])  # a sample's members are sorted by extension
    assert names[0].endswith(".jpg") and names[1].endswith(".json") and names[2].endswith(".llm.npy")


def test_webdataset_reads_our_shards(tmp_path):
    wds = pytest.importorskip("webdataset")
    samples = _samples(3)
    shards.write_shard(tmp_path, "00000", samples)
    got = list(wds.WebDataset(str(tmp_path / "00000.tar"), shardshuffle=False))
    assert [g["__key__"] for g in got] == [s["__key__"] for s in samples]
    assert json.loads(got[0]["json"]) == samples[0]["json"]


def test_failed_writer_publishes_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with shards.ShardWriter(tmp_path, "00000") as w:
            w.write(_samples(1)[0])
            raise RuntimeError("stage crashed")
    assert list(tmp_path.iterdir()) == []
    assert not shards.is_done(tmp_path, "00000")


def test_stats_written_last_marks_done(tmp_path):
    with shards.ShardWriter(tmp_path, "00003") as w:
        w.write(_samples(1)[0])
        assert not shards.is_done(tmp_path, "00003")
        w.commit({"seconds": 0.1})
    assert shards.is_done(tmp_path, "00003") and shards.list_done(tmp_path) == ["00003"]
    assert shards.read_stats(tmp_path)["00003"]["kept"] == 1


def test_duplicate_kept_key_is_refused(tmp_path):
    s = _samples(1)[0]
    with pytest.raises(ValueError, match="duplicate key"):
        shards.write_shard(tmp_path, "00000", [s, dict(s)])


def test_drop_samples_moves_keys_to_rejects_idempotently(tmp_path):
    samples = _samples(4)
    shards.write_shard(tmp_path, "00000", samples, {"seconds": 1.0})
    drops = {samples[1]["__key__"]: ("duplicate_image", "same bytes as x")}
    first = shards.drop_samples(tmp_path, "00000", drops)
    tar_once = (tmp_path / "00000.tar").read_bytes()
    again = shards.drop_samples(tmp_path, "00000", drops)
    assert first == again and first["kept"] == 3 and first["rejected"] == {"duplicate_image": 1}
    assert (tmp_path / "00000.tar").read_bytes() == tar_once
    assert samples[1]["__key__"] not in {s["__key__"] for s in shards.read_shard(tmp_path / "00000.tar")}


def test_invalid_key_rejected(tmp_path):
    with pytest.raises(ValueError, match="invalid sample key"):
        shards.write_shard(tmp_path, "00000", [{"__key__": "a.b", "json": {}}])
