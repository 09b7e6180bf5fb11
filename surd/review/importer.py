"""`surd review import`: validate every decision file against the dataset, then run the review stage.

Validation happens before anything is written: a malformed file, a key the dataset does not hold, or a key
decided differently in two files stops the import with every problem listed and no output directory created.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from surd.review.decisions import files_digest, load_decisions


def dataset_keys(dataset_dir: str | os.PathLike) -> set[str]:
    """Keys of a dataset's kept samples: from the parquet sidecars when every shard has one (no tar reads)."""
    from surd import shards

    keys: set[str] = set()
    for tar in shards.list_shards(dataset_dir):
        sidecar = tar.with_name(tar.stem + shards.SIDECAR_SUFFIX)
        if sidecar.exists():
            keys.update(r["key"] for r in shards.read_sidecar(dataset_dir, tar.stem) if r["status"] == "kept")
        else:
            keys.update(s["__key__"] for s in shards.read_shard(tar))
    return keys


def import_review(dataset_dir: str | os.PathLike, decision_files: list[str | os.PathLike], out: str | os.PathLike,
                  undecided: str = "drop", progress: bool = True, workers: int = 1) -> Any:
    """Write the reviewed dataset to *out*; returns the runner's RunResult (stats: in, kept, rejected by reason).

    Raises `DecisionError` (listing every problem) before writing anything if the decisions are not valid.
    """
    from surd.runner import run_stage
    from surd.stages.review import Config

    files = tuple(str(Path(p).resolve()) for p in decision_files)
    for p in files:
        if not Path(p).is_file():
            raise FileNotFoundError(f"decision file {p} does not exist")
    load_decisions(files, known_keys=dataset_keys(dataset_dir))
    cfg = Config(decisions=files, undecided=undecided, digest=files_digest(files))
    return run_stage("review", cfg, out, input_dir=dataset_dir, workers=workers, progress=progress)
