"""Lexica at volume: the cursor-paged /api/infinite-prompts listing (and the small search endpoint beside it)."""

from __future__ import annotations

import copy
import json

import pytest
from typer.testing import CliRunner

from surd import shards
from surd.cli import app
from surd.runner import total_stats
from surd.sources import lexica, lexica_infinite
from tests.conftest import REPO
from tests.fault_server import FAST_HTTP, FaultServer, Route, make_jpeg

FIXTURES = REPO / "tests" / "fixtures" / "lexica"
HTTP = {**FAST_HTTP, "retries": 0}
PAGE = 50  # Lexica's cursor counts prompts


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def prompts_for(query: str, n: int) -> list[dict]:
    """n prompts in the fixture's real shape (alternating a 2-image grid and a single image), ids unique per query."""
    templates = fixture("infinite_prompts_nested.json")["prompts"]
    out = []
    for i in range(n):
        p = copy.deepcopy(templates[i % 2])
        p["id"], p["prompt"] = f"{query}-p{i}", f"{query} prompt {i}, highly detailed"
        for j, image in enumerate(p["images"]):
            image["id"], image["promptid"] = f"{query}-p{i}-img{j}", p["id"]
        out.append(p)
    return out


class FakeLexica:
    """POST /api/infinite-prompts over per-query prompt lists: `per_page` prompts a page, no nextCursor at the end."""

    def __init__(self, server: FaultServer, prompts: dict[str, list[dict]], per_page: int = 3, flat: bool = False):
        self.prompts, self.per_page, self.flat = prompts, per_page, flat
        self.down: set[tuple[str, int]] = set()
        self.bodies: list[dict] = []
        server.handlers[lexica_infinite.ENDPOINT] = self.answer

    def answer(self, method, query, body):
        req = json.loads(body)
        self.bodies.append(req)
        text, cursor = req["text"], req["cursor"]
        if (text, cursor) in self.down:
            return 503, b"<html>upstream timeout</html>", "text/html"
        start = cursor // PAGE * self.per_page
        chunk = self.prompts.get(text, [])[start : start + self.per_page]
        data: dict = {"prompts": chunk}
        if self.flat:
            data["images"] = [i for p in chunk for i in p["images"]]
        if start + self.per_page < len(self.prompts.get(text, [])):
            data["nextCursor"] = cursor + PAGE
        return 200, json.dumps(data).encode(), "application/json"


def cursor_cfg(server: FaultServer, queries: tuple[str, ...], **kw) -> lexica.Config:
    return lexica.Config(queries=queries, base_url=server.base, mode="cursor", image_base=server.url("/full_jpg/"),
                         http=HTTP, **kw)  # fmt: skip


def expected_ids(prompts: list[dict]) -> list[str]:
    return [i["id"] for p in prompts for i in p["images"]]


def test_both_answer_shapes_give_the_same_rows():
    cfg = lexica.Config(queries=("q",), mode="cursor", http=HTTP)
    base, site = cfg.image_base, "https://lexica.art"
    nested = lexica_infinite.page_items({"prompts": fixture("infinite_prompts_nested.json")["prompts"]}, base, site)
    flat_data = fixture("infinite_prompts_flat.json")
    flat = lexica_infinite.page_items({"prompts": flat_data["prompts"], "images": flat_data["images"]}, base, site)
    assert flat[:-1] == nested and len(nested) == 3
    rows = [lexica.item_row(item, "q", cfg, api="https://lexica.art/api/infinite-prompts") for item in flat]
    assert [r["error"] for r in rows] == [None, None, None, "missing_prompt"]  # the orphan image's prompt is absent
    r0 = rows[0]
    assert r0["image"] == "https://image.lexica.art/full_jpg/0b0ee9f6-4d5e-4b7a-9c3e-1d2f3a4b5c6d"
    assert r0["complex_prompt"].startswith("a cozy reading nook") and r0["negative_prompt"] == "blurry, lowres"
    assert r0["extra"]["guidance"] == 7 and r0["extra"]["seed"] == "2987135443" and r0["extra"]["grid"] is True
    assert r0["url"] == "https://lexica.art/prompt/0482ee68-0368-4eca-8846-5930db866b33"
    assert r0["provenance"]["api"].endswith("/api/infinite-prompts")
    assert rows[2]["negative_prompt"] == "" and rows[2]["extra"]["width"] == 768


@pytest.mark.parametrize("flat", [False, True])
def test_interrupted_cursor_listing_resumes_without_gap_or_duplicate(server, tmp_path, flat):
    prompts = {"fox": prompts_for("fox", 10), "猫头鹰 owl": prompts_for("owl", 4)}  # a non-ASCII query too
    fake = FakeLexica(server, prompts, flat=flat)
    fake.down = {("fox", 150)}  # the fourth page of the first query is down
    cfg = cursor_cfg(server, ("fox", "猫头鹰 owl"))
    first = []
    with pytest.raises(RuntimeError, match="http_5xx_exhausted"):
        first.extend(r["source_id"] for r in lexica.list_rows(cfg, tmp_path))
    assert first == expected_ids(prompts["fox"][:9])
    with open(tmp_path / "lexica_cursor_pages.jsonl", "a") as f:
        f.write('{"query": "fox", "cursor": 15')  # torn by the crash: dropped, that page asked again
    fake.down.clear()
    fake.bodies.clear()
    rows = list(lexica.list_rows(cfg, tmp_path))
    assert [r["source_id"] for r in rows] == expected_ids(prompts["fox"]) + expected_ids(prompts["猫头鹰 owl"])
    owl = "猫头鹰 owl"
    assert [(b["text"], b["cursor"]) for b in fake.bodies] == [("fox", 150), (owl, 0), (owl, 50)]
    assert fake.bodies[0] == {"text": "fox", "searchMode": "images", "source": "search", "cursor": 150,
                              "model": "lexica-aperture-v2"}  # fmt: skip
    assert all(r["error"] is None and r["image"].startswith(server.url("/full_jpg/")) for r in rows)
    fake.bodies.clear()
    assert [r["source_id"] for r in lexica.list_rows(cfg, tmp_path)] == [r["source_id"] for r in rows]
    assert fake.bodies == []  # finished listings replay from the saved pages
    with pytest.raises(ValueError, match="different query"):
        list(lexica.list_rows(cursor_cfg(server, ("fox", "猫头鹰 owl"), model="lexica-aperture-v3"), tmp_path))


def test_max_pages_max_items_and_a_cursor_that_repeats(server, tmp_path):
    fake = FakeLexica(server, {"fox": prompts_for("fox", 12)})
    rows = list(lexica.list_rows(cursor_cfg(server, ("fox",), max_pages=2), tmp_path / "a"))
    assert len(rows) == 9 and len(fake.bodies) == 2  # 2 pages × 3 prompts (2 + 1 + 2 images)
    rows = list(lexica.list_rows(cursor_cfg(server, ("fox",), max_items=4), tmp_path / "b"))
    assert len(rows) == 4
    same = {"prompts": prompts_for("loop", 1), "nextCursor": 50}
    server.handlers[lexica_infinite.ENDPOINT] = lambda m, q, b: (200, json.dumps(same).encode(), "application/json")
    rows = list(lexica.list_rows(cursor_cfg(server, ("loop",)), tmp_path / "c"))
    assert len(rows) == 4  # cursor 0 then 50; 50 again is the end, not an endless loop


def test_a_changed_answer_is_a_clear_error(server, tmp_path):
    server.handlers[lexica_infinite.ENDPOINT] = lambda m, q, b: (200, b'{"results": []}', "application/json")
    with pytest.raises(RuntimeError, match="without a prompts list"):
        list(lexica.list_rows(cursor_cfg(server, ("fox",)), tmp_path))


def test_search_endpoint_still_answers_small_queries(server, tmp_path):
    hits = json.loads((FIXTURES / "search_v1.json").read_text().replace("https://image.lexica.art", server.base))
    server.lexica = {"treehouse": hits["images"]}
    rows = list(lexica.list_rows(lexica.Config(queries=("treehouse",), base_url=server.base, http=HTTP), tmp_path))
    assert [r["error"] for r in rows] == [None, "nsfw"]
    assert rows[0]["image"] == server.url("/full_jpg/0b0ee9f6-4d5e-4b7a-9c3e-1d2f3a4b5c6d")
    assert rows[0]["source_id"] == "0b0ee9f6-4d5e-4b7a-9c3e-1d2f3a4b5c6d"  # the same key as in cursor mode
    assert rows[0]["provenance"]["api"].endswith("/api/v1/search")


@pytest.mark.parametrize("bad", [{"mode": "scroll"}, {"max_pages": -1}, {"search_mode": "videos"},
                                 {"listing_source": "feed"}, {"image_base": "ftp://x/"}])  # fmt: skip
def test_config_validation(bad):
    with pytest.raises(ValueError):
        lexica.Config(queries=("q",), **bad)


def test_cli_cursor_mode_end_to_end(server, tmp_path):
    prompts = {"fox": prompts_for("fox", 5)}
    FakeLexica(server, prompts)
    for n, image_id in enumerate(expected_ids(prompts["fox"])):
        server.routes[f"/full_jpg/{image_id}"] = Route(body=make_jpeg(96, 80, seed=700 + n))
    args = ["ingest", "lexica", "-q", "fox", "--mode", "cursor", "--base-url", server.base, "--image-base",
            server.url("/full_jpg/"), "--allow-private-addresses", "--rate-limit", "0", "--size", "64",
            "--min-size", "32", "--out", str(tmp_path / "out")]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    stats = total_stats(tmp_path / "out")
    assert stats["in"] == stats["kept"] == len(expected_ids(prompts["fox"])) == 8
    options = shards.read_config(tmp_path / "out")["config"]["options"]
    assert options["mode"] == "cursor" and options["image_base"] == server.url("/full_jpg/")
    bad = CliRunner().invoke(app, ["ingest", "lexica", "-q", "fox", "--max-pages", "3", "--out", str(tmp_path / "x")])
    assert bad.exit_code != 0 and "--mode cursor" in bad.output


def test_an_append_goes_on_past_each_querys_saved_end(server, tmp_path):
    prompts = {"fox": prompts_for("fox", 4), "owl": prompts_for("owl", 2)}
    fake = FakeLexica(server, prompts)
    cfg = cursor_cfg(server, ("fox", "owl"))
    assert [r["source_id"] for r in lexica.list_rows(cfg, tmp_path)] == expected_ids(prompts["fox"] + prompts["owl"])
    grown = {"fox": prompts_for("fox", 8), "owl": prompts_for("owl", 2)}
    fake.prompts = grown
    fake.bodies.clear()
    rows = [r["source_id"] for r in lexica.list_rows(cfg, tmp_path, append=True)]
    assert rows == expected_ids(grown["fox"] + grown["owl"])
    assert [(b["text"], b["cursor"]) for b in fake.bodies] == [("fox", 50), ("fox", 100), ("owl", 0)]
    fake.bodies.clear()
    assert [r["source_id"] for r in lexica.list_rows(cfg, tmp_path)] == rows and fake.bodies == []
