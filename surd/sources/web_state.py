"""Resumable listings for web sources: an append-only log of fetched API pages kept in ingest's state folder.

A rerun replays the pages already fetched, then continues from the last saved cursor, so an interrupted listing
resumes with no duplicate and no gap. A torn last line (a crash mid-write) is dropped and that page refetched.

When the state folder is a URL (an object store, where nothing can be appended to), the log is a folder of
objects instead, ``<name>.jsonl.d/query.json`` and one ``page-NNNNNNNN.json`` per page; each put is whole or absent,
so there is no torn page to drop.

Before its first live request a listing checks that the API's host is there (`require_network`), so an offline run
stops at once with what to do instead of retrying every request.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from surd import storage
from surd.fetch.http import DownloadConfig
from surd.fetch.probe import Unreachable, check_reachable


class PageLog:
    """``<state_dir>/<name>.jsonl``: a header line with the query, then one line per fetched page."""

    def __init__(self, path: str | Path, query: dict[str, Any]) -> None:
        self.query = json.loads(json.dumps(query, sort_keys=True))
        self._pages: list[dict[str, Any]] = []
        if storage.is_remote(path):
            self._remote: str | None = storage.normalize(path) + ".d"
            self._open_remote()
            return
        self._remote = None
        self.path = Path(path)
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
        self._check_query(json.loads(complete[0]), self.path)
        self._pages = [json.loads(line) for line in complete[1:] if line.strip()]
        if torn.strip():  # a page half-written when the process died: drop it, it is fetched again
            with open(self.path, "r+b") as f:
                f.truncate(len(raw) - len(torn))

    def _check_query(self, header: dict[str, Any], where: Any) -> None:
        if header.get("query") != self.query:
            raise ValueError(
                f"listing state {where} was saved for a different query ({header.get('query')}), not "
                f"{self.query}: use a new output folder, or delete {storage.parent(str(where))} to start over"
            )

    def _open_remote(self) -> None:
        assert self._remote is not None
        try:
            names = storage.listdir(self._remote)
        except FileNotFoundError:
            names = []
        if "query.json" not in names:
            storage.put_bytes(storage.join(self._remote, "query.json"), _line({"query": self.query}))
            return
        header, *pages = storage.read_many([storage.join(self._remote, n) for n in
                                            ["query.json", *(n for n in names if n.startswith("page-"))]])
        self._check_query(json.loads(header), self._remote)
        self._pages = [json.loads(p) for p in pages]

    def pages(self) -> list[dict[str, Any]]:
        """The pages fetched so far, in order."""
        return list(self._pages)

    def append(self, page: dict[str, Any]) -> None:
        """Save one page durably before its rows are handed on."""
        if self._remote is not None:
            storage.put_bytes(storage.join(self._remote, f"page-{len(self._pages):08d}.json"), _line(page))
        else:
            self._write_lines([page], mode="a")
        self._pages.append(page)

    def _write_lines(self, records: list[dict[str, Any]], mode: str) -> None:
        with open(self.path, mode + "b") as f:
            f.write(b"".join(_line(r) for r in records))
            f.flush()
            os.fsync(f.fileno())


class Listing:
    """The walk over one paged listing's saved pages, and what an append adds past its end.

    A listing that had ended (no next cursor) is asked for its last page again when a run appends (once a run):
    that page is saved marked ``again``, and only its items the page before did not hold are new (`new_items`);
    its next cursor, if it now has one, is followed as usual (`step`). A replay of the log walks the same
    pages, so a rerun lists exactly what the run before listed.
    """

    def __init__(self, pages: list[dict[str, Any]], append: bool, log: PageLog, online: NetworkGate,
                 at: str = "cursor") -> None:
        self._saved = iter(pages)
        self.append = append
        self._log, self._online, self._at = log, online, at  # `at`: the page field its request is made from
        self.last: dict[str, Any] | None = None  # the page taken last
        self._before: dict[str, Any] | None = None  # the page taken before it
        self._asked = False

    def _take(self, page: dict[str, Any]) -> dict[str, Any]:
        self._before, self.last = self.last, page
        return page

    def _next(self, finished: bool) -> dict[str, Any] | None:
        """The next saved page, or None when none is left; after the listing's end only a page that asked again."""
        page = next(self._saved, None)
        if page is None or (finished and not page.get("again")):
            return None
        return self._take(page)

    def _may_ask_again(self) -> bool:
        """Whether this run should ask the ended listing's last page again: an append, not asked yet this run."""
        return self.append and not self._asked and self.last is not None

    def step(self, finished: bool, at: Any, fetch: Callable[[Any], dict[str, Any]]) -> dict[str, Any] | None:
        """The listing's next page: a saved one; else, before the end, `fetch(at)` (the next cursor or URL); else,
        when an append may, the last page fetched again; None when the listing is done. Live pages are saved
        before they are returned, after the network check."""
        page = self._next(finished)
        if page is not None:
            return page
        if not finished or self._may_ask_again():
            self._online.check()
            again = finished  # then _may_ask_again said so: there is a last page
            page = fetch(self.last[self._at] if again and self.last else at)
            if again:
                page = {**page, "again": True}
                self._asked = True
            self._log.append(page)
            return self._take(page)
        return None

    def new_items(self, page: dict[str, Any], ident: Callable[[Any], Any],
                  items: Callable[[dict[str, Any]], list[Any]] = lambda p: p["items"]) -> list[Any]:
        """The page's items (`items(page)`); for a page asked again, those the page before it did not hold (by
        `ident(item)`)."""
        if not page.get("again") or self._before is None:
            return list(items(page))
        seen = {ident(item) for item in items(self._before)}
        return [item for item in items(page) if ident(item) not in seen]


def _line(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def require_network(source: str, url: str, http: DownloadConfig, state_dir: str | Path) -> None:
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

    def __init__(self, source: str, url: str, http: DownloadConfig, state_dir: str | Path) -> None:
        self.args = (source, url, http, state_dir)
        self.open = False

    def check(self) -> None:
        if not self.open:
            require_network(*self.args)
            self.open = True
