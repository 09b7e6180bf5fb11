"""Lexica source: ``GET /api/v1/search?q=`` per query → rows of (full-size src, prompt, width/height, model, seed).

The search endpoint answers at most 50 images per query and has no cursor: right for small queries. ``mode="cursor"``
pages through ``POST /api/infinite-prompts`` instead (`surd.sources.lexica_infinite`), the listing that collects a
dataset. Either way every answer is saved in the ingest state folder once fetched, so a rerun replays what was
listed and only asks for the rest.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields
from typing import Any
from urllib.parse import urlencode, urlsplit

from surd import storage
from surd.fetch.http import DownloadConfig, get_json
from surd.options import config, option
from surd.sources import lexica_infinite
from surd.sources.rows import web_row
from surd.sources.web_state import NetworkGate, PageLog

MODES = ("search", "cursor")


CURSOR_ONLY = ("max_pages", "search_mode", "listing_source", "model", "image_base")


USES_NETWORK = True  # `surd ingest lexica` takes the download options


@config
class Config:
    """Search queries to run against Lexica's API (each returns up to the API's page of images)."""

    queries: tuple[str, ...] = option((), help='Search query, repeatable.', flag="--query", short="-q")
    base_url: str = option("https://lexica.art", help='API root (a mirror or a test server).')
    max_items: int = option(0, help='Stop listing after this many items (0 = all).', ge=0)
    include_nsfw: bool = option(False, help='Keep items Lexica flags nsfw (rejected as nsfw otherwise).')
    http: dict[str, Any] = option(default_factory=dict, cli=False,
                                 help='DownloadConfig options for the API requests (the command fills it from its download options).')
    mode: str = option("search", choices=("search", "cursor"),
                      help='search: /api/v1/search (<= 50 images a query); cursor: the paged /api/infinite-prompts listing, resumable (for a dataset).')
    max_pages: int = option(0, help='Cursor mode: pages per query (0 = until the listing ends).', ge=0)
    search_mode: str = option("images", choices=("images", "trending"),
                             help='Cursor mode: searchMode sent (images or trending).')
    listing_source: str = option("search", choices=("search", "home"),
                                help="Cursor mode: the request's source (search or home).")
    model: str = option("lexica-aperture-v2", help='Cursor mode: model filter sent.')
    image_base: str = option("https://image.lexica.art/full_jpg/",
                            help='Cursor mode: full-size image URL prefix (+ image id).')

    def __post_init__(self) -> None:
        object.__setattr__(self, "queries", tuple(q.strip() for q in self.queries))
        if not self.queries or not all(self.queries):
            raise ValueError("lexica needs at least one non-empty search query: pass --query TEXT (repeatable)")
        if self.max_items < 0:
            raise ValueError("lexica max_items must be >= 0 (0 = no limit)")
        if urlsplit(self.base_url).scheme not in ("http", "https"):
            raise ValueError(f"lexica base_url must be an http(s) URL, got {self.base_url!r}")
        checks = [
            (self.mode in MODES, f"lexica mode must be one of {', '.join(MODES)}, got {self.mode!r}"),
            (self.max_pages >= 0, "lexica max_pages must be >= 0 (0 = no limit)"),
            (self.search_mode in lexica_infinite.SEARCH_MODES,
             f"lexica search_mode must be one of {', '.join(lexica_infinite.SEARCH_MODES)}, got {self.search_mode!r}"),
            (self.listing_source in lexica_infinite.LISTING_SOURCES, f"lexica listing_source must be one of "
             f"{', '.join(lexica_infinite.LISTING_SOURCES)}, got {self.listing_source!r}"),
            (urlsplit(self.image_base).scheme in ("http", "https"),
             f"lexica image_base must be an http(s) URL prefix, got {self.image_base!r}"),
        ]  # fmt: skip
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        DownloadConfig(**self.http)
        cursor_only = [f.name for f in fields(self) if f.name in CURSOR_ONLY and getattr(self, f.name) != f.default]
        if self.mode == "search" and cursor_only:
            raise ValueError(f"lexica {', '.join(cursor_only)} apply to the cursor listing only: set mode cursor "
                             "(--mode cursor) or leave them out")


def item_row(item: dict[str, Any], query: str, cfg: Config, api: str = "") -> dict[str, Any]:
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
    return web_row(
        source="lexica", source_id=str(item.get("id")), image=src, complex_prompt=prompt if has_prompt else None,
        negative_prompt=item.get("negativePrompt") or "", url=item.get("gallery") or f"{site}/prompt/{item.get('id')}",
        license="Lexica content (see the site's terms)",
        provenance={"api": api or f"{site}/api/v1/search", "query": query},
        nsfw={"nsfw": bool(item.get("nsfw"))}, extra={k: v for k, v in extra.items() if v is not None},
        error=error, error_detail=detail,
    )  # fmt: skip


def list_rows(cfg: Config, state_dir: str, append: bool = False) -> Iterator[dict[str, Any]]:
    """Rows of every query in order; answered queries (cursor mode: pages) are replayed from the state folder. With
    `append`, every query is asked again and the images its earlier answers did not hold are added after them."""
    if cfg.mode == "cursor":
        yield from lexica_infinite.list_rows(cfg, state_dir, item_row, append=append)
        return
    log = PageLog(storage.join(state_dir, "lexica_pages.jsonl"),
                  {"base_url": cfg.base_url, "queries": list(cfg.queries)})
    saved: dict[str, list[dict[str, Any]]] = {}  # query → its answers in order (the first, then each asked again)
    for page in log.pages():
        saved.setdefault(page["cursor"], []).append(page)
    dl = DownloadConfig(**cfg.http)
    budget, n = cfg.max_items or float("inf"), 0
    online = NetworkGate("lexica", cfg.base_url, dl, state_dir)
    for query in cfg.queries:
        answers = saved.setdefault(query, [])
        if not answers or append:
            online.check()
            data = get_json(f"{cfg.base_url.rstrip('/')}/api/v1/search?{urlencode({'q': query})}", dl)
            page = {"cursor": query, "next": None, "items": [i for i in data.get("images") or [] if isinstance(i, dict)]}
            log.append({**page, "again": True} if answers else page)
            answers.append(page)
        seen: set[str] = set()
        for i, page in enumerate(answers):
            items = page["items"] if i == 0 else [item for item in page["items"] if str(item.get("id")) not in seen]
            seen.update(str(item.get("id")) for item in page["items"])
            for item in items:
                if n >= budget:
                    return
                n += 1
                yield item_row(item, query, cfg)
