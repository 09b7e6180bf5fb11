"""Review decisions as values: `Decision`, the validation every reader shares, and `DecisionError`."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

FORMAT = "surd-review-decisions"
VERSION = 1
CHOICES = ("accept", "reject")
UNDECIDED = "undecided"  # an explicit "no decision" (an undo), so a merge never has to guess from a missing key
MAX_NOTE = 2000
MAX_REVIEWER = 64
ROLES = ("review", "adjudication")  # an adjudication site decides the disagreements of the review sites


@dataclass(frozen=True)
class Decision:
    """One reviewer decision: ``accept`` or ``reject``, with an optional note and the reviewer's name if known."""

    decision: str
    note: str = ""
    reviewer: str = ""

    def __post_init__(self) -> None:
        if self.decision not in CHOICES:
            raise ValueError(f"decision must be one of {CHOICES}, got {self.decision!r}")


class DecisionError(ValueError):
    """One or more decision files are invalid; ``problems`` lists every one as 'file: what is wrong'."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        shown = "\n  ".join(self.problems[:20])
        more = f"\n  ... and {len(self.problems) - 20} more" if len(self.problems) > 20 else ""
        super().__init__(f"invalid review decisions ({len(self.problems)} problem(s)); nothing was written:\n  {shown}{more}")


def reviewer_problem(name: Any) -> str | None:
    """Why *name* is not a usable reviewer name (1–64 printable characters), or None."""
    if not isinstance(name, str) or not name.strip():
        return "reviewer must be a non-empty name (the page asks for it once)"
    if len(name) > MAX_REVIEWER:
        return f"reviewer name is {len(name)} characters; keep it under {MAX_REVIEWER}"
    if any(unicodedata.category(c).startswith("C") for c in name):
        return "reviewer name must not contain control characters"
    return None


def entry_problem(value: Any, note: Any, choices: tuple[str, ...] = CHOICES) -> str | None:
    """Why (decision, note) is not a valid entry, or None; *choices* may include ``undecided`` (server writes)."""
    if value not in choices:
        return "decision must be " + " or ".join(f'"{c}"' for c in choices) + f", got {value!r}"
    if note is not None and not isinstance(note, str):
        return f"note must be a string, got {type(note).__name__}"
    if note and len(note) > MAX_NOTE:
        return f"note is {len(note)} characters; keep it under {MAX_NOTE}"
    return None


def make_decision(value: Any, note: Any, where: str, problems: list[str], reviewer: Any = "") -> Decision | None:
    """A validated Decision, or None after appending 'where: problem' to *problems*."""
    problem = entry_problem(value, note)
    if problem is None and reviewer not in ("", None):
        problem = reviewer_problem(reviewer)
    if problem is not None:
        problems.append(f"{where}: {problem}")
        return None
    return Decision(value, note or "", (reviewer or "").strip())
