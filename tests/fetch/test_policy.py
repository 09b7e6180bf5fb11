"""The network rules (surd.fetch.policy): SSRF address policy, rate limiting, backoff, Retry-After, opt-out."""

from __future__ import annotations

import datetime
import ipaddress

import pytest

from surd.fetch.policy import (
    AddressPolicy,
    BlockedAddress,
    HostSchedule,
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


def test_host_schedule_spaces_turns_per_host_and_pauses_after_retry_after():
    now = [100.0]
    schedule = HostSchedule(clock=lambda: now[0])
    assert schedule.try_take("a", 0.25) == 0.0  # the first request goes at once; "a" is busy for 0.25 s
    assert schedule.try_take("a", 0.25) == pytest.approx(0.25)  # not a turn: wait that long, nothing taken
    assert schedule.try_take("b", 0.25) == 0.0  # another host is not held back
    now[0] += 0.25
    assert schedule.try_take("a", 0.25) == 0.0
    schedule.pause("a", 2.0)  # a Retry-After: 2 holds every later turn off, whoever asks
    assert schedule.try_take("a", 0.25) == pytest.approx(2.0)
    schedule.pause("a", 0.5)  # a shorter pause never shortens a longer one
    assert schedule.try_take("a", 0.25) == pytest.approx(2.0)
    assert schedule.try_take("c", 0.0) == 0.0 and schedule.try_take("c", 0.0) == 0.0  # unlimited: always a turn
    assert schedule.snapshot() == {"a": pytest.approx(2.0)}  # "b" is free again: only hosts still held off
    other = HostSchedule(clock=lambda: 5.0)  # another owner, another clock: the waits carry over, not the times
    other.restore(schedule.snapshot())
    assert other.try_take("a", 0.25) == pytest.approx(2.0) and other.try_take("b", 0.25) == 0.0
    schedule.clear()
    assert schedule.try_take("a", 0.25) == 0.0


def test_host_schedule_forgets_free_hosts_but_never_a_held_one():
    now = [0.0]
    schedule = HostSchedule(clock=lambda: now[0])
    schedule.pause("held.example", 100.0)
    for i in range(5000):
        schedule.try_take(f"h{i}.example", 1.0)
    now[0] = 2.0  # every h*.example is free again
    for i in range(5000, 10000):
        schedule.try_take(f"h{i}.example", 1.0)
    assert len(schedule) < 6000  # a URL list naming millions of hosts does not keep them all
    assert schedule.try_take("held.example", 1.0) == pytest.approx(98.0)
    assert schedule.try_take("h9999.example", 1.0) == pytest.approx(1.0)

