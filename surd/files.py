"""Atomic file writes: every published file appears whole or not at all.

The one place that writes finished files for shards, stats markers, configs, adapter weights, embed exports and
review decisions. On a local disk: a temp file beside the final name, then a rename. On an object store (any URL
`surd.storage` handles), where there is no rename: the bytes are written locally first and uploaded as one object
under the final key, which becomes visible only when the upload completes; a killed upload leaves no object (or,
on a store without atomic puts, one that no marker vouches for: a shard counts as done only once its stats
marker, written last, exists).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from surd import storage


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()


def mkstemp_beside(directory: str | os.PathLike, name: str) -> tuple[int, str]:
    """A temp file beside its final name (same filesystem, so the rename is atomic), with normal permissions."""
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    os.fchmod(fd, _FILE_MODE)  # mkstemp makes 0600 files; published files should be readable like any file
    return fd, tmp


def temp_for(path: str | os.PathLike) -> tuple[int, str]:
    """A local temp file to write *path*'s bytes into before `publish`: beside it on a local disk, in the
    system temp folder when *path* is a URL."""
    if storage.is_remote(path):
        fd, tmp = tempfile.mkstemp(prefix=f".surd-{storage.basename(path)}.", suffix=".tmp")
        return fd, tmp
    return mkstemp_beside(os.path.dirname(os.path.abspath(path)), os.path.basename(path))


def publish(tmp: str, path: str | os.PathLike) -> None:
    """Make a finished temp file (from `temp_for`) appear under *path*: rename locally, upload remotely."""
    if not storage.is_remote(path):
        os.replace(tmp, path)
        return
    try:
        storage.put_file(tmp, path)
    finally:
        os.unlink(tmp)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write via a temp file in the same directory and rename, so readers never see half a file (a URL: one put)."""
    if storage.is_remote(path):
        storage.put_bytes(path, data)
        return
    path = Path(path)
    fd, tmp = mkstemp_beside(path.parent, path.name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Pretty, sorted JSON written atomically."""
    write_bytes_atomic(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False).encode() + b"\n")


def clean_temp_files(directory: str | os.PathLike) -> int:
    """Remove temp files left by a killed writer; returns how many (a URL has none: temp files stay local)."""
    if storage.is_remote(directory):
        return 0
    n = 0
    for p in Path(directory).glob(".*.tmp"):
        p.unlink(missing_ok=True)
        n += 1
    return n
