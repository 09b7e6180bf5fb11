"""The run-wide per-host budget (surd.fetch.budget): one schedule for every thread, worker process and node.

Timing checks are upper bounds only: a logging host on 127.0.0.1 records every arrival, and no 1-second window
may hold more than the limit plus one request of timer slack (a strictly spaced schedule puts at most `rate` in a
half-open second; one late send can close the gap to the next). Load can only make a run slower, never break that.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import zlib
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from surd import shards
from surd.cli import app
from surd.fetch import budget
from surd.fetch.budget import (
    LOCAL,
    BudgetServer,
    BudgetUnreachable,
    SocketBudget,
    group_of,
    process_budget,
    serve_processes,
)
from surd.fetch.http import Client, DownloadConfig
from surd.pipeline import run_pipeline
from surd.runner import total_stats
from tests.fault_server import FaultServer, Route, make_jpeg

SLACK = 1  # requests: one send delayed past the next one's turn
HTTP = {"timeout": 5.0, "retries": 2, "backoff_base": 0.01, "backoff_max": 0.02, "allowed_networks": ["127.0.0.0/8"]}


def max_in_window(times: list[float], width: float = 1.0) -> int:
    """The most arrivals in any half-open window [t, t + width)."""
    times = sorted(times)
    best, j = 0, 0
    for i in range(len(times)):
        while times[i] - times[j] >= width:
            j += 1
        best = max(best, i - j + 1)
    return best


def arrivals(srv: FaultServer) -> list[float]:
    """Every request the host saw (images and robots.txt alike): the budget is per host, not per path."""
    return sorted(t for hits in srv.hits.values() for t in hits)


def test_max_in_window():
    assert max_in_window([0.0, 0.25, 0.5, 0.75, 1.0]) == 4  # a strict 4/s schedule: 4 in any second
    assert max_in_window([0.0, 0.1, 0.2, 0.3, 0.4, 2.0]) == 5 and max_in_window([]) == 0
    assert max_in_window([0.0, 0.99, 1.0, 1.5, 1.98]) == 4


def test_threads_of_one_process_share_the_local_budget():
    def spaced(host: str, n: int, interval: float) -> list[float]:
        stamps: list[float] = []
        lock = threading.Lock()

        def one() -> None:
            LOCAL.wait(host, interval)
            with lock:
                stamps.append(time.monotonic())

        threads = [threading.Thread(target=one) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return sorted(stamps)

    stamps = spaced("a.example", 6, 0.05)
    assert all(b - a >= 0.05 - 0.005 for a, b in zip(stamps, stamps[1:])), stamps
    LOCAL.pause("b.example", 0.3)
    t0 = time.monotonic()
    LOCAL.wait("b.example", 0.0)  # unlimited, but another thread's 429 still holds it off
    assert time.monotonic() - t0 >= 0.29
    assert not LOCAL._queues  # no host's queue outlives its last waiter


def test_budget_server_serves_the_drivers_own_schedule():
    with serve_processes() as address:
        assert address.startswith("unix:") and os.environ[budget.ENV] == address
        assert process_budget() is LOCAL  # the serving process itself skips its socket
        worker = SocketBudget(address.partition(":")[2])  # what a worker process builds from the variable
        worker.pause("c.example", 0.5)
        assert LOCAL.schedule.snapshot()["c.example"] > 0.4  # a worker's 429 reaches the driver's schedule
        t0 = time.monotonic()
        worker.wait("c.example", 0.2)
        assert time.monotonic() - t0 >= 0.45
        stamps = []
        for _ in range(3):
            worker.wait("d.example", 0.1)
            stamps.append(time.monotonic())
            LOCAL.wait("d.example", 0.1)  # the driver's own requests take turns in the same schedule
            stamps.append(time.monotonic())
        assert all(b - a >= 0.1 - 0.005 for a, b in zip(stamps, stamps[1:])), stamps
    assert budget.ENV not in os.environ
    with pytest.raises(BudgetUnreachable, match="did not answer"):  # the driver is gone: a clear error
        worker.wait("c.example", 0.0)


def test_unlimited_hosts_ask_once_per_lease_and_still_see_pauses():
    server = BudgetServer(LOCAL.schedule).start()
    try:
        worker = SocketBudget(server.path)
        for _ in range(50):
            worker.wait("f.example", 0.0)  # no limit: one turn, then a lease
        assert 1 <= server.served < 10
        paused_at = time.monotonic()
        LOCAL.pause("f.example", 0.4)  # another worker's 429
        time.sleep(SocketBudget.LEASE + 0.01)
        worker.wait("f.example", 0.0)
        assert time.monotonic() >= paused_at + 0.4 - 0.005  # seen once the lease ran out
        worker.wait("g.example", 0.0)
        paused_at = time.monotonic()
        worker.pause("g.example", 0.2)  # its own 429 ends its lease at once
        worker.wait("g.example", 0.0)
        assert time.monotonic() >= paused_at + 0.2 - 0.005
    finally:
        server.stop()


def test_hosts_fall_in_stable_groups():
    assert group_of("a.example", 1) == 0
    groups = [group_of(f"img{i}.example", 4) for i in range(200)]
    assert set(groups) == {0, 1, 2, 3} and max(groups.count(g) for g in range(4)) < 80  # spread, not piled up
    assert group_of("img7.example", 4) == zlib.crc32(b"img7.example") % 4  # the same in every process (no hash seed)


@pytest.mark.parametrize("line", [b'["jump", "h.example", 1]\n', b"not json\n", b'["wait", "h.example"]\n'])
def test_budget_server_drops_a_malformed_request_and_serves_the_others(line):
    server = BudgetServer(LOCAL.schedule).start()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as rogue:
            rogue.settimeout(10)
            rogue.connect(server.path)
            rogue.sendall(line)
            assert rogue.recv(16) == b""  # closed, not answered
        SocketBudget(server.path).wait("h.example", 0.0)
        assert server.served == 1
    finally:
        server.stop()


def test_process_budget_reads_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv(budget.ENV, raising=False)
    assert process_budget() is LOCAL
    monkeypatch.setenv(budget.ENV, f"unix:{tmp_path / 'gone.sock'}")
    remote = process_budget()
    assert isinstance(remote, SocketBudget)
    with pytest.raises(BudgetUnreachable, match="gone.sock"):
        remote.wait("e.example", 0.0)
    monkeypatch.setenv(budget.ENV, "tcp:127.0.0.1:1")
    with pytest.raises(ValueError, match="expected unix:<socket path>"):
        process_budget()


def test_a_server_that_cannot_start_says_where(tmp_path):
    server = BudgetServer(LOCAL.schedule)
    server.path = str(tmp_path / "no-such-folder" / "sock")
    with pytest.raises(BudgetUnreachable, match="could not start"):
        server.start()


@pytest.mark.parametrize(("status", "retry_after", "pause"), [(429, None, 0.6), (503, "1", 1.0)])
def test_a_429_or_a_retry_after_pauses_the_host_for_everyone(server, monkeypatch, status, retry_after, pause):
    """A 429 holds every worker off for the backoff its worker waits out (0.6 s here), a Retry-After for as long."""
    monkeypatch.setattr("surd.fetch.http.backoff_delay", lambda attempt, base, cap, ra=None: max(0.6, ra or 0.0))
    server.routes["/busy.jpg"] = Route(body=make_jpeg(16, 16), fail_times=1, fail_status=status,
                                       retry_after=retry_after)
    server.routes["/other.jpg"] = Route(body=make_jpeg(16, 16, seed=1))
    cfg = {**HTTP, "respect_robots": False}
    got: list[object] = []
    busy = threading.Thread(target=lambda: got.append(Client(DownloadConfig(**cfg)).fetch(server.url("/busy.jpg"))))
    busy.start()
    deadline = time.monotonic() + 10
    while LOCAL.schedule.snapshot().get("127.0.0.1", 0.0) < 0.4 and time.monotonic() < deadline:
        time.sleep(0.005)  # until the answer is reported (the spacing alone holds the host 0.1 s, not 0.4)
    other = Client(DownloadConfig(**{**cfg, "rate_limit": 0}))  # another worker's client, unlimited
    assert other.fetch(server.url("/other.jpg")) == make_jpeg(16, 16, seed=1)
    busy.join()
    assert got == [make_jpeg(16, 16)]
    t_busy = server.hits["/busy.jpg"][0]
    assert server.hits["/other.jpg"][0] >= t_busy + pause  # held off by the other's answer though it has no limit


# ------------------------------------------------------------------------------------- 3 local worker processes

RATE = 4.0
SHARDS, PER_SHARD = 3, 10


def _url_list(srv: FaultServer, path: Path, n: int) -> Path:
    lines = []
    for i in range(n):
        srv.routes[f"/img/{i}.jpg"] = Route(body=make_jpeg(96, 80, seed=i))
        lines.append(f'{{"url": "{srv.url(f"/img/{i}.jpg")}", "caption": "image {i}"}}')
    path.write_text("\n".join(lines) + "\n")
    return path


def _run_cli(urls: Path, out: Path) -> None:
    args = ["ingest", "urls", str(urls), "--out", str(out), "--workers", str(SHARDS), "--rate-limit", str(RATE),
            "--allow-private-addresses", "--shard-size", str(PER_SHARD), "--size", "64", "--min-size", "32"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output


def _run_file(urls: Path, out: Path) -> None:
    doc = {"name": "rate", "workers": SHARDS, "stages": [{"stage": "ingest", "config": {
        "source": "urls", "path": str(urls), "shard_size": PER_SHARD, "size": 64, "min_size": 32,
        "download": {"rate_limit": RATE, "allow_private": True}}}]}
    path = out.parent / "rate.yaml"
    path.write_text(yaml.safe_dump(doc))
    results = run_pipeline(path, out.parent / "runs", progress=False)
    assert all(res.ok for _, res in results)
    (out.parent / "runs" / "rate" / "00_ingest").rename(out)


@pytest.mark.parametrize("how", ["cli", "pipeline_file"])
def test_three_workers_stay_within_the_run_wide_rate(server, tmp_path, how):
    """`--rate-limit 4 --workers 3` and a pipeline file's `rate_limit: 4` with `workers: 3` mean the same: the host
    sees at most 4 requests in any second (+1 of timer slack), however the 3 processes interleave."""
    urls = _url_list(server, tmp_path / "urls.jsonl", SHARDS * PER_SHARD)
    out = tmp_path / "out"
    (_run_cli if how == "cli" else _run_file)(urls, out)
    stats = total_stats(out)
    assert stats["shards"] == SHARDS and stats["in"] == stats["kept"] == SHARDS * PER_SHARD
    assert shards.read_config(out)["config"]["download"]["rate_limit"] == RATE  # saved as given, never divided
    times = arrivals(server)
    assert len(times) >= SHARDS * PER_SHARD
    assert max_in_window(times) <= RATE + SLACK, times


def first_image_429(srv: FaultServer, n: int, retry_after: int) -> dict[str, float]:
    """Images served by handlers; the first image request of the run gets 429 + Retry-After. Returns its time."""
    seen: dict[str, float] = {}
    lock = threading.Lock()

    def handler(i: int):
        def answer(method, query, body):
            with lock:
                first = not seen
                if first:
                    seen["at"] = time.monotonic()
                    seen["path"] = f"/img/{i}.jpg"
            if first:
                return 429, b"<html>slow down</html>", "text/html", {"Retry-After": str(retry_after)}
            return 200, make_jpeg(96, 80, seed=i), "image/jpeg"
        return answer

    for i in range(n):
        srv.handlers[f"/img/{i}.jpg"] = handler(i)
    return seen


def check_429_held_everyone_off(srv: FaultServer, seen: dict[str, float], retry_after: float) -> None:
    """Between a 429 and the end of its Retry-After the host sees at most the requests sent before the pause was
    reported (at most 2 at 4/s), and the request that got it is retried only after the pause."""
    t429, times = seen["at"], arrivals(srv)
    during = [t - t429 for t in times if t429 < t < t429 + retry_after]
    assert len(during) <= 2, during
    assert min(t for t in srv.hits[seen["path"]] if t > t429) >= t429 + retry_after
    after = [t for t in times if t >= t429 + retry_after]
    assert len(after) >= 2 * RATE, "the run was already over when the pause ended: nothing was held off"


def test_a_429_from_one_worker_holds_off_all_three(server, tmp_path):
    n = SHARDS * 8
    seen = first_image_429(server, n, retry_after=2)
    (tmp_path / "urls.jsonl").write_text("".join(f'{{"url": "{server.url(f"/img/{i}.jpg")}", "caption": "c{i}"}}\n'
                                                 for i in range(n)))
    doc = {"name": "held", "workers": SHARDS, "stages": [{"stage": "ingest", "config": {
        "source": "urls", "path": str(tmp_path / "urls.jsonl"), "shard_size": 8, "size": 64, "min_size": 32,
        "download": {**HTTP, "rate_limit": RATE}}}]}
    (tmp_path / "held.yaml").write_text(yaml.safe_dump(doc))
    results = run_pipeline(tmp_path / "held.yaml", tmp_path / "runs", progress=False)
    assert all(res.ok for _, res in results) and results[0][1].stats["kept"] == n
    check_429_held_everyone_off(server, seen, 2.0)
    assert max_in_window(arrivals(server)) <= RATE + SLACK
