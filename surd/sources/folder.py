"""Image folders described by metadata files: the official SUR-adapter layouts, Hugging Face imagefolder, surd's export.

Every ``metadata.jsonl`` / ``metadata.csv`` / ``metadata.parquet`` under the folder is read (split folders such as
``train/`` and ``test/`` each hold their own; nested folders too). A row's ``file_name`` is found, in this order:
1. the exact path relative to its metadata file (the Hugging Face imagefolder rule);
2. otherwise the name, with or without one of the image extensions (png, jpg, jpeg, webp, any case), beside the
   metadata, in an ``image/`` or ``images/`` folder there, or in ``image/`` / ``images/`` one level up (the official
   ``data_collect`` layout: ``data/metadata.jsonl`` + ``image/<name>.png``). One file must match: two are
   ``ambiguous_file``, none is ``missing_file`` (the detail names the folders searched).
A found file must resolve (symlinks followed) inside the folder, or inside a folder named in ``allowed_roots``:
otherwise the row is ``outside_root`` (`surd.trust.check_inside`).
Columns: ``text`` = simple prompt, ``prompt`` = complex prompt (the official names), plus surd's export columns
(negative_prompt, source, source_id, license, provenance); any other column is kept under ``extra``.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from surd import trust
from surd.options import config, option
from surd.sources.rows import make_row
from surd.sources.tables import BAD, columns, read_records, text

METADATA_NAMES = ("metadata.jsonl", "metadata.csv", "metadata.parquet")
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp")
IMAGE_DIRS = ("image", "images")
# Hugging Face's split keywords (datasets.data_files.SPLIT_KEYWORDS): a folder named so (or "train-2", ...) is a split.
SPLITS = {"train": ("train", "training"), "validation": ("validation", "valid", "dev", "val"),
          "test": ("test", "testing", "eval", "evaluation")}
_SPLIT_DIR = re.compile(r"^([a-z]+)(?:[-._ 0-9].*)?$")


_COLUMNS = columns(image_col=("file_name", "its file name"), prompt_col="prompt",
                   simple_col=("text", "the BLIP caption"), negative_col="negative_prompt",
                   id_col=("source_id", "default: the image's path relative to the folder"), source_col="source",
                   license_col="license", provenance_col="provenance")


@config
class Config(_COLUMNS):
    """The folder and which metadata columns hold what (the defaults are the official and imagefolder names)."""

    path: str = option("", help='Folder of images + metadata.jsonl/.csv (file_name, text, prompt).', cli=False)
    source_name: str = option("surd", help='Source name when the metadata has no source column.')
    allowed_roots: tuple[str, ...] = option((), flag="--allow-root", help="A folder images may also resolve into "
                                            "(repeatable); by default only this folder, symlinks resolved.")

    def __post_init__(self) -> None:
        trust.check_roots(self.allowed_roots)
        if not Path(self.path).is_dir():
            raise FileNotFoundError(f"folder {self.path} not found: pass the folder that holds the images and "
                                    f"{' / '.join(METADATA_NAMES)}")
        if not metadata_files(self.path):
            raise FileNotFoundError(
                f"no {' or '.join(METADATA_NAMES)} under {self.path}: surd reads folders of images described by "
                "one (the official SUR-adapter layout: file_name, text = simple prompt, prompt = complex prompt; "
                "Hugging Face imagefolder; `surd export imagefolder`); for a plain list use `surd ingest manifest`")


def metadata_files(root: str | os.PathLike) -> list[Path]:
    """Every metadata file under *root*, in path order (hidden folders skipped)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        names = [n for n in METADATA_NAMES if n in filenames]
        if len(names) > 1:
            raise ValueError(f"{dirpath} holds both {' and '.join(names)}: keep one, so no row is read twice")
        found += [Path(dirpath) / n for n in names]
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def split_of(rel_dir: str) -> str | None:
    """The split a metadata folder belongs to, by Hugging Face's folder-name keywords (None: no split)."""
    for part in reversed(rel_dir.split("/")):
        m = _SPLIT_DIR.match(part.lower())
        for split, words in SPLITS.items():
            if m and m.group(1) in words:
                return split
    return None


@lru_cache(maxsize=4096)
def _listing(directory: str) -> tuple[frozenset[str], dict[str, tuple[str, ...]]]:
    """(file names, name without image extension → file names) of one folder, read once."""
    try:
        names = frozenset(e.name for e in os.scandir(directory) if e.is_file())
    except OSError:
        return frozenset(), {}
    stems: dict[str, list[str]] = {}
    for n in names:
        stem, ext = os.path.splitext(n)
        if ext.lower() in IMAGE_EXTS:
            stems.setdefault(stem, []).append(n)
    return names, {k: tuple(sorted(v)) for k, v in stems.items()}


def search_dirs(meta_dir: Path, root: Path) -> list[Path]:
    """Where a name that is not an exact path is looked for, nearest first (never above *root*)."""
    dirs = [meta_dir, *(meta_dir / d for d in IMAGE_DIRS)]
    if meta_dir != root:
        dirs += [meta_dir.parent / d for d in IMAGE_DIRS]
    return dirs


def find_image(name: str, meta_dir: Path, root: Path) -> tuple[Path | None, str, str]:
    """(path, error reason, detail) for one ``file_name``; exactly one of path / reason is set."""
    rel = posixpath.normpath(name.replace("\\", "/"))
    if not name.strip() or "://" in name or posixpath.isabs(rel) or rel == ".." or rel.startswith("../"):
        return None, "bad_file_name", f"file_name {name!r} must be a relative path inside the folder (no '..', no leading '/', no URL)"
    if (meta_dir / rel).is_file():
        return meta_dir / rel, "", ""
    sub, base = posixpath.split(rel)
    matches: list[Path] = []
    for d in search_dirs(meta_dir, root):
        folder = d / sub if sub else d
        names, stems = _listing(str(folder))
        matches += [folder / n for n in ((base,) if base in names else ()) + stems.get(base, ())]
    matches = sorted(set(matches))
    where = ", ".join(str(d.relative_to(root)) + "/" for d in search_dirs(meta_dir, root))
    if len(matches) > 1:
        shown = ", ".join(m.relative_to(root).as_posix() for m in matches)
        return None, "ambiguous_file", f"{name!r} matches {len(matches)} files ({shown}): rename one or name it exactly"
    if not matches:
        return None, "missing_file", f"{name!r} not found as is or as {'/'.join(IMAGE_EXTS)} in {where}"
    return matches[0], "", ""


def _check_columns(cfg: Config, rec: dict[str, Any], meta: Path) -> None:
    for opt in ("image_col", "prompt_col"):
        if getattr(cfg, opt) not in rec:
            raise ValueError(f"column {getattr(cfg, opt)!r} not in {meta} (columns: {', '.join(sorted(rec))}); "
                             f"pass --{opt.replace('_', '-')} NAME to say which column to use")


def _provenance(value: Any, default: dict[str, Any]) -> Any:
    """surd's export writes provenance as a JSON string (a stable column type for every reader): decode it."""
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value if value not in (None, "") else default


def _row(cfg: Config, rec: dict[str, Any], meta: Path, root: Path, roots: tuple[Path, ...]) -> dict[str, Any]:
    name = text(rec.get(cfg.image_col)) or ""
    rel_dir = meta.parent.relative_to(root).as_posix()
    listed = posixpath.normpath(posixpath.join(rel_dir, name.replace("\\", "/"))) if name else ""
    path, error, detail = find_image(name, meta.parent, root) if name else (None, "missing_image_ref",
                                                                           f"empty {cfg.image_col!r} column")
    refused = trust.check_inside(path, roots, "image") if path else None
    if refused is not None:
        path, error, detail = None, refused.reason, refused.detail
    known = {cfg.image_col, cfg.prompt_col, cfg.negative_col, cfg.simple_col, cfg.id_col, cfg.source_col,
             cfg.license_col, cfg.provenance_col, "key"}  # key: surd's export; recomputed from (source, source_id)
    extra = {k: v for k, v in rec.items() if k not in known and text(v) not in (None, "")}
    split = split_of(rel_dir)
    if split:
        extra.setdefault("split", split)
    default_prov = {"folder": root.name, "metadata": meta.relative_to(root).as_posix()}
    return make_row(
        source=text(rec.get(cfg.source_col)) or cfg.source_name,
        source_id=text(rec.get(cfg.id_col)) or listed,
        image=str(path) if path else "",
        complex_prompt=text(rec.get(cfg.prompt_col)),
        negative_prompt=text(rec.get(cfg.negative_col)),
        simple_prompt=text(rec.get(cfg.simple_col)) or None,  # "" (an export of an uncaptioned stage) = none yet
        license=text(rec.get(cfg.license_col)) or "",
        provenance=_provenance(rec.get(cfg.provenance_col), default_prov),
        extra=json.loads(json.dumps(extra, default=str)),
        error=error or None, error_detail=detail,
    )


def list_rows(cfg: Config, state_dir: Path | None = None, append: bool = False) -> Iterator[dict[str, Any]]:
    """One row per metadata record, metadata files in path order; unusable records are rows with a reason."""
    root = Path(cfg.path).resolve()
    roots = trust.roots_of(root, cfg.allowed_roots)
    _listing.cache_clear()  # a rerun must see files added since
    for meta in metadata_files(root):
        checked = False
        for rec in read_records(meta, "auto"):
            if BAD in rec:
                digest, reason, detail = rec[BAD]
                yield make_row(source=cfg.source_name, source_id=f"row-sha1:{digest}", image="",
                               complex_prompt=None, error=reason, error_detail=f"{meta.relative_to(root)}: {detail}")
                continue
            if not checked:
                _check_columns(cfg, rec, meta)
                checked = True
            yield _row(cfg, rec, meta, root, roots)
