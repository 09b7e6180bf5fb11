"""`surd review import`: validate and merge decision files against the dataset, giving the review stage's config.

Validation happens before anything is written: a malformed file, a key the dataset does not hold, a snapshot older
than its journal, or (with ``conflict="error"``) a key decided differently in two files stops the import with every
problem listed and no output directory created. Agreement between files that decided the same keys is measured
(`surd.review.agreement`); with ``conflict="adjudicate"`` the disagreements go to an adjudication site first, and a
second import that includes its decisions settles them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from surd import shards, storage
from surd.review.agreement import Merged
from surd.review.decisions import files_digest, resolve
from surd.review.exporter import export_adjudication
from surd.review.journal import JOURNAL_NAME, SNAPSHOT_NAME, JournalError, read_journal
from surd.review.records import DecisionError
from surd.review.site import read_site
from surd.stages.review import Config


def dataset_keys(dataset_dir: str | os.PathLike) -> set[str]:
    """Keys of a dataset's kept samples: from the parquet sidecars when every shard has one (no tar reads)."""
    keys: set[str] = set()
    for tar in shards.list_shards(dataset_dir):
        stem = shards.stem_of(tar)
        if storage.exists(storage.join(dataset_dir, stem + shards.SIDECAR_SUFFIX)):
            keys.update(r["key"] for r in shards.read_sidecar(dataset_dir, stem) if r["status"] == "kept")
        else:
            keys.update(s["__key__"] for s in shards.read_shard(tar))
    return keys


@dataclass
class ImportPlan:
    """What an import will do: the stage config (None while disagreements wait for adjudication) and the merge."""

    config: Config | None
    merged: Merged
    adjudication: Path | None = None  # the adjudication site holding the pending disagreements
    written: bool = False  # whether this import wrote that site
    pending: list[str] = field(default_factory=list)


def _stale_snapshots(files: tuple[str, ...]) -> list[str]:
    """A served site's decisions.json lags its journal by up to a few seconds (and after a crash)."""
    problems = []
    for f in files:
        p = Path(f)
        if p.name != SNAPSHOT_NAME or not (p.parent / JOURNAL_NAME).is_file():
            continue
        try:
            snap = json.loads(p.read_text(encoding="utf-8")).get("seq")
            journal = read_journal(p.parent / JOURNAL_NAME).seq
        except (OSError, ValueError, AttributeError, JournalError):
            continue  # parse_source reports what is wrong with the file itself
        if not isinstance(snap, int) or snap < journal:
            problems.append(f"{p}: older than the journal beside it ({snap} < {journal} changes); run "
                            f"`surd review rebuild {p.parent}` or import {p.parent / JOURNAL_NAME} instead")
    return problems


def _opinions(merged: Merged, keys: list[str]) -> dict[str, list[list[str]]]:
    return {k: [[o.label, o.decision.decision, o.decision.note] for o in merged.disagreements[k]] for k in keys}


def plan_import(dataset_dir: str | os.PathLike, decision_files: list[str | os.PathLike], undecided: str = "drop",
                conflict: str = "error", adjudication_dir: str | os.PathLike | None = None,
                progress: bool = True) -> ImportPlan:
    """Check and merge the decision files; with ``adjudicate`` and open disagreements, write the adjudication site.

    Raises `DecisionError` (listing every problem) if the decisions are not valid, so nothing is run or written;
    run ``plan.config`` with ``run_stage("review", cfg, out, input_dir=dataset_dir)`` when it is not None.
    """
    files = tuple(str(Path(p).resolve()) for p in decision_files)
    for p in files:
        if not Path(p).is_file():
            raise FileNotFoundError(f"decision file {p} does not exist")
    stale = _stale_snapshots(files)
    if stale:
        raise DecisionError(stale)
    merged = resolve(files, known_keys=dataset_keys(dataset_dir), conflict=conflict)
    if not merged.unsettled:
        cfg = Config(decisions=files, undecided=undecided, digest=files_digest(files), conflict=conflict)
        return ImportPlan(cfg, merged)
    if adjudication_dir is None:
        raise ValueError("--conflict adjudicate needs --adjudication DIR (where the disagreements' site goes)")
    adj = Path(adjudication_dir)
    if adj.exists() and any(adj.iterdir()):
        held = set(read_site(adj)["keys"])
        missing = sorted(set(merged.unsettled) - held)
        if missing:
            raise FileExistsError(f"{adj} adjudicates other disagreements ({len(missing)} new ones are not in it, "
                                  f"e.g. {missing[0]}): choose a new --adjudication directory")
        return ImportPlan(None, merged, adj, False, merged.unsettled)
    export_adjudication(dataset_dir, adj, _opinions(merged, merged.unsettled), progress=progress)
    return ImportPlan(None, merged, adj, True, merged.unsettled)
