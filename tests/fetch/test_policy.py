"""The network rules (surd.fetch.policy): SSRF address policy, rate limiting, backoff, Retry-After, opt-out."""

from __future__ import annotations

import datetime
import ipaddress
import time

import pytest

from surd.fetch.policy import (
    AddressPolicy,
    BlockedAddress,
    HostLimiter,
    backoff_delay,
    opted_out,
    parse_retry_after,
    resolve_checked,
)


def test_address_policy():
    strict = AddressPolicy()
    for addr in ("10.1.2.3", "192.168.0.1", "172.16.0.1", "127.0.0.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
                 "::1", "fe80::1", "fc00::1", "::ffff:10.0.0.1", "224.0.0.1"):  # fmt: skip
        assert not strict.permits(ipaddress.ip_address(addr)), addr
    assert strict.permits(ipaddress.ip_address("93.184.216.34"))
    assert AddressPolicy(allowed_networks=("127.0.0.0/8",)).permits(ipaddress.ip_address("127.0.0.1"))
    assert not AddressPolicy(allowed_networks=("127.0.0.0/8",)).permits(ipaddress.ip_address("10.0.0.1"))
    assert AddressPolicy(allow_private=True).permits(ipaddress.ip_address("10.0.0.1"))
    with pytest.raises(ValueError, match="CIDR"):
        AddressPolicy(allowed_networks=("not-a-net",))


def test_resolve_checked_refuses_before_any_connection():
    assert resolve_checked("127.0.0.1", 80, AddressPolicy(allowed_networks=("127.0.0.0/8",))) == "127.0.0.1"
    with pytest.raises(BlockedAddress, match="169.254.169.254"):
        resolve_checked("169.254.169.254", 80, AddressPolicy())
    with pytest.raises(BlockedAddress):
        resolve_checked("[::1]", 80, AddressPolicy())


def test_retry_after_backoff_and_opt_out():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=30)
    assert 25 <= parse_retry_after(later.strftime("%a, %d %b %Y %H:%M:%S GMT")) <= 31
    delays = [backoff_delay(a, 1.0, 4.0) for a in (1, 2, 3, 5) for _ in range(50)]
    assert all(0 <= d <= 4.0 for d in delays)  # full jitter under the cap
    assert backoff_delay(1, 1.0, 4.0, retry_after=9.0) >= 9.0  # never sooner than the server asked
    assert opted_out("noai") and opted_out("noindex, NoImageAI") and opted_out("surdbot: noai")
    assert not opted_out("noindex") and not opted_out(None)


def test_host_limiter_spaces_requests_and_pauses_after_retry_after():
    limiter = HostLimiter(20.0)  # one request every 50 ms per host
    t0 = time.monotonic()
    for _ in range(4):
        limiter.wait("a")
    assert time.monotonic() - t0 >= 0.14
    t0 = time.monotonic()
    limiter.wait("b")  # another host is not held back
    assert time.monotonic() - t0 < 0.04
    limiter.pause("b", 0.1)
    t0 = time.monotonic()
    limiter.wait("b")
    assert time.monotonic() - t0 >= 0.08
