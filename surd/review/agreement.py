"""Several reviewers' decision files → one decision per key: agreement (percent, Cohen's κ) and settled disagreements.

A key decided by two review files (``surd review export --overlap``) is a paired rating: their agreement is reported
as percent and Cohen's kappa, over all pairs and per pair of reviewers. Disagreements are settled by a rule
(`CONFLICT_RULES`): ``error`` lists them and stops, ``reject`` / ``accept`` decide them so, ``adjudicate`` leaves
them to a third person, whose file (a site exported with role ``adjudication``) has the last word.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from surd.review.records import Decision

CONFLICT_RULES = ("error", "reject", "accept", "adjudicate")


@dataclass
class Source:
    """One decision file, parsed: its decisions, its role (review or adjudication) and where it came from."""

    path: str
    decisions: dict[str, Decision]
    role: str = "review"
    site_id: str = ""
    seq: int | None = None  # a served site's journal position (snapshots and journals only)

    @property
    def label(self) -> str:
        """Who this file is for agreement: its one reviewer's name, else the file's folder/name."""
        names = {d.reviewer for d in self.decisions.values() if d.reviewer}
        if len(names) == 1:
            return names.pop()
        p = Path(self.path)
        return f"{p.parent.name}/{p.name}" if p.parent.name else p.name


@dataclass(frozen=True)
class Opinion:
    """One file's decision on a key."""

    source: str
    label: str
    decision: Decision


@dataclass(frozen=True)
class PairAgreement:
    """Agreement between two reviewers (or files) over the keys both decided."""

    a: str
    b: str
    n: int
    agree: int
    kappa: float

    @property
    def percent(self) -> float:
        return 100.0 * self.agree / self.n if self.n else math.nan


@dataclass
class Agreement:
    """Agreement over every pair of decisions of one key by two files, pooled and per pair of reviewers."""

    n: int = 0
    agree: int = 0
    kappa: float = math.nan
    pairs: list[PairAgreement] = field(default_factory=list)

    @property
    def percent(self) -> float:
        return 100.0 * self.agree / self.n if self.n else math.nan


@dataclass
class Merged:
    """The merged decisions, the disagreements among review files, and how each was settled."""

    decisions: dict[str, Decision]
    disagreements: dict[str, list[Opinion]]
    settled: dict[str, str]  # key → "adjudicated", "accept" or "reject" (the rule that decided it)
    unsettled: list[str]  # disagreements left for adjudication
    agreement: Agreement


def cohen_kappa(pairs: Sequence[tuple[str, str]]) -> float:
    """Cohen's κ of paired ratings: (p_o − p_e) / (1 − p_e); NaN when undefined (no pairs, or p_e = 1)."""
    n = len(pairs)
    if n == 0:
        return math.nan
    cats = {c for pair in pairs for c in pair}
    p_o = sum(a == b for a, b in pairs) / n
    p_e = sum(sum(a == c for a, _ in pairs) * sum(b == c for _, b in pairs) for c in cats) / (n * n)
    if p_e >= 1.0:  # both raters used one class only: chance explains everything, κ is undefined
        return math.nan
    return (p_o - p_e) / (1.0 - p_e)


def agreement(opinions: dict[str, list[Opinion]]) -> Agreement:
    """Pooled and per-pair agreement over keys with two or more opinions (each pair in file order)."""
    pooled: list[tuple[str, str]] = []
    by_pair: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for ops in opinions.values():
        for i, first in enumerate(ops):
            for second in ops[i + 1:]:
                pair = (first.decision.decision, second.decision.decision)
                pooled.append(pair)
                by_pair.setdefault((first.label, second.label), []).append(pair)
    pairs = [PairAgreement(a, b, len(p), sum(x == y for x, y in p), cohen_kappa(p)) for (a, b), p in by_pair.items()]
    return Agreement(len(pooled), sum(a == b for a, b in pooled), cohen_kappa(pooled), pairs)


def describe(ops: list[Opinion]) -> str:
    """'alice: accept, bob: reject (“blurry”)' — the detail recorded for a disagreement."""
    parts = [f"{o.label}: {o.decision.decision}" + (f" (“{o.decision.note}”)" if o.decision.note else "") for o in ops]
    return "reviewers disagree: " + ", ".join(parts)


def _agreeing(ops: list[Opinion]) -> Decision:
    first = ops[0].decision
    notes = "; ".join(dict.fromkeys(o.decision.note for o in ops if o.decision.note))
    names = ", ".join(dict.fromkeys(o.decision.reviewer for o in ops if o.decision.reviewer))
    return Decision(first.decision, notes, names)


def merge(sources: Sequence[Source], conflict: str, problems: list[str]) -> Merged:
    """Merge parsed files by *conflict* rule; appends a line per problem (``error`` rule: one per disagreement)."""
    if conflict not in CONFLICT_RULES:
        raise ValueError(f"conflict must be one of {', '.join(CONFLICT_RULES)}, got {conflict!r}")
    seen_sites: dict[str, str] = {}
    for s in sources:
        if s.site_id in seen_sites:
            problems.append(f"{s.path}: holds the decisions of the same review site as {seen_sites[s.site_id]}; "
                            "give each site's decisions once (decisions.json or decisions.jsonl)")
        elif s.site_id:
            seen_sites[s.site_id] = s.path
    opinions: dict[str, list[Opinion]] = {}
    adjudicated: dict[str, tuple[str, Decision]] = {}
    for s in sources:
        for key, d in s.decisions.items():
            if s.role != "adjudication":
                opinions.setdefault(key, []).append(Opinion(s.path, s.label, d))
            elif key in adjudicated and adjudicated[key][1].decision != d.decision:
                problems.append(f"{s.path}: key {key!r} is adjudicated {d.decision} here but "
                                f"{adjudicated[key][1].decision} in {adjudicated[key][0]}")
            else:
                adjudicated.setdefault(key, (s.path, d))
    merged = Merged({}, {}, {}, [], agreement(opinions))
    for key, ops in opinions.items():
        if len({o.decision.decision for o in ops}) == 1:
            merged.decisions[key] = _agreeing(ops)
            continue
        merged.disagreements[key] = ops
        if key in adjudicated:
            continue
        if conflict in ("accept", "reject"):
            merged.decisions[key] = Decision(conflict, describe(ops))
            merged.settled[key] = conflict
        elif conflict == "adjudicate":
            merged.unsettled.append(key)
        else:
            a, b = ops[0], next(o for o in ops if o.decision.decision != ops[0].decision.decision)
            problems.append(f"{b.source}: key {key!r} is {b.decision.decision}ed here but {a.decision.decision}ed in "
                            f"{a.source} (choose a rule: --conflict reject|accept|adjudicate)")
    if conflict == "error" and merged.disagreements:
        a = merged.agreement
        kappa = "n/a" if math.isnan(a.kappa) else f"{a.kappa:.3f}"
        problems.append(f"{len(merged.disagreements)} sample(s) decided differently (agreement {a.percent:.1f}% of "
                        f"{a.n} paired decisions, Cohen's kappa {kappa}): settle them with --conflict reject, accept "
                        "or adjudicate")
    for key, (_, d) in adjudicated.items():  # the adjudicator has the last word
        merged.decisions[key] = d
        if key in merged.disagreements:
            merged.settled[key] = "adjudicated"
    merged.unsettled.sort()
    return merged
