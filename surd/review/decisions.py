"""Review decision files: parse and validate surd JSON, CSV and Label Studio exports into one key → Decision map.

The surd decision format (what the review page exports and `surd review serve` writes as ``decisions.json``)::

    {"format": "surd-review-decisions", "version": 1,
     "decisions": {"<key>": {"decision": "accept" | "reject", "note": "optional free text"}, ...}}

Keys absent from ``decisions`` are undecided. Every problem is collected (file name + what is wrong) so a user
fixes all files in one go; nothing is applied unless every file is valid.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from surd.review.labelstudio import parse_export
from surd.review.records import FORMAT, VERSION, Decision, DecisionError, make_decision

# Spreadsheet users type short forms; anything else is an error, not a silent guess.
_CSV_ALIASES = {"accept": "accept", "a": "accept", "reject": "reject", "r": "reject"}


def to_document(decisions: Mapping[str, Decision]) -> dict[str, Any]:
    """The surd decision document for *decisions* (keys sorted, so files diff cleanly)."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "decisions": {k: {"decision": d.decision, "note": d.note} for k, d in sorted(decisions.items())},
    }


def parse_document(obj: Any, source: str, problems: list[str]) -> dict[str, Decision]:
    """Validate a surd decision document; appends 'source: problem' lines to *problems*."""
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
    out: dict[str, Decision] = {}
    for key, entry in entries.items():
        if not isinstance(entry, dict):
            problems.append(f"{source}: key {key!r}: expected {{\"decision\": ..., \"note\": ...}}, got {entry!r:.60}")
            continue
        d = make_decision(entry.get("decision"), entry.get("note", ""), f"{source}: key {key!r}", problems)
        if d is not None:
            out[key] = d
    return out


def parse_csv(text: str, source: str, problems: list[str]) -> dict[str, Decision]:
    """A filled-in review CSV (columns key, decision, note; others ignored). Empty decision = undecided."""
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
        if not raw:
            continue
        if raw not in _CSV_ALIASES:
            problems.append(f"{source}: line {line}: decision must be accept/reject (or a/r), got {row['decision']!r}")
            continue
        d = make_decision(_CSV_ALIASES[raw], (row.get("note") or "").strip(), f"{source}: line {line}", problems)
        if d is None:
            continue
        if key in out and out[key] != d:
            problems.append(f"{source}: key {key!r} appears twice with different decisions")
        out[key] = d
    return out


def parse_file(path: str | os.PathLike, problems: list[str]) -> dict[str, Decision]:
    """Parse one decision file of any supported format (by content: surd JSON, Label Studio JSON, or CSV)."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{source}: cannot read: {exc}")
        return {}
    if Path(path).suffix.lower() == ".csv":
        return parse_csv(text, source, problems)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        problems.append(f"{source}: not valid JSON ({exc}); expected a surd decision file, a Label Studio export or a .csv")
        return {}
    if isinstance(obj, list):
        return parse_export(obj, source, problems)
    return parse_document(obj, source, problems)


def load_decisions(paths: Iterable[str | os.PathLike], known_keys: Iterable[str] | None = None) -> dict[str, Decision]:
    """Parse and merge decision files; raise `DecisionError` listing every problem, before anything is applied.

    A key decided the same way in several files is fine (notes are joined); different decisions are a conflict.
    With *known_keys*, decisions for keys outside the dataset are an error (listing a few of them).
    """
    problems: list[str] = []
    merged: dict[str, Decision] = {}
    origin: dict[str, str] = {}
    paths = [str(p) for p in paths]
    if not paths:
        raise DecisionError(["no decision files given"])
    for path in paths:
        for key, d in parse_file(path, problems).items():
            if key not in merged:
                merged[key], origin[key] = d, path
            elif merged[key].decision != d.decision:
                problems.append(f"{path}: key {key!r} is {d.decision}ed here but {merged[key].decision}ed in {origin[key]}")
            elif d.note and d.note != merged[key].note:
                merged[key] = Decision(d.decision, "; ".join(n for n in (merged[key].note, d.note) if n))
    if known_keys is not None:
        unknown = sorted(set(merged) - set(known_keys))
        if unknown:
            shown = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
            problems.append(f"{len(unknown)} decision(s) name keys that are not in the dataset: {shown} "
                            "(was the review exported from a different dataset directory?)")
    if problems:
        raise DecisionError(problems)
    return merged


def files_digest(paths: Iterable[str | os.PathLike]) -> str:
    """sha256 over the decision files' contents, in order: changes when any file is edited."""
    h = hashlib.sha256()
    for p in paths:
        h.update(Path(p).read_bytes())
        h.update(b"\0")
    return h.hexdigest()
