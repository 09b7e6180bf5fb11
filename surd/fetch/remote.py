"""Fetcher for images in object stores and other fsspec URLs (``s3://``, ``gs://``, ``hf://``, ...).

Credentials come from each backend's own environment and config (see `surd.storage`). Objects are read
concurrently, at most ``max_bytes`` + 1 bytes each, so a huge object is refused without being downloaded.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from surd import storage
from surd.fetch.result import FetchError


def fetch_many(refs: list[str], options: dict[str, Any]) -> list[bytes | FetchError]:
    """Read objects; a missing, empty or too large object is a FetchError, not an exception."""
    max_bytes = int(options.get("max_bytes", 64 * 1024 * 1024))
    out: list[bytes | FetchError | None] = [None] * len(refs)
    by_fs: dict[int, list[int]] = defaultdict(list)
    systems: dict[int, Any] = {}
    for i, ref in enumerate(refs):
        fs, _ = storage.filesystem(ref)
        by_fs[id(fs)].append(i)
        systems[id(fs)] = fs
    for key, idx in by_fs.items():
        fs = systems[key]
        inner = [storage.filesystem(refs[i])[1] for i in idx]
        got = fs.cat_ranges(inner, [0] * len(inner), [max_bytes + 1] * len(inner), on_error="return")
        for i, path, data in zip(idx, inner, got):
            out[i] = _result(refs[i], data, max_bytes, lambda p=path, fs=fs: fs.info(p).get("size"))
    return out  # type: ignore[return-value]


def _result(ref: str, data: Any, max_bytes: int, size: Callable[[], Any]) -> bytes | FetchError:
    if isinstance(data, FileNotFoundError):
        return FetchError("missing_file", ref)
    if isinstance(data, BaseException):
        try:  # a range read of an empty object is an error on S3 ("invalid range"), not b""
            if size() == 0:
                return FetchError("empty_file", ref)
        except Exception:  # the object is unreadable either way: report the read's own error
            pass
        return FetchError("read_error", f"{ref}: {type(data).__name__}: {data}")
    if not data:
        return FetchError("empty_file", ref)
    if len(data) > max_bytes:
        return FetchError("too_large", f"{ref}: more than {max_bytes} bytes")
    return bytes(data)
