"""Resumable listings for web sources: an append-only log of fetched API pages kept in ingest's state folder.

A rerun replays the pages already fetched, then continues from the last saved cursor, so an interrupted listing
resumes with no duplicate and no gap. A torn last line (a crash mid-write) is dropped and that page refetched.
Before its first live request a listing checks that the API's host is there (`require_network`), so an offline run
stops at once with what to do instead of retrying every request.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from surd.fetch.http import DownloadConfig
from surd.fetch.probe import Unreachable, check_reachable


class PageLog:
    """``<state_dir>/<name>.jsonl``: a header line with the query, then one line per fetched page."""

    def __init__(self, path: Path, query: dict[str, Any]) -> None:
        self.path = Path(path)
        self.query = json.loads(json.dumps(query, sort_keys=True))
        self._pages: list[dict[str, Any]] = []
        if self.path.exists():
            self._load()
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._write_lines([{"query": self.query}], mode="w")

    def _load(self) -> None:
        raw = self.path.read_bytes()
        lines = raw.split(b"\n")
        complete, torn = lines[:-1], lines[-1]
        if not complete:
            raise ValueError(f"listing state {self.path} is empty or damaged: delete it to list from the start")
        header = json.loads(complete[0])
        if header.get("query") != self.query:
            raise ValueError(
                f"listing state {self.path} was saved for a different query ({header.get('query')}), not "
                f"{self.query}: use a new output folder, or delete {self.path.parent} to start over"
            )
        self._pages = [json.loads(line) for line in complete[1:] if line.strip()]
        if torn.strip():  # a page half-written when the process died: drop it, it is fetched again
            with open(self.path, "r+b") as f:
                f.truncate(len(raw) - len(torn))

    def pages(self) -> list[dict[str, Any]]:
        """The pages fetched so far, in order."""
        return list(self._pages)

    def append(self, page: dict[str, Any]) -> None:
        """Save one page durably before its rows are handed on."""
        self._write_lines([page], mode="a")
        self._pages.append(page)

    def _write_lines(self, records: list[dict[str, Any]], mode: str) -> None:
        data = "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in records)
        with open(self.path, mode, encoding="utf-8") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def require_network(source: str, url: str, http: DownloadConfig, state_dir: Path) -> None:
    """Raise `Unreachable` with the fix when *url*'s host cannot be reached (nothing is listed then)."""
    try:
        check_reachable(url, http)
    except Unreachable as e:
        raise Unreachable(
            f"{source}: cannot reach {url}: {e}. Listing {source} needs the network: connect this machine (or run "
            f"where it is connected) and rerun the same command; pages listed so far stay in {state_dir} and the "
            "listing resumes there. To build from files you already have, use `surd ingest folder` or `surd ingest "
            "manifest` (in a pipeline: source: folder or manifest)."
        ) from e


class NetworkGate:
    """`require_network` once, just before a listing's first live request: a listing replayed whole from its state
    folder never asks, so a finished ingest reruns offline."""

    def __init__(self, source: str, url: str, http: DownloadConfig, state_dir: Path) -> None:
        self.args = (source, url, http, Path(state_dir))
        self.open = False

    def check(self) -> None:
        if not self.open:
            require_network(*self.args)
            self.open = True
