"""Review decisions as values: `Decision`, the validation every reader shares, and `DecisionError`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FORMAT = "surd-review-decisions"
VERSION = 1
CHOICES = ("accept", "reject")
MAX_NOTE = 2000


@dataclass(frozen=True)
class Decision:
    """One reviewer decision: ``accept`` or ``reject``, with an optional note."""

    decision: str
    note: str = ""

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


def make_decision(value: Any, note: Any, where: str, problems: list[str]) -> Decision | None:
    """A validated Decision, or None after appending 'where: problem' to *problems*."""
    if value not in CHOICES:
        problems.append(f"{where}: decision must be \"accept\" or \"reject\", got {value!r}")
        return None
    if note is None:
        note = ""
    if not isinstance(note, str):
        problems.append(f"{where}: note must be a string, got {type(note).__name__}")
        return None
    if len(note) > MAX_NOTE:
        problems.append(f"{where}: note is {len(note)} characters; keep it under {MAX_NOTE}")
        return None
    return Decision(value, note)
