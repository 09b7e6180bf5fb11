"""URL lists: CSV/TSV/JSONL/Parquet files of (image URL, prompt) rows; img2dataset's column names are understood.

Columns are found automatically (``url``/``URL``/``image_url``... and ``caption``/``TEXT``/``prompt``...) or named
with ``url_col``/``caption_col``. Optional columns: the negative prompt, the simple prompt, the licence and the
expected ``sha256`` of the image bytes (a list written by ``surd release --mode urls``: an image whose bytes differ is
rejected ``hash_mismatch``); with ``source_col`` each row names its own source, so a released list rebuilds the same
keys. Every other column is kept in the sample json under ``extra``.

Only ``http(s)://`` URLs are fetched (through the SSRF guard) unless the user opts in: a list from someone else must
not pull local files (``allow_local_files``) or objects readable with the user's credentials (``allow_object_store``)
into a dataset. Each refused or unparseable URL is its own rejected row (`surd.trust.check_ref`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, ClassVar

from surd import storage
from surd.options import config, option
from surd.sources.rows import make_row
from surd.sources.tables import BAD, TableFile, columns, read_records, text
from surd.trust import check_ref

URL_COLUMNS = ("url", "URL", "image_url", "img_url", "src", "link", "image")
CAPTION_COLUMNS = ("caption", "TEXT", "text", "prompt", "complex_prompt", "Prompt")


USES_NETWORK = True  # `surd ingest urls` takes the download options


_COLUMNS = columns(url_col=("", "default: url, URL, image_url, src, ..."),
                   caption_col=("", "default: caption, TEXT, text, prompt, ..."), negative_col="negative_prompt",
                   id_col=("", "default: the URL"), simple_col="simple_prompt", license_col="license")


@config
class Config(_COLUMNS, TableFile):
    """The list file (`TableFile`: path, format; img2dataset's input lists work as they are) and which of its
    columns hold the URL, prompt, negative prompt and id."""

    WHAT: ClassVar[str] = "URL list"
    source_name: str = option("urls", help='Source name recorded in each sample.')
    source_col: str = option("", help="Column naming each row's source ('' = every row's source is --source-name); a "
                             "list written by surd release rebuilds the same keys with it.")
    sha256_col: str = option("sha256", help="Column with the expected sha256 of the image bytes, checked on download "
                             "(hash_mismatch) when present.")
    allow_local_files: bool = option(False, help="Also fetch plain paths, file:// and zip:// URLs (only for a list you "
                                     "wrote: without it they are rejected local_file_refused).")
    allow_object_store: bool = option(False, help="Also fetch s3://, gs://, hf://, ... URLs with your storage "
                                      "credentials (without it they are rejected object_store_refused).")


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
    return (text(v) or "").strip()


_PLAIN = (str, int, float, bool)


def _json_safe(extra: dict[str, Any]) -> dict[str, Any]:
    """Extra columns as json values (dates, bytes, decimals → str); plain values skip the round trip (it is a fifth
    of the planning time of a 10M-row list)."""
    if all(type(v) in _PLAIN for v in extra.values()):
        return extra
    return json.loads(json.dumps(extra, default=str))


def _refuse_img2dataset_output(cfg: Config, columns: list[str]) -> None:
    """img2dataset's per-shard parquet (key, status, error_message) beside its tar lists images already downloaded:
    read as a URL list it would download them all again."""
    path = str(cfg.path)
    if {"key", "status", "error_message"} <= set(columns) and path.endswith(".parquet"):
        tar = path[: -len(".parquet")] + ".tar"
        if storage.exists(tar):
            raise ValueError(f"{path} is img2dataset's output (its images are in {tar}), not a URL list: "
                             f"`surd ingest webdataset {storage.parent(tar)}` reads them without downloading again")


def list_rows(cfg: Config, state_dir: str | None = None, append: bool = False) -> Iterator[dict[str, Any]]:
    """One row per record; a record without URL or prompt is a row rejected with that reason."""
    cols: tuple[str, str] | None = None
    for i, rec in enumerate(read_records(cfg.path, cfg.format)):
        if BAD in rec:
            digest, reason, detail = rec[BAD]
            yield make_row(source=cfg.source_name, source_id=f"row-sha1:{digest}", image="", complex_prompt=None,
                           error=reason, error_detail=detail)
            continue
        if cols is None:
            names = list(rec)
            _refuse_img2dataset_output(cfg, names)
            cols = (_pick(cfg.url_col, URL_COLUMNS, names, "URL", cfg),
                    _pick(cfg.caption_col, CAPTION_COLUMNS, names, "caption", cfg))
        url, prompt = _text(rec.get(cols[0])), _text(rec.get(cols[1]))
        error = "missing_url" if not url else "missing_prompt" if not prompt else None
        detail = "" if error is None else f"row {i}: empty {cols[0] if not url else cols[1]!r}"
        refused = check_ref(url, allow_local_files=cfg.allow_local_files,
                            allow_object_store=cfg.allow_object_store) if url else None
        if refused is not None:
            error, detail = refused.reason, f"row {i}: {refused.detail}"
        used = {cols[0], cols[1], cfg.negative_col, cfg.id_col, cfg.source_col, cfg.simple_col, cfg.license_col,
                cfg.sha256_col}
        extra = _json_safe({k: v for k, v in rec.items() if k not in used and _text(v)})
        row = make_row(
            source=_text(rec.get(cfg.source_col)) if cfg.source_col else cfg.source_name,
            source_id=_text(rec.get(cfg.id_col) if cfg.id_col else "") or url or f"{cfg.path}#{i}",
            image=url, complex_prompt=prompt or None, negative_prompt=_text(rec.get(cfg.negative_col)), url=url,
            simple_prompt=_text(rec.get(cfg.simple_col)) or None, license=_text(rec.get(cfg.license_col)),
            provenance={"list": str(cfg.path), "row": i}, extra=extra, error=error, error_detail=detail,
        )  # fmt: skip
        if cfg.source_col and not row["source"] and error is None:
            row["error"], row["error_detail"] = "missing_source", f"row {i}: empty {cfg.source_col!r}"
        expected = _text(rec.get(cfg.sha256_col)).lower()
        if expected:
            row["expected_sha256"] = expected
        yield row
