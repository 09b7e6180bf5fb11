"""Civitai source: ``GET /api/v1/images`` with cursor pagination → rows of (full-size image URL, prompt, metadata).

Pages come through the guarded downloader (SSRF guard, retries, rate limit) and are saved in the ingest state
folder as they arrive, so an interrupted listing resumes from the saved cursor with no duplicate and no gap.
The optional API token is read from an environment variable and only ever sent as a header, never logged.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from surd import storage
from surd.fetch.http import DownloadConfig, get_json
from surd.options import config, option
from surd.sources.civitai_shapes import read_item
from surd.sources.rows import web_row
from surd.sources.web_state import Listing, NetworkGate, PageLog

SORTS = ("Most Reactions", "Most Comments", "Most Collected", "Newest", "Oldest")
PERIODS = ("AllTime", "Year", "Month", "Week", "Day")
NSFW_LEVELS = ("", "None", "Soft", "Mature", "X", "true", "false")
MAX_LIMIT = 200  # the API refuses larger pages
MAX_EMPTY_PAGES = 5  # consecutive empty pages (each with a next cursor) before the listing is taken as finished


USES_NETWORK = True  # `surd ingest civitai` takes the download options


@config
class Config:
    """Which Civitai images to list. Filters map one-to-one to the API's query parameters."""

    base_url: str = option("https://civitai.com", help='API root (a mirror or a test server).')
    limit: int = option(MAX_LIMIT, help='Items per API page (at most 200).', ge=1, le=MAX_LIMIT)
    max_items: int = option(0, help='Stop listing after this many items (0 = all).', ge=0)
    model_id: int | None = option(None, help='Only images made with this model.')
    model_version_id: int | None = option(None, help='Only images made with this model version.')
    username: str = option("", help="Only this user's images.")
    base_models: tuple[str, ...] = option((), flag="--base-model",
                                         help="Base model filter, repeatable (e.g. 'SD 1.5').")
    period: str = option("AllTime", help='Time window of the listing.', choices=PERIODS)
    sort: str = option("Most Reactions", help='Listing order.', choices=SORTS)
    nsfw: str = option("", choices=NSFW_LEVELS,
                      help='NSFW level: None, Soft, Mature, X, true, false (empty = the API default).')
    browsing_level: int | None = option(None, ge=1, le=31,
                                       help='Browsing level flags: 1 PG, 2 PG-13, 4 R, 8 X, 16 XXX (summed).')
    original: bool = option(True, help='Download the original upload, not the resized /width=N/ rendition.')
    token_env: str = option("CIVITAI_API_TOKEN", help='Environment variable with your API token (optional).')
    http: dict[str, Any] = option(default_factory=dict, cli=False,
                                 help='DownloadConfig options for the API requests (the command fills it from its download options).')

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_models", tuple(self.base_models))
        object.__setattr__(self, "nsfw", str(self.nsfw))
        if not 1 <= self.limit <= MAX_LIMIT:
            raise ValueError(f"civitai limit must be 1..{MAX_LIMIT} items per page, got {self.limit}")
        if self.max_items < 0:
            raise ValueError("civitai max_items must be >= 0 (0 = no limit)")
        if self.sort not in SORTS:
            raise ValueError(f"civitai sort must be one of {', '.join(SORTS)}; got {self.sort!r}")
        if self.period not in PERIODS:
            raise ValueError(f"civitai period must be one of {', '.join(PERIODS)}; got {self.period!r}")
        if self.nsfw not in NSFW_LEVELS:
            raise ValueError(f"civitai nsfw must be one of {', '.join(repr(x) for x in NSFW_LEVELS)}; got {self.nsfw!r}")
        if self.browsing_level is not None and not 1 <= self.browsing_level <= 31:
            raise ValueError("civitai browsing_level is a sum of flags 1 (PG) 2 (PG-13) 4 (R) 8 (X) 16 (XXX): 1..31")
        if urlsplit(self.base_url).scheme not in ("http", "https"):
            raise ValueError(f"civitai base_url must be an http(s) URL, got {self.base_url!r}")
        DownloadConfig(**self.http)

    def query(self) -> dict[str, Any]:
        """The API query parameters (without the cursor)."""
        q: dict[str, Any] = {"limit": self.limit, "withMeta": "true", "sort": self.sort, "period": self.period}
        optional = {"modelId": self.model_id, "modelVersionId": self.model_version_id, "username": self.username,
                    "nsfw": self.nsfw, "browsingLevel": self.browsing_level}
        q.update({k: v for k, v in optional.items() if v not in (None, "")})
        if self.base_models:
            q["baseModels"] = ",".join(self.base_models)
        return q


def full_size_url(url: str) -> str:
    """Civitai serves renditions at ``.../<uuid>/width=450/<name>``; ``original=true`` in that place is the upload."""
    parts = urlsplit(url)
    segments = parts.path.split("/")
    for i, seg in enumerate(segments):
        options = seg.split(",")
        if any(o.startswith(("width=", "height=", "original=")) for o in options):
            segments[i] = "original=true"
            return urlunsplit(parts._replace(path="/".join(segments)))
    if len(segments) >= 3:  # no transform segment: put one before the file name
        segments.insert(len(segments) - 1, "original=true")
    return urlunsplit(parts._replace(path="/".join(segments)))


def item_row(item: dict[str, Any], cfg: Config) -> dict[str, Any]:
    """One API item → one ingest row; an unusable item (no prompt, a video, …) is a row rejected with its reason."""
    view = read_item(item)
    meta = view.meta
    stats_keys = ("seed", "steps", "cfgScale", "sampler", "clipSkip", "Size")
    extra = {
        "image_id": item.get("id"), "width": item.get("width"), "height": item.get("height"),
        "model": meta.get("Model"), "model_hash": meta.get("Model hash"), "base_model": item.get("baseModel"),
        "username": item.get("username"), "post_id": item.get("postId"), "created_at": item.get("createdAt"),
        "hash": item.get("hash"), **{k: meta.get(k) for k in stats_keys},
    }  # fmt: skip
    url = item.get("url") if isinstance(item.get("url"), str) else ""
    image = full_size_url(url) if cfg.original and url else url
    site = cfg.base_url.rstrip("/")
    negative = meta.get("negativePrompt")
    return web_row(
        source="civitai", source_id=str(item.get("id")), image=image, complex_prompt=view.prompt,
        negative_prompt=negative if isinstance(negative, str) else "",
        url=f"{site}/images/{item.get('id')}", license="Civitai user content (see the site's terms)",
        provenance={"api": f"{site}/api/v1/images", "image_url": item.get("url")},
        nsfw=view.nsfw, extra={k: v for k, v in {**extra, "media_type": view.media_type}.items() if v is not None},
        error=view.error, error_detail=view.detail,
    )  # fmt: skip


def _headers(cfg: Config) -> dict[str, str]:
    token = os.environ.get(cfg.token_env, "").strip() if cfg.token_env else ""
    return {"Authorization": f"Bearer {token}"} if token else {}


def _ends(page: dict[str, Any], sent: set[Any], empty_run: int) -> bool:
    """Whether the listing ends after *page*: no next cursor (null or ""), a cursor already sent (a server that
    pages in a circle), or MAX_EMPTY_PAGES empty pages in a row. Civitai filters after paging, so one empty page
    with a cursor is not the end."""
    nxt = page["next"]
    return nxt is None or nxt == "" or nxt in sent or empty_run >= MAX_EMPTY_PAGES


def _fetch_page(cfg: Config, cursor: Any, dl: DownloadConfig, headers: dict[str, str]) -> dict[str, Any]:
    params = {**cfg.query(), **({"cursor": cursor} if cursor is not None else {})}
    url = f"{cfg.base_url.rstrip('/')}/api/v1/images?{urlencode(params)}"
    data = get_json(url, dl, headers)
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        got = sorted(data)[:8] if isinstance(data, dict) else type(data).__name__
        raise RuntimeError(f"GET {url} answered without an items list (got {got}): the API shape changed")
    nxt = (data.get("metadata") or {}).get("nextCursor")
    return {"cursor": cursor, "next": nxt, "items": [i for i in data["items"] if isinstance(i, dict)]}


def list_rows(cfg: Config, state_dir: str, append: bool = False) -> Iterator[dict[str, Any]]:
    """Replay the saved pages, then fetch the rest from the saved cursor, saving each page before yielding it.

    Cursors are opaque (Civitai sends strings such as ``"123|1700000000000"``, older answers numbers): sent back
    exactly as received, URL-encoded. With `append`, a listing that had ended asks its last page again (its end
    may have grown) and follows the cursors from there: the items that page did not hold before are new
    (`web_state.asked_again`). Civitai's ``Oldest`` order grows at its end; in the other orders new images appear
    elsewhere, where an append does not look.
    """
    log = PageLog(storage.join(state_dir, "civitai_pages.jsonl"), {"base_url": cfg.base_url, **cfg.query()})
    budget = cfg.max_items or float("inf")
    cursor, finished, n, sent, empty_run = None, False, 0, set(), 0
    dl, headers = DownloadConfig(**cfg.http), _headers(cfg)
    online = NetworkGate("civitai", cfg.base_url, dl, state_dir)
    listing = Listing(log.pages(), append, log, online)
    while n < budget:
        page = listing.step(finished, cursor, lambda at: _fetch_page(cfg, at, dl, headers))
        if page is None:
            return
        items = listing.new_items(page, lambda item: str(item.get("id")))
        for item in items:
            if n >= budget:
                return
            n += 1
            yield item_row(item, cfg)
        sent.add(page["cursor"])
        empty_run = 0 if items else empty_run + 1
        cursor, finished = page["next"], _ends(page, sent, empty_run)
