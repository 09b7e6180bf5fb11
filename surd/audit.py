"""Audits a dataset against what its stats markers say: checks for `surd verify` and for a stage's input.

- `input_shards`: before a stage reads a directory: every shard finished (no tar without a marker, no marker
  without a tar, no gap in the numbering), sizes as recorded; else `ShardUnfinished` naming each, unless the
  caller asks for the finished shards only.
- `verify_stage`: every shard against its marker (tar and sidecar: size, sample count, SHA-256), the sidecar's
  statuses and reasons against the marker's counts, and ``in = kept + Σ rejected``.
- `verify_run`: every stage of ``runs/<name>/``, plus across stages: shard *i* of a stage read shard *i* of the
  stage before, so its ``in`` equals that shard's ``kept``. An adapter folder (``NN_train_adapter/``) is checked too:
  every ``.safetensors`` under it is whole (its header's tensors fill the file exactly) and its config is json.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from surd import storage
from surd.integrity import (
    SIDECAR_SUFFIX,
    STATS_SUFFIX,
    ShardCorrupt,
    ShardUnfinished,
    check,
    expected_file,
    read_marker,
)
from surd.shards import CONFIG_NAME, read_shard, read_sidecar, shard_name

ADAPTER_CONFIG = "adapter_config.json"  # surd.adapter.io.CONFIG_NAME (the adapter package sits above this layer)


@dataclass(frozen=True)
class InputShard:
    """A finished shard of an input directory: its stem, its tar, and how many samples its marker vouches for."""

    stem: str
    path: str
    n: int


def _layout(names: list[str]) -> tuple[set[str], set[str], list[str]]:
    """(tar stems, marker stems, problems: unfinished or missing shards) of a stage directory's listing."""
    tars = {n[:-4] for n in names if n.endswith(".tar") and n[:-4].isdigit()}
    markers = {n[: -len(STATS_SUFFIX)] for n in names if n.endswith(STATS_SUFFIX) and n[: -len(STATS_SUFFIX)].isdigit()}
    stems = tars | markers
    gaps = sorted(set(map(shard_name, range(max(map(int, stems)) + 1))) - stems) if stems else []
    problems = [f"{s}.tar has no stats marker (unfinished, or its marker was lost)" for s in sorted(tars - markers)]
    problems += [f"{s}{STATS_SUFFIX} has no {s}.tar (the tar is missing)" for s in sorted(markers - tars)]
    problems += [f"shard {s} is missing (no tar, no marker)" for s in gaps]
    return tars, markers, problems


def _listing(dataset_dir: str | os.PathLike) -> list[str]:
    try:
        return storage.listdir(dataset_dir)
    except (FileNotFoundError, NotADirectoryError):
        raise FileNotFoundError(f"dataset directory {dataset_dir} does not exist: run the stage that writes it "
                                "first") from None


def input_shards(dataset_dir: str | os.PathLike, *, finished_only: bool = False) -> list[InputShard]:
    """The finished shards of an input directory, checked before a stage reads them (see the module docstring).

    A local tar whose size differs from its marker is `ShardCorrupt` here already; the count and checksum are
    checked as each shard is read (`surd.shards.read_shard`).
    """
    tars, markers, problems = _layout(_listing(dataset_dir))
    if problems and not finished_only:
        shown = "; ".join(problems[:20]) + (f" … ({len(problems)} in all)" if len(problems) > 20 else "")
        raise ShardUnfinished(f"{dataset_dir} has unfinished or missing shards: {shown}. Finish (rerun) the stage "
                              "that writes it, or ask for the finished shards only (--finished-only, or finished_only: true)")
    done = sorted(tars & markers)
    if not done:
        raise FileNotFoundError(f"no finished shards in {dataset_dir}: run the previous stage first")
    blobs = storage.read_many([storage.join(dataset_dir, s + STATS_SUFFIX) for s in done])
    out = []
    for stem, blob in zip(done, blobs):
        path = storage.join(dataset_dir, f"{stem}.tar")
        try:
            expected = expected_file(path, json.loads(blob))
            n = int(expected["samples"])
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ShardCorrupt(f"{storage.join(dataset_dir, stem + STATS_SUFFIX)} is not a stats marker") from None
        if "size" in expected and not storage.is_remote(path):
            check(path, expected, size=os.path.getsize(path))
        out.append(InputShard(stem, path, n))
    return out


@dataclass
class StageReport:
    """What `verify_stage` found: totals, the per-shard counts, and every problem (empty: the stage is sound)."""

    path: str
    shards: dict[str, dict[str, Any]] = field(default_factory=dict)  # stem → {"in", "kept", "rejected"}
    problems: list[str] = field(default_factory=list)
    kind: str = "shards"  # or "adapter"

    def totals(self) -> dict[str, Any]:
        rejected: Counter[str] = Counter()
        for s in self.shards.values():
            rejected.update(s["rejected"])
        return {"shards": len(self.shards), "in": sum(s["in"] for s in self.shards.values()),
                "kept": sum(s["kept"] for s in self.shards.values()), "rejected": dict(sorted(rejected.items()))}

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "kind": self.kind, **self.totals(), "ok": not self.problems,
                "problems": self.problems}


def _check_counts(marker: str, stats: dict[str, Any]) -> str | None:
    rejected = stats.get("rejected")
    if not isinstance(rejected, dict) or not all(isinstance(v, int) for v in rejected.values()):
        return f"{marker}: 'rejected' is not a {{reason: count}} mapping"
    if stats["in"] != stats["kept"] + sum(rejected.values()):
        return (f"{marker}: in ({stats['in']}) != kept ({stats['kept']}) + Σ rejected ({sum(rejected.values())}): "
                "samples disappeared without a reason")
    return None


def _check_sidecar(d: str, stem: str, stats: dict[str, Any]) -> list[str]:
    rows = read_sidecar(d, stem)
    path = storage.join(d, stem + SIDECAR_SUFFIX)
    kept = sum(r["status"] == "kept" for r in rows)
    rejected = Counter(r["reason"] for r in rows if r["status"] == "rejected")
    problems = []
    if kept != stats["kept"]:
        problems.append(f"{path}: {kept} rows kept, the marker says {stats['kept']}")
    if dict(rejected) != {k: v for k, v in stats["rejected"].items() if v}:
        problems.append(f"{path}: rejected {dict(sorted(rejected.items()))}, the marker says {stats['rejected']}")
    return problems


def verify_shard(d: str, stem: str, stats: dict[str, Any]) -> list[str]:
    """Every problem of one finished shard: counts, the tar and the sidecar against the marker."""
    marker = storage.join(d, stem + STATS_SUFFIX)
    problems = [p for p in [_check_counts(marker, stats)] if p]
    if not stats.get("files"):
        problems.append(f"{marker} records no files (written before surd recorded sizes and checksums): only the "
                        "counts can be checked; rerun the stage into a new directory to get a verifiable shard")
    for check_one in (lambda: sum(1 for _ in read_shard(storage.join(d, f"{stem}.tar"))),
                      lambda: problems.extend(_check_sidecar(d, stem, stats))):
        try:
            check_one()
        except (ShardCorrupt, ShardUnfinished, FileNotFoundError) as e:
            problems.append(str(e))
    return problems


def verify_stage(stage_dir: str | os.PathLike) -> StageReport:
    """Check every shard of one stage directory against its marker (see the module docstring)."""
    d = storage.normalize(stage_dir)
    report = StageReport(d)
    tars, markers, report.problems = _layout(_listing(d))
    report.problems = [f"{d}: {p}" for p in report.problems]
    for stem in sorted(markers):
        marker = storage.join(d, stem + STATS_SUFFIX)
        try:
            stats = read_marker(marker)
        except ShardCorrupt as e:
            report.problems.append(str(e))
            continue
        report.shards[stem] = {"in": stats["in"], "kept": stats["kept"], "rejected": stats.get("rejected") or {}}
        if stem in tars:
            report.problems += verify_shard(d, stem, stats)
    return report


_SAFETENSORS_ITEMSIZE = {"F64": 8, "I64": 8, "U64": 8, "F32": 4, "I32": 4, "U32": 4, "F16": 2, "BF16": 2, "I16": 2,
                         "U16": 2, "I8": 1, "U8": 1, "BOOL": 1}


def _marks(names: list[str]) -> str | None:
    if ADAPTER_CONFIG in names:
        return "adapter"
    if CONFIG_NAME in names or any(n.endswith((STATS_SUFFIX, ".tar")) for n in names):
        return "shards"
    return None


def stage_dirs(path: str | os.PathLike) -> list[str]:
    """The stage directories of a run (``NN_<stage>/`` holding shards or an adapter), or [path] for one itself."""
    p = storage.normalize(path)
    if _marks(_listing(p)):
        return [p]
    dirs = [storage.join(p, n) for n in _listing(p) if n[:2].isdigit() and "_" in n]
    return [d for d in dirs if _marks(_safe_listing(d))]


def safetensors_problem(path: str, data: bytes) -> str | None:
    """Why a safetensors file is not whole (None: it is): the header must parse and its tensors fill the rest."""
    try:
        n = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + n])
        spans = []
        for name, t in header.items():
            if name == "__metadata__":
                continue
            begin, end = t["data_offsets"]
            size = _SAFETENSORS_ITEMSIZE[t["dtype"]]
            for dim in t["shape"]:
                size *= dim
            if end - begin != size:
                return f"{path}: tensor {name!r} holds {end - begin} bytes, its shape needs {size}"
            spans.append((begin, end))
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        return f"{path} is not a safetensors file (its header does not parse: {e})"
    spans.sort()
    if len(data) < 8 + n or [b for b, _ in spans] != [0, *(e for _, e in spans[:-1])] or (
            spans and spans[-1][1] != len(data) - 8 - n):
        return f"{path}: the tensors do not fill the file exactly ({len(data)} bytes): truncated or altered"
    return None


def verify_adapter(adapter_dir: str) -> StageReport:
    """Check an adapter folder: its config parses, every ``.safetensors`` under it (checkpoints too) is whole."""
    report = StageReport(adapter_dir, kind="adapter")
    for rel in storage.walk_files(adapter_dir):
        path = storage.join(adapter_dir, *rel.split("/"))
        if rel.endswith(".safetensors"):
            problem = safetensors_problem(path, storage.read_bytes(path))
            report.problems += [problem] if problem else []
        elif rel.rsplit("/", 1)[-1] == ADAPTER_CONFIG:
            try:
                json.loads(storage.read_bytes(path))
            except (ValueError, UnicodeDecodeError) as e:
                report.problems.append(f"{path} is not json ({e})")
    return report


def _safe_listing(d: str) -> list[str]:
    try:
        return storage.listdir(d)
    except (FileNotFoundError, NotADirectoryError):
        return []


def verify_run(path: str | os.PathLike) -> tuple[list[StageReport], list[str]]:
    """Verify every stage of a run (or one stage directory), then each stage against the one before it.

    Returns (a report per stage, the problems across stages); nothing wrong when every list is empty."""
    dirs = stage_dirs(path)
    if not dirs:
        raise FileNotFoundError(f"{path} is neither a stage output directory nor a run directory holding NN_<stage>/ "
                                "folders")
    reports = [verify_adapter(d) if _marks(_safe_listing(d)) == "adapter" else verify_stage(d) for d in dirs]
    across = []
    chain = [r for r in reports if r.kind == "shards"]
    for before, after in zip(chain, chain[1:]):
        for stem in sorted(set(before.shards) | set(after.shards)):
            a, b = before.shards.get(stem), after.shards.get(stem)
            if a is None or b is None:
                missing, other = (before, after) if a is None else (after, before)
                across.append(f"{missing.path}: has no shard {stem}, but {other.path} has one")
            elif b["in"] != a["kept"]:
                across.append(f"{after.path}/{stem}: in = {b['in']}, but {before.path}/{stem} kept {a['kept']}: "
                              f"{'samples were lost between the stages' if b['in'] < a['kept'] else 'extra samples'}")
    return reports, across
