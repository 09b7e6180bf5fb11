"""Local manifests (JSONL, CSV/TSV, Parquet) of (complex prompt, image path or file:// URL) rows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from surd.fetch import local_path, scheme_of
from surd.sources.rows import make_row
from surd.sources.tables import BAD, check_table, read_records, text


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
        check_table(self.path, self.format, "manifest")


def check_columns(cfg: Config, first: dict[str, Any]) -> None:
    """Fail early, naming the option to set, when a required column is absent."""
    for opt in ("image_col", "prompt_col"):
        col = getattr(cfg, opt)
        if col not in first:
            cols = ", ".join(sorted(first))
            raise ValueError(f"column {col!r} not in {cfg.path} (columns: {cols}); "
                             f"pass --{opt.replace('_', '-')} NAME to say which column to use")


def list_rows(cfg: Config, state_dir: Path | None = None) -> Iterator[dict[str, Any]]:
    """Yield one ingest row per manifest record (undecodable records become rows with an error)."""
    base = Path(cfg.path).resolve().parent
    checked = False
    for rec in read_records(cfg.path, cfg.format):
        if BAD in rec:
            digest, reason, detail = rec[BAD]
            yield make_row(source=cfg.source_name, source_id=f"row-sha1:{digest}", image="", complex_prompt=None,
                           error=reason, error_detail=detail)
            continue
        if not checked:
            check_columns(cfg, rec)
            checked = True
        yield _row(cfg, rec, base)


def _row(cfg: Config, rec: dict[str, Any], base: Path) -> dict[str, Any]:
    image = text(rec.get(cfg.image_col)) or ""
    ref = image
    if image and scheme_of(image) == "file":
        p = Path(local_path(image))
        ref = str(p if p.is_absolute() else base / p)
    known = {cfg.image_col, cfg.prompt_col, cfg.negative_col, cfg.simple_col, cfg.id_col, cfg.source_col,
             cfg.license_col, cfg.provenance_col}
    extra = {k: v for k, v in rec.items() if k not in known and text(v) is not None}
    return make_row(
        source=text(rec.get(cfg.source_col)) or cfg.source_name,
        source_id=text(rec.get(cfg.id_col)) or image,
        image=ref,
        complex_prompt=text(rec.get(cfg.prompt_col)),
        negative_prompt=text(rec.get(cfg.negative_col)),
        simple_prompt=text(rec.get(cfg.simple_col)),
        license=text(rec.get(cfg.license_col)) or "",
        provenance=text(rec.get(cfg.provenance_col)),
        extra=json.loads(json.dumps(extra, default=str)),
        error=None if image else "missing_image_ref",
        error_detail="" if image else f"empty {cfg.image_col!r} column",
    )
