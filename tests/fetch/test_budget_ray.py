"""The run-wide per-host budget on a real two-node Ray cluster (2 nodes × 2 workers, `ray start` on 127.0.0.1): every
worker on every node waits on the budget actor of the host's group, so the host sees the run's rate, and a 429 one
worker gets holds all of them off."""

from __future__ import annotations

import pytest

from surd.fetch.budget import ACTOR, serve_ray
from surd.runner import run_stage
from tests.executors.test_ray_multinode import cluster  # noqa: F401 (the two-node cluster fixture, reused)
from tests.fetch.test_budget import (
    HTTP,
    RATE,
    SLACK,
    arrivals,
    check_429_held_everyone_off,
    first_image_429,
    max_in_window,
)

ray = pytest.importorskip("ray")
list_named_actors = pytest.importorskip("ray.util").list_named_actors
pytestmark = [pytest.mark.ray, pytest.mark.s3]


def _urls(server, path, n: int) -> str:
    path.write_text("".join(f'{{"url": "{server.url(f"/img/{i}.jpg")}", "caption": "c{i}"}}\n' for i in range(n)))
    return str(path)


def test_two_nodes_of_two_workers_share_one_budget(cluster, server, tmp_path):  # noqa: F811 (the fixture)
    n = 4 * 6
    seen = first_image_429(server, n, retry_after=2)
    cfg = {"source": "urls", "path": _urls(server, tmp_path / "urls.jsonl", n), "shard_size": 6, "size": 64,
           "min_size": 32, "download": {**HTTP, "rate_limit": RATE}}
    res = run_stage("ingest", cfg, tmp_path / "out", executor="ray", address=cluster.address, progress=False)
    assert res.ok and res.stats["kept"] == n and len(res.done) == 4, res.failed
    assert len([node for node in ray.nodes() if node["Alive"]]) == 2
    assert max_in_window(arrivals(server)) <= RATE + SLACK
    check_429_held_everyone_off(server, seen, 2.0)
    assert not [name for name in list_named_actors() if name.startswith(ACTOR)]  # gone with the run

    # A second run: the workers Ray reuses find the new run's actor (their handle to the first one is dead).
    server.hits.clear()
    cfg2 = {**cfg, "path": _urls(server, tmp_path / "urls2.jsonl", 8), "shard_size": 2}
    again = run_stage("ingest", cfg2, tmp_path / "out2", executor="ray", address=cluster.address, progress=False)
    assert again.ok and again.stats["kept"] == 8, again.failed
    assert max_in_window(arrivals(server)) <= RATE + SLACK
    with serve_ray(ray) as actors:
        assert len(actors) == 2  # one host group per live node: the budget's capacity grows with the cluster
