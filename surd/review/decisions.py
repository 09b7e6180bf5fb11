"""Review decision files: parse and validate surd JSON, journals, CSV and Label Studio exports, then merge them.

The surd decision format (what the review page exports and `surd review serve` snapshots as ``decisions.json``)::

    {"format": "surd-review-decisions", "version": 1,
     "decisions": {"<key>": {"decision": "accept" | "reject", "note": "optional free text",
                             "reviewer": "optional name"}, ...}}

A served site's snapshot adds ``site_id``, ``role`` (``review`` or ``adjudication``), ``seq`` and per entry
``time`` and ``rev``; its journal ``decisions.jsonl`` (`surd.review.journal`) is read too. Keys absent from
``decisions`` (or ``"undecided"``) are undecided. Every problem is collected (file name + what is wrong) so a user
fixes all files in one go; nothing is applied unless every file is valid.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from surd.review.agreement import Merged, Source, merge
from surd.review.journal import JournalError, parse_journal
from surd.review.labelstudio import parse_export
from surd.review.records import CHOICES, FORMAT, ROLES, UNDECIDED, VERSION, Decision, DecisionError, make_decision

# Spreadsheet users type short forms; anything else is an error, not a silent guess.
_CSV_ALIASES = {"accept": "accept", "a": "accept", "reject": "reject", "r": "reject", "": "", "undecided": "", "u": ""}


def parse_document(obj: Any, source: str, problems: list[str]) -> dict[str, Decision]:
    """Validate a surd decision document; appends 'source: problem' lines to *problems*.

    Entries may carry a reviewer (and, in a served site's snapshot, time and rev); ``"undecided"`` entries are an
    explicit "no decision" and are left out.
    """
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        problems.append(f"{source}: not a surd decision file (expected a JSON object with \"format\": \"{FORMAT}\")")
        return {}
    if obj.get("version") != VERSION:
        problems.append(f"{source}: unsupported version {obj.get('version')!r} (this surd reads version {VERSION})")
        return {}
    entries = obj.get("decisions")
    if not isinstance(entries, dict):
        problems.append(f"{source}: \"decisions\" must be an object mapping sample key → {{decision, note}}")
        return {}
    default_reviewer = obj.get("reviewer") if isinstance(obj.get("reviewer"), str) else ""
    out: dict[str, Decision] = {}
    for key, entry in entries.items():
        if not isinstance(entry, dict):
            problems.append(f"{source}: key {key!r}: expected {{\"decision\": ..., \"note\": ...}}, got {entry!r:.60}")
            continue
        if entry.get("decision") == UNDECIDED:
            continue
        d = make_decision(entry.get("decision"), entry.get("note", ""), f"{source}: key {key!r}", problems,
                          entry.get("reviewer") or default_reviewer)
        if d is not None:
            out[key] = d
    return out


def parse_csv(text: str, source: str, problems: list[str]) -> dict[str, Decision]:
    """A filled-in review CSV (columns key, decision, note, optional reviewer; others ignored). Empty = undecided."""
    reader = csv.DictReader(io.StringIO(text))
    missing = {"key", "decision"} - set(reader.fieldnames or [])
    if missing:
        problems.append(f"{source}: CSV lacks column(s) {sorted(missing)}; export one with `surd review export --format csv`")
        return {}
    out: dict[str, Decision] = {}
    for line, row in enumerate(reader, start=2):
        key = (row.get("key") or "").strip()
        raw = (row.get("decision") or "").strip().lower()
        if not key:
            problems.append(f"{source}: line {line}: empty key")
            continue
        if raw not in _CSV_ALIASES:
            problems.append(f"{source}: line {line}: decision must be accept/reject (or a/r), got {row['decision']!r}")
            continue
        if not _CSV_ALIASES[raw]:
            continue
        d = make_decision(_CSV_ALIASES[raw], (row.get("note") or "").strip(), f"{source}: line {line}", problems,
                          (row.get("reviewer") or "").strip())
        if d is None:
            continue
        if key in out and out[key] != d:
            problems.append(f"{source}: key {key!r} appears twice with different decisions")
        out[key] = d
    return out


def _parse_journal(data: bytes, source: str, problems: list[str]) -> Source:
    try:
        journal = parse_journal(data, source)
    except JournalError as exc:
        problems.append(str(exc))
        return Source(source, {})
    decided = {k: Decision(r["decision"], r["note"], r["reviewer"]) for k, r in journal.current.items()
               if r["decision"] in CHOICES}
    return Source(source, decided, journal.header.get("role", "review"), journal.header.get("site_id", ""), journal.seq)


def parse_source(path: str | os.PathLike, problems: list[str]) -> Source:
    """Parse one decision file of any supported format: surd JSON, a served site's journal (.jsonl), Label Studio
    JSON / JSON-MIN, or CSV (by suffix, then content)."""
    source = str(path)
    suffix = Path(path).suffix.lower()
    try:
        data = Path(path).read_bytes()
        if suffix == ".jsonl":
            return _parse_journal(data, source, problems)
        text = data.decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{source}: cannot read: {exc}")
        return Source(source, {})
    if suffix == ".csv":
        return Source(source, parse_csv(text, source, problems))
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        problems.append(f"{source}: not valid JSON ({exc}); expected a surd decision file, a Label Studio export or a .csv")
        return Source(source, {})
    if isinstance(obj, list):
        return Source(source, parse_export(obj, source, problems))
    decisions = parse_document(obj, source, problems)
    role = obj.get("role") if isinstance(obj, dict) and obj.get("role") in ROLES else "review"
    seq = obj.get("seq") if isinstance(obj, dict) and isinstance(obj.get("seq"), int) else None
    site_id = obj.get("site_id") if isinstance(obj, dict) and isinstance(obj.get("site_id"), str) else ""
    return Source(source, decisions, role, site_id, seq)


def parse_file(path: str | os.PathLike, problems: list[str]) -> dict[str, Decision]:
    """The decisions of one file (see `parse_source`)."""
    return parse_source(path, problems).decisions


def resolve(paths: Iterable[str | os.PathLike], known_keys: Iterable[str] | None = None,
            conflict: str = "error") -> Merged:
    """Parse and merge decision files; raise `DecisionError` listing every problem, before anything is applied.

    A key decided the same way in several files is fine (notes are joined); different decisions are settled by the
    *conflict* rule (`surd.review.agreement.merge`). With *known_keys*, decisions for keys outside the dataset are
    an error (listing a few of them).
    """
    problems: list[str] = []
    paths = [str(p) for p in paths]
    if not paths:
        raise DecisionError(["no decision files given"])
    sources = [parse_source(p, problems) for p in paths]
    merged = merge(sources, conflict, problems)
    if known_keys is not None:
        named = set().union(*(s.decisions for s in sources))
        unknown = sorted(named - set(known_keys))
        if unknown:
            shown = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
            problems.append(f"{len(unknown)} decision(s) name keys that are not in the dataset: {shown} "
                            "(was the review exported from a different dataset directory?)")
    if problems:
        raise DecisionError(problems)
    return merged


def load_decisions(paths: Iterable[str | os.PathLike], known_keys: Iterable[str] | None = None,
                   conflict: str = "error") -> dict[str, Decision]:
    """The merged key → Decision map of decision files (see `resolve`)."""
    return resolve(paths, known_keys, conflict).decisions


def files_digest(paths: Iterable[str | os.PathLike]) -> str:
    """sha256 over the decision files' contents, in order: changes when any file is edited."""
    h = hashlib.sha256()
    for p in paths:
        h.update(Path(p).read_bytes())
        h.update(b"\0")
    return h.hexdigest()
