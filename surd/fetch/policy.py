"""Network safety and politeness rules for the HTTP client: SSRF address policy, per-host request schedule, backoff,
Retry-After and X-Robots-Tag opt-out."""

from __future__ import annotations

import email.utils
import ipaddress
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class BlockedAddress(Exception):
    """A URL's host resolves to an address the SSRF guard refuses."""


@dataclass(frozen=True)
class AddressPolicy:
    """Which resolved addresses may be contacted.

    By default only globally routable unicast addresses: loopback, private (RFC 1918, ULA), link-local (cloud
    metadata at 169.254.169.254), CGNAT, multicast, reserved and unspecified addresses are refused.
    `allow_private` lifts the guard entirely; `allowed_networks` lifts it for listed CIDRs only (e.g. 127.0.0.0/8
    for a local test server while 10.0.0.0/8 stays blocked).
    """

    allow_private: bool = False
    allowed_networks: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for net in self.allowed_networks:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError as e:
                raise ValueError(f"allowed_networks: {net!r} is not a CIDR network like '127.0.0.0/8' ({e})") from e

    def permits(self, ip: IPAddress) -> bool:
        if self.allow_private:
            return True
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1
        if any(ip in ipaddress.ip_network(n, strict=False) for n in self.allowed_networks):
            return True
        return ip.is_global and not ip.is_multicast


def resolve_checked(host: str, port: int, policy: AddressPolicy) -> str:
    """Resolve *host* and return one permitted IP to connect to; raise BlockedAddress if any address is refused.

    Every address the name resolves to must pass, and the caller connects to the returned IP itself (not the
    name again), so a DNS answer cannot change between the check and the connection (DNS rebinding).
    """
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
        addresses = [literal]
    except ValueError:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]
    if not addresses:
        raise socket.gaierror(f"{host} resolved to no address")
    for ip in addresses:
        if not policy.permits(ip):
            raise BlockedAddress(f"{host} resolves to {ip}, a non-public address (pass allow_private to permit)")
    return str(addresses[0])


class HostSchedule:
    """When each host may next be sent a request: per-host spacing plus pauses after Retry-After. State only, no
    waiting: `surd.fetch.budget` waits on it (threads in one process, or one owner serving every worker of a run).

    Thread-safe. Every request takes a turn with `try_take(host, interval)`: 0 when it may go now (the host is then
    busy for `interval` seconds), else how long until it may. `pause(host, seconds)` holds the host off for every
    later turn, whichever worker got the 429.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._next: dict[str, float] = {}  # host → earliest time of its next request
        self._lock = threading.Lock()
        self._prune_at = 4096  # hosts held before free ones are forgotten (a URL list can name millions)

    def try_take(self, host: str, interval: float) -> float:
        with self._lock:
            now = self._clock()
            ready = self._next.get(host, 0.0)
            if ready > now:
                return ready - now
            self._next[host] = now + interval
            if len(self._next) > self._prune_at:  # amortised: the next sweep waits until the table doubles
                self._next = {h: t for h, t in self._next.items() if t > now}
                self._prune_at = max(4096, 2 * len(self._next))
            return 0.0

    def __len__(self) -> int:
        return len(self._next)

    def pause(self, host: str, seconds: float) -> None:
        with self._lock:
            until = self._clock() + seconds
            self._next[host] = max(self._next.get(host, 0.0), until)

    def clear(self) -> None:
        """Forget every host (a test, or a new run in a long-lived process that wants a clean slate)."""
        with self._lock:
            self._next.clear()

    def snapshot(self) -> dict[str, float]:
        """{host: seconds until it is free}: how this schedule hands its state to another owner (another clock)."""
        with self._lock:
            now = self._clock()
            return {host: t - now for host, t in self._next.items() if t > now}

    def restore(self, waits: dict[str, float]) -> None:
        """Hold each host off for at least the seconds a `snapshot` says."""
        for host, seconds in waits.items():
            self.pause(host, seconds)


def backoff_delay(attempt: int, base: float, cap: float, retry_after: float | None = None) -> float:
    """Exponential backoff with full jitter; never less than the server's Retry-After."""
    delay = random.uniform(0, min(cap, base * (2 ** (attempt - 1))))
    return max(delay, retry_after or 0.0)


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date; None when absent or unparseable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def opted_out(x_robots_tag: str | None) -> bool:
    """True when an X-Robots-Tag header carries noai/noimageai (img2dataset's convention), for any user agent."""
    if not x_robots_tag:
        return False
    for part in x_robots_tag.lower().replace(";", ",").split(","):
        directive = part.strip().rsplit(":", 1)[-1].strip()  # "surdbot: noai" → "noai"
        if directive in ("noai", "noimageai"):
            return True
    return False
