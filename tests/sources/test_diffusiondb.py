"""The DiffusionDB source: metadata rows, nsfw filters, part zips read once (local and remote)."""

from __future__ import annotations

import zipfile

import pyarrow as pa
import pyarrow.parquet as pq

from surd.fetch import archive as zip_fetch
from surd.sources import diffusiondb
from tests.fault_server import FAST_HTTP, Route, make_jpeg

HTTP = FAST_HTTP


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
