"""The Civitai source against the fault server: listing parameters, token handling, cursor resume, limits."""

from __future__ import annotations

import pytest

from surd.sources import civitai
from tests.fault_server import FAST_HTTP, FaultServer

HTTP = FAST_HTTP


def civitai_item(i: int, srv: FaultServer, prompt: bool = True) -> dict:
    meta = {"prompt": f"masterpiece, castle {i}", "negativePrompt": "blurry", "seed": i, "steps": 20,
            "cfgScale": 7, "sampler": "Euler a", "Model": "dreamshaper"} if prompt else None  # fmt: skip
    return {"id": 1000 + i, "url": srv.url(f"/xG1/uuid-{i}/width=450/{1000 + i}.jpeg"), "width": 768,
            "height": 512, "nsfw": False, "nsfwLevel": "None", "browsingLevel": 1, "baseModel": "SD 1.5",
            "username": f"user{i}", "postId": 7, "meta": meta}  # fmt: skip


def test_full_size_url():
    base = "https://image.civitai.com/xG1nkqKTMzGDvpLrqFT7WA/1a2b-uuid"
    assert civitai.full_size_url(f"{base}/width=450/123.jpeg") == f"{base}/original=true/123.jpeg"
    assert civitai.full_size_url(f"{base}/width=450,optimized=true/123.jpeg") == f"{base}/original=true/123.jpeg"
    assert civitai.full_size_url(f"{base}/123.jpeg") == f"{base}/original=true/123.jpeg"


def test_civitai_listing_params_rows_and_token(server, tmp_path, monkeypatch):
    server.civitai_items = [civitai_item(i, server, prompt=i != 4) for i in range(7)]
    monkeypatch.setenv("CIVITAI_API_TOKEN", "s3cret-token")
    cfg = civitai.Config(base_url=server.base, limit=3, model_id=42, base_models=("SD 1.5",), nsfw="None",
                         sort="Newest", period="Week", http=HTTP)
    rows = list(civitai.list_rows(cfg, tmp_path))
    assert [r["source_id"] for r in rows] == [str(1000 + i) for i in range(7)]
    api = [(p, h) for p, h in server.requests if p.startswith("/api/v1/images")]
    assert len(api) == 3  # 3 + 3 + 1 items
    assert all("withMeta=true" in p and "limit=3" in p and "modelId=42" in p and "baseModels=SD+1.5" in p
               and "nsfw=None" in p and "sort=Newest" in p and "period=Week" in p for p, _ in api)  # fmt: skip
    assert "cursor" not in api[0][0] and "cursor=3%7C" in api[1][0]
    assert all(h.get("Authorization") == "Bearer s3cret-token" for _, h in api)
    assert "s3cret-token" not in (tmp_path / "civitai_pages.jsonl").read_text()
    r0 = rows[0]
    assert r0["image"].endswith("/uuid-0/original=true/1000.jpeg") and r0["complex_prompt"] == "masterpiece, castle 0"
    assert r0["negative_prompt"] == "blurry" and r0["error"] is None
    assert {"seed": 0, "steps": 20, "cfgScale": 7, "sampler": "Euler a", "model": "dreamshaper",
            "base_model": "SD 1.5", "username": "user0", "image_id": 1000, "width": 768}.items() <= r0["extra"].items()
    assert r0["nsfw"]["level"] == "None"
    assert rows[4]["error"] == "missing_prompt" and rows[4]["complex_prompt"] is None


def test_civitai_interrupted_listing_resumes_without_duplicate_or_gap(server, tmp_path):
    server.civitai_items = [civitai_item(i, server) for i in range(11)]
    server.civitai_fail_cursors = {f"6|{1700000003}"}  # the third page is down
    cfg = civitai.Config(base_url=server.base, limit=3, http=HTTP)
    first = []
    with pytest.raises(RuntimeError, match="http_5xx_exhausted"):
        for row in civitai.list_rows(cfg, tmp_path):
            first.append(row["source_id"])
    assert first == [str(1000 + i) for i in range(6)]
    # A crash while the next page was being written leaves a torn line: it is dropped and that page refetched.
    with open(tmp_path / "civitai_pages.jsonl", "a") as f:
        f.write('{"cursor": "6|17000')
    server.civitai_fail_cursors.clear()
    before = len(server.requests)
    second = [r["source_id"] for r in civitai.list_rows(cfg, tmp_path)]
    assert second == [str(1000 + i) for i in range(11)]  # every item once, in order
    asked = [p for p, _ in server.requests[before:] if p.startswith("/api/v1/images")]
    assert len(asked) == 2 and "cursor=6%7C" in asked[0] and "cursor=9%7C" in asked[1]  # only the missing pages
    before = len(server.requests)
    assert [r["source_id"] for r in civitai.list_rows(cfg, tmp_path)] == second  # finished: replayed, no request
    assert len(server.requests) == before
    with pytest.raises(ValueError, match="different query"):
        list(civitai.list_rows(civitai.Config(base_url=server.base, limit=3, username="x", http=HTTP), tmp_path))


def test_civitai_max_items_and_validation(server, tmp_path):
    server.civitai_items = [civitai_item(i, server) for i in range(10)]
    rows = list(civitai.list_rows(civitai.Config(base_url=server.base, limit=3, max_items=4, http=HTTP), tmp_path))
    assert len(rows) == 4 and server.count("/api/v1/images") == 2
    for bad in ({"limit": 500}, {"sort": "Best"}, {"period": "Decade"}, {"nsfw": "Maybe"}, {"browsing_level": 64},
                {"base_url": "ftp://x"}, {"http": {"threads": 0}}):  # fmt: skip
        with pytest.raises(ValueError):
            civitai.Config(**bad)


def test_an_append_asks_the_ended_listing_again_and_goes_on(server, tmp_path):
    """Sort Oldest: new images join the listing's end. The append run asks the last page again (its end grew),
    follows the new cursors, and yields every item once, old ones replayed from the saved pages."""
    server.civitai_items = [civitai_item(i, server) for i in range(7)]
    cfg = civitai.Config(base_url=server.base, limit=2, sort="Oldest", http=HTTP)
    ids = lambda rows: [int(r["source_id"]) - 1000 for r in rows]  # noqa: E731
    assert ids(civitai.list_rows(cfg, tmp_path)) == list(range(7))
    server.civitai_items += [civitai_item(i, server) for i in range(7, 12)]
    assert ids(civitai.list_rows(cfg, tmp_path)) == list(range(7))  # no append: the saved listing, no request
    before = len(server.requests)
    assert ids(civitai.list_rows(cfg, tmp_path, append=True)) == list(range(12))
    asked = [p for p, _ in server.requests[before:] if p.startswith("/api/v1/images")]
    assert [p.split("cursor=")[1].split("&")[0] for p in asked] == ["6%7C1700000004", "8%7C1700000006",
                                                                   "10%7C1700000008"]
    before = len(server.requests)
    assert ids(civitai.list_rows(cfg, tmp_path)) == list(range(12))  # the appended listing replays as saved
    assert len(server.requests) == before
    assert ids(civitai.list_rows(cfg, tmp_path, append=True)) == list(range(12))  # nothing new: only the re-ask
    assert len(server.requests) == before + 1
