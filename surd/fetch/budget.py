"""The per-host rate budget of a whole run: one schedule that every worker process and every node shares.

`rate_limit` means requests per second per host for the whole run, however many processes and nodes fetch. Before
each request a process waits its turn on `process_budget()` (`wait(host, interval)`); a 429 or Retry-After that any
worker gets is reported with `pause(host, seconds)` and holds the host off for all of them. Where the schedule
lives:

- in this process (`LOCAL`): the default, the driver's own, and all a run in one process needs;
- a local process pool: the driver serves its own schedule on a Unix socket (`serve_processes`) named in the
  workers' environment (`SURD_RATE_BUDGET`), so the driver's requests (listing pages) and theirs share it;
- Ray: actors named ``surd-rate-budget-<k>`` in the run's Ray job (`serve_ray`), one per host group (a host's group
  is a hash of its name), which every worker on every node asks.

The owner holds each request until its turn instead of handing out future send times, so a Retry-After reported
meanwhile delays the requests already queued too, not only later ones: one round trip per request to a limited
host, no batching (a batch would be a set of future send times a pause could no longer move); a host with no limit
is asked once per 50 ms lease (`RemoteBudget`).
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, Protocol

from surd.fetch.policy import HostSchedule

ENV = "SURD_RATE_BUDGET"  # "unix:<socket path>": the run's budget, for worker processes the driver starts
ACTOR = "surd-rate-budget"  # Ray actors surd-rate-budget-<k> hold a Ray run's budget, in the run's job namespace
MAX_GROUPS = 16  # at most this many budget actors (host groups) on Ray


class BudgetUnreachable(RuntimeError):
    """A worker cannot reach its run's budget (the driver or the budget actor went away)."""


class Budget(Protocol):
    def wait(self, host: str, interval: float) -> None:
        """Return when a request to *host* may be sent; *host* is then busy for *interval* seconds."""

    def pause(self, host: str, seconds: float) -> None:
        """Hold every worker off *host* for *seconds* (a 429 or Retry-After)."""


class LocalBudget:
    """A schedule waited on by the threads of this process: one waiter per host polls it, the others queue."""

    def __init__(self, schedule: HostSchedule | None = None) -> None:
        self.schedule = schedule or HostSchedule()
        self._queues: dict[str, list] = {}  # host → [lock, threads using it]; dropped when none is (millions of hosts)
        self._guard = threading.Lock()

    def wait(self, host: str, interval: float) -> None:
        with self._guard:
            queue = self._queues.setdefault(host, [threading.Lock(), 0])
            queue[1] += 1
        try:
            with queue[0]:
                while (delay := self.schedule.try_take(host, interval)) > 0:
                    time.sleep(delay)  # a pause meanwhile is seen when it wakes: it checks again
        finally:
            with self._guard:
                queue[1] -= 1
                if not queue[1]:
                    del self._queues[host]

    def pause(self, host: str, seconds: float) -> None:
        self.schedule.pause(host, seconds)


class AsyncBudget:
    """The same waiting, for an owner that serves many workers from one event loop (the socket server, the actor)."""

    def __init__(self, schedule: HostSchedule) -> None:
        self.schedule = schedule
        self._queues: dict[str, list] = {}  # host → [lock, requests using it]; dropped when none is

    async def wait(self, host: str, interval: float) -> None:
        queue = self._queues.setdefault(host, [asyncio.Lock(), 0])  # one event loop: no race between these lines
        queue[1] += 1
        try:
            async with queue[0]:
                while (delay := self.schedule.try_take(host, interval)) > 0:
                    await asyncio.sleep(delay)
        finally:
            queue[1] -= 1
            if not queue[1]:
                del self._queues[host]

    def try_now(self, host: str, interval: float) -> bool:
        """Take the host's turn if it is free now and no request is queued for it (the server's fast path)."""
        return host not in self._queues and self.schedule.try_take(host, interval) == 0

    async def pause(self, host: str, seconds: float) -> None:
        self.schedule.pause(host, seconds)

    async def snapshot(self) -> dict[str, float]:
        return self.schedule.snapshot()


LOCAL = LocalBudget()  # this process's schedule: what a driver serves, and every process's budget without a server
_SERVED: set[str] = set()  # budget addresses this process serves itself (its own requests skip the socket)


def process_budget() -> Budget:
    """The budget requests from this process wait on: the run's shared one when there is one, else `LOCAL`."""
    address = os.environ.get(ENV, "")
    if address and address not in _SERVED:
        return _socket_budget(address)
    return _ray_budget() or LOCAL


class RemoteBudget(ABC):
    """A worker's side of a budget another process owns: one round trip per request to a host with a rate limit.

    A host without one (interval 0) has nothing to take turns for, only pauses to honour: a turn there is a lease
    for `LEASE` seconds, in which this process sends to that host without asking again. Another worker's pause
    reaches it within that time; its own pause ends its lease at once.
    """

    LEASE = 0.05

    def __init__(self) -> None:
        self._leases: dict[str, float] = {}  # host → until when unlimited requests go without asking

    def wait(self, host: str, interval: float) -> None:
        if interval <= 0 and self._leases.get(host, 0.0) > time.monotonic():
            return
        self._call("wait", host, interval)
        if interval <= 0:
            self._leases[host] = time.monotonic() + self.LEASE

    def pause(self, host: str, seconds: float) -> None:
        self._leases.pop(host, None)
        self._call("pause", host, seconds)

    @abstractmethod
    def _call(self, op: str, host: str, value: float) -> None:
        """Send one request ("wait" or "pause") to the owner; return when it answered."""


# ------------------------------------------------------------------------------------------ local worker processes


class BudgetServer:
    """The driver's schedule served on a Unix socket (a private temp folder) from an event loop in a thread.

    One JSON line per request, ``["wait", host, interval]`` or ``["pause", host, seconds]``, answered ``ok`` when
    done: a wait is answered when the request may be sent. Each worker thread's connection has one request in
    flight at a time; a turn that is free at once is answered without a coroutine (most of a turn's cost).
    """

    def __init__(self, schedule: HostSchedule) -> None:
        self._dir = tempfile.mkdtemp(prefix="surd-budget-")  # mode 0700: only this user reaches the socket
        self.path = os.path.join(self._dir, "sock")
        self._budget = AsyncBudget(schedule)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.served = 0  # requests answered
        self._connections: set[_Connection] = set()
        self._waiting: set[asyncio.Task] = set()  # waits not answered yet (referenced, so none is collected)
        self._thread = threading.Thread(target=self._serve, name="surd-rate-budget", daemon=True)

    def start(self) -> BudgetServer:
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None or not self._ready.is_set():
            self.stop()
            raise BudgetUnreachable(f"could not start the run's rate budget server at {self.path}: {self._error}")
        atexit.register(self.stop)  # its folder goes even when the run that started it is abandoned, not closed
        return self

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            serving = self._loop.create_unix_server(lambda: _Connection(self), path=self.path, backlog=4096)
            server = self._loop.run_until_complete(serving)  # a deep backlog: every worker thread connects at once
        except OSError as e:
            self._error = e
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        server.close()
        for connection in list(self._connections):
            connection.transport.close()
        pending = [t for t in asyncio.all_tasks(self._loop) if not t.done()]
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(server.wait_closed(), *pending, return_exceptions=True))
        self._loop.close()

    def request(self, connection: _Connection, line: bytes) -> None:
        """Answer one request line now, or once its turn comes; a malformed line drops the connection."""
        try:
            op, host, value = json.loads(line)
            host, value = str(host), float(value)
            if op not in ("wait", "pause"):
                raise ValueError(op)
        except (ValueError, TypeError):
            connection.transport.close()
            return
        if op == "pause":
            self._budget.schedule.pause(host, value)
        elif not self._budget.try_now(host, value):
            task = self._loop.create_task(self._budget.wait(host, value))
            self._waiting.add(task)
            task.add_done_callback(lambda done: self._answered(done, connection))
            return
        self.served += 1
        connection.transport.write(b"ok\n")

    def _answered(self, task: asyncio.Task, connection: _Connection) -> None:
        self._waiting.discard(task)
        if not task.cancelled() and not connection.transport.is_closing():
            self.served += 1
            connection.transport.write(b"ok\n")

    def stop(self) -> None:
        atexit.unregister(self.stop)
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        shutil.rmtree(self._dir, ignore_errors=True)


class _Connection(asyncio.Protocol):
    """One worker thread's connection to `BudgetServer`: splits what arrives into request lines."""

    def __init__(self, server: BudgetServer) -> None:
        self.server = server
        self.transport: Any = None
        self._buffer = b""

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.server._connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server._connections.discard(self)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            self.server.request(self, line)


class SocketBudget(RemoteBudget):
    """A worker process's side of `BudgetServer`: a few kept-open connections, one request at a time on each."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self._free: list[socket.socket] = []
        self._lock = threading.Lock()

    def _call(self, op: str, host: str, value: float) -> None:
        with self._lock:
            sock = self._free.pop() if self._free else None
        try:
            if sock is None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.connect(self.path)
            sock.sendall(json.dumps([op, host, value]).encode() + b"\n")
            reply = b""
            while not reply.endswith(b"\n"):  # b"ok\n", almost always in one piece
                chunk = sock.recv(16)
                if not chunk:
                    raise ConnectionError("the budget server closed the connection")
                reply += chunk
            if reply != b"ok\n":
                raise ConnectionError(f"the budget server answered {reply!r}")
        except OSError as e:
            if sock is not None:
                sock.close()
            raise BudgetUnreachable(f"the run's rate budget (unix:{self.path}, served by the process that started "
                                    f"the run) did not answer: {e}") from None
        with self._lock:
            self._free.append(sock)


@lru_cache(maxsize=4)
def _socket_budget(address: str) -> SocketBudget:
    scheme, _, path = address.partition(":")
    if scheme != "unix" or not path:
        raise ValueError(f"{ENV}={address!r}: expected unix:<socket path> (set by surd's local executor for its "
                         "worker processes); unset it to limit each process on its own")
    return SocketBudget(path)


@contextmanager
def serve_processes() -> Iterator[str]:
    """Serve this process's schedule to the worker processes started meanwhile (they inherit `SURD_RATE_BUDGET`).

    In a process that already has a run-wide budget (a worker, or a nested pool) its children inherit that one.
    Yields the address.
    """
    if os.environ.get(ENV):
        yield os.environ[ENV]
        return
    server = BudgetServer(LOCAL.schedule).start()
    address = f"unix:{server.path}"
    _SERVED.add(address)
    os.environ[ENV] = address
    try:
        yield address
    finally:
        if os.environ.get(ENV) == address:
            del os.environ[ENV]
        _SERVED.discard(address)
        server.stop()


# ---------------------------------------------------------------------------------------------------------- Ray


class BudgetActor(AsyncBudget):
    """One host group of a Ray run's budget (an async actor: each worker's wait is a coroutine answered when its
    request may go). The first group's actor also tells workers how many groups there are."""

    def __init__(self, waits: dict[str, float], groups: int) -> None:
        super().__init__(HostSchedule())
        self.schedule.restore(waits)
        self._groups = groups

    async def groups(self) -> int:
        return self._groups


def group_of(host: str, groups: int) -> int:
    """The budget actor that owns *host*: the same on every worker and node."""
    return zlib.crc32(host.encode()) % groups


class RayBudget(RemoteBudget):
    """A Ray worker's side of the `BudgetActor`s, found by name in its job; looked up again when a new run replaced
    them (this worker process served an earlier run too)."""

    def __init__(self, ray: Any) -> None:
        super().__init__()
        self.ray = ray
        self._actors: list[Any] = []

    def _lookup(self) -> list[Any]:
        try:
            first = self.ray.get_actor(f"{ACTOR}-0")
            groups = self.ray.get(first.groups.remote())
            return [first, *(self.ray.get_actor(f"{ACTOR}-{k}") for k in range(1, groups))]
        except ValueError:
            raise BudgetUnreachable(f"no rate budget actor {ACTOR!r} in this Ray job: fetch through surd's ray "
                                    "executor, which starts it for each run") from None

    def _call(self, method: str, host: str, value: float) -> None:
        for attempt in range(2):
            actors = self._actors or self._lookup()
            self._actors = actors
            try:
                self.ray.get(getattr(actors[group_of(host, len(actors))], method).remote(host, value))
                return
            except self.ray.exceptions.RayActorError as e:
                self._actors = []  # an earlier run's actors: look up this run's
                if attempt:
                    raise BudgetUnreachable(f"the run's rate budget actor {ACTOR!r} is gone: {e}") from None


_RAY: list[RayBudget] = []  # this process's RayBudget, once it knows it is a Ray worker


def _ray_budget() -> RayBudget | None:
    """In a Ray worker process, the run's budget actor; None elsewhere (a driver keeps `LOCAL`)."""
    if _RAY:
        return _RAY[0]
    ray = sys.modules.get("ray")  # a Ray worker always has ray imported; other processes need not import it
    if ray is None or not ray.is_initialized() or ray.get_runtime_context().worker.mode != ray.WORKER_MODE:
        return None
    _RAY.append(RayBudget(ray))
    return _RAY[0]


@contextmanager
def serve_ray(ray: Any, groups: int | None = None) -> Iterator[list[Any]]:
    """Start this run's budget: one actor per host group (`groups`, default one per live node up to `MAX_GROUPS`,
    so the budget's capacity grows with the cluster), each holding off what the driver's schedule holds off; at the
    end, hand their state back to the driver's schedule (the next stage goes on from it) and kill them.

    The actors start while the run's workers do (names are registered at once, so workers find them; a first
    request waits until its actor is up): a stage that fetches nothing does not wait (1-2 s on a loaded machine).
    An actor whose node is lost is restarted elsewhere and the turns it was asked for are asked again; its hosts'
    spacing starts afresh there.
    """
    from ray.util import list_named_actors  # ray: optional heavy dependency

    for name in list_named_actors():  # left by an earlier run of this job that did not end cleanly
        if name.startswith(f"{ACTOR}-"):
            ray.kill(ray.get_actor(name))
    groups = groups or max(1, min(MAX_GROUPS, sum(1 for node in ray.nodes() if node.get("Alive"))))
    waits = LOCAL.schedule.snapshot()
    actors = [ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1, max_concurrency=100_000,
                         name=f"{ACTOR}-{k}", scheduling_strategy="SPREAD")(BudgetActor).remote(waits, groups)
              for k in range(groups)]
    try:
        yield actors
    finally:
        try:  # actors not up within a second served no one: nothing to hand back
            for held in ray.get([a.snapshot.remote() for a in actors], timeout=1.0):
                LOCAL.schedule.restore(held)
        except Exception:  # a lost actor only loses its waits; the run's result does not depend on them
            pass
        for actor in actors:
            ray.kill(actor)
