"""The only code that reads and writes shards: webdataset tars, parquet sidecars and stats markers.

A stage's output directory holds, per shard ``NNNNN``:
  NNNNN.tar            kept samples, deterministic (fixed mtime/owner, members sorted within a sample)
  NNNNN.samples.parquet  every input key with status ``kept``/``rejected``, reason, detail, metadata json
  NNNNN.stats.json     {"in", "kept", "rejected": {reason: n}, "seconds", "versions"} -- written last;
                       its presence marks the shard done.
and once per directory ``_config.json`` (the resolved stage config and the surd version).
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from surd.files import mkstemp_beside, write_bytes_atomic, write_json_atomic
from surd.sample import Rejected, Sample, dumps_json

FIXED_MTIME = 0  # 1970-01-01: tars must not depend on when they were written
STATS_SUFFIX = ".stats.json"
SIDECAR_SUFFIX = ".samples.parquet"
CONFIG_NAME = "_config.json"
SIDECAR_COLUMNS = ("key", "status", "reason", "detail", "meta")


def shard_name(index: int) -> str:
    """Shard *index* → its file stem, ``00000``."""
    return f"{index:05d}"


def list_shards(dataset_dir: str | os.PathLike) -> list[Path]:
    """The dataset's ``NNNNN.tar`` files, in order."""
    d = Path(dataset_dir)
    if not d.is_dir():
        raise FileNotFoundError(f"dataset directory {d} does not exist: run the stage that writes it first")
    return sorted(p for p in d.glob("*.tar") if p.stem.isdigit())


def list_done(dataset_dir: str | os.PathLike) -> list[str]:
    """Stems of the shards whose stats marker exists (done shards)."""
    return sorted(p.name[: -len(STATS_SUFFIX)] for p in Path(dataset_dir).glob("*" + STATS_SUFFIX))


def is_done(dataset_dir: str | os.PathLike, stem: str) -> bool:
    return (Path(dataset_dir) / (stem + STATS_SUFFIX)).exists()


# ---------------------------------------------------------------------------------------------- tar members


def encode_member(ext: str, value: Any) -> bytes:
    """Sample member → bytes. ``json`` dicts are encoded deterministically; bytes pass through."""
    if ext == "json" and not isinstance(value, (bytes, bytearray)):
        return dumps_json(value)
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"sample member {ext!r} must be bytes (or a dict for 'json'), got {type(value).__name__}")


def _tarinfo(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = FIXED_MTIME
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def sample_members(sample: Sample) -> list[tuple[str, bytes]]:
    """The (member name, bytes) pairs of one sample, sorted by extension."""
    key = sample["__key__"]
    if not key or "." in key or "/" in key:
        raise ValueError(f"invalid sample key {key!r}: keys must be non-empty and contain no '.' or '/'")
    out = []
    for ext in sorted(k for k in sample if not k.startswith("__")):
        if sample[ext] is None:
            continue
        out.append((f"{key}.{ext}", encode_member(ext, sample[ext])))
    return out


def read_shard(path: str | os.PathLike) -> Iterator[Sample]:
    """Stream the samples of a tar shard. ``json`` is decoded to a dict; other members stay bytes."""
    current: Sample | None = None
    with tarfile.open(path, "r|") as tar:
        for info in tar:
            if not info.isfile():
                continue
            base = os.path.basename(info.name)
            key, _, ext = base.partition(".")
            data = tar.extractfile(info).read()  # type: ignore[union-attr]
            if current is None or current["__key__"] != key:
                if current is not None:
                    yield current
                current = {"__key__": key}
            current[ext] = json.loads(data) if ext == "json" else data
    if current is not None:
        yield current


def count_samples(path: str | os.PathLike) -> int:
    """Number of samples in a shard, from its stats marker when present (no tar scan)."""
    stats = Path(str(path)[: -len(".tar")] + STATS_SUFFIX)
    if stats.exists():
        return int(json.loads(stats.read_text())["kept"])
    return sum(1 for _ in read_shard(path))


# ---------------------------------------------------------------------------------------------- writer


def _write_sidecar(dataset_dir: Path, stem: str, rows: list[dict[str, Any]]) -> None:
    """Every input key with status/reason/detail/meta, as a zstd parquet file (atomic)."""

    def cell(r: dict[str, Any], c: str) -> str:
        v = r[c]
        return v if isinstance(v, str) else dumps_json(v).decode()

    table = pa.table({c: pa.array([cell(r, c) for r in rows], type=pa.string()) for c in SIDECAR_COLUMNS})
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    write_bytes_atomic(dataset_dir / f"{stem}{SIDECAR_SUFFIX}", buf.getvalue())


class ShardWriter:
    """Writes one output shard: kept samples to the tar, every input key to the sidecar, stats last.

    Use as a context manager; nothing becomes visible under the final names until `commit`.
    If the block raises, the temp files are removed and the shard stays not-done.
    """

    def __init__(self, dataset_dir: str | os.PathLike, stem: str):
        self.dir = Path(dataset_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.stem = stem
        fd, self._tmp_tar = mkstemp_beside(self.dir, f"{stem}.tar")
        self._fileobj = os.fdopen(fd, "wb")
        self._tar = tarfile.open(fileobj=self._fileobj, mode="w", format=tarfile.GNU_FORMAT)
        self._rows: list[dict[str, str]] = []
        self._seen: set[str] = set()
        self.rejected: Counter[str] = Counter()
        self.kept = 0
        self._committed = False

    def _row(self, key: str, status: str, reason: str, detail: str, meta: dict) -> None:
        self._rows.append({"key": key, "status": status, "reason": reason, "detail": detail, "meta": dumps_json(meta).decode()})

    def write(self, sample: Sample) -> None:
        """Add a kept sample."""
        key = sample["__key__"]
        if key in self._seen:
            raise ValueError(f"duplicate key {key!r} in shard {self.stem}: a stage must reject duplicates, not emit them")
        self._seen.add(key)
        for name, data in sample_members(sample):
            self._tar.addfile(_tarinfo(name, len(data)), io.BytesIO(data))
        meta = sample.get("json") if isinstance(sample.get("json"), dict) else {}
        self._row(key, "kept", "", "", meta)
        self.kept += 1

    def reject(self, rej: Rejected) -> None:
        """Record a rejected input: counted under its reason, kept inspectable in the sidecar."""
        self._row(rej.key, "rejected", rej.reason, rej.detail, rej.meta)
        self.rejected[rej.reason] += 1

    def add(self, item: Sample | Rejected) -> None:
        self.reject(item) if isinstance(item, Rejected) else self.write(item)

    @property
    def n_in(self) -> int:
        return len(self._rows)

    def commit(self, extra_stats: dict[str, Any] | None = None) -> dict[str, Any]:
        """Publish tar, then sidecar, then the stats marker (last, atomically). Returns the stats."""
        self._tar.close()
        self._fileobj.flush()
        os.fsync(self._fileobj.fileno())
        self._fileobj.close()
        os.replace(self._tmp_tar, self.dir / f"{self.stem}.tar")

        _write_sidecar(self.dir, self.stem, self._rows)

        stats = {"in": self.n_in, "kept": self.kept, "rejected": dict(sorted(self.rejected.items()))}
        stats.update(extra_stats or {})
        assert stats["in"] == stats["kept"] + sum(stats["rejected"].values())
        write_json_atomic(self.dir / f"{self.stem}{STATS_SUFFIX}", stats)
        self._committed = True
        return stats

    def abort(self) -> None:
        if self._committed:
            return
        try:
            self._tar.close()
            self._fileobj.close()
        finally:
            if os.path.exists(self._tmp_tar):
                os.unlink(self._tmp_tar)

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None or not self._committed:
            self.abort()


def write_shard(dataset_dir: str | os.PathLike, stem: str, items: Iterable[Sample | Rejected],
                extra_stats: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write a whole shard from kept samples and `Rejected`s in one call; returns its stats."""
    with ShardWriter(dataset_dir, stem) as w:
        for item in items:
            w.add(item)
        return w.commit(extra_stats)


# ---------------------------------------------------------------------------------------------- readers


def read_stats(dataset_dir: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """stem → stats for every done shard."""
    d = Path(dataset_dir)
    return {stem: json.loads((d / f"{stem}{STATS_SUFFIX}").read_text()) for stem in list_done(d)}


def read_sidecar(dataset_dir: str | os.PathLike, stem: str) -> list[dict[str, Any]]:
    """Rows of a shard's sidecar: key, status, reason, detail, meta (decoded)."""

    rows = pq.read_table(Path(dataset_dir) / f"{stem}{SIDECAR_SUFFIX}").to_pylist()
    for r in rows:
        r["meta"] = json.loads(r["meta"]) if r["meta"] else {}
    return rows


def iter_dataset(dataset_dir: str | os.PathLike) -> Iterator[Sample]:
    """Every kept sample of a dataset, shard by shard."""
    for path in list_shards(dataset_dir):
        yield from read_shard(path)


def read_config(dataset_dir: str | os.PathLike) -> dict[str, Any] | None:
    p = Path(dataset_dir) / CONFIG_NAME
    return json.loads(p.read_text()) if p.exists() else None


def drop_samples(dataset_dir: str | os.PathLike, stem: str, drops: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """Turn kept samples of a done shard into rejects (key → (reason, detail)); rewrites tar, sidecar, stats.

    Idempotent: stats are recomputed from the sidecar, and keys already gone from the tar are fine, so a run
    killed half-way through this and rerun ends in the same state.
    """
    d = Path(dataset_dir)
    tar_path = d / f"{stem}.tar"
    fd, tmp = mkstemp_beside(d, f"{stem}.tar")
    with os.fdopen(fd, "wb") as f, tarfile.open(fileobj=f, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for sample in read_shard(tar_path):
            if sample["__key__"] in drops:
                continue
            for name, data in sample_members(sample):
                tar.addfile(_tarinfo(name, len(data)), io.BytesIO(data))
    os.replace(tmp, tar_path)

    rows = read_sidecar(d, stem)
    for r in rows:
        if r["status"] == "kept" and r["key"] in drops:
            r["status"], (r["reason"], r["detail"]) = "rejected", drops[r["key"]]
    _write_sidecar(d, stem, rows)

    stats = json.loads((d / f"{stem}{STATS_SUFFIX}").read_text())
    rejected = Counter(r["reason"] for r in rows if r["status"] == "rejected")
    stats.update({"in": len(rows), "kept": sum(r["status"] == "kept" for r in rows),
                  "rejected": dict(sorted(rejected.items()))})
    write_json_atomic(d / f"{stem}{STATS_SUFFIX}", stats)
    return stats
