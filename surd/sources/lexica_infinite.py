"""Lexica at volume: the cursor-paged ``POST /api/infinite-prompts`` listing the site's own search page scrolls.

Request ``{text, searchMode, source, cursor, model}`` (cursor 0 first); answer ``{prompts: [...], nextCursor}``, each
prompt ``{id, prompt, negativePrompt, seed, c (guidance), model, width, height, grid, timestamp, images: [{id,
promptid, width, height, …}]}``; some answers also list the images flat at the top level (``images: [{id, promptid,
…}]``), and then those are the page's images. The full-size JPEG of image ``id`` is ``<image_base><id>``. A missing or
falsy ``nextCursor`` (or one already sent for this query) ends a query's listing. Shapes and their sources:
tests/fixtures/lexica/PROVENANCE.md.

Every page is saved in the ingest state folder before its rows are handed on, keyed by (query, cursor), so an
interrupted listing resumes at the first unsaved page: no gap, no duplicate.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

from surd import storage
from surd.fetch.http import DownloadConfig, post_json
from surd.sources.web_state import Listing, NetworkGate, PageLog

SEARCH_MODES = ("images", "trending")
LISTING_SOURCES = ("search", "home")
ENDPOINT = "/api/infinite-prompts"


def state_query(cfg: Any) -> dict[str, Any]:
    """What the saved pages depend on: a rerun with other values refuses the old state instead of mixing them."""
    return {"base_url": cfg.base_url, "queries": list(cfg.queries), "endpoint": ENDPOINT,
            "searchMode": cfg.search_mode, "source": cfg.listing_source, "model": cfg.model}  # fmt: skip


def fetch_page(cfg: Any, query: str, cursor: Any, dl: DownloadConfig) -> dict[str, Any]:
    """One page as saved: the request's query and cursor, the answer's prompts (and flat images) and next cursor."""
    url = cfg.base_url.rstrip("/") + ENDPOINT
    body = {"text": query, "searchMode": cfg.search_mode, "source": cfg.listing_source, "cursor": cursor,
            "model": cfg.model}  # fmt: skip
    data = post_json(url, body, dl, {"Referer": f"{cfg.base_url.rstrip('/')}/?{urlencode({'q': query})}"})
    if not isinstance(data, dict) or not isinstance(data.get("prompts"), list):
        got = sorted(data)[:8] if isinstance(data, dict) else type(data).__name__
        raise RuntimeError(f"POST {url} answered without a prompts list (got {got}): the listing's shape changed")
    page = {"query": query, "cursor": cursor, "next": data.get("nextCursor"), "prompts": data["prompts"]}
    if isinstance(data.get("images"), list):
        page["images"] = data["images"]
    return page


def page_items(page: dict[str, Any], image_base: str, site: str) -> list[dict[str, Any]]:
    """The page's images as search-endpoint-shaped items (one per image, in page order) for `lexica.item_row`."""
    prompts = [p for p in page["prompts"] if isinstance(p, dict)]
    if "images" in page:  # flat images joined to their prompt by promptid
        by_id = {p.get("id"): p for p in prompts}
        pairs = [(by_id.get(i.get("promptid")), i) for i in page["images"] if isinstance(i, dict)]
    else:
        pairs = [(p, i) for p in prompts for i in p.get("images") or [] if isinstance(i, dict)]
    return [_item(prompt, image, image_base, site) for prompt, image in pairs]


def _item(prompt: dict[str, Any] | None, image: dict[str, Any], image_base: str, site: str) -> dict[str, Any]:
    """An image with no prompt on its page (an unknown promptid) keeps prompt None: a missing_prompt row."""
    p = prompt or {}
    image_id, prompt_id = image.get("id"), image.get("promptid") or p.get("id")
    return {
        "id": image_id, "src": f"{image_base}{image_id}" if image_id else "", "prompt": p.get("prompt"),
        "negativePrompt": p.get("negativePrompt"), "width": image.get("width") or p.get("width"),
        "height": image.get("height") or p.get("height"), "model": p.get("model"), "seed": p.get("seed"),
        "guidance": p.get("c"), "promptid": prompt_id, "grid": p.get("grid"),
        "nsfw": bool(p.get("nsfw") or image.get("nsfw")),
        "gallery": f"{site}/prompt/{prompt_id}" if prompt_id else None,
    }  # fmt: skip


def list_rows(cfg: Any, state_dir: str, item_row: Callable[..., dict[str, Any]],
              append: bool = False) -> Iterator[dict[str, Any]]:
    """Rows of every query in turn, each query paged by its cursor; saved pages replayed, the rest fetched. With
    `append`, a query whose listing had ended asks its last page again and goes on from there (`Listing`)."""
    log = PageLog(storage.join(state_dir, "lexica_cursor_pages.jsonl"), state_query(cfg))
    saved = log.pages()
    dl, site = DownloadConfig(**cfg.http), cfg.base_url.rstrip("/")
    budget, n = cfg.max_items or float("inf"), 0
    api = site + ENDPOINT
    online = NetworkGate("lexica", site, dl, state_dir)
    for query in cfg.queries:
        listing = Listing([p for p in saved if p["query"] == query], append, log, online)
        cursor, sent, pages, finished = 0, set(), 0, False
        while not (cfg.max_pages and pages >= cfg.max_pages):
            page = listing.step(finished, cursor, lambda at, query=query: fetch_page(cfg, query, at, dl))
            if page is None:
                break
            pages += 0 if page.get("again") else 1
            sent.add(json.dumps(page["cursor"]))
            for item in listing.new_items(page, _ident, lambda p: page_items(p, cfg.image_base, site)):
                if n >= budget:
                    return
                n += 1
                yield item_row(item, query, cfg, api=api)
            cursor = page["next"]
            finished = not cursor or json.dumps(cursor) in sent


def _ident(item: dict[str, Any]) -> str:
    return str(item.get("id"))
