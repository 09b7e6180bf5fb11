"""review: samples + reviewer decision files → accepted samples kept (json["stages"]["review"] records the decision),
rejected ones dropped as ``manual_reject`` (detail = the reviewer's note), disagreements settled by rule
(``--conflict reject`` drops them as ``manual_disagreement``), undecided ones kept or dropped as
``manual_undecided``. Decision files: surd JSON or journal, Label Studio JSON / JSON-MIN exports, or a review CSV.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import surd
from surd.options import config, option
from surd.review.agreement import CONFLICT_RULES, Merged
from surd.review.decisions import files_digest, resolve
from surd.sample import Rejected, Sample, record_stage, reject

NAME = "review"
USES_GPU = False
UNDECIDED = ("keep", "drop")


@config
class Config:
    """Decision files (several files from split batches merge), the rule for disagreements, undecided samples."""

    decisions: tuple[str, ...] | str = option((), help="Decision files: decisions.json(l), Label Studio export, CSV "
                                              "(one file or a list).", cli=False)  # `surd review import` arguments
    undecided: str = option("drop", help="keep or drop (reason manual_undecided) samples with no decision.",
                            choices=UNDECIDED)
    # sha256 of the files' contents (set by `surd review import`): saved in _config.json, so rerunning into the
    # same output after editing a decision file is a config mismatch instead of silently skipping done shards.
    digest: str = option("", help="sha256 of the decision files' contents (set by surd review import).", cli=False)
    conflict: str = option("error", help="Samples decided differently in two files: error (list them), reject "
                           "(manual_disagreement), accept, or adjudicate.", choices=CONFLICT_RULES)

    def __post_init__(self) -> None:
        paths = (self.decisions,) if isinstance(self.decisions, str) else tuple(str(p) for p in self.decisions)
        object.__setattr__(self, "decisions", paths)  # yaml gives lists; the config stays hashable
        if not paths:
            raise ValueError("review needs at least one decisions file: export one from the review page, "
                             "Label Studio, or the review CSV")
        missing = [p for p in paths if not Path(p).is_file()]
        if missing:
            raise ValueError(f"decision file(s) not found: {', '.join(missing)}")
        if self.digest and self.digest != files_digest(paths):
            raise ValueError("the decision files changed since this config was made; run `surd review import` again")


_CACHE: dict[tuple, Merged] = {}


def resolved(cfg: Config) -> Merged:
    """The merged decisions of cfg's files, parsed once per process (keyed by path, size, mtime and rule)."""
    stamp = (cfg.conflict, *((p, os.stat(p).st_size, os.stat(p).st_mtime_ns) for p in cfg.decisions))
    if stamp not in _CACHE:
        merged = resolve(cfg.decisions, conflict=cfg.conflict)
        if merged.unsettled:
            raise ValueError(f"{len(merged.unsettled)} disagreement(s) are not adjudicated yet: run "
                             "`surd review import ... --conflict adjudicate` and decide them first")
        _CACHE.clear()
        _CACHE[stamp] = merged
    return _CACHE[stamp]


def versions() -> dict[str, str]:
    return {"surd": surd.__version__}


def apply(samples: Iterable[Sample], merged: Merged, undecided: str,
          files: tuple[str, ...] = ()) -> Iterator[Sample | Rejected]:
    """Apply merged decisions: one output per input, in input order."""
    names = [Path(p).name for p in files]
    for sample in samples:
        key = sample["__key__"]
        d = merged.decisions.get(key)
        how = merged.settled.get(key)
        if d is not None and d.decision == "reject":
            yield reject(sample, "manual_disagreement" if how == "reject" else "manual_reject", d.note)
        elif d is None and undecided == "drop":
            yield reject(sample, "manual_undecided", f"no decision in {', '.join(names) or 'the decision files'}")
        else:
            record: dict[str, Any] = {"decision": d.decision if d else "undecided", "note": d.note if d else ""}
            record["files"] = names
            if d is not None and d.reviewer:
                record["reviewer"] = d.reviewer
            if how is not None:
                record["settled_by"] = how  # "adjudicated" or the --conflict rule
            record_stage(sample, NAME, record)
            yield sample


def run(samples: Iterable[Sample], cfg: Config) -> Iterator[Sample | Rejected]:
    """Keep accepted samples, reject `manual_reject` / `manual_disagreement`, keep or reject the undecided."""
    yield from apply(samples, resolved(cfg), cfg.undecided, cfg.decisions)
