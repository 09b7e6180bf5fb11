"""robots.txt: RFC 9309 rules for surd's product token, once per origin and run, through the guarded client."""

from __future__ import annotations

import threading

import pytest
from typer.testing import CliRunner

from surd import shards
from surd.cli import app
from surd.fetch.http import Client, DownloadConfig
from surd.fetch.result import FetchError
from surd.fetch.robots import RobotsCache, product_token, robots_url
from surd.runner import run_stage, total_stats
from surd.sources import civitai
from tests.conftest import REPO
from tests.fault_server import FAST_HTTP, Route, make_jpeg

FIXTURES = REPO / "tests" / "fixtures" / "robots"
HTTP = FAST_HTTP
UA = "surd/0.1.0 (+https://github.com/surd-dev/surd)"


def cache_serving(answer: bytes | FetchError) -> tuple[RobotsCache, list[str]]:
    asked: list[str] = []

    def fetch(url: str) -> bytes | FetchError:
        asked.append(url)
        return answer

    return RobotsCache(fetch, UA), asked


def test_product_token_and_robots_url():
    assert product_token(UA) == "surd" and product_token("MyBot/2.0") == "MyBot" and product_token("solo") == "solo"
    assert robots_url("HTTPS://Example.COM:8443/a/b?c=1#d") == "https://example.com:8443/robots.txt"


@pytest.mark.parametrize("path, allowed", [
    ("/", True), ("/example/page.html", True),  # the surd group replaces the * group entirely
    ("/private/x.jpg", False), ("/private/public/x.jpg", True),  # longest match wins
    ("/img/a.php", False), ("/img/a.php?x=1", True),  # `$` anchors the end
    ("/robots.txt", True),
])  # fmt: skip
def test_rfc9309_rules_for_surds_group(path, allowed):
    cache, _ = cache_serving((FIXTURES / "rfc9309_example.txt").read_bytes())
    verdict = cache.check(f"https://example.com{path}")
    assert (verdict is None) == allowed, verdict
    if not allowed:
        assert verdict.reason == "robots_disallowed" and "surd" in verdict.detail


def test_other_agents_fall_back_to_the_star_group():
    cache, _ = cache_serving((FIXTURES / "rfc9309_example.txt").read_bytes())
    cache.agent = "otherbot"
    assert cache.check("https://example.com/example/x") is not None and cache.check("https://example.com/a.gif")
    assert cache.check("https://example.com/publications/x") is None


@pytest.mark.parametrize("answer, reason", [
    (FetchError("http_404", "x"), None), (FetchError("http_403", "x"), None), (FetchError("empty_response", "x"), None),
    (FetchError("too_many_redirects", "x"), None),  # unavailable: allowed
    (FetchError("http_5xx_exhausted", "x"), "robots_unreachable"), (FetchError("timeout", "x"), "robots_unreachable"),
    (FetchError("http_429_exhausted", "x"), "robots_unreachable"),
    (FetchError("connection_error", "x"), "robots_unreachable"),  # unreachable: everything disallowed
    (FetchError("ssrf_blocked", "10.0.0.1"), "ssrf_blocked"), (FetchError("tls_error", "x"), "tls_error"),
])  # fmt: skip
def test_unreadable_robots_per_rfc9309(answer, reason):
    cache, asked = cache_serving(answer)
    verdicts = [cache.check(f"https://example.com/a/{i}.jpg") for i in range(3)]
    assert [v.reason if v else None for v in verdicts] == [reason] * 3
    assert asked == ["https://example.com/robots.txt"]  # asked once, remembered for the run


def test_verdicts_expire_unreachable_sooner():
    now = [0.0]
    answers = [FetchError("http_5xx_exhausted", "down"), b"User-agent: *\nDisallow: /no/\n"]
    asked: list[str] = []
    cache = RobotsCache(lambda url: asked.append(url) or answers[min(len(asked), 2) - 1], UA, clock=lambda: now[0])
    assert cache.check("https://a.test/x").reason == "robots_unreachable"
    now[0] = 599.0
    assert cache.check("https://a.test/x").reason == "robots_unreachable" and len(asked) == 1
    now[0] = 601.0  # ten minutes on: asked again, now readable
    assert cache.check("https://a.test/x") is None and cache.check("https://a.test/no/1").reason == "robots_disallowed"
    now[0] = 601.0 + 24 * 3600 - 1
    assert cache.check("https://a.test/x") is None and len(asked) == 2
    now[0] = 601.0 + 24 * 3600 + 1  # a day on: asked again (RFC 9309 §2.4)
    cache.check("https://a.test/x")
    assert len(asked) == 3


def test_one_fetch_per_origin_even_under_concurrency():
    calls: list[str] = []
    gate = threading.Event()

    def slow_fetch(url: str) -> bytes:
        calls.append(url)
        gate.wait(1)
        return b"User-agent: *\nDisallow: /no/\n"

    cache = RobotsCache(slow_fetch, UA)
    results: list[object] = []
    threads = [threading.Thread(target=lambda i=i: results.append(cache.check(f"https://a.test/no/{i}")))
               for i in range(16)]  # fmt: skip
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join()
    assert calls == ["https://a.test/robots.txt"] and len(results) == 16 and all(results)
    assert cache.check("http://a.test/no/1") is not None and len(calls) == 2  # another scheme is another origin


def test_ingest_rejects_disallowed_images_and_counts_them(server, connections, tmp_path):
    rules = (FIXTURES / "rfc9309_example.txt").read_bytes()
    server.routes["/robots.txt"] = Route(body=rules, content_type="text/plain")
    paths = [f"/private/{i}.jpg" for i in range(6)] + [f"/private/public/{i}.jpg" for i in range(2)] + ["/ok.jpg"]
    for i, p in enumerate(paths):
        server.routes[p] = Route(body=make_jpeg(96, 80, seed=600 + i))
    (tmp_path / "l.csv").write_text("url,caption\n" + "".join(f"{server.url(p)},a photo {i}\n"
                                                             for i, p in enumerate(paths)))  # fmt: skip
    cfg = {"source": "urls", "path": str(tmp_path / "l.csv"), "download": {**HTTP, "threads": 8}, "size": 64,
           "min_size": 32, "shard_size": 4}  # fmt: skip
    run_stage("ingest", cfg, tmp_path / "out", progress=False)
    stats = total_stats(tmp_path / "out")
    assert stats["kept"] == 3 and stats["rejected"] == {"robots_disallowed": 6}
    assert server.count("/robots.txt") == 1  # once per origin and run, across shards and threads
    assert all(server.count(p) == 0 for p in paths[:6])  # a disallowed URL is never requested
    details = [r["detail"] for s in shards.list_done(tmp_path / "out") for r in shards.read_sidecar(tmp_path / "out", s)
               if r["reason"] == "robots_disallowed"]  # fmt: skip
    assert len(details) == 6 and all("robots.txt disallows" in d for d in details)

    cfg["download"] = {**cfg["download"], "respect_robots": False}
    run_stage("ingest", cfg, tmp_path / "ignored", progress=False)
    assert total_stats(tmp_path / "ignored")["kept"] == 9


def test_unreachable_robots_disallows_that_origin_only(server, tmp_path):
    server.routes["/robots.txt"] = Route(body=b"", fail_times=99, fail_status=503)
    server.routes["/a.jpg"] = Route(body=make_jpeg(seed=1))
    client = Client(DownloadConfig(**HTTP))
    result = client.fetch(server.url("/a.jpg"))
    assert isinstance(result, FetchError) and result.reason == "robots_unreachable" and "RFC 9309" in result.detail
    assert server.count("/robots.txt") == 2 and server.count("/a.jpg") == 0  # robots.txt retried, then remembered
    assert client.fetch(server.url("/a.jpg")).reason == "robots_unreachable" and server.count("/robots.txt") == 2


def test_every_redirect_hop_is_checked_against_its_own_origin(server):
    server.routes["/robots.txt"] = Route(body=b"User-agent: *\nDisallow: /private/\n", content_type="text/plain")
    port = server.base.rsplit(":", 1)[1]
    server.routes["/hop.jpg"] = Route(redirect=f"http://localhost:{port}/private/x.jpg")
    result = Client(DownloadConfig(**HTTP)).fetch(server.url("/hop.jpg"))
    assert isinstance(result, FetchError) and result.reason == "robots_disallowed"
    assert f"localhost:{port}/robots.txt" in result.detail and server.count("/robots.txt") == 2  # two origins


def test_civitais_real_robots_stops_the_api_listing_unless_ignored(server, tmp_path):
    server.routes["/robots.txt"] = Route(body=(FIXTURES / "civitai.com.txt").read_bytes(), content_type="text/plain")
    cfg = civitai.Config(base_url=server.base, http=HTTP)
    with pytest.raises(RuntimeError, match=r"robots_disallowed.*--ignore-robots"):
        list(civitai.list_rows(cfg, tmp_path / "a"))
    assert server.count("/api/v1/images") == 0
    rows = list(civitai.list_rows(civitai.Config(base_url=server.base, http={**HTTP, "respect_robots": False}),
                                  tmp_path / "b"))  # fmt: skip
    assert rows == [] and server.count("/api/v1/images") == 1


def test_cli_ignore_robots_is_saved_in_the_config(server, tmp_path):
    server.routes["/robots.txt"] = Route(body=b"User-agent: surd\nDisallow: /\n", content_type="text/plain")
    server.routes["/c.jpg"] = Route(body=make_jpeg(96, 80, seed=9))
    (tmp_path / "l.csv").write_text(f"url,caption\n{server.url('/c.jpg')},a cat\n")
    base = ["ingest", "urls", str(tmp_path / "l.csv"), "--allow-private-addresses", "--rate-limit", "0", "--size", "64",
            "--min-size", "32"]  # fmt: skip
    polite = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "polite")])
    assert polite.exit_code == 0, polite.output
    assert "respect_robots" not in shards.read_config(tmp_path / "polite")["config"]["download"]  # the default
    assert total_stats(tmp_path / "polite")["rejected"] == {"robots_disallowed": 1}
    rude = CliRunner().invoke(app, [*base, "--ignore-robots", "--out", str(tmp_path / "rude")])
    assert rude.exit_code == 0, rude.output
    assert shards.read_config(tmp_path / "rude")["config"]["download"]["respect_robots"] is False
    assert total_stats(tmp_path / "rude")["kept"] == 1
