"""The only code that reads and writes shards: webdataset tars, parquet sidecars and stats markers.

A stage's output directory holds, per shard ``NNNNN``:
  NNNNN.tar            kept samples, deterministic (fixed mtime/owner, members sorted within a sample)
  NNNNN.samples.parquet  every input key with status ``kept``/``rejected``, reason, detail, metadata json
  NNNNN.stats.json     {"in", "kept", "rejected": {reason: n}, "seconds", "versions", "files"} -- written last;
                       its presence marks the shard done; ``files`` records the size, sample count and SHA-256 of
                       the tar and the sidecar (`surd.integrity`).
and once per directory ``_config.json`` (the resolved stage config and the surd version).

Every reader checks a shard against its marker: a tar or sidecar without a marker is unfinished
(`ShardUnfinished`), one that does not match it is corrupt (`ShardCorrupt`, naming the file and what was expected vs
found); `surd.audit.input_shards` refuses an input directory with unfinished or missing shards unless asked for the
finished ones only.

A dataset directory may be a local path or a URL (``s3://bucket/runs/x/00_ingest``): every read and write goes
through `surd.storage` / `surd.files`, and the stats marker is written after the tar and the sidecar are complete,
so on an object store (no rename) a shard without its marker (even one with a partial upload) is not done.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from surd import storage
from surd.files import publish, temp_for, write_bytes_atomic, write_json_atomic
from surd.integrity import (
    SIDECAR_SUFFIX,
    STATS_SUFFIX,
    HashingReader,
    HashingWriter,
    ShardCorrupt,
    check,
    expected_file,
    read_marker,
    record,
    record_bytes,
)
from surd.sample import Rejected, Sample, dumps_json

FIXED_MTIME = 0  # 1970-01-01: tars must not depend on when they were written
CONFIG_NAME = "_config.json"
SIDECAR_COLUMNS = ("key", "status", "reason", "detail", "meta")
ROWS_SUFFIX = ".rows.json.zst"  # a planned shard's input rows (source stages): a zstd-compressed json array
# Parquet is read with use_threads=False everywhere in surd: a read through Arrow's CPU thread pool leaves its
# threads running, and their teardown at interpreter exit can abort the process after its work is done
# ("terminate called without an active exception", status -6: apache/arrow#34314, seen here in full-suite runs).
# Sidecars and row lists gain little from decoding threads.


def shard_name(index: int) -> str:
    """Shard *index* → its file stem, ``00000``."""
    return f"{index:05d}"


def stem_of(path: str | os.PathLike) -> str:
    """``…/00012.tar`` → ``00012``."""
    return storage.basename(path).partition(".")[0]


def _names(dataset_dir: str | os.PathLike) -> list[str]:
    try:
        return storage.listdir(dataset_dir)
    except (FileNotFoundError, NotADirectoryError):
        raise FileNotFoundError(f"dataset directory {dataset_dir} does not exist: run the stage that writes it "
                                "first") from None


def list_shards(dataset_dir: str | os.PathLike) -> list[str]:
    """The paths (or URLs) of the dataset's ``NNNNN.tar`` files, in order."""
    return [storage.join(dataset_dir, n) for n in _names(dataset_dir) if n.endswith(".tar") and n[:-4].isdigit()]


def list_done(dataset_dir: str | os.PathLike) -> list[str]:
    """Stems of the shards whose stats marker exists (done shards): one listing, also on an object store."""
    try:
        names = storage.listdir(dataset_dir)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(n[: -len(STATS_SUFFIX)] for n in names if n.endswith(STATS_SUFFIX) and not n.startswith("."))


def is_done(dataset_dir: str | os.PathLike, stem: str) -> bool:
    return storage.exists(storage.join(dataset_dir, stem + STATS_SUFFIX))


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


def read_shard(path: str | os.PathLike, *, verify: bool = True) -> Iterator[Sample]:
    """Stream the samples of a tar shard. ``json`` is decoded to a dict; other members stay bytes.

    With `verify` (the default) the tar is checked against its stats marker: its size before the first sample,
    its sample count and SHA-256 as it streams, so a short or altered tar ends in `ShardCorrupt` (naming the file,
    expected vs found), never in a normal, shorter read; a tar without a marker is `ShardUnfinished`.
    """
    expected = expected_file(path) if verify else None
    if expected is not None and "size" in expected:
        check(str(path), expected, size=storage.version_tag(path)["size"])
    n = 0
    try:
        for sample in _stream(path, expected):
            n += 1
            yield sample
    except (tarfile.TarError, EOFError, OSError, ValueError) as e:
        if isinstance(e, (ShardCorrupt, FileNotFoundError)):
            raise
        raise ShardCorrupt(f"{path} is not a readable tar ({type(e).__name__}: {e})") from None
    check(str(path), expected, samples=n)


def _stream(path: str | os.PathLike, expected: dict[str, Any] | None) -> Iterator[Sample]:
    current: Sample | None = None
    with storage.open_file(path, "rb") as raw:
        f = HashingReader(raw) if expected is not None and "sha256" in expected else raw
        with tarfile.open(fileobj=f, mode="r|") as tar:
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
                current[ext] = _member_value(ext, data)
        if isinstance(f, HashingReader):
            f.drain()
            check(str(path), expected, size=f.size, sha256=f.hexdigest())
    if current is not None:
        yield current


def _member_value(ext: str, data: bytes) -> Any:
    return json.loads(data) if ext == "json" else data


def sample_from_members(key: str, members: list[tuple[str, bytes]]) -> Sample:
    """The sample `read_shard` would read back from these tar members (`ShardWriter.write` returns them): ``json``
    decoded, every other member as its bytes. A fused pass hands it to the next stage instead of a tar."""
    sample: Sample = {"__key__": key}
    for name, data in members:
        ext = name.partition(".")[2]
        sample[ext] = _member_value(ext, data)
    return sample


def count_samples(path: str | os.PathLike) -> int:
    """Number of samples in a shard, from its stats marker when present (no tar scan)."""
    stats = str(path)[: -len(".tar")] + STATS_SUFFIX
    if storage.exists(stats):
        return int(json.loads(storage.read_bytes(stats))["kept"])
    return sum(1 for _ in read_shard(path))


# ---------------------------------------------------------------------------------------------- writer


def string_array(values: list[str | bytes]) -> pa.Array:
    """A utf-8 column (str, or bytes already utf-8) built from its buffers: the same array as
    ``pa.array(values, pa.string())``, but ``pa.array`` on a list imports pandas (~0.7 s of CPU per process) to
    check for pandas objects."""
    data = [v if isinstance(v, bytes) else v.encode() for v in values]
    offsets = np.zeros(len(data) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in data], out=offsets[1:])
    if offsets[-1] > np.iinfo(np.int32).max:  # over 2 GiB: pyarrow chooses how to split it
        return pa.array([b.decode() for b in data], type=pa.string())
    return pa.StringArray.from_buffers(len(data), pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(b"".join(data)))


def _write_columns(dataset_dir: str, stem: str, columns: dict[str, list[str | bytes]]) -> dict[str, Any]:
    """The sidecar from its columns (SIDECAR_COLUMNS, one value per input key), as a zstd parquet file (atomic);
    returns its marker record."""
    table = pa.table({c: string_array(columns[c]) for c in SIDECAR_COLUMNS})
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    write_bytes_atomic(storage.join(dataset_dir, f"{stem}{SIDECAR_SUFFIX}"), buf.getvalue())
    return record_bytes(buf.getvalue(), table.num_rows)


def _write_sidecar(dataset_dir: str, stem: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Every input key with status/reason/detail/meta (a dict, or its json), as a zstd parquet file (atomic)."""

    def cell(r: dict[str, Any], c: str) -> str | bytes:
        v = r[c]
        return v if isinstance(v, (str, bytes)) else dumps_json(v)

    return _write_columns(dataset_dir, stem, {c: [cell(r, c) for r in rows] for c in SIDECAR_COLUMNS})


class ShardWriter:
    """Writes one output shard: kept samples to the tar, every input key to the sidecar, stats last.

    Use as a context manager; nothing becomes visible under the final names until `commit`.
    If the block raises, the temp files are removed and the shard stays not-done. The tar is written to a local
    temp file as samples come (bounded memory), then renamed into place, or uploaded for a URL.
    """

    def __init__(self, dataset_dir: str | os.PathLike, stem: str):
        self.dir = storage.normalize(dataset_dir)
        storage.makedirs(self.dir)
        self.stem = stem
        fd, self._tmp_tar = temp_for(storage.join(self.dir, f"{stem}.tar"))
        self._fileobj = os.fdopen(fd, "wb")
        self._hashed = HashingWriter(self._fileobj)  # the tar's size and SHA-256, for the marker, as it is written
        self._tar = tarfile.open(fileobj=self._hashed, mode="w", format=tarfile.GNU_FORMAT)  # type: ignore[call-overload]
        self._columns: dict[str, list[str | bytes]] = {c: [] for c in SIDECAR_COLUMNS}  # the sidecar, by column
        self._seen: set[str] = set()
        self.rejected: Counter[str] = Counter()
        self.kept = 0
        self._committed = False

    def _row(self, key: str, status: str, reason: str, detail: str, meta: bytes) -> None:
        for column, value in zip(self._columns.values(), (key, status, reason, detail, meta)):
            column.append(value)

    def write(self, sample: Sample) -> list[tuple[str, bytes]]:
        """Add a kept sample; returns its tar members (name, bytes), as `read_shard` will read them back."""
        key = sample["__key__"]
        if key in self._seen:
            raise ValueError(f"duplicate key {key!r} in shard {self.stem}: a stage must reject duplicates, not emit them")
        self._seen.add(key)
        members = sample_members(sample)
        for name, data in members:
            self._tar.addfile(_tarinfo(name, len(data)), io.BytesIO(data))
        meta = next((data for name, data in members if name == f"{key}.json"), None)
        # The json member is dumps_json(sample["json"]) already: the sidecar's meta reuses it (one encoding).
        self._row(key, "kept", "", "", meta if isinstance(sample.get("json"), dict) and meta is not None else b"{}")
        self.kept += 1
        return members

    def reject(self, rej: Rejected) -> None:
        """Record a rejected input: counted under its reason, kept inspectable in the sidecar."""
        self._row(rej.key, "rejected", rej.reason, rej.detail, dumps_json(rej.meta))
        self.rejected[rej.reason] += 1

    def add(self, item: Sample | Rejected) -> list[tuple[str, bytes]] | None:
        """Add a kept sample (returns its members, see `write`) or a `Rejected` (returns None)."""
        if isinstance(item, Rejected):
            self.reject(item)
            return None
        return self.write(item)

    @property
    def n_in(self) -> int:
        return len(self._columns["key"])

    def commit(self, extra_stats: dict[str, Any] | None = None) -> dict[str, Any]:
        """Publish tar, then sidecar, then the stats marker (last, atomically). Returns the stats."""
        self._tar.close()
        self._fileobj.flush()
        os.fsync(self._fileobj.fileno())
        self._fileobj.close()
        publish(self._tmp_tar, storage.join(self.dir, f"{self.stem}.tar"))
        files = {f"{self.stem}.tar": record(self._hashed.size, self.kept, self._hashed.hexdigest()),
                 f"{self.stem}{SIDECAR_SUFFIX}": _write_columns(self.dir, self.stem, self._columns)}

        stats = {"in": self.n_in, "kept": self.kept, "rejected": dict(sorted(self.rejected.items()))}
        stats.update(extra_stats or {})
        stats["files"] = files
        assert stats["in"] == stats["kept"] + sum(stats["rejected"].values())
        write_json_atomic(storage.join(self.dir, f"{self.stem}{STATS_SUFFIX}"), stats)
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


# ---------------------------------------------------------------------------------------------- planned inputs


@dataclass(frozen=True)
class PlannedShard:
    """One output shard of a source stage: its stem, the row file holding its input rows, and their number."""

    stem: str
    rows: str
    n: int


def write_rows(path: str | os.PathLike, rows: list[dict[str, Any]]) -> None:
    """A shard's input rows (json-able dicts) as one zstd-compressed json array, written atomically.

    One array, not one document per row: encoding a shard at once is 3x faster, which is most of the planning
    time of a 10M-row list. ``zstd -dc 00000.rows.json.zst`` shows it.
    """
    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, "zstd") as z:
        z.write(json.dumps(rows, ensure_ascii=False, separators=(",", ":")).encode())
    write_bytes_atomic(path, sink.getvalue().to_pybytes())


def read_rows(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows `write_rows` wrote, in order."""
    return json.loads(pa.CompressedInputStream(pa.BufferReader(storage.read_bytes(path)), "zstd").read())


def read_input(path: str | os.PathLike) -> Iterator[Sample] | list[dict[str, Any]]:
    """A shard task's input: a planned row file (source stages) or a tar shard (every other stage)."""
    return read_rows(path) if str(path).endswith(ROWS_SUFFIX) else read_shard(path)


# ---------------------------------------------------------------------------------------------- readers


def read_stats(dataset_dir: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """stem → stats for every done shard."""
    stems = list_done(dataset_dir)
    blobs = storage.read_many([storage.join(dataset_dir, f"{stem}{STATS_SUFFIX}") for stem in stems])
    return {stem: json.loads(blob) for stem, blob in zip(stems, blobs)}


def read_sidecar(dataset_dir: str | os.PathLike, stem: str, *, verify: bool = True) -> list[dict[str, Any]]:
    """Rows of a shard's sidecar: key, status, reason, detail, meta (decoded). With `verify`, its size, SHA-256 and
    row count are checked against the stats marker first (`ShardCorrupt` / `ShardUnfinished`, as `read_shard`)."""
    path = storage.join(dataset_dir, f"{stem}{SIDECAR_SUFFIX}")
    expected = expected_file(path) if verify else None
    data = storage.read_bytes(path)
    if expected is not None:
        got = record_bytes(data, 0)
        check(path, expected, size=got["size"], sha256=got["sha256"] if "sha256" in expected else None)
    try:
        with pq.ParquetFile(io.BytesIO(data)) as f:
            table = f.read(use_threads=False)  # no Arrow pool threads (see ROWS_SUFFIX's note)
    except (pa.ArrowException, OSError, ValueError) as e:
        raise ShardCorrupt(f"{path} is not a readable parquet sidecar ({e})") from None
    check(path, expected, samples=table.num_rows)
    rows = table.to_pylist()
    for r in rows:
        r["meta"] = json.loads(r["meta"]) if r["meta"] else {}
    return rows


def iter_dataset(dataset_dir: str | os.PathLike) -> Iterator[Sample]:
    """Every kept sample of a dataset, shard by shard."""
    for path in list_shards(dataset_dir):
        yield from read_shard(path)


def read_config(dataset_dir: str | os.PathLike) -> dict[str, Any] | None:
    p = storage.join(dataset_dir, CONFIG_NAME)
    return json.loads(storage.read_bytes(p)) if storage.exists(p) else None


def drop_samples(dataset_dir: str | os.PathLike, stem: str, drops: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """Turn kept samples of a done shard into rejects (key → (reason, detail)); rewrites tar, sidecar, stats.

    The shard is checked against its marker first; the marker is then removed, so a run killed half-way through
    leaves the shard unfinished (never a tar that disagrees with a marker): the rerun redoes the shard and this
    pass, ending in the same bytes. Dropping keys already gone is a no-op.
    """
    d = storage.normalize(dataset_dir)
    tar_path = storage.join(d, f"{stem}.tar")
    marker = storage.join(d, f"{stem}{STATS_SUFFIX}")
    stats = read_marker(marker)
    rows = read_sidecar(d, stem)
    if not any(r["status"] == "kept" and r["key"] in drops for r in rows):
        return stats
    fd, tmp = temp_for(tar_path)
    try:
        with os.fdopen(fd, "wb") as f:
            hashed = HashingWriter(f)
            with tarfile.open(fileobj=hashed, mode="w", format=tarfile.GNU_FORMAT) as tar:  # type: ignore[call-overload]
                for sample in read_shard(tar_path):  # verified as it streams: a corrupt shard stops here
                    if sample["__key__"] in drops:
                        continue
                    for name, data in sample_members(sample):
                        tar.addfile(_tarinfo(name, len(data)), io.BytesIO(data))
    except BaseException:
        os.unlink(tmp)
        raise
    storage.remove(marker)
    publish(tmp, tar_path)

    for r in rows:
        if r["status"] == "kept" and r["key"] in drops:
            r["status"], (r["reason"], r["detail"]) = "rejected", drops[r["key"]]
    kept = sum(r["status"] == "kept" for r in rows)
    files = {f"{stem}.tar": record(hashed.size, kept, hashed.hexdigest()),
             f"{stem}{SIDECAR_SUFFIX}": _write_sidecar(d, stem, rows)}
    rejected = Counter(r["reason"] for r in rows if r["status"] == "rejected")
    stats.update({"in": len(rows), "kept": kept, "rejected": dict(sorted(rejected.items())), "files": files})
    write_json_atomic(marker, stats)
    return stats
