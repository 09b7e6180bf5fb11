"""URL lists: CSV/TSV/JSONL/Parquet files of (image URL, prompt) rows; img2dataset's column names are understood.

Columns are found automatically (``url``/``URL``/``image_url``... and ``caption``/``TEXT``/``prompt``...) or named
with ``url_col``/``caption_col``. Every other column is kept in the sample json under ``extra``.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from surd.sources import make_row

URL_COLUMNS = ("url", "URL", "image_url", "img_url", "src", "link", "image")
CAPTION_COLUMNS = ("caption", "TEXT", "text", "prompt", "complex_prompt", "Prompt")
FORMATS = ("auto", "csv", "tsv", "jsonl", "parquet")
_SUFFIX = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}


@dataclass(frozen=True)
class Config:
    """The list file and which of its columns hold the URL, prompt, negative prompt and id."""

    path: str = ""
    format: str = "auto"
    url_col: str = ""  # "" = first of URL_COLUMNS present
    caption_col: str = ""  # "" = first of CAPTION_COLUMNS present
    negative_col: str = "negative_prompt"
    id_col: str = ""  # "" = the URL is the source id
    source_name: str = "urls"

    def __post_init__(self) -> None:
        if not self.path:
            raise ValueError("no URL list given: pass the path of a .csv, .tsv, .jsonl or .parquet file")
        if not Path(self.path).is_file():
            raise FileNotFoundError(f"URL list {self.path} not found: check the path")
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {self.format!r}")
        if self.resolved_format() is None:
            raise ValueError(f"cannot tell the format of {self.path} from its suffix: pass format=csv|tsv|jsonl|parquet")

    def resolved_format(self) -> str | None:
        return self.format if self.format != "auto" else _SUFFIX.get(Path(self.path).suffix.lower())


def read_records(path: Path, fmt: str) -> Iterator[dict[str, Any]]:
    """The list's records as dicts (a JSONL line that is not an object yields {"__bad__": detail})."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=8192):
            yield from batch.to_pylist()
    elif fmt == "jsonl":
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if line.strip():
                    try:
                        obj = json.loads(line)
                    except ValueError as e:
                        obj = {"__bad__": f"line {lineno}: {e}"}
                    yield obj if isinstance(obj, dict) else {"__bad__": f"line {lineno}: not a JSON object"}
    else:
        with open(path, encoding="utf-8-sig", newline="") as f:
            yield from csv.DictReader(f, delimiter="," if fmt == "csv" else "\t")


def _pick(explicit: str, candidates: tuple[str, ...], columns: list[str], what: str, cfg: Config) -> str:
    if explicit:
        if explicit not in columns:
            raise ValueError(f"column {explicit!r} not in {cfg.path} (columns: {', '.join(columns)})")
        return explicit
    for name in candidates:
        if name in columns:
            return name
    opt = "url-col" if what == "URL" else "caption-col"
    raise ValueError(f"no {what} column in {cfg.path} (columns: {', '.join(columns)}): pass --{opt} NAME")


def _text(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return str(v).strip()


def list_rows(cfg: Config, state_dir: Path | None = None) -> Iterator[dict[str, Any]]:
    """One row per record; a record without URL or prompt is a row rejected with that reason."""
    cols: tuple[str, str] | None = None
    for i, rec in enumerate(read_records(Path(cfg.path), cfg.resolved_format() or "csv")):
        if "__bad__" in rec:
            yield make_row(source=cfg.source_name, source_id=f"{cfg.path}#{i}", image="", complex_prompt=None,
                           error="bad_list_row", error_detail=rec["__bad__"])
            continue
        if cols is None:
            names = list(rec)
            cols = (_pick(cfg.url_col, URL_COLUMNS, names, "URL", cfg),
                    _pick(cfg.caption_col, CAPTION_COLUMNS, names, "caption", cfg))
        url, prompt = _text(rec.get(cols[0])), _text(rec.get(cols[1]))
        error = "missing_url" if not url else "missing_prompt" if not prompt else None
        used = {cols[0], cols[1], cfg.negative_col, cfg.id_col}
        extra = json.loads(json.dumps({k: v for k, v in rec.items() if k not in used and _text(v)}, default=str))
        yield make_row(
            source=cfg.source_name, source_id=_text(rec.get(cfg.id_col) if cfg.id_col else "") or url or f"{cfg.path}#{i}",
            image=url, complex_prompt=prompt or None, negative_prompt=_text(rec.get(cfg.negative_col)), url=url,
            provenance={"list": str(cfg.path), "row": i}, extra=extra, error=error,
            error_detail="" if error is None else f"row {i}: empty {cols[0] if not url else cols[1]!r}",
        )  # fmt: skip
