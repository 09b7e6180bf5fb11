"""Training into a URL (``--out s3://bucket/adapters/x``): the trainer works in a local mirror, then publishes.

Checkpoints are published by renaming a folder and the log is appended to, neither of which an object store can
do; so the run works in ``$SURD_CACHE_DIR`` (default ``~/.cache/surd``) ``/train/<sha1 of the URL>/``. Before
training, whatever the URL already holds is downloaded there, so ``resume`` continues from the newest published
checkpoint on any machine (a finished run is not trained again); after training every file is uploaded, the
files that mark something complete (``trainer_state.json`` of each checkpoint, ``adapter_config.json``) last.
The feature cache stays local. Training data may be at a URL too (shards are streamed through `surd.storage`).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from surd import storage

MARKERS = ("trainer_state.json", "adapter_config.json")  # written last: their presence means "complete"
LOCAL_ONLY = ("feature_cache",)


def mirror_dir(url: str) -> Path:
    """The local working folder for a training run whose output is *url*."""
    root = Path(os.environ.get("SURD_CACHE_DIR") or Path.home() / ".cache" / "surd")
    return root / "train" / hashlib.sha1(url.encode()).hexdigest()[:16]


def pull(url: str) -> Path:
    """Download what *url* holds into its mirror folder (resuming needs the checkpoints); returns the folder."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ValueError("a URL as --out is for single-process training: with several processes, train into a "
                         "local folder and copy it to the object store afterwards")
    local = mirror_dir(url)
    local.mkdir(parents=True, exist_ok=True)
    storage.download_tree(url, local)
    return local


def push(local: Path, url: str) -> int:
    """Upload the mirror folder to *url*, completion markers last; returns how many files."""
    files = [rel for rel in storage.walk_files(local) if rel.split("/", 1)[0] not in LOCAL_ONLY]
    ordered = sorted(files, key=lambda rel: (rel.rpartition("/")[2] in MARKERS, rel))
    for rel in ordered:
        storage.put_file(local / rel, storage.join(url, *rel.split("/")))
    return len(ordered)
