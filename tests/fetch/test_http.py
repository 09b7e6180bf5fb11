"""The downloader against the fault-injection server: retries, backoff, limits, checks and the SSRF guard."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import certifi
import pytest

from surd.fetch import FetchError
from surd.fetch.http import DownloadConfig, client_for, fetch_many
from tests.fault_server import FaultServer, Route, make_bomb_png, make_jpeg

JPEG = make_jpeg(32, 32, seed=1)
FAST = dict(timeout=0.6, retries=2, backoff_base=0.02, backoff_max=0.05, rate_limit=0, allowed_networks=["127.0.0.0/8"])


def fetch(srv: FaultServer, path: str, **overrides) -> bytes | FetchError:
    return fetch_many([srv.url(path)], {**FAST, **overrides})[0]


CASES = {
    "ok": (Route(body=JPEG), JPEG, 1),
    "503_then_ok": (Route(body=JPEG, fail_times=2, fail_status=503), JPEG, 3),
    "500_forever": (Route(body=JPEG, fail_times=99, fail_status=500), "http_5xx_exhausted", 3),
    "408_forever": (Route(body=JPEG, fail_times=99, fail_status=408), "http_408_exhausted", 3),
    "429_retry_after_too_long": (
        Route(body=JPEG, fail_times=99, fail_status=429, retry_after="9999"), "http_429_exhausted", 1
    ),
    "slow": (Route(body=JPEG, delay=2.0), "timeout", 3),
    "reset_once": (Route(body=JPEG, reset_times=1), JPEG, 2),
    "reset_forever": (Route(body=JPEG, reset_times=99), "connection_error", 3),
    "html_type": (Route(body=b"<html>nope</html>", content_type="text/html"), "html_instead_of_image", 1),
    "html_as_jpeg": (Route(body=b"<!DOCTYPE html><html>x</html>", content_type="image/jpeg"), "html_instead_of_image", 1),
    "text_as_jpeg": (Route(body=b"just some text", content_type="image/jpeg"), "not_an_image", 1),
    "wrong_type": (Route(body=JPEG, content_type="text/plain"), "not_an_image_content_type", 1),
    "octet_stream": (Route(body=JPEG, content_type="application/octet-stream"), JPEG, 1),
    "not_found": (Route(body=b"gone", status=404, content_type="text/plain"), "http_404", 1),
    "noai": (Route(body=JPEG, headers={"X-Robots-Tag": "noai"}), "opted_out", 1),
    "noimageai_for_bot": (Route(body=JPEG, headers={"X-Robots-Tag": "otherbot: noimageai"}), "opted_out", 1),
    "bomb_passes_fetch": (Route(body=make_bomb_png(), content_type="image/png"), make_bomb_png(), 1),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_faults(server, connections, name):
    route, expected, requests = CASES[name]
    server.routes[f"/{name}.jpg"] = route
    got = fetch(server, f"/{name}.jpg")
    if isinstance(expected, bytes):
        assert got == expected
    else:
        assert isinstance(got, FetchError) and got.reason == expected, got
    assert server.count(f"/{name}.jpg") == requests


def test_redirects_loops_and_schemes(server, connections):
    server.routes["/a"] = Route(redirect="/b")
    server.routes["/b"] = Route(redirect=server.url("/final.jpg"))
    server.routes["/final.jpg"] = Route(body=JPEG)
    server.routes["/loop1"] = Route(redirect="/loop2")
    server.routes["/loop2"] = Route(redirect="/loop1")
    for i in range(4):
        server.routes[f"/hop{i}"] = Route(redirect=f"/hop{i + 1}")
    server.routes["/hop4"] = Route(body=JPEG)
    server.routes["/to_file"] = Route(redirect="file:///etc/passwd")
    refs = [server.url(p) for p in ("/a", "/loop1", "/hop0", "/hop0", "/to_file")]
    got = fetch_many(refs, {**FAST, "max_redirects": 3})
    assert got[0] == JPEG
    assert [r.reason for r in got[1:3]] == ["redirect_loop", "too_many_redirects"]
    assert fetch_many([refs[3]], {**FAST, "max_redirects": 4})[0] == JPEG
    assert got[4].reason == "unsupported_scheme"


@pytest.mark.parametrize("target", ["http://10.0.0.1/x.jpg", "http://169.254.169.254/latest/meta-data/"])
def test_ssrf_guard_blocks_private_redirect_before_connecting(server, connections, target):
    server.routes["/evil"] = Route(redirect=target)
    got = fetch(server, "/evil")
    assert isinstance(got, FetchError) and got.reason == "ssrf_blocked", got
    assert connections == ["127.0.0.1"]  # only the first hop was ever connected to


def test_ssrf_guard_default_policy_blocks_loopback(server, connections):
    server.routes["/x.jpg"] = Route(body=JPEG)
    cfg = {k: v for k, v in FAST.items() if k != "allowed_networks"}
    for url in (server.url("/x.jpg"), server.url("/x.jpg").replace("127.0.0.1", "localhost"), "http://[::1]/"):
        got = fetch_many([url], cfg)[0]
        assert isinstance(got, FetchError) and got.reason == "ssrf_blocked", (url, got)
    assert server.count("/x.jpg") == 0 and connections == []
    assert fetch_many([server.url("/x.jpg")], {**cfg, "allow_private": True})[0] == JPEG


def test_retry_after_is_honoured(server, connections):
    server.routes["/ra.jpg"] = Route(body=JPEG, fail_times=1, fail_status=429, retry_after="1")
    assert fetch(server, "/ra.jpg") == JPEG
    first, second = server.hits["/ra.jpg"]
    assert second - first >= 0.98, second - first


def test_per_host_rate_limit(server, connections):
    for i in range(8):
        server.routes[f"/r{i}.jpg"] = Route(body=make_jpeg(16, 16, seed=i))
    refs = [server.url(f"/r{i}.jpg") for i in range(8)]
    got = fetch_many(refs, {**FAST, "rate_limit": 10.0, "threads": 8})
    assert got == [make_jpeg(16, 16, seed=i) for i in range(8)]  # also: results keep input order
    times = sorted(t for i in range(8) for t in server.hits[f"/r{i}.jpg"])
    # Within any time window of length w, at most w * rate + 1 requests (+1 for thread scheduling jitter);
    # without the limiter all 8 would arrive within a few milliseconds.
    for i in range(len(times)):
        for j in range(i + 1, len(times)):
            assert j - i <= (times[j] - times[i]) * 10.0 + 2, (i, j, times)
    assert times[-1] - times[0] >= 0.65


def test_user_agent_and_limits(server, connections):
    server.routes["/big.jpg"] = Route(body=JPEG)
    assert fetch(server, "/big.jpg", max_bytes=100).reason == "too_large"
    assert fetch(server, "/big.jpg") == JPEG
    server.routes["/noai.jpg"] = Route(body=JPEG, headers={"X-Robots-Tag": "noai"})
    assert fetch(server, "/noai.jpg", respect_opt_out=False) == JPEG
    agents = {h.get("User-Agent", "") for _, h in server.requests}
    assert agents and all(a.startswith("surd/") and "github.com/surd-dev/surd" in a for a in agents)


def test_config_validation():
    with pytest.raises(ValueError, match="threads"):
        DownloadConfig(threads=0)
    with pytest.raises(ValueError, match="user_agent"):
        DownloadConfig(user_agent=" ")
    with pytest.raises(TypeError):
        DownloadConfig(verify_tls=False)  # there is no switch to turn TLS verification off


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _certs(tmp_path):
    """A test CA, and a server certificate it signed for the name cdn.example.test."""
    ca_key, ca, key, csr, cert = (tmp_path / n for n in ("ca.key", "ca.pem", "srv.key", "srv.csr", "srv.pem"))
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca), "-days", "1",
             "-subj", "/CN=surd test CA")  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj",
             "/CN=cdn.example.test")  # fmt: skip
    ext = tmp_path / "ext.cnf"
    ext.write_text("subjectAltName=DNS:cdn.example.test\n")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial", "-out",
             str(cert), "-days", "1", "-extfile", str(ext))  # fmt: skip
    return ca, key, cert


@pytest.fixture
def tls_server(tmp_path):
    ca, key, cert = _certs(tmp_path)

    class Ok(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(JPEG)))
            self.end_headers()
            self.wfile.write(JPEG)

        def log_message(self, *args):
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    yield httpd.server_address[1], ca
    httpd.shutdown()
    httpd.server_close()


def test_tls_is_verified_against_the_host_name(tls_server, monkeypatch, connections):
    """The connection goes to the checked IP, but the certificate must be valid for the URL's host name."""
    port, ca = tls_server
    real = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **k: real("127.0.0.1" if host.endswith(
        ".example.test") else host, *a, **k))  # fmt: skip
    untrusted = fetch_many([f"https://cdn.example.test:{port}/x.jpg"], FAST)[0]
    assert isinstance(untrusted, FetchError) and untrusted.reason == "tls_error", untrusted  # CA not trusted
    monkeypatch.setattr(certifi, "where", lambda: str(ca))
    client_for.cache_clear()
    assert fetch_many([f"https://cdn.example.test:{port}/x.jpg"], FAST)[0] == JPEG  # trusted CA, right name
    wrong_name = fetch_many([f"https://127.0.0.1:{port}/x.jpg"], FAST)[0]  # same server, name not in the cert
    assert isinstance(wrong_name, FetchError) and wrong_name.reason == "tls_error", wrong_name
    client_for.cache_clear()


def test_client_is_shared_per_config():
    assert client_for(DownloadConfig(**FAST)) is client_for(DownloadConfig(**FAST))
