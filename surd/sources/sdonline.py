"""Stable Diffusion Online source: ``/prompts/<keyword>`` listings → ``/image/<id>-<slug>`` detail pages → rows.

The site has no prompt API, so its HTML is parsed (`surd.sources.sdonline_html`). Each detail page gives the prompt
twice, in the visible "Prompt:" block and in the "Open in editor" link's query string; one is checked against the
other (``prompt_mismatch`` when they disagree). Listing pages are followed by their next link. Every listing page
and every usable or permanently unusable detail page is saved under the ingest state folder before its rows are
handed on, so an interrupted listing resumes where it stopped: no gap, no duplicate. Pages come through the guarded
client (SSRF guard, TLS, retries, rate limit, robots.txt).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from surd import storage
from surd.fetch.http import DownloadConfig, client_for
from surd.fetch.result import FetchError
from surd.options import config, option
from surd.sources.rows import web_row
from surd.sources.sdonline_html import clean_prompt, parse_detail, parse_listing
from surd.sources.web_state import Listing, NetworkGate, PageLog

TRANSIENT = ("http_5xx_exhausted", "http_429_exhausted", "http_408_exhausted", "timeout", "connection_error",
             "robots_unreachable")  # fmt: skip  # worth a rerun: the run stops and resumes, nothing is rejected
LICENSE = "Stable Diffusion Online user content (see stablediffusionweb.com's terms)"


USES_NETWORK = True  # `surd ingest sdonline` takes the download options


@config
class Config:
    """Which prompt-gallery keywords to list (each is the listing ``/prompts/<keyword>``)."""

    keywords: tuple[str, ...] = option((), flag="--keyword", short="-k",
                                      help="Prompt-gallery keyword, repeatable: lists /prompts/<keyword> (e.g. 'ui design').")
    base_url: str = option("https://stablediffusionweb.com", help='Site root (a mirror or a test server).')
    max_items: int = option(0, help='Stop listing after this many items (0 = all).', ge=0)
    max_pages: int = option(0, help='Listing pages per keyword (0 = follow the next links to the end).', ge=0)
    http: dict[str, Any] = option(default_factory=dict, cli=False,
                                 help='DownloadConfig options for the page requests (the command fills it from its download options).')

    def __post_init__(self) -> None:
        object.__setattr__(self, "keywords", tuple(slug(k) for k in self.keywords))
        if not self.keywords or not all(self.keywords):
            raise ValueError("sdonline needs at least one keyword: pass --keyword TEXT (repeatable), e.g. 'ui design'")
        if self.max_items < 0 or self.max_pages < 0:
            raise ValueError("sdonline max_items and max_pages must be >= 0 (0 = no limit)")
        if urlsplit(self.base_url).scheme not in ("http", "https"):
            raise ValueError(f"sdonline base_url must be an http(s) URL, got {self.base_url!r}")
        DownloadConfig(**self.http)


def slug(keyword: str) -> str:
    """The site's listing slug: "UI Design" → "ui-design"."""
    return re.sub(r"[^a-z0-9]+", "-", keyword.strip().lower()).strip("-")


def _fetch(url: str, dl: DownloadConfig) -> bytes | FetchError:
    return client_for(dl).fetch(url, {"Accept": "text/html,application/xhtml+xml"}, kind="data")


def _fail(url: str, error: FetchError, what: str) -> RuntimeError:
    hint = " (pass --ignore-robots to override)" if error.reason.startswith("robots_") else ""
    return RuntimeError(f"{what} {url} could not be fetched: {error.reason}: {error.detail}{hint}; rerun to resume")


def fetch_listing(url: str, keyword: str, dl: DownloadConfig) -> dict[str, Any]:
    body = _fetch(url, dl)
    if isinstance(body, FetchError):
        raise _fail(url, body, "listing page")
    listing = parse_listing(body, url)
    if not listing["cards"]:
        raise RuntimeError(f"listing page {url} links to no /image/<id>-<slug> page: the keyword has no images, the "
                           "site answered a block page, or its layout changed (surd/sources/sdonline_html.py)")
    return {"kind": "listing", "keyword": keyword, "url": url, **listing}


def fetch_detail(url: str, dl: DownloadConfig) -> dict[str, Any]:
    """A detail page as saved: its parsed fields, or the permanent reason it cannot be had (e.g. http_404)."""
    body = _fetch(url, dl)
    if isinstance(body, FetchError):
        if body.reason in TRANSIENT:
            raise _fail(url, body, "detail page")
        return {"kind": "detail", "url": url, "error": body.reason, "detail": body.detail}
    return {"kind": "detail", "url": url, "record": parse_detail(body, url)}


def detail_row(card: dict[str, Any], page: dict[str, Any], keyword: str) -> dict[str, Any]:
    """One detail page → one row; the prompt from the page cross-checked against the editor link's."""
    record = page.get("record") or {}
    html, editor = record.get("html") or {}, record.get("editor") or {}
    prompt, route, error, detail = _cross_check(html, editor)
    negative = editor.get("negative") if editor.get("negative") is not None else html.get("negative")
    image = editor.get("image") or html.get("image") or card.get("thumb") or ""
    if "error" in page:  # the page itself could not be had (http_404, robots_disallowed, …)
        error, detail = page["error"], page.get("detail", "")
    elif not record.get("recognised"):
        error, detail = "page_layout_unrecognised", f"{card['url']}: no Prompt block, editor link or prompt panel"
    elif error is None and not image:
        error, detail = "missing_image_ref", "no image URL in the editor link, on the page or on the listing card"
    both_images = editor.get("image") and html.get("image")
    extra = {
        "title": record.get("title") or card.get("title"), "style": editor.get("style") or html.get("style"),
        "aspect_ratio": editor.get("ratio") or html.get("ratio"), "width": record.get("width") or card.get("width"),
        "height": record.get("height") or card.get("height"), "keyword": keyword, "slug": card.get("slug"),
        "prompt_from": route or None, "images_agree": editor["image"] == html["image"] if both_images else None,
    }  # fmt: skip
    return web_row(
        source="sdonline", source_id=card["id"], image=image, complex_prompt=prompt or None,
        negative_prompt=clean_prompt(negative), url=card["url"], license=LICENSE,
        provenance={"page": card["url"], "image_url": image, "keyword": keyword},
        extra={k: v for k, v in extra.items() if v is not None}, error=error, error_detail=detail,
    )  # fmt: skip


def _cross_check(html: dict[str, Any], editor: dict[str, Any]) -> tuple[str, str, str | None, str]:
    """(prompt, which route(s) gave it, reject reason or None, detail): the two routes must agree where both exist."""
    page, link = clean_prompt(html.get("prompt")), clean_prompt(editor.get("prompt"))
    if page and link and page != link:
        return "", "", "prompt_mismatch", f"page prompt {page[:120]!r} != editor link prompt {link[:120]!r}"
    neg_page, neg_link = html.get("negative"), editor.get("negative")
    if neg_page is not None and neg_link is not None and clean_prompt(neg_page) != clean_prompt(neg_link):
        detail = f"page {clean_prompt(neg_page)!r} != editor link {clean_prompt(neg_link)!r}"
        return "", "", "negative_prompt_mismatch", detail
    if not (page or link):
        return "", "", "missing_prompt", "the page shows no prompt"
    return link or page, "page+editor" if page and link else ("editor" if link else "page"), None, ""


def _details(cards: list[dict[str, Any]], saved: dict[str, dict[str, Any]], log: PageLog,
             dl: DownloadConfig, online: NetworkGate) -> list[dict[str, Any]]:
    """Each card's detail page: saved ones replayed, the rest fetched concurrently and saved (in card order)."""
    todo = [c["url"] for c in cards if c["url"] not in saved]
    if todo:
        online.check()
        with ThreadPoolExecutor(min(dl.threads, len(todo)), thread_name_prefix="surd-sdonline") as pool:
            futures = [pool.submit(fetch_detail, url, dl) for url in dict.fromkeys(todo)]
        failure = None
        for future in futures:
            try:
                page = future.result()
            except RuntimeError as e:
                failure = failure or e
                continue
            if page.get("record", {}).get("recognised", True):  # an unrecognised page is asked again next run
                log.append(page)
            saved[page["url"]] = page
        if failure is not None:
            raise failure
    return [saved[c["url"]] for c in cards]


def list_rows(cfg: Config, state_dir: str, append: bool = False) -> Iterator[dict[str, Any]]:
    """Rows of every keyword's listing in page order, following next links; saved pages replayed, the rest fetched.
    With `append`, a keyword whose listing had ended asks its last listing page again and goes on from there
    (`Listing`): the cards that page did not show before are new."""
    log = PageLog(storage.join(state_dir, "sdonline_pages.jsonl"),
                  {"base_url": cfg.base_url, "keywords": list(cfg.keywords)})
    listed = [p for p in log.pages() if p["kind"] == "listing"]
    saved = {p["url"]: p for p in log.pages() if p["kind"] == "detail"}
    dl, budget, n = DownloadConfig(**cfg.http), cfg.max_items or float("inf"), 0
    online = NetworkGate("sdonline", cfg.base_url, dl, state_dir)
    for keyword in cfg.keywords:
        listing = Listing([p for p in listed if p.get("keyword") == keyword], append, log, online, at="url")
        url, seen, finished = f"{cfg.base_url.rstrip('/')}/prompts/{keyword}", set(), False
        while not (cfg.max_pages and len(seen) >= cfg.max_pages) and n < budget:
            page = listing.step(finished, url, lambda at, keyword=keyword: fetch_listing(at, keyword, dl))
            if page is None:
                break
            if not page.get("again"):
                seen.add(page["url"])
            cards = listing.new_items(page, lambda card: card["url"], lambda p: p["cards"])
            cards = cards[: int(min(len(cards), budget - n))]
            pages = _details(cards, saved, log, dl, online)
            if pages and all(not p.get("record", {"recognised": True})["recognised"] for p in pages):
                raise RuntimeError(f"none of the {len(pages)} detail pages listed on {page['url']} has the expected "
                                   "layout (Prompt block or editor link): the site changed; update "
                                   "surd/sources/sdonline_html.py")
            for card, detail in zip(cards, pages):
                n += 1
                yield detail_row(card, detail, keyword)
            url = page["next"]
            finished = not url or url in seen
