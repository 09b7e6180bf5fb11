"""Civitai as its server really answers (tests/fixtures/civitai/PROVENANCE.md): every variant → a row or a reason."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

from surd.runner import run_stage, total_stats
from surd.sources import civitai
from tests.conftest import REPO
from tests.fault_server import FAST_HTTP, FaultServer, Route, make_jpeg

FIXTURES = REPO / "tests" / "fixtures" / "civitai"
HTTP = {**FAST_HTTP, "retries": 0}
CDN = "https://image.civitai.com"

# item id → (reject reason or None, complex prompt, nsfw level, browsing level)
EXPECTED = {
    51234567: (None, "masterpiece, best quality, a lighthouse on a cliff at dusk, volumetric light", "None", 1),
    51234568: ("missing_prompt", None, "Soft", 2),  # meta: null
    51234569: ("missing_prompt", None, "None", 1),  # ComfyUI meta without a prompt
    100: (None, "masterpiece, best quality", "None", 1),  # nested {id, meta}
    101: ("missing_prompt", None, "None", 1),  # nested {id, meta: null}
    62000001: ("video_item", "a paper boat drifting down a rainy street, cinematic", "None", 1),
    62000002: ("civitai_blocked", "removed by moderation", "Blocked", 32),
    62000003: (None, "portrait of a knight in ornate armour, dramatic light", "X", 16),
    62000004: ("audio_item", "lofi beat with rain", "None", 1),
    63863: (None, "hyper real photo of an old workshop at night, lots of shadows, cinematic lighting, 8k resolution",
            "Mature", None),
    63862: ("missing_prompt", None, "None", None),  # meta.prompt is a number
}


def load(name: str, base: str = CDN) -> dict:
    return json.loads((FIXTURES / name).read_text().replace(CDN, base))


def all_items(base: str = CDN) -> list[dict]:
    return [i for f in sorted(FIXTURES.glob("*.json")) for i in load(f.name, base)["items"]]


def test_every_fixture_item_is_a_row_or_a_reason():
    cfg = civitai.Config(http=HTTP)
    items = all_items()
    assert sorted(i["id"] for i in items) == sorted(EXPECTED)
    for item in items:
        row = civitai.item_row(item, cfg)
        error, prompt, level, flag = EXPECTED[item["id"]]
        assert row["error"] == error, (item["id"], row["error_detail"])
        assert (row["error_detail"] != "") == (error is not None)
        if error is None:
            assert row["complex_prompt"] == prompt and "/original=true/" in row["image"]
        assert row["nsfw"]["level"] == level and row["nsfw"]["browsing_level"] == flag
        assert isinstance(row["nsfw"]["nsfw"], bool)
    nested = civitai.item_row(load("legacy_nested_meta.json")["items"][0], cfg)
    assert nested["extra"]["model"] == "anima-preview" and nested["extra"]["cfgScale"] == 4
    old = civitai.item_row(load("v1_2023_numeric_cursor.json")["items"][0], cfg)
    assert old["image"].endswith("/86f03f36-3dab-464f-607a-e1480b9b5b00/original=true/"
                                 "86f03f36-3dab-464f-607a-e1480b9b5b00.jpeg")  # not the width=1024 rendition
    assert old["extra"]["media_type"] == "image" and old["negative_prompt"] == "lowres, blurry"


@pytest.mark.parametrize("item, reason", [
    ({"id": 1, "url": "https://x/a/b.mp4", "meta": {"prompt": "p"}}, "video_item"),  # no type: inferred from .mp4
    ({"id": 2, "url": "https://x/a/b.jpeg", "type": "model3d", "meta": {"prompt": "p"}}, "unsupported_media_type"),
    ({"id": 3, "url": "https://x/a/b.jpeg", "meta": "prompt: p"}, "bad_meta"),
    ({"id": 4, "url": "https://x/a/b.jpeg", "meta": {"id": 4, "meta": ["p"]}}, "bad_meta"),
    ({"id": 5, "url": "", "meta": {"prompt": "p"}}, "missing_image_ref"),
    ({"id": 8, "url": 12, "meta": {"prompt": "p"}}, "missing_image_ref"),
    ({"url": "https://x/a/b.jpeg", "meta": {"prompt": "p"}}, "missing_id"),
    ({"id": 6, "url": "https://x/a/b.jpeg", "nsfwLevel": 32, "meta": {"prompt": "p"}}, "civitai_blocked"),
    ({"id": 7, "url": "https://x/a/b.jpeg", "meta": {"prompt": "   "}}, "missing_prompt"),
])  # fmt: skip
def test_edge_shapes_get_a_reason(item, reason):
    row = civitai.item_row(item, civitai.Config(http=HTTP))
    assert row["error"] == reason and row["error_detail"]


def test_integer_nsfw_level_and_string_nsfw_are_read():
    view = civitai.item_row({"id": 1, "url": "https://x/a/b.jpeg", "nsfwLevel": 4, "meta": {"prompt": "p"}},
                            civitai.Config(http=HTTP))["nsfw"]  # fmt: skip
    assert view == {"nsfw": True, "level": "Mature", "browsing_level": 4}
    view = civitai.item_row({"id": 1, "url": "https://x/a/b.jpeg", "nsfw": "Soft", "meta": {"prompt": "p"}},
                            civitai.Config(http=HTTP))["nsfw"]  # fmt: skip
    assert view == {"nsfw": True, "level": "Soft", "browsing_level": None}


def scripted(server: FaultServer, pages: dict[str, dict], down: set[str]) -> list[str]:
    """Answer /api/v1/images from *pages* keyed by the exact cursor received ("" = none); record the cursors."""
    asked: list[str] = []

    def answer(method, query, body):
        cursor = query.get("cursor", [""])[0]
        asked.append(cursor)
        if cursor in down:
            return 503, b'{"error": "Image search is temporarily overloaded"}', "application/json"
        if cursor not in pages:
            return 400, b'{"error": "bad cursor"}', "application/json"
        return 200, json.dumps(pages[cursor]).encode(), "application/json"

    server.handlers["/api/v1/images"] = answer
    return asked


def chain(base: str) -> dict[str, dict]:
    """Five pages in the real shapes, linked by opaque string, numeric and composite cursors; one empty page."""
    empty = {"items": [], "metadata": {"nextCursor": "63864"}}  # Civitai filters after paging: empty ≠ the end
    return {"": load("feed_flat_meta.json", base), "1741104480000|51234569": load("legacy_nested_meta.json", base),
            "101": empty, "63864": load("v1_2023_numeric_cursor.json", base),
            "63861": load("media_and_levels.json", base)}  # fmt: skip


def test_listing_across_real_shapes_resumes_without_gap_or_duplicate(server, tmp_path):
    asked = scripted(server, chain(server.base), down={"101"})
    cfg = civitai.Config(base_url=server.base, limit=3, http=HTTP)
    first = []
    with pytest.raises(RuntimeError, match="http_5xx_exhausted"):
        first.extend(r["source_id"] for r in civitai.list_rows(cfg, tmp_path))
    assert first == ["51234567", "51234568", "51234569", "100", "101"]
    server.handlers.clear()
    asked = scripted(server, chain(server.base), down=set())
    rows = list(civitai.list_rows(cfg, tmp_path))
    assert asked == ["101", "63864", "63861"]  # only the pages not yet saved; cursors sent back exactly
    order = [i["id"] for name in ("feed_flat_meta", "legacy_nested_meta", "v1_2023_numeric_cursor", "media_and_levels")
             for i in load(f"{name}.json")["items"]]  # fmt: skip
    assert [r["source_id"] for r in rows] == [str(i) for i in order]  # every item once, in order
    assert {r["source_id"]: r["error"] for r in rows} == {str(k): v[0] for k, v in EXPECTED.items()}


def test_a_server_paging_in_a_circle_ends_the_listing(server, tmp_path):
    item = load("feed_flat_meta.json", server.base)["items"][0]
    pages = {"": {"items": [item], "metadata": {"nextCursor": "a|1"}},
             "a|1": {"items": [], "metadata": {"nextCursor": "a|1"}}}  # fmt: skip
    asked = scripted(server, pages, down=set())
    rows = list(civitai.list_rows(civitai.Config(base_url=server.base, limit=1, http=HTTP), tmp_path))
    assert [r["source_id"] for r in rows] == ["51234567"] and asked == ["", "a|1"]


def test_a_changed_answer_shape_is_a_clear_error(server, tmp_path):
    scripted(server, {"": {"data": [], "metadata": {}}}, down=set())
    with pytest.raises(RuntimeError, match="without an items list.*API shape changed"):
        list(civitai.list_rows(civitai.Config(base_url=server.base, http=HTTP), tmp_path))


def test_ingest_counts_every_variant(server, tmp_path):
    scripted(server, chain(server.base), down=set())
    for n, item in enumerate(all_items(server.base)):
        path = urlsplit(civitai.full_size_url(item["url"])).path
        server.routes[path] = Route(body=make_jpeg(96, 80, seed=400 + n))
    cfg = {"source": "civitai", "options": {"base_url": server.base, "limit": 3, "http": HTTP}, "download": HTTP,
           "size": 64, "min_size": 32}  # fmt: skip
    run_stage("ingest", cfg, tmp_path / "out", progress=False)
    stats = total_stats(tmp_path / "out")
    assert stats["in"] == len(EXPECTED) and stats["kept"] == 4
    assert stats["rejected"] == {"missing_prompt": 4, "video_item": 1, "audio_item": 1, "civitai_blocked": 1}
    assert not any(p.endswith((".mp4", ".mp3")) for p, _ in server.requests)  # rejected before any download
