"""Image fetchers by URL scheme: local files here; http(s) and zip members in their own modules."""

from __future__ import annotations

import importlib
import os
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlparse


@dataclass(frozen=True)
class FetchError:
    """Why an image could not be fetched: `reason` is a snake_case label counted in the stats."""

    reason: str
    detail: str = ""


# scheme → "module:function" with signature fetch_many(refs: list[str], options: dict) -> list[bytes | FetchError]
FETCHERS: dict[str, str] = {
    "file": "surd.fetchers:fetch_local",
    "http": "surd.download:fetch_many",
    "https": "surd.download:fetch_many",
    "zip": "surd.sources.diffusiondb:fetch_many",
}


def scheme_of(ref: str) -> str:
    """``/a/b.jpg`` and ``file:///a/b.jpg`` are "file"; ``https://...`` is "https"."""
    parsed = urlparse(ref)
    # A one-letter scheme is a Windows drive, not a URL scheme.
    return parsed.scheme.lower() if len(parsed.scheme) > 1 else "file"


def local_path(ref: str) -> str:
    return unquote(urlparse(ref).path) if ref.startswith("file://") else ref


def fetch_local(refs: list[str], options: dict[str, Any]) -> list[bytes | FetchError]:
    """Read local files; a missing or empty file is a FetchError, not an exception."""
    max_bytes = int(options.get("max_bytes", 64 * 1024 * 1024))
    out: list[bytes | FetchError] = []
    for ref in refs:
        path = local_path(ref)
        try:
            size = os.path.getsize(path)
            if size == 0:
                out.append(FetchError("empty_file", path))
            elif size > max_bytes:
                out.append(FetchError("too_large", f"{path}: {size} bytes > {max_bytes}"))
            else:
                with open(path, "rb") as f:
                    out.append(f.read())
        except FileNotFoundError:
            out.append(FetchError("missing_file", path))
        except IsADirectoryError:
            out.append(FetchError("not_a_file", path))
        except OSError as e:
            out.append(FetchError("read_error", f"{path}: {e}"))
    return out


def _resolve(scheme: str) -> Callable[[list[str], dict[str, Any]], list[bytes | FetchError]]:
    if scheme not in FETCHERS:
        raise KeyError(scheme)
    module, _, func = FETCHERS[scheme].partition(":")
    return getattr(importlib.import_module(module), func)


def fetch_all(refs: list[str], options: dict[str, Any]) -> list[bytes | FetchError]:
    """Fetch every ref with the fetcher of its scheme; results in input order."""
    by_scheme: dict[str, list[int]] = defaultdict(list)
    for i, ref in enumerate(refs):
        by_scheme[scheme_of(ref)].append(i)
    out: list[bytes | FetchError | None] = [None] * len(refs)
    for scheme, idx in by_scheme.items():
        try:
            fetch = _resolve(scheme)
        except KeyError:
            for i in idx:
                out[i] = FetchError("unsupported_scheme", f"{scheme}:// (supported: {', '.join(sorted(FETCHERS))})")
            continue
        results = fetch([refs[i] for i in idx], options)
        assert len(results) == len(idx), f"fetcher for {scheme} returned {len(results)} results for {len(idx)} refs"
        for i, r in zip(idx, results):
            out[i] = r
    return out  # type: ignore[return-value]
