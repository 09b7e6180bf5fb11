"""A fault-injection HTTP server on 127.0.0.1 that plays Civitai, Lexica and an image host for the ingest tests.

Image routes are configured per path with a `Route`: transient failures (429 + Retry-After, 500/503 k times then
success), slow answers past the client's timeout, connections reset mid-body, truncated JPEGs, HTML instead of an
image, a wrong Content-Type, redirects (including a loop and a hop to a private address), a decompression bomb and
X-Robots-Tag: noai. Every request's arrival time is recorded per path (`hits`) for the rate-limit tests.
`handlers` answer a path with a function of (method, query, body) for scripted APIs (GET and POST).
"""

from __future__ import annotations

import io
import json
import socket
import struct
import threading
import time
import zlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

# Download settings for tests against this server: short timeouts and backoff, no rate limit, loopback allowed.
FAST_HTTP = {"timeout": 1.0, "retries": 1, "backoff_base": 0.01, "backoff_max": 0.02, "rate_limit": 0,
             "allowed_networks": ["127.0.0.0/8"]}  # fmt: skip


def make_jpeg(width: int = 64, height: int = 48, seed: int = 0, quality: int = 90) -> bytes:
    """A small valid JPEG whose pixels depend on *seed* (distinct seeds → distinct sha256)."""
    from PIL import Image

    img = Image.new("RGB", (width, height), ((seed * 37) % 256, (seed * 91) % 256, (seed * 53) % 256))
    img.putpixel((seed % width, (seed // width) % height), (255 - (seed % 256), 0, 0))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def make_bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A ~100-byte PNG whose header declares width × height pixels: decoding it would exhaust memory."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


@dataclass
class Route:
    """How the server answers one path. Failure modes apply to the first requests, then it answers normally."""

    body: bytes = b""
    content_type: str = "image/jpeg"
    status: int = 200
    fail_times: int = 0  # answer fail_status this many times first
    fail_status: int = 503
    retry_after: str | None = None  # Retry-After header sent with the failures
    reset_times: int = 0  # then cut the connection mid-body this many times
    delay: float = 0.0  # sleep before answering (every request)
    redirect: str | None = None  # answer 302 to this Location
    headers: dict[str, str] = field(default_factory=dict)


class FaultServer:
    """Start with `with FaultServer() as srv:`; `srv.url(path)` gives the absolute URL of a path."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: dict[str, list[float]] = defaultdict(list)
        self.requests: list[tuple[str, dict[str, str]]] = []  # (path?query, headers) of every request
        self.civitai_items: list[dict] = []
        self.civitai_fail_cursors: set[str] = set()  # cursors answered with a permanent 500 (an "outage")
        self.lexica: dict[str, list[dict]] = {}
        # path → fn(method, query, body) -> (status, body, content type): scripted pages and APIs
        self.handlers: dict[str, Callable[[str, dict[str, list[str]], bytes], tuple[int, bytes, str]]] = {}
        self.bodies: list[tuple[str, bytes]] = []  # (path, body) of every POST
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def count(self, path: str) -> int:
        return len(self.hits.get(path, []))

    def record(self, path: str, query: str, headers: dict[str, str]) -> int:
        with self._lock:
            self.hits[path].append(time.monotonic())
            self.requests.append((path + (f"?{query}" if query else ""), headers))
            return len(self.hits[path])

    def civitai_page(self, query: dict[str, list[str]]) -> tuple[int, dict]:
        """Cursor pagination like Civitai's /api/v1/images: opaque nextCursor, absent on the last page."""
        limit = int(query.get("limit", ["100"])[0])
        cursor = query.get("cursor", [""])[0]
        if cursor in self.civitai_fail_cursors:
            return 500, {"error": "outage"}
        start = int(cursor.split("|", 1)[0]) if cursor else 0
        items = self.civitai_items[start : start + limit]
        meta: dict = {}
        if start + limit < len(self.civitai_items):
            meta["nextCursor"] = f"{start + limit}|{1700000000 + start}"
        return 200, {"items": items, "metadata": meta}


def _make_handler(server: FaultServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
            return

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            parts = urlsplit(self.path)
            n = server.record(parts.path, parts.query, {k: v for k, v in self.headers.items()})
            if parts.path in server.handlers:
                return self._send(*server.handlers[parts.path]("GET", parse_qs(parts.query), b""))
            if parts.path == "/api/v1/images":
                status, payload = server.civitai_page(parse_qs(parts.query))
                return self._send(status, json.dumps(payload).encode(), "application/json")
            if parts.path == "/api/v1/search":
                q = parse_qs(parts.query).get("q", [""])[0]
                return self._send(200, json.dumps({"images": server.lexica.get(q, [])}).encode(), "application/json")
            route = server.routes.get(parts.path)
            if route is None:
                return self._send(404, b"<html><body>not found</body></html>", "text/html")
            self._serve_route(route, n)

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            parts = urlsplit(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            server.record(parts.path, parts.query, {k: v for k, v in self.headers.items()})
            server.bodies.append((parts.path, body))
            handler = server.handlers.get(parts.path)
            if handler is None:
                return self._send(405, b"method not allowed", "text/plain")
            self._send(*handler("POST", parse_qs(parts.query), body))

        def _serve_route(self, route: Route, n: int) -> None:
            if route.delay:
                time.sleep(route.delay)
            if n <= route.fail_times:
                extra = {"Retry-After": route.retry_after} if route.retry_after else {}
                return self._send(route.fail_status, b"<html>busy</html>", "text/html", extra)
            if route.redirect is not None:
                return self._send(302, b"", "text/plain", {"Location": route.redirect})
            if n <= route.fail_times + route.reset_times:
                return self._reset_mid_body(route)
            self._send(route.status, route.body, route.content_type, route.headers)

        def _reset_mid_body(self, route: Route) -> None:
            self.send_response(200)
            self.send_header("Content-Type", route.content_type)
            self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            self.wfile.write(route.body[: len(route.body) // 2])
            self.wfile.flush()
            # SO_LINGER 0: close with a TCP RST, the way a crashed proxy drops a connection.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True

        def _send(self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

    return Handler
