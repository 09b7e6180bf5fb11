"""Training into a URL (surd.adapter.mirror): the local mirror folder, pull of what the URL holds, push with the
completion markers last and the feature cache left local (fsspec's memory filesystem stands in for a bucket)."""

from __future__ import annotations

import fsspec
import pytest

from surd import storage
from surd.adapter import mirror


@pytest.fixture
def bucket():
    fs = fsspec.filesystem("memory")
    root = "memory://surd-mirror-test"
    yield root
    if fs.exists(root):
        fs.rm(root, recursive=True)


def test_push_uploads_markers_last_and_keeps_the_feature_cache_local(tmp_path, bucket, monkeypatch):
    local = tmp_path / "run"
    for rel in ("checkpoint-2/trainer_state.json", "checkpoint-2/adapter_model.safetensors", "adapter_config.json",
                "log.csv", "feature_cache/a.npy"):
        (local / rel).parent.mkdir(parents=True, exist_ok=True)
        (local / rel).write_text(rel)
    order = []
    real = storage.put_file
    monkeypatch.setattr(storage, "put_file", lambda src, dst: (order.append(dst.rsplit("/", 1)[-1]), real(src, dst)))
    assert mirror.push(local, bucket) == 4
    assert sorted(order[-2:]) == sorted(mirror.MARKERS) and len(order) == 4  # what marks "complete" goes last
    assert not storage.exists(storage.join(bucket, "feature_cache", "a.npy"))


def test_pull_brings_back_what_the_url_holds_into_a_folder_per_url(tmp_path, bucket, monkeypatch):
    monkeypatch.setenv("SURD_CACHE_DIR", str(tmp_path / "cache"))
    storage.put_bytes(storage.join(bucket, "checkpoint-2", "trainer_state.json"), b"{}")
    local = mirror.pull(bucket)
    assert local == mirror.mirror_dir(bucket) and (local / "checkpoint-2" / "trainer_state.json").read_bytes() == b"{}"
    assert mirror.mirror_dir(bucket) != mirror.mirror_dir(bucket + "-other")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match="single-process training"):
        mirror.pull(bucket)
