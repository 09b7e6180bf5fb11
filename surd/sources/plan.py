"""Input sharding for source stages: a source's rows streamed into one row file per output shard.

``<output>/_state/plan/NNNNN.rows.json.zst`` holds shard NNNNN's input rows and ``_plan.json``, written last, the
row count of every shard. So the number of output shards is known before any download (img2dataset's input
sharding), memory stays bounded whatever the list's length (one shard of rows, plus 9 bytes per row for the
duplicate-key check), and a rerun reads ``_plan.json`` instead of listing again. A plan cut short (no
``_plan.json``) is made again from the start.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import numpy as np

from surd import shards, storage
from surd.files import write_json_atomic
from surd.sample import KEY_LENGTH, make_key

PLAN_DIR = "plan"
MARKER = "_plan.json"
FORMAT = "surd-shard-plan"
assert KEY_LENGTH == 16, "keys are 16 hex digits: exactly one uint64 each in the duplicate check"


def plan_dir(state_dir: str) -> str:
    return storage.join(state_dir, PLAN_DIR)


def _shards(directory: str, counts: list[int]) -> list[shards.PlannedShard]:
    names = [shards.shard_name(i) for i in range(len(counts))]
    return [shards.PlannedShard(name, storage.join(directory, name + shards.ROWS_SUFFIX), n)
            for name, n in zip(names, counts)]


def read_plan(state_dir: str, shard_size: int, input_tag: dict[str, Any] | None) -> list[shards.PlannedShard] | None:
    """The finished plan in *state_dir*, or None; refuses a plan made from a different version of the input."""
    directory = plan_dir(state_dir)
    marker = storage.join(directory, MARKER)
    if not storage.exists(marker):
        return None
    doc = json.loads(storage.read_bytes(marker))
    if doc.get("format") != FORMAT or doc.get("shard_size") != shard_size:
        return None
    if input_tag is not None and doc.get("input") != input_tag:
        raise ValueError(f"the input list changed since this run was planned ({doc.get('input')} → {input_tag}): "
                         f"pass a new output directory, or delete {directory} to plan again")
    return _shards(directory, doc["shards"])


def duplicate_positions(keys: np.ndarray, errored: np.ndarray) -> np.ndarray:
    """Positions of rows whose key appeared at an earlier position, leaving out rows already rejected.

    keys: [N] uint64, errored: [N] bool. The first occurrence of a key wins (errored or not), as a set walk would.
    """
    order = np.argsort(keys, kind="stable")  # [N]: equal keys keep their list order
    sorted_keys = keys[order]
    repeat = np.empty(len(keys), dtype=bool)  # [N] in sorted order: same key as the previous one
    repeat[:1] = False
    repeat[1:] = sorted_keys[1:] == sorted_keys[:-1]
    later = order[repeat]
    return np.sort(later[~errored[later]])


def plan_rows(rows: Iterable[dict[str, Any]], state_dir: str, shard_size: int,
              input_tag: dict[str, Any] | None = None) -> list[shards.PlannedShard]:
    """Stream *rows* into row files of `shard_size` rows, give each row its stable key, mark repeated keys
    ``duplicate_key``; returns the planned shards. Reuses a finished plan (see `read_plan`)."""
    done = read_plan(state_dir, shard_size, input_tag)
    if done is not None:
        return done
    directory = plan_dir(state_dir)
    storage.makedirs(directory)
    counts: list[int] = []
    keys: list[np.ndarray] = []  # per shard: [n] uint64
    errored: list[np.ndarray] = []  # per shard: [n] bool
    buf: list[dict[str, Any]] = []

    def flush() -> None:
        keys.append(np.array([int(r["__key__"], 16) for r in buf], dtype=np.uint64))
        errored.append(np.array([bool(r.get("error")) for r in buf], dtype=bool))
        shards.write_rows(storage.join(directory, shards.shard_name(len(counts)) + shards.ROWS_SUFFIX), buf)
        counts.append(len(buf))
        buf.clear()

    for row in rows:
        row["__key__"] = make_key(row["source"], row["source_id"])
        buf.append(row)
        if len(buf) == shard_size:
            flush()
    if buf:
        flush()
    all_keys = np.concatenate(keys) if keys else np.zeros(0, dtype=np.uint64)
    dups = duplicate_positions(all_keys, np.concatenate(errored) if errored else np.zeros(0, dtype=bool))
    keys.clear()  # free the per-shard arrays before the rewrite pass
    errored.clear()
    _mark_duplicates(directory, dups, shard_size)
    write_json_atomic(storage.join(directory, MARKER), {
        "format": FORMAT, "version": 1, "rows": int(sum(counts)), "shard_size": shard_size,
        "duplicate_keys": int(len(dups)), "input": input_tag, "shards": counts})
    return _shards(directory, counts)


def _mark_duplicates(directory: str, positions: np.ndarray, shard_size: int) -> None:
    """Rewrite the row files holding repeated keys, marking those rows ``duplicate_key``."""
    # set(), not np.unique: numpy 2's unique imports numpy.ma on first use (~80 ms in every planning process).
    for shard in sorted(set((positions // shard_size).tolist())):
        path = storage.join(directory, shards.shard_name(shard) + shards.ROWS_SUFFIX)
        rows = shards.read_rows(path)
        lo, hi = np.searchsorted(positions, [shard * shard_size, (shard + 1) * shard_size])  # positions are sorted
        for pos in positions[lo:hi].tolist():
            row = rows[pos - shard * shard_size]
            row["error"], row["error_detail"] = "duplicate_key", f"{row['source']}/{row['source_id']} listed again"
        shards.write_rows(path, rows)
