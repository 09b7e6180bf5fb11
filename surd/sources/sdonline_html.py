"""Stable Diffusion Online (stablediffusionweb.com) pages → plain records, with a real HTML parser (selectolax).

Listing pages ``/prompts/<keyword>`` hold cards ``<a href="/image/<id>-<slug>"><img src=… alt=… width height>``;
detail pages ``/image/<id>-<slug>`` hold an ``<h1>`` title, a "Prompt:" and a "Negative prompt:" block (label
``<span>`` + a ``.break-words`` box of keyword spans), ``<dt>``/``<dd>`` pairs (Style, Aspect ratio, Size "W X H")
and an "Open in editor" link ``/image-generator?prompt=…&ratio=…&style=…&imageUrl=…`` carrying the same fields.
The markup these parsers expect is documented, with where it was seen, in tests/fixtures/sdonline/PROVENANCE.md.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

DETAIL_PATH = re.compile(r"^/image/(\d+)-([^/]*)$")
SIZE = re.compile(r"(\d+)\s*[xX×]\s*(\d+)")
NEXT_TEXTS = {"next", "next page", "next »", "next ›", "›", "»", ">"}
EDITOR_NEGATIVE_KEYS = ("negativePrompt", "negative_prompt", "negative")


def _parser(html: bytes | str) -> Any:
    try:
        from selectolax.lexbor import LexborHTMLParser  # optional extra (surd[web]): imported on use
    except ImportError as e:
        raise ImportError("the sdonline source parses HTML with selectolax: pip install 'surd[web]'") from e
    text = html.decode("utf-8", errors="replace") if isinstance(html, bytes) else html
    return LexborHTMLParser(text)


def clean_prompt(text: str | None) -> str:
    """One canonical spacing: runs of whitespace → one space, ``", "`` between keywords, no stray edge commas."""
    t = re.sub(r"\s+", " ", (text or "").replace("\xa0", " ")).strip()
    t = re.sub(r"\s*,\s*", ", ", t)
    return t.strip(" ,")


def detail_id(url: str) -> tuple[str, str] | None:
    """(image id, slug) of a detail page URL, or None when *url* is not one."""
    m = DETAIL_PATH.match(urlsplit(url).path)
    return (m.group(1), m.group(2)) if m else None


def parse_listing(html: bytes | str, page_url: str) -> dict[str, Any]:
    """``{"cards": [{url, id, slug, title, thumb, width, height}], "next": absolute URL or None}``, cards in page order.

    Relative and protocol-relative links are resolved against *page_url*; only detail pages on the listing's host
    count; a card linked twice is listed once.
    """
    tree, host = _parser(html), urlsplit(page_url).netloc
    cards, seen = [], set()
    for a in tree.css("a[href]"):
        url = urljoin(page_url, (a.attributes.get("href") or "").strip())
        ident = detail_id(url)
        if ident is None or urlsplit(url).netloc != host or url in seen:
            continue
        seen.add(url)
        img = a.css_first("img")
        attrs = img.attributes if img is not None else {}
        cards.append({"url": url, "id": ident[0], "slug": ident[1], "title": (attrs.get("alt") or a.text()).strip(),
                      "thumb": urljoin(page_url, attrs["src"].strip()) if attrs.get("src") else None,
                      "width": _int(attrs.get("width")), "height": _int(attrs.get("height"))})  # fmt: skip
    return {"cards": cards, "next": _next_link(tree, page_url)}


def _next_link(tree: Any, page_url: str) -> str | None:
    """rel="next" (a <link> or an <a>), else an <a> labelled Next (text or aria-label); never the page itself."""
    candidates = [n for n in tree.css("link[rel], a[rel]") if "next" in (n.attributes.get("rel") or "").lower().split()]
    candidates += [a for a in tree.css("a[href]") if _label(a) in NEXT_TEXTS]
    for node in candidates:
        href = (node.attributes.get("href") or "").strip()
        url = urljoin(page_url, href) if href else ""
        if url and url.split("#", 1)[0] != page_url.split("#", 1)[0]:
            return url
    return None


def _label(a: Any) -> str:
    return (a.attributes.get("aria-label") or a.text() or "").strip().lower()


def parse_detail(html: bytes | str, page_url: str) -> dict[str, Any]:
    """The detail page's fields from both routes: ``html`` (the visible blocks) and ``editor`` (the link's query).

    ``recognised`` is False when neither a Prompt block, nor the editor link, nor the "AI Art Image Prompt" panel is
    on the page: a changed layout, a block page, or not a detail page at all.
    """
    tree = _parser(html)
    fields = {_clean_label(dt.text()): _next_element(dt) for dt in tree.css("dt")}
    size = SIZE.search(fields["size"].text()) if fields.get("size") is not None else None
    html_route = {
        "prompt": _block_text(tree, "prompt:"), "negative": _block_text(tree, "negative prompt:"),
        "style": _dd(fields.get("style")), "ratio": _dd(fields.get("aspect ratio")),
        "image": _page_image(tree, page_url),
    }  # fmt: skip
    h1 = tree.css_first("h1")
    panel = any(h.text(strip=True).lower() == "ai art image prompt" for h in tree.css("h2"))
    editor = _editor(tree, page_url)
    return {
        "title": h1.text(strip=True) if h1 is not None else "", "html": html_route, "editor": editor,
        "width": int(size.group(1)) if size else None, "height": int(size.group(2)) if size else None,
        "recognised": panel or html_route["prompt"] is not None or editor is not None,
    }  # fmt: skip


def _clean_label(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().rstrip(":").strip().lower()


def _next_element(node: Any) -> Any:
    nxt = node.next
    while nxt is not None and nxt.tag.startswith("-"):  # skip text and comment nodes
        nxt = nxt.next
    return nxt


def _dd(node: Any) -> str | None:
    return node.text(strip=True) if node is not None and node.tag == "dd" else None


def _block_text(tree: Any, label: str) -> str | None:
    """Text of the ``.break-words`` box that follows a label such as "Prompt:" (None when the block is absent)."""
    for span in tree.css("span"):
        if _clean_label(span.text()) + ":" != label:
            continue
        box = span.parent.css_first(".break-words") if span.parent is not None else None
        if box is not None:
            return box.text(separator="")
    return None


def _page_image(tree: Any, page_url: str) -> str | None:
    og = tree.css_first('meta[property="og:image"]')
    src = og.attributes.get("content") if og is not None else None
    if not src:
        img = tree.css_first("img.w-full") or tree.css_first("main img")
        src = img.attributes.get("src") if img is not None else None
    return urljoin(page_url, src.strip()) if src else None


def _editor(tree: Any, page_url: str) -> dict[str, Any] | None:
    """The "Open in editor" link's fields (its query string, entities and %-escapes decoded).

    The site's menu also links to the bare generator; only a link that carries a prompt or an image counts."""
    for a in tree.css("a[href]"):
        url = urljoin(page_url, a.attributes.get("href") or "")
        q = {k: v[0] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}
        if urlsplit(url).path.rstrip("/").endswith("/image-generator") and ("prompt" in q or "imageUrl" in q):
            negative = next((q[k] for k in EDITOR_NEGATIVE_KEYS if k in q), None)
            image = q.get("imageUrl")
            return {"prompt": q.get("prompt"), "negative": negative, "style": q.get("style"), "ratio": q.get("ratio"),
                    "image": urljoin(page_url, image) if image else None}  # fmt: skip
    return None


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None
