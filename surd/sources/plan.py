"""Input sharding for source stages: a source's rows streamed into one row file per output shard.

``<output>/_state/plan/NNNNN.rows.json.zst`` holds shard NNNNN's input rows and ``_plan.json``, written last, the
row count of every shard. So the number of output shards is known before any download (img2dataset's input
sharding), memory stays bounded whatever the list's length (one shard of rows, plus 9 bytes per row for the
duplicate-key check), and a rerun reads ``_plan.json`` instead of listing again. A plan cut short (no
``_plan.json``) is made again from the start.

``_keys.npy`` holds every planned row's key in plan order. An append (`plan_rows` with ``append``) lists the
source again and plans only the rows those keys do not account for, into shards numbered after the last one; the
earlier row files are never rewritten, so the shards already made from them stay done.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from typing import Any

import numpy as np

from surd import shards, storage
from surd.files import write_bytes_atomic, write_json_atomic
from surd.sample import KEY_LENGTH, make_key

PLAN_DIR = "plan"
MARKER = "_plan.json"
KEYS = "_keys.npy"  # every planned row's key in plan order (uint64): what an append compares new rows with
FORMAT = "surd-shard-plan"
assert KEY_LENGTH == 16, "keys are 16 hex digits: exactly one uint64 each in the duplicate check"


def plan_dir(state_dir: str) -> str:
    return storage.join(state_dir, PLAN_DIR)


def _shards(directory: str, counts: list[int]) -> list[shards.PlannedShard]:
    names = [shards.shard_name(i) for i in range(len(counts))]
    return [shards.PlannedShard(name, storage.join(directory, name + shards.ROWS_SUFFIX), n)
            for name, n in zip(names, counts)]


def _finished(directory: str, shard_size: int) -> dict[str, Any] | None:
    """The finished plan's marker in *directory*, or None (none yet, cut short, or made with another shard size)."""
    marker = storage.join(directory, MARKER)
    if not storage.exists(marker):
        return None
    doc = json.loads(storage.read_bytes(marker))
    if doc.get("format") != FORMAT or doc.get("shard_size") != shard_size:
        return None
    return doc


def read_plan(state_dir: str, shard_size: int, input_tag: dict[str, Any] | None) -> list[shards.PlannedShard] | None:
    """The finished plan in *state_dir*, or None; refuses a plan made from a different version of the input."""
    directory = plan_dir(state_dir)
    doc = _finished(directory, shard_size)
    if doc is None:
        return None
    if input_tag is not None and doc.get("input") != input_tag:
        raise ValueError(f"the input list changed since this run was planned ({doc.get('input')} → {input_tag}): "
                         "to add its new rows to this run, rerun with --append (a pipeline: surd run --append); "
                         f"to start over, pass a new output directory, or delete {directory}")
    return _shards(directory, doc["shards"])


def _planned_keys(directory: str, doc: dict[str, Any] | None) -> np.ndarray:
    """[N] uint64: the key of every row of the finished plan `doc`, in plan order (empty without one). Read from
    ``_keys.npy``; a plan made before that file existed, or one whose file is damaged, is read from its row files."""
    if doc is None:
        return np.zeros(0, dtype=np.uint64)
    path = storage.join(directory, KEYS)
    if storage.exists(path):  # it may hold more keys than the plan: an append that died before its marker
        try:
            keys = np.load(io.BytesIO(storage.read_bytes(path)), allow_pickle=False)
        except (ValueError, OSError, EOFError):  # damaged: the row files say the same
            keys = np.zeros(0, dtype=np.uint64)
        if keys.dtype == np.uint64 and keys.ndim == 1 and len(keys) >= int(doc["rows"]):
            return keys[: int(doc["rows"])]
    rows = (r for s in _shards(directory, doc["shards"]) for r in shards.read_rows(s.rows))
    return np.array([int(r["__key__"], 16) for r in rows], dtype=np.uint64)


class _Planned:
    """The keys an earlier plan holds, each as often as it was listed: a row of a new listing whose key still has an
    unmatched earlier occurrence is that row again (`take` says so and counts it off), any other row is new."""

    def __init__(self, keys: np.ndarray) -> None:
        order = np.sort(keys)  # [N]
        starts = np.flatnonzero(np.r_[True, order[1:] != order[:-1]]) if len(order) else np.zeros(0, np.int64)
        self.keys = order[starts]  # [U] sorted distinct keys
        self.left = np.diff(np.r_[starts, len(order)])  # [U] occurrences not matched yet

    def take(self, key: int) -> bool:
        k = np.uint64(key)
        i = int(np.searchsorted(self.keys, k))
        if i < len(self.keys) and self.keys[i] == k and self.left[i] > 0:
            self.left[i] -= 1
            return True
        return False


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
              input_tag: dict[str, Any] | None = None, append: bool = False) -> list[shards.PlannedShard]:
    """Stream *rows* into row files of `shard_size` rows, give each row its stable key, mark repeated keys
    ``duplicate_key``; returns the planned shards. Reuses a finished plan (see `read_plan`).

    With `append`, a finished plan is extended instead: the rows of *rows* that it does not hold yet (by key, each
    key as often as the plan listed it) go into new shards numbered after its last one, a new row repeating any
    earlier key marked ``duplicate_key`` as a plan of the whole list would; the earlier shards are left as they are.
    An append whose input file is unchanged (`input_tag`) lists nothing."""
    directory = plan_dir(state_dir)
    doc = _finished(directory, shard_size)
    if doc is not None and (not append or (input_tag is not None and doc.get("input") == input_tag)):
        return read_plan(state_dir, shard_size, input_tag) or []
    old_keys = _planned_keys(directory, doc)
    old_counts: list[int] = list(doc["shards"]) if doc is not None else []
    planned = _Planned(old_keys)
    storage.makedirs(directory)
    counts: list[int] = []
    keys: list[np.ndarray] = []  # per new shard: [n] uint64
    errored: list[np.ndarray] = []  # per new shard: [n] bool
    buf: list[dict[str, Any]] = []

    def flush() -> None:
        keys.append(np.array([int(r["__key__"], 16) for r in buf], dtype=np.uint64))
        errored.append(np.array([bool(r.get("error")) for r in buf], dtype=bool))
        name = shards.shard_name(len(old_counts) + len(counts))
        shards.write_rows(storage.join(directory, name + shards.ROWS_SUFFIX), buf)
        counts.append(len(buf))
        buf.clear()

    for row in rows:
        row["__key__"] = make_key(row["source"], row["source_id"])
        if len(old_keys) and planned.take(int(row["__key__"], 16)):
            continue  # planned before this append
        buf.append(row)
        if len(buf) == shard_size:
            flush()
    if buf:
        flush()
    new_keys = np.concatenate(keys) if keys else np.zeros(0, dtype=np.uint64)
    new_errored = np.concatenate(errored) if errored else np.zeros(0, dtype=bool)
    # The earlier rows count as rejected already (never marked again), so only new rows can be repeats; an earlier
    # row still wins over a new one with its key, as it would in a plan of the whole list.
    dups = duplicate_positions(np.concatenate([old_keys, new_keys]),
                               np.concatenate([np.ones(len(old_keys), dtype=bool), new_errored])) - len(old_keys)
    keys.clear()  # free the per-shard arrays before the rewrite pass
    errored.clear()
    _mark_duplicates(directory, dups, shard_size, first=len(old_counts))
    buffer = io.BytesIO()
    np.save(buffer, np.concatenate([old_keys, new_keys]), allow_pickle=False)
    write_bytes_atomic(storage.join(directory, KEYS), buffer.getvalue())  # before the marker that makes it count
    history = list(doc.get("appends", [])) if doc is not None else []
    if doc is not None:
        history.append({"rows": int(len(new_keys)), "first_shard": len(old_counts), "shards": len(counts),
                        "input": input_tag})
    old_dups = int(doc.get("duplicate_keys", 0)) if doc is not None else 0
    write_json_atomic(storage.join(directory, MARKER), {
        "format": FORMAT, "version": 1, "rows": int(len(old_keys) + len(new_keys)), "shard_size": shard_size,
        "duplicate_keys": old_dups + int(len(dups)), "input": input_tag, "shards": old_counts + counts,
        **({"appends": history} if history else {})})
    return _shards(directory, old_counts + counts)


def _mark_duplicates(directory: str, positions: np.ndarray, shard_size: int, first: int = 0) -> None:
    """Rewrite the row files holding repeated keys, marking those rows ``duplicate_key`` (`positions` count from
    shard `first`'s first row)."""
    # set(), not np.unique: numpy 2's unique imports numpy.ma on first use (~80 ms in every planning process).
    for shard in sorted(set((positions // shard_size).tolist())):
        path = storage.join(directory, shards.shard_name(first + shard) + shards.ROWS_SUFFIX)
        rows = shards.read_rows(path)
        lo, hi = np.searchsorted(positions, [shard * shard_size, (shard + 1) * shard_size])  # positions are sorted
        for pos in positions[lo:hi].tolist():
            row = rows[pos - shard * shard_size]
            row["error"], row["error_detail"] = "duplicate_key", f"{row['source']}/{row['source_id']} listed again"
        shards.write_rows(path, rows)
