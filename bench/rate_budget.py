"""What the run-wide rate budget costs: requests/s with the shared budget vs the old per-process limiter, unlimited.

P worker processes (spawned, as the local executor starts them) × T threads each fetch N small JPEGs from a local
HTTP server (its own process) through `surd.fetch.http.Client` with no limit that binds, so no request is ever held
back and only the budget's own cost shows: once with every process limiting alone (no ``SURD_RATE_BUDGET``: the old
behaviour, one schedule per process, no round trip) and once with every process waiting on the driver's budget
server (`surd.fetch.budget.serve_processes`). Two limits: ``rate_limit: 0`` (unlimited: a worker asks the server
once per host and lease, `RemoteBudget.LEASE`) and ``rate_limit: 1e6`` (a limit that never binds here but makes
every request take a turn: one Unix-socket round trip per request, what any real limit costs). Rounds alternate,
the best of each side counts (requests/s, and the CPU per request of the workers and the driver together, which
load disturbs less than wall time). Also the bare cost of one turn, in a worker process: in-process vs over the socket,
and with ``--ray`` to a budget actor on a local one-node Ray cluster from a Ray task.

    python bench/rate_budget.py                # 2 processes x 8 threads x 1,500 requests, 3 rounds
    python bench/rate_budget.py --quick        # 2 x 8 x 500, 2 rounds
    python bench/rate_budget.py --ray          # also the Ray actor's round trip (starts a local Ray)

The last line is ``ratio shared / per-process requests/s: <r>``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from surd.fetch import budget  # noqa: E402
from surd.fetch.http import Client, DownloadConfig  # noqa: E402

RATES = (0.0, 1e6)  # unlimited (leases), and a limit that never binds but takes a turn per request
BODY = b"\xff\xd8\xff\xe0" + b"\0" * 2044  # JPEG magic bytes: the client's image checks pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the pools reuse connections, as against a real image host
    disable_nagle_algorithm = True  # headers and body are two writes: without this each answer waits ~40 ms

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, format: str, *args: object) -> None:
        return


def _serve(port: mp.Value) -> None:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    port.value = httpd.server_address[1]
    httpd.serve_forever()


def _fetch_worker(base: str, n: int, threads: int, start_at: float, rate: float) -> tuple[float, float]:
    """(seconds, CPU seconds of all its threads) this process takes for n fetches with `threads` threads (after a
    warm-up), starting at start_at."""
    cfg = DownloadConfig(rate_limit=rate, threads=threads, allowed_networks=("127.0.0.0/8",), respect_robots=False)
    client = Client(cfg)
    urls = [f"{base}/{i}.jpg" for i in range(n)]
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(client.fetch, urls[: threads * 4]))
        time.sleep(max(0.0, start_at - time.time()))
        t0, c0 = time.perf_counter(), time.process_time()
        got = list(pool.map(client.fetch, urls))
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert all(g == BODY for g in got), "the server did not answer every request"
    return seconds, cpu


def fetch_rate(base: str, processes: int, threads: int, n: int, rate: float) -> tuple[float, float]:
    """(requests/s, client CPU us per request) of `processes` worker processes fetching together: total requests /
    the slowest process; the CPU of the workers' timed part plus this process's (where the budget server runs)."""
    ctx = mp.get_context("spawn")
    c0 = time.process_time()
    with ProcessPoolExecutor(processes, mp_context=ctx) as pool:
        start_at = time.time() + 3.0  # every process imported and warmed up by then
        done = list(pool.map(_fetch_worker, [base] * processes, [n] * processes, [threads] * processes,
                             [start_at] * processes, [rate] * processes))
    cpu = sum(c for _, c in done) + time.process_time() - c0
    return processes * n / max(s for s, _ in done), 1e6 * cpu / (processes * n)


def _call_worker(n: int) -> float:
    """Turns/s (a 1 us limit that never binds, one thread) in this process, through whatever budget it finds."""
    found = budget.process_budget()
    found.wait("bench.example", 1e-6)
    t0 = time.perf_counter()
    for _ in range(n):
        found.wait("bench.example", 1e-6)
    return n / (time.perf_counter() - t0)


def call_rate(n: int) -> float:
    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        return pool.submit(_call_worker, n).result()


def ray_call_rate(n: int) -> float:
    # A local cluster as the tests start them: no auth token written to ~/.ray (it would change what every later
    # `ray start` on this machine expects), no usage stats sent.
    os.environ.update(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
    import ray  # optional heavy dependency: only with --ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        with budget.serve_ray(ray):
            return ray.get(ray.remote(num_cpus=1)(_call_worker).remote(n))
    finally:
        ray.shutdown()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--requests", type=int, default=1500, help="per process and round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--ray", action="store_true", help="also time a call to the Ray budget actor")
    args = ap.parse_args()
    if args.quick:
        args.requests, args.rounds = 500, 2
    os.environ.pop(budget.ENV, None)
    ctx = mp.get_context("spawn")
    port = ctx.Value("i", 0)
    server = ctx.Process(target=_serve, args=(port,), daemon=True)
    server.start()
    while not port.value:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port.value}"
    print(f"{args.processes} processes x {args.threads} threads x {args.requests} requests, server {base}")
    best: dict[tuple[float, str], float] = {}
    cpu: dict[tuple[float, str], float] = {}
    try:
        for r in range(args.rounds):
            line = []
            for rate in RATES:
                alone, alone_cpu = fetch_rate(base, args.processes, args.threads, args.requests, rate)
                with budget.serve_processes():
                    shared, shared_cpu = fetch_rate(base, args.processes, args.threads, args.requests, rate)
                best[rate, "alone"] = max(best.get((rate, "alone"), 0.0), alone)
                best[rate, "shared"] = max(best.get((rate, "shared"), 0.0), shared)
                cpu[rate, "alone"] = min(cpu.get((rate, "alone"), 1e9), alone_cpu)
                cpu[rate, "shared"] = min(cpu.get((rate, "shared"), 1e9), shared_cpu)
                line.append(f"rate_limit {rate:g}: per-process {alone:,.0f} req/s {alone_cpu:.0f} us CPU/req, "
                            f"shared {shared:,.0f} req/s {shared_cpu:.0f} us CPU/req")
            print(f"round {r + 1}: {'; '.join(line)} (load average {os.getloadavg()[0]:.1f})")
        local_calls = call_rate(20_000)
        with budget.serve_processes():
            socket_calls = call_rate(20_000)
        print(f"one turn: in-process {1e6 / local_calls:.1f} us ({local_calls:,.0f}/s), over the socket "
              f"{1e6 / socket_calls:.1f} us ({socket_calls:,.0f}/s)")
        if args.ray:
            actor_calls = ray_call_rate(2_000)
            print(f"one turn at the Ray actor from a Ray task: {1e6 / actor_calls:.0f} us ({actor_calls:,.0f}/s)")
    finally:
        server.terminate()
    for rate in RATES:
        print(f"best at rate_limit {rate:g}: per-process {best[rate, 'alone']:,.0f} req/s, shared "
              f"{best[rate, 'shared']:,.0f} req/s, ratio {best[rate, 'shared'] / best[rate, 'alone']:.3f}; CPU "
              f"{cpu[rate, 'alone']:.0f} vs {cpu[rate, 'shared']:.0f} us/request "
              f"(+{cpu[rate, 'shared'] - cpu[rate, 'alone']:.0f} us)")
    print(f"ratio shared / per-process requests/s: {best[0.0, 'shared'] / best[0.0, 'alone']:.3f}")


if __name__ == "__main__":
    main()
