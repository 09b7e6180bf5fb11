"""Fetching image bytes by URL scheme: local files (`local`), http(s) through the guarded client (`http`, with the
SSRF/politeness rules in `policy`, the run-wide per-host rate budget in `budget` and content checks in `content`),
members of zip files (`archive`) and of tar files (`tar`), and objects in object stores (`remote`: s3://, gs://,
hf://, … through fsspec).

`fetch_all(refs, options)` returns bytes or a `FetchError` (a reason counted in the stats) per ref, in order.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from surd import trust
from surd.fetch.local import local_path
from surd.fetch.result import FetchError
from surd.registry import Registry

__all__ = ["FETCHERS", "FetchError", "fetch_all", "local_path", "scheme_of"]


# scheme → fetch_many(refs: list[str], options: dict) -> list[bytes | FetchError], results in the order of refs
FETCHERS = Registry("fetcher", {
    "file": "surd.fetch.local:fetch_many",
    "http": "surd.fetch.http:fetch_many",
    "https": "surd.fetch.http:fetch_many",
    "zip": "surd.fetch.archive:fetch_many",
    "tar": "surd.fetch.tar:fetch_many",
    **dict.fromkeys(("s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "hf", "oss", "r2"),
                    "surd.fetch.remote:fetch_many"),
})


def scheme_of(ref: str) -> str:
    """``/a/b.jpg`` and ``file:///a/b.jpg`` are "file"; ``https://...`` is "https" (never raises: `surd.trust`)."""
    return trust.scheme(ref)


def fetch_all(refs: list[str], options: dict[str, Any]) -> list[bytes | FetchError]:
    """Fetch every ref with the fetcher of its scheme; results in input order. A ref that does not parse is its own
    ``bad_url`` error, so one malformed URL never takes the other refs (or the shard) down with it."""
    by_scheme: dict[str, list[int]] = defaultdict(list)
    out: list[bytes | FetchError | None] = [None] * len(refs)
    for i, ref in enumerate(refs):
        why = trust.parse_error(ref)
        if why is not None:
            out[i] = FetchError("bad_url", f"{ref[:200]!r}: {why}")
        else:
            by_scheme[scheme_of(ref)].append(i)
    for scheme, idx in by_scheme.items():
        if scheme not in FETCHERS:
            for i in idx:
                out[i] = FetchError("unsupported_scheme", f"{scheme}:// (supported: {', '.join(FETCHERS.names())})")
            continue
        fetch = FETCHERS.load(scheme)
        results = fetch([refs[i] for i in idx], options)
        assert len(results) == len(idx), f"fetcher for {scheme} returned {len(results)} results for {len(idx)} refs"
        for i, r in zip(idx, results):
            out[i] = r
    return out  # type: ignore[return-value]
