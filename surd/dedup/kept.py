"""The samples a global pass kept, saved with the shards it covered, so the next pass reads only newer shards.

A stage's `finalize` decides over every done shard at once (first in shard order wins). After an append, the
shards it already decided have not changed, so it need only read the new shards and compare their samples with
what was kept: ``<output>/_state/<name>_kept.npz`` holds the covered shards, the kept samples' keys and one column
per compared value (pHash, prompt digest, sha256), with the settings they were decided under. `open_index` gives
the index and the shards to read; it answers None (decide over everything again) when the index does not describe the output
any more: other settings, a covered shard no longer done, or a new shard that sorts before a covered one (a shard
that failed earlier and was finished later: first-wins order would change).
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from surd import shards, storage
from surd.files import write_bytes_atomic

STATE_DIR = "_state"


@dataclass
class KeptIndex:
    """Kept samples in dataset order: ``keys[i]`` and ``columns[name][i]``; `stems` the shards decided."""

    settings: dict[str, Any]
    stems: list[str] = field(default_factory=list)
    keys: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype="U16"))
    columns: dict[str, np.ndarray] = field(default_factory=dict)

    def extend(self, stems: list[str], keys: list[str], **columns: np.ndarray) -> None:
        """Add the kept samples of newly decided shards (after the ones already held)."""
        self.stems = [*self.stems, *stems]
        self.keys = np.concatenate([self.keys, np.asarray(keys, dtype="U16")])
        for name, values in columns.items():
            self.columns[name] = np.concatenate([self.columns[name], np.asarray(values, dtype=self.columns[name].dtype)])


def path_of(output_dir: str, name: str) -> str:
    return storage.join(output_dir, STATE_DIR, f"{name}_kept.npz")


def read(output_dir: str, name: str, settings: dict[str, Any], dtypes: dict[str, Any]) -> KeptIndex | None:
    """The saved index, or None when there is none, it was made under other settings, it cannot be read, or its
    arrays do not fit together (a column missing, of another type or another length than the keys)."""
    path = path_of(output_dir, name)
    if not storage.exists(path):
        return None
    try:
        with np.load(io.BytesIO(storage.read_bytes(path)), allow_pickle=False) as z:
            if json.loads(str(z["settings"])) != settings:
                return None
            keys, stems = z["keys"], [str(s) for s in z["stems"]]
            columns = {k: z[f"col_{k}"] for k in dtypes}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):  # damaged: decide over everything again
        return None
    if keys.dtype.kind != "U" or keys.ndim != 1 or any(
            v.dtype != np.dtype(dtypes[k]) or v.shape != keys.shape for k, v in columns.items()):
        return None
    return KeptIndex(settings, stems, keys, columns)


def open_index(output_dir: str, name: str, settings: dict[str, Any],
               dtypes: dict[str, Any]) -> tuple[KeptIndex, list[str]]:
    """The index to extend and the done shards to decide: the saved index and the shards it does not cover, or an
    empty index and every done shard when it must be rebuilt (`read`, `new_stems`)."""
    done = shards.list_done(output_dir)
    index = read(output_dir, name, settings, dtypes)
    todo = new_stems(index, done)
    if index is None or todo is None:
        return KeptIndex(settings, columns={k: np.zeros(0, dtype=v) for k, v in dtypes.items()}), done
    return index, todo


def write(output_dir: str, name: str, index: KeptIndex) -> None:
    """Save the index atomically (after the drops it describes are written)."""
    storage.makedirs(storage.join(output_dir, STATE_DIR))
    buf = io.BytesIO()
    np.savez(buf, settings=np.array(json.dumps(index.settings, sort_keys=True)),
             stems=np.asarray(index.stems, dtype=str), keys=index.keys,
             **{f"col_{k}": v for k, v in index.columns.items()})
    write_bytes_atomic(path_of(output_dir, name), buf.getvalue())


def new_stems(index: KeptIndex | None, done: list[str]) -> list[str] | None:
    """The done shards the index does not cover yet, in order; None when it must be rebuilt (see the module)."""
    if index is None:
        return None
    covered = set(index.stems)
    if not covered <= set(done):
        return None
    todo = [s for s in done if s not in covered]
    if todo and covered and min(todo) < max(covered):
        return None
    return todo
