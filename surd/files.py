"""Atomic file writes: every published file appears whole or not at all (temp file beside it, then rename).

The one place that writes finished files for shards, stats markers, configs, adapter weights, embed exports and
review decisions; other storage backends plug in here.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


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


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write via a temp file in the same directory and rename, so readers never see half a file."""
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
    """Remove temp files left by a killed writer; returns how many."""
    n = 0
    for p in Path(directory).glob(".*.tmp"):
        p.unlink(missing_ok=True)
        n += 1
    return n
