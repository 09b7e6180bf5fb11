"""Lexica source: ``GET /api/v1/search?q=`` per query → rows of (full-size src, prompt, width/height, model, seed).

Each query's answer is saved in the ingest state folder once fetched, so a rerun replays finished queries and
only asks for the rest.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from surd import storage
from surd.fetch.http import DownloadConfig, get_json
from surd.sources.rows import make_row
from surd.sources.web_state import PageLog


@dataclass(frozen=True)
class Config:
    """Search queries to run against Lexica's API (each returns up to the API's page of images)."""

    queries: tuple[str, ...] = ()
    base_url: str = "https://lexica.art"
    max_items: int = 0  # 0 = everything the queries return
    include_nsfw: bool = False  # items Lexica flags nsfw become rows rejected as "nsfw" unless this is set
    http: dict[str, Any] = field(default_factory=dict)  # DownloadConfig options for the API requests

    def __post_init__(self) -> None:
        object.__setattr__(self, "queries", tuple(q.strip() for q in self.queries))
        if not self.queries or not all(self.queries):
            raise ValueError("lexica needs at least one non-empty search query: pass --query TEXT (repeatable)")
        if self.max_items < 0:
            raise ValueError("lexica max_items must be >= 0 (0 = no limit)")
        if urlsplit(self.base_url).scheme not in ("http", "https"):
            raise ValueError(f"lexica base_url must be an http(s) URL, got {self.base_url!r}")
        DownloadConfig(**self.http)


def item_row(item: dict[str, Any], query: str, cfg: Config) -> dict[str, Any]:
    """One search hit → one ingest row (no prompt or no src → a row already rejected with that reason)."""
    prompt = item.get("prompt")
    has_prompt = isinstance(prompt, str) and prompt.strip() != ""
    src = item.get("src") or ""
    error, detail = None, ""
    if not src:
        error, detail = "missing_image_ref", "the Lexica item has no src"
    elif not has_prompt:
        error, detail = "missing_prompt", "the Lexica item has no prompt"
    elif item.get("nsfw") and not cfg.include_nsfw:
        error, detail = "nsfw", "flagged nsfw by Lexica (pass include_nsfw to keep)"
    site = cfg.base_url.rstrip("/")
    extra = {"image_id": item.get("id"), "width": item.get("width"), "height": item.get("height"),
             "model": item.get("model"), "seed": item.get("seed"), "guidance": item.get("guidance"),
             "prompt_id": item.get("promptid"), "grid": item.get("grid"), "query": query}
    return make_row(
        source="lexica", source_id=str(item.get("id")), image=src, complex_prompt=prompt if has_prompt else None,
        negative_prompt=item.get("negativePrompt") or "", url=item.get("gallery") or f"{site}/prompt/{item.get('id')}",
        license="Lexica content (see the site's terms)", provenance={"api": f"{site}/api/v1/search", "query": query},
        nsfw={"nsfw": bool(item.get("nsfw"))}, extra={k: v for k, v in extra.items() if v is not None},
        error=error, error_detail=detail,
    )  # fmt: skip


def list_rows(cfg: Config, state_dir: str) -> Iterator[dict[str, Any]]:
    """Rows of every query in order; answered queries are replayed from the state folder."""
    log = PageLog(storage.join(state_dir, "lexica_pages.jsonl"), {"base_url": cfg.base_url, "queries": list(cfg.queries)})
    saved = {page["cursor"]: page["items"] for page in log.pages()}
    dl = DownloadConfig(**cfg.http)
    budget, n = cfg.max_items or float("inf"), 0
    for query in cfg.queries:
        if query not in saved:
            data = get_json(f"{cfg.base_url.rstrip('/')}/api/v1/search?{urlencode({'q': query})}", dl)
            saved[query] = [i for i in data.get("images") or [] if isinstance(i, dict)]
            log.append({"cursor": query, "next": None, "items": saved[query]})
        for item in saved[query]:
            if n >= budget:
                return
            n += 1
            yield item_row(item, query, cfg)
