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
