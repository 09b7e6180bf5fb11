"""Local manifests (JSONL, CSV/TSV, Parquet) of (complex prompt, image path or file:// URL) rows."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from surd.fetchers import local_path, scheme_of
from surd.sources import make_row

FORMATS = ("auto", "jsonl", "csv", "tsv", "parquet")
_SUFFIX = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet"}


@dataclass(frozen=True)
class Config:
    """Which file to read and which columns hold what (override to match your manifest)."""

    path: str = ""
    format: str = "auto"
    image_col: str = "image"
    prompt_col: str = "complex_prompt"
    negative_col: str = "negative_prompt"
    simple_col: str = "simple_prompt"
    id_col: str = "source_id"
    source_col: str = "source"
    license_col: str = "license"
    provenance_col: str = "provenance"
    source_name: str = "local"  # used when the manifest has no source column

    def __post_init__(self) -> None:
        if not self.path:
            raise ValueError("no manifest given: pass the path of a .jsonl, .csv or .parquet file")
        if not Path(self.path).is_file():
            raise FileNotFoundError(f"manifest {self.path} not found: check the path (relative to {os.getcwd()})")
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {self.format!r}")
        if self.resolved_format() is None:
            raise ValueError(f"cannot tell the format of {self.path} from its suffix: pass format=jsonl|csv|tsv|parquet")

    def resolved_format(self) -> str | None:
        return self.format if self.format != "auto" else _SUFFIX.get(Path(self.path).suffix.lower())


_BAD = "__bad_row__"  # marker for rows that could not be decoded


def _bad(raw: bytes, reason: str, detail: str) -> dict[str, Any]:
    return {_BAD: (hashlib.sha1(raw).hexdigest(), reason, detail)}


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as e:
                yield _bad(raw, "bad_encoding", f"line {lineno}: not UTF-8 ({e.reason})")
                continue
            except json.JSONDecodeError as e:
                yield _bad(raw, "bad_manifest_row", f"line {lineno}: {e}")
                continue
            yield obj if isinstance(obj, dict) else _bad(raw, "bad_manifest_row", f"line {lineno}: not an object")


def _read_csv(path: Path, delimiter: str) -> Iterator[dict[str, Any]]:
    raw_lines = path.read_bytes().splitlines(keepends=True)
    good: list[str] = []
    bad: list[dict[str, Any]] = []
    for lineno, raw in enumerate(raw_lines, 1):
        try:
            good.append(raw.decode("utf-8-sig" if lineno == 1 else "utf-8"))
        except UnicodeDecodeError as e:
            bad.append(_bad(raw, "bad_encoding", f"line {lineno}: not UTF-8 ({e.reason})"))
    yield from csv.DictReader(io.StringIO("".join(good)), delimiter=delimiter)
    yield from bad


def _read_parquet(path: Path) -> Iterator[dict[str, Any]]:
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(path).iter_batches(batch_size=8192):
        yield from batch.to_pylist()


def read_records(cfg: Config) -> Iterator[dict[str, Any]]:
    fmt, path = cfg.resolved_format(), Path(cfg.path)
    if fmt == "jsonl":
        return _read_jsonl(path)
    if fmt in ("csv", "tsv"):
        return _read_csv(path, "," if fmt == "csv" else "\t")
    return _read_parquet(path)


def _text(v: Any) -> str | None:
    if v is None or (isinstance(v, float) and v != v):  # None / NaN
        return None
    return str(v)


def check_columns(cfg: Config, first: dict[str, Any]) -> None:
    """Fail early, naming the option to set, when a required column is absent."""
    for opt in ("image_col", "prompt_col"):
        col = getattr(cfg, opt)
        if col not in first:
            cols = ", ".join(sorted(k for k in first if k != _BAD))
            raise ValueError(f"column {col!r} not in {cfg.path} (columns: {cols}); "
                             f"pass --{opt.replace('_', '-')} NAME to say which column to use")


def list_rows(cfg: Config, state_dir: Path | None = None) -> Iterator[dict[str, Any]]:
    """Yield one ingest row per manifest record (undecodable records become rows with an error)."""
    base = Path(cfg.path).resolve().parent
    checked = False
    for rec in read_records(cfg):
        if _BAD in rec:
            digest, reason, detail = rec[_BAD]
            yield make_row(source=cfg.source_name, source_id=f"row-sha1:{digest}", image="", complex_prompt=None,
                           error=reason, error_detail=detail)
            continue
        if not checked:
            check_columns(cfg, rec)
            checked = True
        yield _row(cfg, rec, base)


def _row(cfg: Config, rec: dict[str, Any], base: Path) -> dict[str, Any]:
    image = _text(rec.get(cfg.image_col)) or ""
    ref = image
    if image and scheme_of(image) == "file":
        p = Path(local_path(image))
        ref = str(p if p.is_absolute() else base / p)
    known = {cfg.image_col, cfg.prompt_col, cfg.negative_col, cfg.simple_col, cfg.id_col, cfg.source_col,
             cfg.license_col, cfg.provenance_col}
    extra = {k: v for k, v in rec.items() if k not in known and _text(v) is not None}
    return make_row(
        source=_text(rec.get(cfg.source_col)) or cfg.source_name,
        source_id=_text(rec.get(cfg.id_col)) or image,
        image=ref,
        complex_prompt=_text(rec.get(cfg.prompt_col)),
        negative_prompt=_text(rec.get(cfg.negative_col)),
        simple_prompt=_text(rec.get(cfg.simple_col)),
        license=_text(rec.get(cfg.license_col)) or "",
        provenance=_text(rec.get(cfg.provenance_col)),
        extra=json.loads(json.dumps(extra, default=str)),
        error=None if image else "missing_image_ref",
        error_detail="" if image else f"empty {cfg.image_col!r} column",
    )
