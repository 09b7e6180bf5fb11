"""Fetcher for ``zip:<zip path or URL>#<member>`` refs (DiffusionDB's part zips): each zip opened once per call,
remote zips downloaded once into the cache through the guarded HTTP client."""

from __future__ import annotations

import zipfile
from collections import defaultdict
from typing import Any

from surd.fetch.content import sniff_image
from surd.fetch.http import DownloadConfig, download_cached
from surd.fetch.result import FetchError


def _read_member(zf: zipfile.ZipFile, name: str, cfg: DownloadConfig) -> bytes | FetchError:
    try:
        info = zf.getinfo(name)
    except KeyError:
        return FetchError("missing_in_zip", f"{name} not in {zf.filename}")
    if info.file_size > cfg.max_bytes:  # checked before inflating: a zip member can be a bomb too
        return FetchError("too_large", f"{name}: {info.file_size} bytes > max_bytes {cfg.max_bytes}")
    try:
        data = zf.read(info)
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        return FetchError("bad_zip", f"{name} in {zf.filename}: {e}")
    return data if sniff_image(data) else FetchError("not_an_image", f"{name}: first bytes {data[:16]!r}")


def fetch_many(refs: list[str], options: dict[str, Any]) -> list[bytes | FetchError]:
    """Read ``zip:<zip path or URL>#<member>`` refs, opening each zip once; results in the order of *refs*."""
    cfg = DownloadConfig(**options)
    groups: dict[str, list[tuple[int, str]]] = defaultdict(list)
    out: list[bytes | FetchError | None] = [None] * len(refs)
    for i, ref in enumerate(refs):
        location, sep, member = ref[len("zip:") :].rpartition("#")
        if not sep or not member:
            out[i] = FetchError("invalid_ref", f"{ref!r} is not zip:<zip path or URL>#<member name>")
        else:
            groups[location].append((i, member))
    for location, members in groups.items():
        local = download_cached(location, cfg)
        try:
            zf = zipfile.ZipFile(local) if not isinstance(local, FetchError) else None
        except (OSError, zipfile.BadZipFile) as e:
            local = FetchError("missing_file" if isinstance(e, FileNotFoundError) else "bad_zip", f"{location}: {e}")
            zf = None
        for i, member in members:
            out[i] = local if zf is None else _read_member(zf, member, cfg)
        if zf is not None:
            zf.close()
    return out  # type: ignore[return-value]
