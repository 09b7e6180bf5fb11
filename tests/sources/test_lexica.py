"""The Lexica source's search endpoint against the fault server."""

from __future__ import annotations

import pytest

from surd.sources import lexica
from tests.fault_server import FAST_HTTP

HTTP = FAST_HTTP


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


def test_an_append_asks_every_query_again_and_adds_what_is_new(server, tmp_path):
    def hit(i):
        return {"id": f"lx{i}", "src": server.url(f"/lexica/{i}.jpg"), "prompt": f"a cat {i}"}

    server.lexica = {"cat": [hit(0), hit(1)], "dog": [hit(2)]}
    cfg = lexica.Config(queries=("cat", "dog"), base_url=server.base, http=HTTP)
    assert [r["source_id"] for r in lexica.list_rows(cfg, tmp_path)] == ["lx0", "lx1", "lx2"]
    server.lexica = {"cat": [hit(3), hit(0), hit(1)], "dog": [hit(2), hit(4)]}  # the search's answers grew
    assert [r["source_id"] for r in lexica.list_rows(cfg, tmp_path)] == ["lx0", "lx1", "lx2"]
    appended = [r["source_id"] for r in lexica.list_rows(cfg, tmp_path, append=True)]
    assert appended == ["lx0", "lx1", "lx3", "lx2", "lx4"]  # each query's earlier answer, then what it lacked
    before = server.count("/api/v1/search")
    assert [r["source_id"] for r in lexica.list_rows(cfg, tmp_path)] == appended
    assert server.count("/api/v1/search") == before
