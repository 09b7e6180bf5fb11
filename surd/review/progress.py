"""Review progress: per-reviewer counts, decision rate and what is left, from a site's journal.

Rates count journal changes per hour of active time: a pause of more than `IDLE_GAP` between two changes is a
break, not work. The server keeps a `Tally` up to date as changes arrive (the page header shows it);
`site_status` computes the same from disk for `surd review status`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from surd.review.journal import JOURNAL_NAME, SNAPSHOT_NAME, read_journal
from surd.review.records import CHOICES
from surd.review.site import read_site

IDLE_GAP = 300.0


def _seconds(iso: str) -> float | None:
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except (AttributeError, ValueError):
        return None


@dataclass
class Activity:
    """Changes by one reviewer (or by everyone): how many, when, and for how long they were at it."""

    changes: int = 0
    first: str = ""
    last: str = ""
    active: float = 0.0
    _last_t: float | None = None

    def add(self, iso: str) -> None:
        self.changes += 1
        self.first = self.first or iso
        self.last = iso
        t = _seconds(iso)
        if t is not None and self._last_t is not None and 0 <= t - self._last_t <= IDLE_GAP:
            self.active += t - self._last_t
        if t is not None:
            self._last_t = t

    @property
    def rate_per_hour(self) -> float | None:
        """Changes per active hour; None until there is a minute of activity to measure."""
        return round(self.changes / (self.active / 3600), 1) if self.active >= 60 else None


class Tally:
    """Running activity per reviewer and overall; feed it every journal record in order."""

    def __init__(self) -> None:
        self.reviewers: dict[str, Activity] = {}
        self.everyone = Activity()

    def add(self, rec: dict[str, Any]) -> None:
        self.reviewers.setdefault(rec.get("reviewer") or "(unknown)", Activity()).add(rec.get("time", ""))
        self.everyone.add(rec.get("time", ""))

    def report(self, current: dict[str, dict[str, Any]], n: int, seq: int = 0) -> dict[str, Any]:
        """The status document: totals, what is left, the team's rate and an estimate, and one row per reviewer."""
        per: dict[str, dict[str, int]] = {}
        for rec in current.values():
            if rec["decision"] in CHOICES:
                counts = per.setdefault(rec.get("reviewer") or "(unknown)", {"accept": 0, "reject": 0})
                counts[rec["decision"]] += 1
        accepted = sum(c["accept"] for c in per.values())
        rejected = sum(c["reject"] for c in per.values())
        left = max(0, n - accepted - rejected)
        rate = self.everyone.rate_per_hour
        rows = []
        for name in sorted(set(per) | set(self.reviewers)):
            c, act = per.get(name, {"accept": 0, "reject": 0}), self.reviewers.get(name, Activity())
            rows.append({"name": name, "decided": c["accept"] + c["reject"], "accepted": c["accept"],
                         "rejected": c["reject"], "changes": act.changes, "rate_per_hour": act.rate_per_hour,
                         "first": act.first, "last": act.last})
        return {"n": n, "decided": accepted + rejected, "accepted": accepted, "rejected": rejected, "left": left,
                "seq": seq, "rate_per_hour": rate, "eta_hours": round(left / rate, 2) if rate else None,
                "reviewers": rows}


def site_status(review_dir: str | os.PathLike) -> dict[str, Any]:
    """Status of one review site from its journal (or, for a site never served, its decisions.json)."""
    root = Path(review_dir)
    site = read_site(root)
    tally, current, seq = Tally(), {}, 0
    if (root / JOURNAL_NAME).is_file():
        data = read_journal(root / JOURNAL_NAME)
        for rec in data.records:
            tally.add(rec)
        current, seq = data.current, data.seq
    elif (root / SNAPSHOT_NAME).is_file():
        doc = json.loads((root / SNAPSHOT_NAME).read_text(encoding="utf-8"))
        current = {k: {"decision": v.get("decision"), "reviewer": v.get("reviewer", "")}
                   for k, v in (doc.get("decisions") or {}).items() if isinstance(v, dict)}
    report = tally.report(current, len(site["keys"]), seq)
    return {"site": str(root), "role": site.get("role", "review"), **report}


def total_status(sites: list[dict[str, Any]]) -> dict[str, Any]:
    """The sum over several sites' statuses (the batches of a split export); overlapping keys count per batch."""
    keys = ("n", "decided", "accepted", "rejected", "left")
    out: dict[str, Any] = {k: sum(s[k] for s in sites) for k in keys}
    rates = [s["rate_per_hour"] for s in sites if s["rate_per_hour"]]
    out["rate_per_hour"] = round(sum(rates), 1) if rates else None
    out["eta_hours"] = round(out["left"] / out["rate_per_hour"], 2) if out["rate_per_hour"] else None
    return out
