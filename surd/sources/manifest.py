"""Local manifests (JSONL, CSV/TSV, Parquet) of (complex prompt, image path or file:// URL) rows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from surd import storage
from surd.fetch import local_path, scheme_of
from surd.options import config, option
from surd.sources.rows import make_row
from surd.sources.tables import BAD, TableFile, read_records, text


@config
class Config(TableFile):
    """Which file to read (`TableFile`: path, format) and which columns hold what (override to match your
    manifest)."""

    WHAT: ClassVar[str] = "manifest"
    image_col: str = option("image", help='Column with the image path or file:// URL (relative to the manifest).')
    prompt_col: str = option("complex_prompt", help='Column with the complex (keyword) prompt.')
    negative_col: str = option("negative_prompt", help='Column with the negative prompt (optional).')
    simple_col: str = option("simple_prompt", help='Column with a simple prompt, if you already have one.')
    id_col: str = option("source_id", help='Column with a stable id (default: the image path).')
    source_col: str = option("source", help="Column naming each row's source (optional).")
    license_col: str = option("license", help="Column with each row's license (optional).")
    provenance_col: str = option("provenance", help="Column with each row's provenance (optional).")
    source_name: str = option("local", help='Source name when there is no source column.')


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
    base = storage.parent(storage.resolve(cfg.path))
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


def _row(cfg: Config, rec: dict[str, Any], base: str) -> dict[str, Any]:
    image = text(rec.get(cfg.image_col)) or ""
    ref = image
    if image and scheme_of(image) == "file":
        p = Path(local_path(image))
        # relative to the manifest, which may itself be at a URL (then so is the image: s3://…/images/x.jpg)
        ref = str(p) if p.is_absolute() else storage.join(base, p.as_posix()) if storage.is_remote(base) else str(
            Path(base) / p)
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
