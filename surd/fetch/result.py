"""The outcome of a failed fetch: a reason counted in the stats, and a detail for people."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FetchError:
    """Why an image could not be fetched: `reason` is a snake_case label counted in the stats."""

    reason: str
    detail: str = ""
