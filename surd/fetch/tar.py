"""Fetcher for ``tar:<tar path or URL>#<offset>:<size>:<member>`` refs (webdataset shards, spooled datasets).

The listing (`surd.sources.webdataset`) already walked the tar's headers, so a member is one range read at its data
offset: no tar is scanned twice. Local tars are read with seek + read, http(s) tars through the guarded downloader
into the cache once (as `surd.fetch.archive` does for zips), other URLs (s3://, gs://, hf://, …) with fsspec range
reads. A member shorter than its header says is ``truncated_member``, never a partial image.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from surd import storage
from surd.fetch.http import DownloadConfig, download_cached, is_remote
from surd.fetch.result import FetchError


def tar_ref(location: str, offset: int, size: int, member: str) -> str:
    """The ref `fetch_many` reads: the member's data bytes [offset, offset + size) of the tar at *location*."""
    return f"tar:{location}#{offset}:{size}:{member}"


def parse_ref(ref: str) -> tuple[str, int, int, str] | FetchError:
    """(location, offset, size, member) of a ``tar:`` ref, or a FetchError naming the expected shape."""
    location, sep, spec = ref[len("tar:") :].rpartition("#")
    parts = spec.split(":", 2)
    if not sep or not location or len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        return FetchError("invalid_ref", f"{ref!r} is not tar:<tar path or URL>#<offset>:<size>:<member>")
    return location, int(parts[0]), int(parts[1]), parts[2]


def _read_local(path: str, spans: list[tuple[int, int, str]]) -> list[bytes | FetchError]:
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return [FetchError("missing_file", path)] * len(spans)
    except OSError as e:
        return [FetchError("read_error", f"{path}: {e}")] * len(spans)
    out: list[bytes | FetchError] = []
    with f:
        for offset, size, _ in spans:
            f.seek(offset)
            out.append(f.read(size))
    return out


def _read_remote(location: str, spans: list[tuple[int, int, str]]) -> list[bytes | FetchError]:
    fs, inner = storage.filesystem(location)
    got = fs.cat_ranges([inner] * len(spans), [o for o, _, _ in spans], [o + s for o, s, _ in spans],
                        on_error="return")
    return [FetchError("missing_file" if isinstance(d, FileNotFoundError) else "read_error", f"{location}: {d}")
            if isinstance(d, BaseException) else bytes(d) for d in got]


def _checked(data: bytes | FetchError, location: str, size: int, member: str) -> bytes | FetchError:
    if isinstance(data, FetchError):
        return data
    if len(data) < size:
        return FetchError("truncated_member", f"{member} in {location}: {len(data)} of {size} bytes (the tar is cut)")
    if size == 0:
        return FetchError("empty_file", f"{member} in {location}")
    return data


def fetch_many(refs: list[str], options: dict[str, Any]) -> list[bytes | FetchError]:
    """Read ``tar:`` refs, each tar opened once per call; results in the order of *refs*."""
    cfg = DownloadConfig(**options)
    groups: dict[str, list[tuple[int, int, int, str]]] = defaultdict(list)
    out: list[bytes | FetchError | None] = [None] * len(refs)
    for i, ref in enumerate(refs):
        parsed = parse_ref(ref)
        if isinstance(parsed, FetchError):
            out[i] = parsed
        elif parsed[2] > cfg.max_bytes:  # refused before reading: a member can be a bomb too
            out[i] = FetchError("too_large", f"{parsed[3]}: {parsed[2]} bytes > max_bytes {cfg.max_bytes}")
        else:
            groups[parsed[0]].append((i, parsed[1], parsed[2], parsed[3]))
    for location, members in groups.items():
        spans = [(offset, size, member) for _, offset, size, member in members]
        if is_remote(location):  # http(s): the guarded client, the whole tar cached once
            local = download_cached(location, cfg)
            got = [local] * len(spans) if isinstance(local, FetchError) else _read_local(str(local), spans)
        elif storage.is_remote(location):
            got = _read_remote(location, spans)
        else:
            got = _read_local(storage.local(location), spans)
        for (i, _, size, member), data in zip(members, got):
            out[i] = _checked(data, location, size, member)
    return out  # type: ignore[return-value]
