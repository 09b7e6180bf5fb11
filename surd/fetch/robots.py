"""robots.txt for every host surd fetches from: fetched once per origin through the guarded client, cached per run.

Rules are RFC 9309's, evaluated by protego (longest match wins, ``*`` and ``$`` patterns, Allow wins a tie) for the
product token of surd's user agent (``surd`` for ``surd/0.1.0 (+https://…)``), falling back to the ``*`` group.
How a robots.txt that cannot be read is treated (RFC 9309 §2.3.1):

- 2xx: parsed (only the first 500 KiB, the minimum the RFC asks crawlers to read).
- 4xx ("unavailable", 404 above all) and an empty body: no rules, everything allowed.
- 5xx, 429 after the retries, timeouts, refused or reset connections ("unreachable"): everything on that origin is
  disallowed, reason ``robots_unreachable``, until robots.txt is asked again ten minutes later.
- A redirect loop or more redirects than allowed: treated as unavailable (allowed), as the RFC permits.
- A robots.txt URL the SSRF guard or the scheme check refuses, or whose host fails DNS or TLS: the page gets that
  same reason (it is on the same host, so it could not be fetched either).

A verdict is kept for the run (the client lives for one process and config), at most 24 hours as the RFC asks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

from protego import Protego

from surd.fetch.result import FetchError

MAX_ROBOTS_BYTES = 500 * 1024
TTL = 24 * 3600.0  # RFC 9309 §2.4: a cached robots.txt is used for at most 24 hours
UNREACHABLE_TTL = 600.0  # how long "unreachable, so disallow all" stands before robots.txt is asked again
_UNAVAILABLE = ("redirect_loop", "too_many_redirects", "empty_response")
_SAME_AS_PAGE = ("ssrf_blocked", "unsupported_scheme", "invalid_url", "tls_error", "dns_error")


def product_token(user_agent: str) -> str:
    """``surd/0.1.0 (+https://x)`` → ``surd``: the name robots.txt groups are matched against."""
    return user_agent.strip().split("/", 1)[0].split(" ", 1)[0] or user_agent.strip()


def robots_url(url: str) -> str:
    """The robots.txt that governs *url* (same scheme, host and port)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), "/robots.txt", "", ""))


class _Verdict:
    """What one origin's robots.txt says: a parsed file, allow-all, or disallow-all (unreachable)."""

    def __init__(self, rules: Protego | None = None, error: FetchError | None = None) -> None:
        self.rules = rules
        self.error = error
        self.expires = 0.0


class RobotsCache:
    """Per-origin robots.txt verdicts. ``fetch(url)`` must GET a URL without consulting this cache."""

    def __init__(self, fetch: Callable[[str], bytes | FetchError], user_agent: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch, self._clock = fetch, clock
        self.agent = product_token(user_agent)
        self._verdicts: dict[str, _Verdict] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def check(self, url: str) -> FetchError | None:
        """None when *url* may be fetched, else a FetchError (robots_disallowed, robots_unreachable, …)."""
        if urlsplit(url).path == "/robots.txt":
            return None
        verdict = self._verdict(robots_url(url))
        if verdict.error is not None:
            return verdict.error
        if verdict.rules is None or verdict.rules.can_fetch(url, self.agent):
            return None
        return FetchError("robots_disallowed", f"{robots_url(url)} disallows {url} for user agent {self.agent!r}")

    def _verdict(self, robots: str) -> _Verdict:
        with self._lock:
            hit = self._verdicts.get(robots)
            if hit is not None and hit.expires > self._clock():
                return hit
            origin_lock = self._locks.setdefault(robots, threading.Lock())
        with origin_lock:  # one fetch per origin even when many threads ask at once
            hit = self._verdicts.get(robots)
            if hit is None or hit.expires <= self._clock():
                hit = self._load(robots)
                unreachable = hit.error is not None and hit.error.reason == "robots_unreachable"
                hit.expires = self._clock() + (UNREACHABLE_TTL if unreachable else TTL)
                with self._lock:
                    self._verdicts[robots] = hit
            return hit

    def _load(self, robots: str) -> _Verdict:
        body = self._fetch(robots)
        if isinstance(body, FetchError):
            return _verdict_for_error(robots, body)
        text = body[:MAX_ROBOTS_BYTES].decode("utf-8", errors="replace")
        return _Verdict(rules=Protego.parse(text))


def _verdict_for_error(robots: str, error: FetchError) -> _Verdict:
    reason = error.reason
    if reason in _SAME_AS_PAGE:
        return _Verdict(error=error)
    status = reason[5:] if reason.startswith("http_") else ""
    if reason in _UNAVAILABLE or (status.isdigit() and 400 <= int(status) < 500 and status != "429"):
        return _Verdict()  # unavailable: no rules
    detail = f"{robots} unreachable ({reason}: {error.detail}); RFC 9309 says assume everything is disallowed"
    return _Verdict(error=FetchError("robots_unreachable", detail))
