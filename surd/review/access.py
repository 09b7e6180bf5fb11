"""Who may use a served review site: a token beyond loopback, localhost names only without one, rate limits.

A token is checked in constant time (`hmac.compare_digest`); it arrives as ``?token=`` in the shared URL (the server
then keeps it in an HttpOnly, SameSite=Strict cookie so images and scripts load), or as ``Authorization: Bearer``.
Without a token the server must be bound to loopback, and it answers only requests addressed to a loopback name,
so a web page that rebinds its own DNS name to 127.0.0.1 cannot reach it either.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import threading
import time
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs, urlsplit

MIN_TOKEN = 16


def is_loopback(host: str) -> bool:
    """Whether binding to *host* keeps the server on this machine (127.0.0.0/8, ::1, localhost)."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything, so treat it as reachable from the network


def host_header_is_loopback(value: str | None) -> bool:
    """Whether an HTTP Host header names this machine by a loopback name (absent: an HTTP/1.0 client, allowed)."""
    if not value:
        return True
    host = urlsplit("//" + value).hostname or ""
    return is_loopback(host)


def new_token() -> str:
    """A random token for a shared review URL (192 bits)."""
    return secrets.token_urlsafe(24)


def token_problem(token: str) -> str | None:
    """Why *token* is too weak to guard a site, or None."""
    if len(token) < MIN_TOKEN:
        return f"--token must be at least {MIN_TOKEN} characters (or leave it out and one is made for you)"
    if not all(c.isalnum() or c in "-_.~" for c in token):
        return "--token may only use letters, digits and - _ . ~ (it goes into a URL)"
    return None


def cookie_name(port: int) -> str:
    return f"surd_review_{port}"  # cookies ignore ports: one name per server, so two sites don't clash


def supplied_token(path: str, headers, port: int) -> tuple[str | None, bool]:
    """(token from the request, whether it came in the URL): Authorization header, then cookie, then ?token=."""
    auth = headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        return auth[7:].strip(), False
    try:
        jar = SimpleCookie(headers.get("Cookie", ""))
    except CookieError:
        jar = SimpleCookie()
    if cookie_name(port) in jar:
        return jar[cookie_name(port)].value, False
    query = parse_qs(urlsplit(path).query).get("token")
    return (query[0], True) if query else (None, False)


def token_matches(supplied: str | None, token: str) -> bool:
    """Constant-time comparison of a supplied token with the site's."""
    return supplied is not None and hmac.compare_digest(supplied.encode(), token.encode())


class RateLimiter:
    """A token bucket per client address: *rate* requests per second on average, bursts up to *burst*."""

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def wait_time(self, client: str) -> float:
        """0 when the request may proceed (and is counted), else the seconds until it would."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[client] = (tokens - 1.0, now)
                return 0.0
            self._buckets[client] = (tokens, now)
            if len(self._buckets) > 10_000:  # forget idle clients so the table stays small
                self._buckets = {c: v for c, v in self._buckets.items() if now - v[1] < 60}
            return (1.0 - tokens) / self.rate
