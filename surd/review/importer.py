"""`surd review import`: validate every decision file against the dataset, giving the review stage's config.

Validation happens before anything is written: a malformed file, a key the dataset does not hold, or a key
decided differently in two files stops the import with every problem listed and no output directory created.
"""

from __future__ import annotations

import os
from pathlib import Path

from surd import shards, storage
from surd.review.decisions import files_digest, load_decisions
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


def review_config(dataset_dir: str | os.PathLike, decision_files: list[str | os.PathLike],
                  undecided: str = "drop") -> Config:
    """The ``review`` stage's config for these decision files, after checking them against the dataset.

    Raises `DecisionError` (listing every problem) if the decisions are not valid, so nothing is run or written;
    run the returned config with ``run_stage("review", cfg, out, input_dir=dataset_dir)``.
    """
    files = tuple(str(Path(p).resolve()) for p in decision_files)
    for p in files:
        if not Path(p).is_file():
            raise FileNotFoundError(f"decision file {p} does not exist")
    load_decisions(files, known_keys=dataset_keys(dataset_dir))
    return Config(decisions=files, undecided=undecided, digest=files_digest(files))
