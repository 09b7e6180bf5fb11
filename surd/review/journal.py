"""The decision journal of one review site: ``decisions.jsonl`` is the truth, ``decisions.json`` a snapshot of it.

Line 1 is a header, every other line one change, appended and fsynced before the server acknowledges it::

    {"format": "surd-review-journal", "version": 1, "site_id": "…", "role": "review"}
    {"seq": 7, "key": "…", "decision": "accept" | "reject" | "undecided", "note": "", "reviewer": "alice",
     "time": "2024-05-01T10:00:00.123Z", "rev": 2}

``seq`` counts the site's changes, ``rev`` the changes of one key (1 = its first): a write names the ``rev`` it was
based on and is refused (`Conflict`) when the key moved on meanwhile. ``undecided`` is an explicit undo. A line
without its newline (the writer died mid-line) was never acknowledged: readers ignore it, and opening the journal
for writing cuts it off. Writers batch concurrent changes into one write + fsync (group commit).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from surd.files import write_bytes_atomic
from surd.review.records import CHOICES, FORMAT, UNDECIDED, VERSION

JOURNAL_NAME = "decisions.jsonl"
SNAPSHOT_NAME = "decisions.json"
JOURNAL_FORMAT = "surd-review-journal"
RECORD_FIELDS = ("seq", "key", "decision", "note", "reviewer", "time", "rev")


class JournalError(ValueError):
    """The journal is not a surd journal or was edited into an inconsistent state (names the line)."""


class JournalFailed(OSError):
    """A write or fsync failed: the server stops accepting changes (restart it to reload from disk)."""


class Conflict(Exception):
    """Changes based on an older revision of their key; ``current`` maps each such key to its current record."""

    def __init__(self, current: dict[str, dict[str, Any]]):
        self.current = current
        super().__init__(f"{len(current)} key(s) changed since the writer last saw them")


@dataclass(frozen=True)
class Change:
    """One requested change: the new value of *key*, written over the revision *base* (0 = never decided)."""

    key: str
    decision: str
    note: str = ""
    base: int = 0


@dataclass
class JournalData:
    """A journal as read: its header, every complete record in order, the latest record per key."""

    header: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)
    current: dict[str, dict[str, Any]] = field(default_factory=dict)
    good_bytes: int = 0  # length of the complete lines; anything after is a torn tail

    @property
    def seq(self) -> int:
        return self.records[-1]["seq"] if self.records else 0


def now_iso() -> str:
    """The current UTC time as ISO 8601 with milliseconds and a Z."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def make_header(site_id: str = "", role: str = "review") -> dict[str, Any]:
    return {"format": JOURNAL_FORMAT, "version": 1, "site_id": site_id, "role": role}


def _check_record(rec: Any, prev_seq: int, current: dict[str, dict[str, Any]]) -> str | None:
    if not isinstance(rec, dict) or any(f not in rec for f in RECORD_FIELDS):
        return f"expected an object with {', '.join(RECORD_FIELDS)}"
    if rec["decision"] not in (*CHOICES, UNDECIDED) or not isinstance(rec["key"], str):
        return f"bad key or decision {rec.get('decision')!r}"
    if not isinstance(rec["seq"], int) or rec["seq"] <= prev_seq:
        return f"seq {rec['seq']!r} does not follow {prev_seq}"
    expected = current[rec["key"]]["rev"] + 1 if rec["key"] in current else 1
    if rec["rev"] != expected:
        return f"rev {rec['rev']!r} of key {rec['key']!r} should be {expected}"
    return None


def parse_journal(data: bytes, source: str) -> JournalData:
    """Replay journal bytes; a torn tail (no newline, or unparseable lines only at the end) is left out."""
    lines = data.split(b"\n")
    tail = lines.pop()  # after the last newline: empty, or a line cut short
    parsed: list[tuple[int, Any]] = []
    offset = 0
    for line in lines:
        offset += len(line) + 1
        try:
            parsed.append((offset, json.loads(line)))
        except (json.JSONDecodeError, UnicodeDecodeError):
            parsed.append((offset, None))
    del tail
    if not parsed:  # empty: the header is written atomically, so there is nothing else it can be
        return JournalData(header=make_header(), good_bytes=0)
    while len(parsed) > 1 and parsed[-1][1] is None:  # garbage after the last good line: a crash mid-write
        parsed.pop()
    header = parsed[0][1]
    if not isinstance(header, dict) or header.get("format") != JOURNAL_FORMAT:
        raise JournalError(f"{source}: line 1 is not a surd journal header (\"format\": \"{JOURNAL_FORMAT}\")")
    out = JournalData(header=header, good_bytes=parsed[-1][0])
    prev = 0
    for lineno, (_, rec) in enumerate(parsed[1:], start=2):
        problem = "not valid JSON" if rec is None else _check_record(rec, prev, out.current)
        if problem:
            raise JournalError(f"{source}: line {lineno}: {problem}; the journal was edited by hand? "
                               "restore it from a backup or remove the line")
        out.records.append(rec)
        out.current[rec["key"]] = rec
        prev = rec["seq"]
    return out


def read_journal(path: str | os.PathLike) -> JournalData:
    """Read a journal without changing it (a server may be appending to it)."""
    return parse_journal(Path(path).read_bytes(), str(path))


def snapshot_document(header: dict[str, Any], current: dict[str, dict[str, Any]], seq: int) -> dict[str, Any]:
    """The ``decisions.json`` of a journal state: the surd decision format, decided keys only, plus provenance."""
    decided = {k: {f: r[f] for f in ("decision", "note", "reviewer", "time", "rev")}
               for k, r in sorted(current.items()) if r["decision"] in CHOICES}
    return {"format": FORMAT, "version": VERSION, "site_id": header.get("site_id", ""),
            "role": header.get("role", "review"), "seq": seq, "decisions": decided}


def write_snapshot(path: str | os.PathLike, doc: dict[str, Any]) -> None:
    """Write a snapshot atomically, one decision per line (60,000 decisions stay a readable, diffable file)."""
    head = json.dumps({k: v for k, v in doc.items() if k != "decisions"}, sort_keys=True, ensure_ascii=False)
    rows = ",\n".join(f"{json.dumps(k, ensure_ascii=False)}: {json.dumps(v, sort_keys=True, ensure_ascii=False)}"
                      for k, v in doc["decisions"].items())
    write_bytes_atomic(path, f"{head[:-1]}, \"decisions\": {{\n{rows}\n}}}}\n".encode())


def rebuild_snapshot(review_dir: str | os.PathLike) -> tuple[int, int]:
    """Rewrite ``decisions.json`` from ``decisions.jsonl``; returns (decided keys, journal seq)."""
    root = Path(review_dir)
    path = root / JOURNAL_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: this site was never served (nothing to rebuild)")
    data = read_journal(path)
    doc = snapshot_document(data.header, data.current, data.seq)
    write_snapshot(root / SNAPSHOT_NAME, doc)
    return len(doc["decisions"]), data.seq


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class Journal:
    """An open journal: the latest record per key in memory, changes appended durably, snapshots in the background.

    `apply` is safe from many threads: the state lock orders changes (and checks revisions), the io lock makes one
    thread write + fsync everything queued so far while the others wait for it (group commit).
    """

    def __init__(self, root: str | os.PathLike, header: dict[str, Any], seed: Iterable[dict[str, Any]] = (),
                 snapshot_every: float = 2.0, listener: Callable[[dict[str, Any]], None] | None = None):
        """Open (or create, with *header* and the *seed* records) the journal in *root*; *listener* sees every
        record, replayed ones first, then each new one as it is applied (under the journal's lock)."""
        self.root = Path(root)
        self._listener = listener or (lambda rec: None)
        self.path = self.root / JOURNAL_NAME
        self.snapshot_path = self.root / SNAPSHOT_NAME
        self._lock = threading.Lock()
        self._io_lock = threading.Lock()
        self._buf: list[bytes] = []
        self._failed: BaseException | None = None
        data = self._open(header, list(seed))
        self.header = data.header
        self.current = data.current
        for rec in data.records:
            self._listener(rec)
        self._seq = self._durable = data.seq
        self._snap_seq = -1
        self._stop = threading.Event()
        self.write_snapshot()
        self._thread = threading.Thread(target=self._snapshot_loop, args=(snapshot_every,), daemon=True,
                                        name="surd-review-snapshot")
        self._thread.start()

    def _open(self, header: dict[str, Any], seed: list[dict[str, Any]]) -> JournalData:
        """Create the journal (seeded, durable) or replay it and cut off a torn tail; then open it for appending."""
        if self.path.exists() and self.path.stat().st_size > 0:
            data = read_journal(self.path)
        else:
            data = JournalData(header=make_header())
        if data.good_bytes == 0:  # new (or only a torn header): write header + seed in one durable step
            lines = [header, *seed]
            payload = b"".join(json.dumps(x, ensure_ascii=False).encode() + b"\n" for x in lines)
            write_bytes_atomic(self.path, payload)
            _fsync_dir(self.root)
            data = parse_journal(payload, str(self.path))
        elif data.good_bytes < self.path.stat().st_size:
            os.truncate(self.path, data.good_bytes)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        os.fsync(self._fd)
        return data

    @property
    def seq(self) -> int:
        return self._seq

    def apply(self, changes: list[Change], reviewer: str) -> tuple[dict[str, int], int]:
        """Append *changes* by *reviewer*, all or none, durably; returns ({key: new rev}, seq).

        A change equal to the key's current value is a no-op (a retried request succeeds); one based on another
        revision raises `Conflict` with the current records, and nothing is written.
        """
        when = now_iso()
        with self._lock:
            if self._failed is not None:
                raise JournalFailed(f"the journal stopped accepting writes after an error: {self._failed}")
            revs: dict[str, int] = {}
            conflicts: dict[str, dict[str, Any]] = {}
            todo = []
            for c in changes:
                cur = self.current.get(c.key)
                cur_rev = cur["rev"] if cur else 0
                same = (cur["decision"], cur["note"]) == (c.decision, c.note) if cur else c.decision == UNDECIDED
                if same:
                    revs[c.key] = cur_rev
                elif c.base != cur_rev:
                    conflicts[c.key] = dict(cur) if cur else {"key": c.key, "decision": UNDECIDED, "note": "",
                                                               "reviewer": "", "time": "", "rev": 0, "seq": 0}
                else:
                    todo.append((c, cur_rev))
            if conflicts:
                raise Conflict(conflicts)
            lines = []
            for c, cur_rev in todo:
                self._seq += 1
                rec = {"seq": self._seq, "key": c.key, "decision": c.decision, "note": c.note, "reviewer": reviewer,
                       "time": when, "rev": cur_rev + 1}
                self.current[c.key] = rec
                self._listener(rec)
                revs[c.key] = rec["rev"]
                lines.append(json.dumps(rec, ensure_ascii=False).encode() + b"\n")
            if lines:
                self._buf.append(b"".join(lines))
            target = self._seq
        self.sync(target)
        return revs, target

    def sync(self, target: int | None = None) -> None:
        """Return once every change up to seq *target* (default: all so far) is written and fsynced."""
        target = self._seq if target is None else target
        with self._io_lock:
            if self._durable >= target:
                return
            with self._lock:
                if self._failed is not None:
                    raise JournalFailed(f"the journal stopped accepting writes after an error: {self._failed}")
                data, upto = b"".join(self._buf), self._seq
                self._buf.clear()
            try:
                _write_all(self._fd, data)
                os.fsync(self._fd)
            except OSError as exc:
                with self._lock:  # memory is now ahead of the disk: fail stop, a restart reloads the truth
                    self._failed = exc
                raise JournalFailed(f"cannot append to {self.path}: {exc}") from exc
            self._durable = upto

    def snapshot(self, since: int = 0) -> tuple[list[dict[str, Any]], int]:
        """(records with seq > *since*, seq): only durable state, so a reader never sees an unacknowledged change."""
        with self._lock:
            if self._failed is not None:
                raise JournalFailed(f"the journal stopped after an error: {self._failed}")
            seq = self._seq
            recs = [r for r in self.current.values() if r["seq"] > since] if since else list(self.current.values())
        self.sync(seq)
        return recs, seq

    def write_snapshot(self) -> None:
        """Write ``decisions.json`` for the current durable state (skipped when nothing changed since the last)."""
        with self._lock:
            current, seq = dict(self.current), self._seq
        if seq == self._snap_seq:
            return
        self.sync(seq)
        write_snapshot(self.snapshot_path, snapshot_document(self.header, current, seq))
        self._snap_seq = seq

    def _snapshot_loop(self, every: float) -> None:
        while not self._stop.wait(every):
            try:
                self.write_snapshot()
            except OSError:
                time.sleep(every)  # disk trouble: the journal is still the truth; try again later

    def close(self) -> None:
        """Stop the snapshot thread, write a last snapshot and close the file."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join()
        try:
            if self._failed is None:
                self.write_snapshot()
        finally:
            with self._io_lock:  # a request still running gets JournalFailed, never a write to a reused fd
                with self._lock:
                    self._failed = self._failed or JournalFailed("the journal is closed")
                os.close(self._fd)
