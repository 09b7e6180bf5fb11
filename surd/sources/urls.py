"""URL lists: CSV/TSV/JSONL/Parquet files of (image URL, prompt) rows; img2dataset's column names are understood.

Columns are found automatically (``url``/``URL``/``image_url``... and ``caption``/``TEXT``/``prompt``...) or named
with ``url_col``/``caption_col``. Optional columns: the negative prompt, the simple prompt, the licence and the
expected ``sha256`` of the image bytes (a list written by ``surd release --mode urls``: an image whose bytes differ is
rejected ``hash_mismatch``); with ``source_col`` each row names its own source, so a released list rebuilds the same
keys. Every other column is kept in the sample json under ``extra``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from surd.sources.rows import make_row
from surd.sources.tables import BAD, check_table, read_records, text

URL_COLUMNS = ("url", "URL", "image_url", "img_url", "src", "link", "image")
CAPTION_COLUMNS = ("caption", "TEXT", "text", "prompt", "complex_prompt", "Prompt")


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
    source_col: str = ""  # "" = every row's source is source_name
    simple_col: str = "simple_prompt"
    license_col: str = "license"
    sha256_col: str = "sha256"  # the expected sha256 of the image bytes, checked on download when present

    def __post_init__(self) -> None:
        check_table(self.path, self.format, "URL list")


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


def list_rows(cfg: Config, state_dir: str | None = None) -> Iterator[dict[str, Any]]:
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
            cols = (_pick(cfg.url_col, URL_COLUMNS, names, "URL", cfg),
                    _pick(cfg.caption_col, CAPTION_COLUMNS, names, "caption", cfg))
        url, prompt = _text(rec.get(cols[0])), _text(rec.get(cols[1]))
        error = "missing_url" if not url else "missing_prompt" if not prompt else None
        used = {cols[0], cols[1], cfg.negative_col, cfg.id_col, cfg.source_col, cfg.simple_col, cfg.license_col,
                cfg.sha256_col}
        extra = _json_safe({k: v for k, v in rec.items() if k not in used and _text(v)})
        row = make_row(
            source=_text(rec.get(cfg.source_col)) if cfg.source_col else cfg.source_name,
            source_id=_text(rec.get(cfg.id_col) if cfg.id_col else "") or url or f"{cfg.path}#{i}",
            image=url, complex_prompt=prompt or None, negative_prompt=_text(rec.get(cfg.negative_col)), url=url,
            simple_prompt=_text(rec.get(cfg.simple_col)) or None, license=_text(rec.get(cfg.license_col)),
            provenance={"list": str(cfg.path), "row": i}, extra=extra, error=error,
            error_detail="" if error is None else f"row {i}: empty {cols[0] if not url else cols[1]!r}",
        )  # fmt: skip
        if cfg.source_col and not row["source"] and error is None:
            row["error"], row["error_detail"] = "missing_source", f"row {i}: empty {cfg.source_col!r}"
        expected = _text(rec.get(cfg.sha256_col)).lower()
        if expected:
            row["expected_sha256"] = expected
        yield row
