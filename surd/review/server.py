"""`surd review serve`: a small local server for one review site that saves decisions to disk as they are made.

Serves only regular files inside the review directory (no listings, no path traversal, no symlinks out), and
``GET/POST /api/decisions``: the POST body is a full surd decision document, validated against the site's keys
and written atomically to ``decisions.json``. Bound to 127.0.0.1 by default; a POST whose Origin is another site
is refused, so a web page the reviewer happens to visit cannot write decisions.
"""

from __future__ import annotations

import json
import os
import threading
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from surd.review.decisions import FORMAT, VERSION, DecisionError, parse_document, to_document

DECISIONS_NAME = "decisions.json"
MAX_BODY = 64 * 1024 * 1024  # 60,000 decisions with notes are a few MB


def read_site(review_dir: str | os.PathLike) -> dict[str, Any]:
    """The site.json of a review batch; a clear error when pointed at a split export's root or elsewhere."""
    root = Path(review_dir)
    site = root / "site.json"
    if not site.exists():
        batches = sorted(p.name for p in root.glob("batch_*") if (p / "site.json").exists())
        hint = f"; it holds batches, serve one of them: {root / batches[0]}" if batches else \
            "; create one with `surd review export DIR --out REVIEW_DIR`"
        raise FileNotFoundError(f"{root} is not a review site (no site.json){hint}")
    return json.loads(site.read_text(encoding="utf-8"))


class ReviewState:
    """The site's keys and its decisions file; one lock so concurrent POSTs never interleave writes."""

    def __init__(self, review_dir: str | os.PathLike):
        self.root = Path(review_dir).resolve()
        self.keys = frozenset(read_site(self.root)["keys"])
        self.path = self.root / DECISIONS_NAME
        self.lock = threading.Lock()

    def load(self) -> dict[str, Any]:
        with self.lock:
            if self.path.exists():
                return json.loads(self.path.read_text(encoding="utf-8"))
        return {"format": FORMAT, "version": VERSION, "decisions": {}}

    def save(self, payload: Any) -> int:
        """Validate and store a full decision document; returns the number of decisions."""
        from surd.shards import write_json_atomic

        problems: list[str] = []
        decisions = parse_document(payload, "request", problems)
        unknown = sorted(set(decisions) - self.keys)
        if unknown:
            problems.append(f"{len(unknown)} key(s) are not in this review site: {', '.join(unknown[:5])}")
        if problems:
            raise DecisionError(problems)
        with self.lock:
            write_json_atomic(self.path, to_document(decisions))
        return len(decisions)


class ReviewHandler(SimpleHTTPRequestHandler):
    """Static files from the review directory plus the decisions API."""

    state: ReviewState  # set on the per-server subclass

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, directory=str(self.state.root), **kwargs)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's signature
        pass  # one line per thumbnail would drown the terminal

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")  # decisions and data must never come from a stale cache
        super().end_headers()

    def _json(self, status: int, obj: Any) -> None:
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if urlsplit(self.path).path == "/api/decisions":
            return self._json(HTTPStatus.OK, self.state.load())
        if self._resolve() is None:
            return self.send_error(HTTPStatus.NOT_FOUND, "not found")
        return super().do_GET()

    def do_HEAD(self) -> None:  # noqa: N802
        if self._resolve() is None:
            return self.send_error(HTTPStatus.NOT_FOUND, "not found")
        return super().do_HEAD()

    def _resolve(self) -> Path | None:
        """The regular file a URL names, only if it lies inside the review directory."""
        rel = unquote(urlsplit(self.path).path).lstrip("/") or "index.html"
        target = (self.state.root / rel).resolve()
        if not target.is_relative_to(self.state.root) or not target.is_file():
            return None
        return target

    def _same_origin(self) -> bool:
        origin = self.headers.get("Origin")
        if origin is None or origin == "null":  # fetch() from the page itself sends its own origin
            return origin is None
        return urlsplit(origin).netloc == self.headers.get("Host", "")

    def do_POST(self) -> None:  # noqa: N802
        if urlsplit(self.path).path != "/api/decisions":
            return self._json(HTTPStatus.NOT_FOUND, {"error": "POST only to /api/decisions"})
        if not self._same_origin():
            return self._json(HTTPStatus.FORBIDDEN, {"error": "cross-origin request refused"})
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= MAX_BODY:
            return self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": f"body must be 1..{MAX_BODY} bytes"})
        try:
            payload = json.loads(self.rfile.read(length))
            n = self.state.save(payload)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return self._json(HTTPStatus.BAD_REQUEST, {"error": f"body is not JSON: {exc}"})
        except DecisionError as exc:
            return self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc), "problems": exc.problems})
        return self._json(HTTPStatus.OK, {"saved": n})


def make_server(review_dir: str | os.PathLike, host: str = "127.0.0.1", port: int = 8765,
                state: Any = None) -> ThreadingHTTPServer:
    """A ready (not yet serving) server for *review_dir*; port 0 picks a free port (see ``server.server_port``).

    ``state`` replaces the review decisions with another document store of the same shape (``root``, ``load()``,
    ``save(payload)`` raising DecisionError): the eval study page saves its answers through it.
    """
    state = state or ReviewState(review_dir)
    handler = type("BoundReviewHandler", (ReviewHandler,), {"state": state})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def serve(review_dir: str | os.PathLike, host: str = "127.0.0.1", port: int = 8765, state: Any = None,
          verb: str = "reviewing") -> None:
    """Serve *review_dir* until interrupted."""
    server = make_server(review_dir, host, port, state)
    root = server.RequestHandlerClass.state.root
    print(f"{verb} {root}: open http://{host}:{server.server_port}/  (Ctrl+C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
