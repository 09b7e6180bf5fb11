"""Fuzzing the review API (hypothesis): any body or path gets an answer, 2xx or 4xx, never a 5xx or a dropped
connection; a deeply nested body is a 400."""

from __future__ import annotations

import http.client
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.review.test_review import JSON
from tests.review.test_server_team import fake_site, running

JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=20,
)
KEYS = [f"{i:016x}" for i in range(3)]
DECISIONS = st.fixed_dictionaries(
    {"decisions": st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=20)),
                                  st.one_of(JSON_VALUES, st.fixed_dictionaries(
                                      {"decision": st.one_of(st.sampled_from(["keep", "drop", "skip", ""]),
                                                             JSON_VALUES),
                                       "note": JSON_VALUES, "base": JSON_VALUES})), max_size=3)},
    optional={"reviewer": JSON_VALUES, "format": JSON_VALUES, "version": JSON_VALUES},
)
BODIES = st.one_of(DECISIONS.map(lambda d: json.dumps(d).encode()), JSON_VALUES.map(lambda d: json.dumps(d).encode()),
                   st.binary(min_size=1, max_size=200))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    site = tmp_path_factory.mktemp("site") / "rev"
    fake_site(site, 3)
    with running(site) as srv:
        yield srv


def _ask(port: int, method: str, path: str, body: bytes | None = None) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.request(method, path, body=body, headers=JSON if body is not None else {})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=BODIES)
def test_any_body_gets_a_2xx_or_4xx(server, body):
    status = _ask(server.server_port, "POST", "/api/decisions", body)
    assert 200 <= status < 500, (status, body[:200])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=40))
def test_any_path_gets_a_2xx_or_4xx(server, path):
    status = _ask(server.server_port, "GET", "/" + path.lstrip("/"))
    assert 200 <= status < 500, (status, path)


@pytest.mark.parametrize("depth", [2_000, 100_000])
def test_a_deeply_nested_body_is_a_400_not_a_dropped_connection(server, depth):
    body = b"[" * depth + b"]" * depth
    if len(body) > 1_000_000:
        pytest.skip("over the server's body limit")
    assert _ask(server.server_port, "POST", "/api/decisions", body) in (400, 413)
