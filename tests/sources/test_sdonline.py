"""Stable Diffusion Online: saved-page-shaped HTML (tests/fixtures/sdonline) served on 127.0.0.1, listed and resumed."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

import pytest
from typer.testing import CliRunner

from surd import shards
from surd.cli import app
from surd.runner import total_stats
from surd.sources import sdonline
from surd.sources.sdonline_html import clean_prompt, parse_detail, parse_listing
from tests.conftest import REPO
from tests.fault_server import FAST_HTTP, FaultServer, Route, make_jpeg

FIXTURES = REPO / "tests" / "fixtures" / "sdonline"
HTTP = {**FAST_HTTP, "retries": 0, "threads": 4}
SITE, CDN = "https://stablediffusionweb.com", "https://imgcdn.stablediffusionweb.com"
DETAILS = {  # card id → fixture served as its detail page (None: the page is gone, 404)
    "20704909": "detail_20704909.html", "21046819": "detail_21046819.html",
    "21046900": "detail_21046900_sample.html", "21100001": "detail_21100001_entities.html",
    "21100002": "detail_21100002_no_negative.html", "21100003": "detail_21100003_mismatch.html",
    "21100004": "detail_changed_layout.html", "21100005": None,
}  # fmt: skip
OUTCOME = {"20704909": None, "21046819": None, "21046900": None, "21100001": None, "21100002": None,
           "21100003": "prompt_mismatch", "21100004": "page_layout_unrecognised", "21100005": "http_404"}  # fmt: skip


def localize(text: str, base: str) -> str:
    """The saved page, its site and CDN hosts pointed at the local server (absolute, %-encoded, protocol-relative)."""
    host = urlsplit(base).netloc
    for real, local in ((CDN, f"{base}/cdn"), (SITE, base)):
        text = text.replace(real, local).replace(quote(real, safe=""), quote(local, safe=""))
        text = text.replace("//" + urlsplit(real).netloc, f"//{host}" + ("/cdn" if real == CDN else ""))
    return text


def page(name: str, base: str = SITE) -> str:
    return localize((FIXTURES / name).read_text(), base) if base != SITE else (FIXTURES / name).read_text()


def serve_site(server: FaultServer, details: dict[str, str | None] = DETAILS) -> dict[str, int]:
    """Listing /prompts/ui-design?page=N and the detail pages; returns a counter of listing requests by page."""
    listings = {"1": "listing_ui-design_p1.html", "2": "listing_ui-design_p2.html",
                "3": "listing_ui-design_p3_last.html"}
    asked: dict[str, int] = {}

    def listing(method, query, body):
        n = query.get("page", ["1"])[0]
        asked[n] = asked.get(n, 0) + 1
        return 200, page(listings[n], server.base).encode(), "text/html; charset=utf-8"

    server.handlers["/prompts/ui-design"] = listing
    for html in (FIXTURES / "listing_ui-design_p1.html", FIXTURES / "listing_ui-design_p2.html",
                 FIXTURES / "listing_ui-design_p3_last.html"):  # fmt: skip
        for card in parse_listing(html.read_text(), f"{SITE}/prompts/ui-design")["cards"]:
            name = details[card["id"]]
            if name is not None:
                server.routes[urlsplit(card["url"]).path] = Route(body=page(name, server.base).encode(),
                                                                  content_type="text/html; charset=utf-8")
    return asked


def test_listing_pages_parse_cards_links_and_pagination():
    p1 = parse_listing((FIXTURES / "listing_ui-design_p1.html").read_bytes(), f"{SITE}/prompts/ui-design")
    assert [c["id"] for c in p1["cards"]] == ["20704909", "21046819", "21046900"]  # the card linked twice: once
    assert p1["cards"][0]["url"] == f"{SITE}/image/20704909-2048-chengdu-olympics-app-home-page"  # relative
    assert p1["cards"][2]["url"] == f"{SITE}/image/21046900-user-interface-game-for-interaction"  # absolute
    assert p1["cards"][2]["thumb"] == f"{CDN}/2024/10/27/d66de660-7951-4eb6-bb28-c18ef4c6a548.jpg"  # protocol-relative
    assert p1["cards"][0]["width"] == 704 and p1["cards"][0]["title"] == "2048 Chengdu Olympics App Home Page"
    assert p1["next"] == f"{SITE}/prompts/ui-design?page=2"  # rel="next"
    p2 = parse_listing((FIXTURES / "listing_ui-design_p2.html").read_bytes(), f"{SITE}/prompts/ui-design?page=2")
    assert p2["next"] == f"{SITE}/prompts/ui-design?page=3"  # aria-label="Next"
    assert p2["cards"][0]["title"] == 'Retro Cafe Menu & Checkout "UI"'  # entities decoded
    p3 = parse_listing((FIXTURES / "listing_ui-design_p3_last.html").read_bytes(), f"{SITE}/prompts/ui-design?page=3")
    assert p3["next"] is None and [c["id"] for c in p3["cards"]] == ["21100004", "21100005"]  # the last page


def test_detail_page_both_routes():
    d = parse_detail((FIXTURES / "detail_21046900_sample.html").read_bytes(), f"{SITE}/image/21046900-x")
    assert d["recognised"] and d["title"] == "User Interface Game for Interaction"
    assert d["html"]["prompt"] == "user interface ,   game ,  for interaction"  # as the keyword spans render it
    assert d["editor"]["prompt"] == "user interface ,  game , for interaction"  # as the editor link carries it
    cleaned = "user interface, game, for interaction"
    assert clean_prompt(d["html"]["prompt"]) == clean_prompt(d["editor"]["prompt"]) == cleaned
    assert clean_prompt(d["html"]["negative"]) == "" and d["editor"]["negative"] is None  # the site shows ", "
    assert (d["html"]["style"], d["html"]["ratio"], d["width"], d["height"]) == ("Futurism", "1:1", 1024, 1024)
    assert d["editor"]["image"] == f"{CDN}/2024/10/27/d66de660-7951-4eb6-bb28-c18ef4c6a548.jpg"
    assert d["html"]["image"] == d["editor"]["image"]  # the page's <img> is protocol-relative
    e = parse_detail((FIXTURES / "detail_21100001_entities.html").read_bytes(), f"{SITE}/image/21100001-x")
    assert clean_prompt(e["html"]["prompt"]) == 'retro cafe menu & checkout, "vintage" pastel ui, chef\'s specials, ' \
                                                "<lora:flat_ui:0.7>"  # fmt: skip
    assert clean_prompt(e["html"]["negative"]) == e["editor"]["negative"] == "blurry, watermark, text"
    assert e["html"]["image"] == f"{SITE}/og/21100001.jpg" and e["title"] == 'Retro Cafe Menu & Checkout "UI"'
    none = parse_detail((FIXTURES / "detail_21100002_no_negative.html").read_bytes(), f"{SITE}/image/21100002-x")
    assert none["html"]["negative"] is None and none["editor"]["negative"] is None
    changed = parse_detail((FIXTURES / "detail_changed_layout.html").read_bytes(), f"{SITE}/image/21100004-x")
    assert not changed["recognised"] and changed["editor"] is None  # the menu's bare /image-generator link is no editor


@pytest.mark.parametrize("name, error, prompt, negative", [
    ("detail_21046900_sample.html", None, "user interface, game, for interaction", ""),
    ("detail_21100001_entities.html", None, 'retro cafe menu & checkout, "vintage" pastel ui, chef\'s specials, '
     "<lora:flat_ui:0.7>", "blurry, watermark, text"),
    ("detail_21100002_no_negative.html", None, "mobile banking dashboard, clean ui, dark mode", ""),
    ("detail_21100003_mismatch.html", "prompt_mismatch", None, ""),
    ("detail_changed_layout.html", "page_layout_unrecognised", None, ""),
])  # fmt: skip
def test_detail_rows(name, error, prompt, negative):
    card = {"url": f"{SITE}/image/1-x", "id": "1", "slug": "x", "title": "t", "thumb": None}
    record = parse_detail((FIXTURES / name).read_bytes(), card["url"])
    row = sdonline.detail_row(card, {"kind": "detail", "url": card["url"], "record": record}, "ui-design")
    got = (row["error"], row["complex_prompt"], row["negative_prompt"])
    assert got == (error, prompt, negative), row["error_detail"]
    if error is None:
        assert row["image"].startswith(f"{CDN}/") and row["extra"]["prompt_from"] == "page+editor"
        assert row["source"] == "sdonline" and row["url"] == card["url"] and row["extra"]["keyword"] == "ui-design"
    if name == "detail_21100001_entities.html":
        assert row["extra"]["images_agree"] is False and row["extra"]["style"] == "Retro"


def test_interrupted_listing_resumes_without_gap_or_duplicate(server, tmp_path):
    asked = serve_site(server)
    server.routes["/image/21100002-mobile-banking-dashboard"].fail_times = 99  # a detail page on page 2 is down
    cfg = sdonline.Config(keywords=("UI Design",), base_url=server.base, http=HTTP)
    first = []
    with pytest.raises(RuntimeError, match="http_5xx_exhausted.*rerun to resume"):
        first.extend(r["source_id"] for r in sdonline.list_rows(cfg, tmp_path))
    assert first == ["20704909", "21046819", "21046900"]
    server.routes["/image/21100002-mobile-banking-dashboard"].fail_times = 0
    before = {p: server.count(p) for p in server.routes}
    rows = list(sdonline.list_rows(cfg, tmp_path))
    assert [r["source_id"] for r in rows] == list(OUTCOME)  # every card once, in listing order
    assert {r["source_id"]: r["error"] for r in rows} == OUTCOME
    assert asked == {"1": 1, "2": 1, "3": 1}  # each listing page asked once over both runs (saved before its details)
    again = {p: server.count(p) - before[p] for p in server.routes if p.startswith("/image/")}
    assert {p for p, n in again.items() if n} == {"/image/21100002-mobile-banking-dashboard",
                                                   "/image/21100004-smart-home-panel"}  # fmt: skip
    # (the changed-layout page is never saved, so a fixed parser reads it afresh; the 404 is saved as a reason)
    before = len(server.requests)
    assert [r["source_id"] for r in sdonline.list_rows(cfg, tmp_path)] == list(OUTCOME)
    assert [p for p, _ in server.requests[before:]] == ["/image/21100004-smart-home-panel"]
    with pytest.raises(ValueError, match="different query"):
        list(sdonline.list_rows(sdonline.Config(keywords=("game",), base_url=server.base, http=HTTP), tmp_path))


def test_max_pages_and_max_items(server, tmp_path):
    asked = serve_site(server)
    rows = list(sdonline.list_rows(sdonline.Config(keywords=("ui design",), base_url=server.base, max_pages=2,
                                                   http=HTTP), tmp_path / "a"))  # fmt: skip
    assert len(rows) == 6 and asked == {"1": 1, "2": 1}
    before = server.count("/image/21100001-retro-cafe-menu-ui")
    rows = list(sdonline.list_rows(sdonline.Config(keywords=("ui design",), base_url=server.base, max_items=4,
                                                   http=HTTP), tmp_path / "b"))  # fmt: skip
    assert len(rows) == 4 and server.count("/image/21100002-mobile-banking-dashboard") == 1  # not fetched past 4
    assert server.count("/image/21100001-retro-cafe-menu-ui") == before + 1


def test_a_changed_layout_is_a_clear_error_not_empty_rows(server, tmp_path):
    serve_site(server, {k: "detail_changed_layout.html" for k in DETAILS})
    cfg = sdonline.Config(keywords=("ui-design",), base_url=server.base, http=HTTP)
    with pytest.raises(RuntimeError, match="none of the 3 detail pages.*the site changed"):
        list(sdonline.list_rows(cfg, tmp_path / "a"))
    server.handlers["/prompts/ui-design"] = lambda m, q, b: (200, page("detail_changed_layout.html").encode(),
                                                             "text/html")  # fmt: skip
    with pytest.raises(RuntimeError, match="links to no /image/<id>-<slug> page"):
        list(sdonline.list_rows(cfg, tmp_path / "b"))


def test_robots_txt_is_honoured_for_pages(server, tmp_path):
    serve_site(server)
    server.routes["/robots.txt"] = Route(body=b"User-agent: *\nDisallow: /image/2104\n", content_type="text/plain")
    rows = list(sdonline.list_rows(sdonline.Config(keywords=("ui-design",), base_url=server.base, max_pages=1,
                                                   http=HTTP), tmp_path / "a"))  # fmt: skip
    assert [r["error"] for r in rows] == [None, "robots_disallowed", "robots_disallowed"]
    assert server.count("/image/21046819-user-interface-icons-for-poolrooms-interaction") == 0
    server.routes["/robots.txt"] = Route(body=b"User-agent: surd\nDisallow: /prompts/\n", content_type="text/plain")
    fresh = {**HTTP, "timeout": 1.5}  # another config: another client, robots.txt read afresh
    with pytest.raises(RuntimeError, match="robots_disallowed.*--ignore-robots"):
        list(sdonline.list_rows(sdonline.Config(keywords=("ui-design",), base_url=server.base, http=fresh),
                                tmp_path / "b"))  # fmt: skip


def test_cli_ingest_sdonline_end_to_end(server, tmp_path):
    serve_site(server)
    for n, p in enumerate(("2024/10/22/7e854a9d-efb8-46cc-b3da-f4b5eece6b36.jpg",
                           "2024/10/27/ea3f4dcd-adee-49f9-8534-90af8d929e14.jpg",
                           "2024/10/27/d66de660-7951-4eb6-bb28-c18ef4c6a548.jpg",
                           "2024/11/2/0a1b2c3d-0000-4000-8000-000000000001.jpg",
                           "2024/11/2/0a1b2c3d-0000-4000-8000-000000000002.jpg")):  # fmt: skip
        server.routes[f"/cdn/{p}"] = Route(body=make_jpeg(96, 80, seed=800 + n))
    args = ["ingest", "sdonline", "-k", "UI Design", "--base-url", server.base, "--allow-private-addresses",
            "--rate-limit", "0", "--size", "64", "--min-size", "32", "--shard-size", "4", "--out", str(tmp_path / "o")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    stats = total_stats(tmp_path / "o")
    assert stats["in"] == 8 and stats["kept"] == 5
    assert stats["rejected"] == {"prompt_mismatch": 1, "page_layout_unrecognised": 1, "http_404": 1}
    kept = {s["json"]["source_id"]: s["json"] for s in shards.iter_dataset(tmp_path / "o")}
    assert kept["21100001"]["complex_prompt"].startswith("retro cafe menu & checkout")
    assert kept["21100001"]["negative_prompt"] == "blurry, watermark, text"
    assert kept["21046900"]["extra"]["style"] == "Futurism" and kept["21046900"]["source"] == "sdonline"
    assert shards.read_config(tmp_path / "o")["config"]["options"]["keywords"] == ["UI Design"]


def test_an_append_asks_each_keywords_last_listing_page_again(server, tmp_path):
    asked = serve_site(server)
    cfg = sdonline.Config(keywords=("UI Design",), base_url=server.base, http=HTTP)
    rows = [r["source_id"] for r in sdonline.list_rows(cfg, tmp_path)]
    before = len(server.requests)
    assert [r["source_id"] for r in sdonline.list_rows(cfg, tmp_path, append=True)] == rows  # nothing new there
    assert asked == {"1": 1, "2": 1, "3": 2}  # only the last listing page asked again
    assert [p for p, _ in server.requests[before:] if p.startswith("/image/")] == [
        "/image/21100004-smart-home-panel"]  # the unrecognised page, asked on every run as before
