"""Web sources against the fault server: Civitai cursor listing and resume, Lexica, URL lists, DiffusionDB."""

from __future__ import annotations

import json
import zipfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from surd.fetch import archive as zip_fetch
from surd.sources import civitai, diffusiondb, lexica, urls
from tests.fault_server import FaultServer, Route, make_jpeg

HTTP = {"timeout": 1.0, "retries": 1, "backoff_base": 0.01, "backoff_max": 0.02, "rate_limit": 0,
        "allowed_networks": ["127.0.0.0/8"]}  # fmt: skip


@pytest.fixture
def server():
    with FaultServer() as srv:
        yield srv


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


def test_lexica(server, tmp_path):
    def hit(i, **kw):
        return {"id": f"lx{i}", "src": server.url(f"/lexica/{i}.jpg"), "prompt": f"a cat {i}", "width": 512,
                "height": 768, "seed": str(i), "model": "lexica-aperture-v2", "nsfw": False, **kw}  # fmt: skip

    server.lexica = {"cat": [hit(0), hit(1, nsfw=True), hit(2, prompt="")], "dog": [hit(3)]}
    cfg = lexica.Config(queries=("cat", "dog"), base_url=server.base, http=HTTP)
    rows = list(lexica.list_rows(cfg, tmp_path))
    assert [r["source_id"] for r in rows] == ["lx0", "lx1", "lx2", "lx3"]
    assert [r["error"] for r in rows] == [None, "nsfw", "missing_prompt", None]
    assert rows[0]["extra"]["model"] == "lexica-aperture-v2" and rows[0]["extra"]["query"] == "cat"
    assert rows[3]["image"] == server.url("/lexica/3.jpg")
    before = server.count("/api/v1/search")
    assert len(list(lexica.list_rows(cfg, tmp_path))) == 4 and server.count("/api/v1/search") == before
    with pytest.raises(ValueError, match="query"):
        lexica.Config(queries=())


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "parquet"])
def test_url_lists_img2dataset_columns(tmp_path, fmt):
    recs = [{"URL": "https://example.com/a.jpg", "TEXT": "a red fox", "similarity": "0.3"},
            {"URL": "https://example.com/b.jpg", "TEXT": "", "similarity": "0.4"},
            {"URL": "", "TEXT": "no url", "similarity": "0.1"}]  # fmt: skip
    path = tmp_path / f"list.{fmt}"
    if fmt == "parquet":
        pq.write_table(pa.Table.from_pylist(recs), path)
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in recs) + "[1, 2]\n")
    else:
        sep = "," if fmt == "csv" else "\t"
        path.write_text("\n".join([sep.join(recs[0])] + [sep.join(r.values()) for r in recs]) + "\n")
    rows = list(urls.list_rows(urls.Config(path=str(path))))
    assert rows[0]["image"] == "https://example.com/a.jpg" and rows[0]["complex_prompt"] == "a red fox"
    assert rows[0]["source_id"] == "https://example.com/a.jpg" and rows[0]["extra"] == {"similarity": "0.3"}
    assert [r["error"] for r in rows[:3]] == [None, "missing_prompt", "missing_url"]
    if fmt == "jsonl":
        assert rows[3]["error"] == "bad_row"


def test_url_list_explicit_columns_and_errors(tmp_path):
    path = tmp_path / "l.csv"
    path.write_text("id,link2,words\n7,https://e.com/x.png,hello\n")
    with pytest.raises(ValueError, match="--url-col"):
        list(urls.list_rows(urls.Config(path=str(path))))
    rows = list(urls.list_rows(urls.Config(path=str(path), url_col="link2", caption_col="words", id_col="id")))
    assert rows[0]["source_id"] == "7" and rows[0]["image"] == "https://e.com/x.png"
    with pytest.raises(FileNotFoundError):
        urls.Config(path=str(tmp_path / "nope.csv"))


def make_diffusiondb(root, n_per_part=3, parts=(1, 2)):
    """A miniature DiffusionDB: metadata.parquet + images/part-NNNNNN.zip with real (PNG) images."""
    (root / "images").mkdir(parents=True)
    recs = []
    for p in parts:
        with zipfile.ZipFile(root / "images" / f"part-{p:06d}.zip", "w") as zf:
            for j in range(n_per_part):
                name = f"img-{p}-{j}.png"
                zf.writestr(name, make_jpeg(80, 80, seed=p * 10 + j))  # a JPEG under a .png name, as files go
                recs.append({"image_name": name, "prompt": f"prompt {p} {j}", "part_id": p, "seed": j, "step": 50,
                             "cfg": 7.0, "sampler": 8, "width": 512, "height": 512, "user_name": "u",
                             "timestamp": None, "image_nsfw": 0.9 if j == 2 else 0.1, "prompt_nsfw": 0.0})  # fmt: skip
            zf.writestr(f"part-{p:06d}.json", "{}")
    recs.append({**recs[0], "image_name": "ghost.png", "prompt": "listed but not in the zip"})
    pq.write_table(pa.Table.from_pylist(recs), root / "metadata.parquet")
    return root / "metadata.parquet"


def test_diffusiondb_rows_filters_and_zip_fetch(tmp_path):
    meta = make_diffusiondb(tmp_path / "ddb")
    rows = list(diffusiondb.list_rows(diffusiondb.Config(path=str(meta), max_image_nsfw=0.5)))
    assert len(rows) == 7
    assert [r["error"] for r in rows if r["source_id"].endswith("-2.png")] == ["nsfw_image", "nsfw_image"]
    assert rows[0]["image"] == f"zip:{tmp_path / 'ddb' / 'images' / 'part-000001.zip'}#ghost.png"
    assert rows[0]["license"] == "CC0-1.0" and rows[1]["extra"]["seed"] == 0 and rows[1]["nsfw"]["image_nsfw"] == 0.1
    only2 = list(diffusiondb.list_rows(diffusiondb.Config(path=str(meta), part_ids=(2,))))
    assert {r["extra"]["part_id"] for r in only2} == {2} and len(only2) == 3
    got = zip_fetch.fetch_many([r["image"] for r in rows] + ["zip:/nowhere.zip#a.png", "zip:broken"], {})
    assert got[0].reason == "missing_in_zip"
    assert got[1] == make_jpeg(80, 80, seed=10)
    assert got[-2].reason == "missing_file" and got[-1].reason == "invalid_ref"
    assert zip_fetch.fetch_many([rows[1]["image"]], {"max_bytes": 10})[0].reason == "too_large"


def test_diffusiondb_remote_parts_are_downloaded_once(server, tmp_path):
    meta = make_diffusiondb(tmp_path / "ddb", parts=(1,))
    server.routes["/ddb/metadata.parquet"] = Route(body=meta.read_bytes(), content_type="application/octet-stream")
    zip_bytes = (tmp_path / "ddb" / "images" / "part-000001.zip").read_bytes()
    server.routes["/ddb/images/part-000001.zip"] = Route(body=zip_bytes, content_type="application/zip")
    http = {**HTTP, "cache_dir": str(tmp_path / "cache")}
    cfg = diffusiondb.Config(path=server.url("/ddb/metadata.parquet"), http=http)
    rows = list(diffusiondb.list_rows(cfg))
    assert rows[1]["image"] == f"zip:{server.url('/ddb/images/part-000001.zip')}#img-1-0.png"
    first = zip_fetch.fetch_many([r["image"] for r in rows[1:]], http)
    again = zip_fetch.fetch_many([rows[2]["image"]], http)
    assert first[0] == make_jpeg(80, 80, seed=10) and again[0] == first[1]
    assert server.count("/ddb/images/part-000001.zip") == 1 and server.count("/ddb/metadata.parquet") == 1


def test_url_list_with_a_non_utf8_line_keeps_the_rest(tmp_path):
    path = tmp_path / "l.csv"
    path.write_bytes(b"url,caption\nhttps://e.com/a.jpg,a fox\nhttps://e.com/b.jpg,caf\xe9\nhttps://e.com/c.jpg,a cat\n")
    rows = list(urls.list_rows(urls.Config(path=str(path))))
    assert [r["complex_prompt"] for r in rows if not r["error"]] == ["a fox", "a cat"]
    assert [r["error"] for r in rows if r["error"]] == ["bad_encoding"]
