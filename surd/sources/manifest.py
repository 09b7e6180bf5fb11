"""Local manifests (JSONL, CSV/TSV, Parquet) of (complex prompt, image path or file:// URL) rows.

A local image must resolve (symlinks followed) inside the manifest's folder, or inside a folder the user names in
``allowed_roots``; any other is rejected ``outside_root`` (`surd.trust`), so a manifest from someone else cannot pull
arbitrary readable files into a dataset. Beside a manifest at a URL, relative paths cannot climb out of its prefix.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from surd import storage, trust
from surd.options import config, option
from surd.sources.rows import make_row
from surd.sources.tables import BAD, TableFile, columns, read_records, text

_COLUMNS = columns(image_col=("image", "a path or file:// URL, relative to the manifest"), prompt_col="complex_prompt",
                   negative_col="negative_prompt", simple_col="simple_prompt",
                   id_col=("source_id", "default: the image path"), source_col="source", license_col="license",
                   provenance_col="provenance")


@config
class Config(_COLUMNS, TableFile):
    """Which file to read (`TableFile`: path, format) and which columns hold what (override to match your
    manifest)."""

    WHAT: ClassVar[str] = "manifest"
    source_name: str = option("local", help='Source name when there is no source column.')
    allowed_roots: tuple[str, ...] = option((), flag="--allow-root", help="A folder local images may also lie in "
                                            "(repeatable); by default only the manifest's folder, symlinks resolved.")

    def __post_init__(self) -> None:
        super().__post_init__()  # the file and its format (TableFile)
        trust.check_roots(self.allowed_roots)


def check_columns(cfg: Config, first: dict[str, Any]) -> None:
    """Fail early, naming the option to set, when a required column is absent."""
    for opt in ("image_col", "prompt_col"):
        col = getattr(cfg, opt)
        if col not in first:
            cols = ", ".join(sorted(first))
            raise ValueError(f"column {col!r} not in {cfg.path} (columns: {cols}); "
                             f"pass --{opt.replace('_', '-')} NAME to say which column to use")


def list_rows(cfg: Config, state_dir: Path | None = None, append: bool = False) -> Iterator[dict[str, Any]]:
    """Yield one ingest row per manifest record (undecodable records become rows with an error)."""
    base = storage.parent(storage.resolve(cfg.path))
    local_base = () if storage.is_remote(base) else (base,)  # beside a remote manifest, only the user's roots
    roots = tuple(Path(r).resolve() for r in (*local_base, *cfg.allowed_roots))
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
        yield _row(cfg, rec, base, roots)


def _locate(image: str, base: str, roots: tuple[Path, ...]) -> tuple[str, trust.Refusal | None]:
    """(the reference to fetch, or why not) for a manifest's image column: local paths are checked against *roots*."""
    kind = trust.scheme(image)
    if kind in trust.CONTAINER_SCHEMES:  # zip:/tar: refs name a container file: it obeys the same roots
        inner, rest = trust.split_container(image)
        ref, refused = _locate(inner, base, roots)
        return (image, refused) if refused is not None else (f"{kind}:{ref}{rest}", None)
    if kind != "file":
        why = trust.parse_error(image)
        return image, None if why is None else trust.Refusal("bad_url", f"{image[:200]!r}: {why}")
    if "\x00" in image:
        return image, trust.Refusal("bad_file_name", f"{image[:200]!r} contains a NUL byte")
    p = Path(trust.local_path(image))
    if not p.is_absolute() and storage.is_remote(base):
        # relative to a manifest at a URL: the image is an object beside it (s3://…/images/x.jpg)
        ref = trust.inside_prefix(base, p.as_posix())
        return (image, trust.Refusal("outside_root", f"{image!r} climbs out of {base}")) if ref is None else (ref, None)
    ref = str(p if p.is_absolute() else Path(base) / p)
    return ref, trust.check_inside(ref, roots, "image")


def _row(cfg: Config, rec: dict[str, Any], base: str, roots: tuple[Path, ...]) -> dict[str, Any]:
    image = text(rec.get(cfg.image_col)) or ""
    ref, refused = _locate(image, base, roots) if image else ("", None)
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
        error=refused.reason if refused else None if image else "missing_image_ref",
        error_detail=refused.detail if refused else "" if image else f"empty {cfg.image_col!r} column",
    )
