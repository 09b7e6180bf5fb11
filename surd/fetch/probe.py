"""Is a web API's host there at all? One name lookup and one TCP connect, no retries: an offline run stops at once
instead of backing off through every retry of every request."""

from __future__ import annotations

from urllib.parse import urlsplit

from urllib3.util import connection

from surd.fetch.http import DownloadConfig
from surd.fetch.policy import AddressPolicy, BlockedAddress, resolve_checked

PROBE_TIMEOUT = 5.0  # seconds for the connect; a host that answers at all answers well within this


class Unreachable(ConnectionError):
    """A host that cannot be reached; the message says why (name lookup, refused, timed out, blocked)."""


def check_reachable(url: str, cfg: DownloadConfig, timeout: float = PROBE_TIMEOUT) -> None:
    """Resolve *url*'s host (through the SSRF guard, like every request) and open one TCP connection to it."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        ip = resolve_checked(host, port, AddressPolicy(cfg.allow_private, cfg.allowed_networks))
    except BlockedAddress as e:
        raise Unreachable(f"{host} is a private or reserved address, which the SSRF guard refuses ({e}); "
                          "allow it with allow_private / allowed_networks in the http options") from e
    except (OSError, ValueError) as e:
        raise Unreachable(f"the name {host} cannot be resolved ({e})") from e
    try:
        connection.create_connection((ip, port), timeout=min(timeout, cfg.timeout)).close()
    except TimeoutError as e:
        raise Unreachable(f"{host}:{port} did not answer within {min(timeout, cfg.timeout):.0f} s") from e
    except OSError as e:
        raise Unreachable(f"{host}:{port} refused or dropped the connection ({e.strerror or e})") from e
