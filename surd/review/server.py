"""`surd review serve`: a server for one review site that several reviewers can use at once without losing a decision.

Serves only regular files inside the review directory (no listings, no path traversal, no symlinks out), and:

- ``GET /api/decisions[?since=SEQ]``: every key's current record (or those changed after SEQ), with revisions;
- ``POST /api/decisions``: ``{"reviewer": "alice", "decisions": {"<key>": {"decision": "accept" | "reject" |
  "undecided", "note": "", "base": REV}}}``, merged per key: a key the body does not name is never touched. Each
  change names the revision it was based on (``base``, 0 = never decided); if the key moved on meanwhile the whole
  request is refused with 409 and the current records (``conflicts``), nothing written. Changes are appended to the
  journal ``decisions.jsonl`` and fsynced before the reply; ``decisions.json`` is a snapshot rebuilt from it;
- ``GET /api/status``: per-reviewer counts, rate and what is left (`surd.review.progress`).

The documents behind the API belong to the site's state: `ReviewState` (the decision journal) here; another static
page can be served the same way with its own `SiteState` subclass (the eval preference study stores answers).

Access (`surd.review.access`): on loopback without a token only loopback host names are answered; any other bind
needs a token (made at start and printed in the URL to share, unless ``--token`` or an explicit ``--no-auth``).
Writes need ``Content-Type: application/json`` and, when the browser sends one, a same-origin ``Origin``; bodies
over ``max_body`` get 413, clients over the rate limit 429.
"""

from __future__ import annotations

import json
import os
import signal
import socket
from abc import ABC, abstractmethod
from collections.abc import Callable
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from surd.options import config, option
from surd.review.access import (
    RateLimiter,
    cookie_name,
    host_header_is_loopback,
    is_loopback,
    new_token,
    supplied_token,
    token_matches,
    token_problem,
)
from surd.review.decisions import parse_document
from surd.review.journal import (
    JOURNAL_NAME,
    SNAPSHOT_NAME,
    Change,
    Conflict,
    Journal,
    JournalFailed,
    make_header,
    now_iso,
)
from surd.review.progress import Tally
from surd.review.records import (
    CHOICES,
    FORMAT,
    ROLES,
    UNDECIDED,
    VERSION,
    DecisionError,
    entry_problem,
    reviewer_problem,
)
from surd.review.site import read_site
from surd.trust import served_file

MAX_CHANGES = 5000  # per request; the page sends a few hundred at most


@config
class ServeConfig:
    """How a review site (or the eval study page) is served: address, access (token or explicitly none), and the
    bounds on requests. `surd review serve` and `surd eval study serve` take these fields as their options."""

    host: str = option("127.0.0.1", help="Address to bind; anything but loopback needs a token (made for you).")
    port: int = option(8765, help="Port (0 = any free port).", ge=0, le=65535)
    token: str = option("", help="Token every user of the page must present (default: a random one beyond loopback).")
    no_auth: bool = option(False, flag="--no-auth", help="Serve beyond loopback without a token (trusted networks).")
    rate: float = option(50.0, gt=0, help="API requests per second per client address (a NAT may hide a team); "
                         "bursts up to 10x.")
    burst: int = option(0, ge=0, cli=False, help="Requests a client may send at once (0 = 10 x rate).")
    max_body: int = option(1 << 20, ge=1024, cli=False, help="Largest request body in bytes.")
    snapshot_every: float = option(2.0, gt=0, cli=False,
                                   help="Seconds between decisions.json snapshots while decisions arrive.")

    def __post_init__(self) -> None:
        if not self.burst:
            object.__setattr__(self, "burst", max(1, int(self.rate * 10)))
        if self.token and self.no_auth:
            raise ValueError("--token and --no-auth contradict each other: give one")
        if self.token and (problem := token_problem(self.token)):
            raise ValueError(problem)


class SiteState(ABC):
    """What every served site has: its folder, who may use it (token, or loopback host names) and the rate limit.

    Subclasses hold the documents behind the API, called from the request threads: ``document(since)`` answers
    ``GET /api/decisions``, ``status()`` ``GET /api/status``, ``write(payload)`` a ``POST /api/decisions`` (its reply;
    `DecisionError` → 400, `Conflict` → 409, `JournalFailed` → 503), and ``close()`` runs once when the server closes.
    """

    def __init__(self, site_dir: str | os.PathLike, cfg: ServeConfig):
        self.root = Path(site_dir).resolve()
        self.cfg = cfg
        self.token = "" if cfg.no_auth else cfg.token or ("" if is_loopback(cfg.host) else new_token())
        self.loopback_names_only = not self.token and is_loopback(cfg.host)
        self.limiter = RateLimiter(cfg.rate, cfg.burst)

    @abstractmethod
    def document(self, since: int = 0) -> dict[str, Any]:
        """The decisions document (those changed after revision `since`)."""

    @abstractmethod
    def status(self) -> dict[str, Any]:
        """Per-reviewer counts, rate and what is left."""

    @abstractmethod
    def write(self, payload: Any) -> dict[str, Any]:
        """Apply a posted document; the reply."""

    def close(self) -> None:  # noqa: B027 (optional hook: a site with nothing to release keeps it)
        """Runs once when the server closes."""


class ReviewState(SiteState):
    """A review site: its keys, its journal, and the running tally for the status header."""

    def __init__(self, review_dir: str | os.PathLike, cfg: ServeConfig):
        super().__init__(review_dir, cfg)
        site = read_site(self.root)
        self.keys = frozenset(site["keys"])
        self.tally = Tally()
        role = site.get("role", "review") if site.get("role") in ROLES else "review"
        header = make_header(site.get("site_id", ""), role)
        self.journal = Journal(self.root, header, self._legacy_seed(), cfg.snapshot_every, self.tally.add)
        unknown = sorted(set(self.journal.current) - self.keys)
        if unknown:
            self.journal.close()
            raise ValueError(f"{self.journal.path} names {len(unknown)} key(s) this site does not hold "
                             f"({', '.join(unknown[:3])}): it belongs to another review site")

    def _legacy_seed(self) -> list[dict[str, Any]]:
        """A site served by an older surd has decisions.json and no journal: its decisions become the first records."""
        path = self.root / SNAPSHOT_NAME
        if (self.root / JOURNAL_NAME).exists() or not path.exists():
            return []
        problems: list[str] = []
        decisions = parse_document(json.loads(path.read_text(encoding="utf-8")), str(path), problems)
        if problems:
            raise DecisionError(problems)
        when = now_iso()
        return [{"seq": i, "key": k, "decision": d.decision, "note": d.note, "reviewer": d.reviewer, "time": when,
                 "rev": 1} for i, (k, d) in enumerate(sorted(decisions.items()), start=1)]

    def document(self, since: int = 0) -> dict[str, Any]:
        recs, seq = self.journal.snapshot(since)
        return {"format": FORMAT, "version": VERSION, "site_id": self.journal.header.get("site_id", ""),
                "role": self.journal.header.get("role", "review"), "seq": seq,
                "decisions": {r["key"]: {f: r[f] for f in ("decision", "note", "reviewer", "time", "rev")}
                              for r in recs}}

    def status(self) -> dict[str, Any]:
        recs, seq = self.journal.snapshot()
        return self.tally.report({r["key"]: r for r in recs}, len(self.keys), seq)

    def parse_changes(self, payload: Any) -> tuple[list[Change], str]:
        """Validate a POST body into changes and the reviewer; `DecisionError` lists every problem."""
        problems: list[str] = []
        if not isinstance(payload, dict) or not isinstance(payload.get("decisions"), dict):
            raise DecisionError(["body must be a JSON object with \"reviewer\" and \"decisions\": {key: {decision, "
                                 "note, base}}"])
        if payload.get("format", FORMAT) != FORMAT:
            problems.append(f"format must be {FORMAT!r}")
        reviewer = payload.get("reviewer")
        if (problem := reviewer_problem(reviewer)) is not None:
            problems.append(problem)
        entries = payload["decisions"]
        if len(entries) > MAX_CHANGES:
            problems.append(f"{len(entries)} changes in one request; send at most {MAX_CHANGES}")
        changes = []
        for key, e in list(entries.items())[:MAX_CHANGES]:
            if key not in self.keys:
                problems.append(f"key {key!r} is not in this review site")
                continue
            if not isinstance(e, dict):
                problems.append(f"key {key!r}: expected {{decision, note, base}}")
                continue
            base = e.get("base", 0)
            problem = entry_problem(e.get("decision"), e.get("note"), (*CHOICES, UNDECIDED))
            if problem is None and (not isinstance(base, int) or isinstance(base, bool) or base < 0):
                problem = f"base must be the revision the change is based on (an integer >= 0), got {base!r}"
            if problem is not None:
                problems.append(f"key {key!r}: {problem}")
                continue
            changes.append(Change(key, e["decision"], e.get("note") or "", base))
        if problems:
            raise DecisionError(problems)
        return changes, reviewer.strip()

    def write(self, payload: Any) -> dict[str, Any]:
        changes, reviewer = self.parse_changes(payload)
        revs, seq = self.journal.apply(changes, reviewer)
        return {"saved": len(revs), "revs": revs, "seq": seq}

    def close(self) -> None:
        self.journal.close()


class ReviewHandler(SimpleHTTPRequestHandler):
    """Static files from the site's directory plus the decisions API, behind the access checks."""

    state: SiteState  # set on the per-server subclass
    protocol_version = "HTTP/1.1"  # keep-alive: a page loads dozens of thumbnails

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, directory=str(self.state.root), **kwargs)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's signature
        pass  # one line per thumbnail would drown the terminal

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")  # decisions and data must never come from a stale cache
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")  # the URL may carry the token
        super().end_headers()

    def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(obj, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, message: str, api: bool, headers: dict[str, str] | None = None) -> None:
        if api:
            return self._json(status, {"error": message}, headers)
        self.send_error(status, message)

    # ------------------------------------------------------------------------------------------ access
    def _allowed(self, api: bool) -> bool:
        """Rate limit (API), then token or loopback host name; answers the request itself when refused."""
        st = self.state
        if api and (wait := st.limiter.wait_time(self.client_address[0])) > 0:
            self._error(HTTPStatus.TOO_MANY_REQUESTS, "too many requests; slow down", api,
                        {"Retry-After": str(max(1, round(wait)))})
            return False
        if not st.token:
            if st.loopback_names_only and not host_header_is_loopback(self.headers.get("Host")):
                self._error(HTTPStatus.MISDIRECTED_REQUEST, "this server answers only to localhost / 127.0.0.1", api)
                return False
            return True
        token, in_url = supplied_token(self.path, self.headers, self.server.server_port)
        if not token_matches(token, st.token):
            self._error(HTTPStatus.UNAUTHORIZED, "missing or wrong token: open the URL the server printed when it "
                        "started (it ends in ?token=...)", api)
            return False
        if in_url and not api:  # keep the token in a cookie, and out of the address bar and history
            self.send_response(HTTPStatus.SEE_OTHER)
            self.send_header("Set-Cookie", f"{cookie_name(self.server.server_port)}={token}; Path=/; HttpOnly; "
                                           "SameSite=Strict")
            self.send_header("Location", urlsplit(self.path).path or "/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return False
        return True

    def _same_origin(self) -> bool:
        if self.headers.get("Sec-Fetch-Site") not in (None, "same-origin", "none"):
            return False
        origin = self.headers.get("Origin")
        if origin is None:
            return True  # not a browser, or a same-origin request from an old browser
        return origin != "null" and urlsplit(origin).netloc == self.headers.get("Host", "")

    # ------------------------------------------------------------------------------------------ routes
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = urlsplit(self.path).path
        api = path.startswith("/api/")
        if not self._allowed(api):
            return
        try:
            if path == "/api/decisions":
                since = parse_qs(urlsplit(self.path).query).get("since", ["0"])[0]
                return self._json(HTTPStatus.OK, self.state.document(int(since) if since.isdigit() else 0))
            if path == "/api/status":
                return self._json(HTTPStatus.OK, self.state.status())
        except JournalFailed as exc:
            return self._json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": str(exc)})
        if api or self._resolve() is None:
            return self._error(HTTPStatus.NOT_FOUND, "not found", api)
        return super().do_GET()

    def do_HEAD(self) -> None:  # noqa: N802
        if not self._allowed(False):
            return
        if self._resolve() is None:
            return self.send_error(HTTPStatus.NOT_FOUND, "not found")
        return super().do_HEAD()

    def _resolve(self) -> Path | None:
        """The regular file a URL names, only if it lies inside the review directory."""
        return served_file(self.state.root, urlsplit(self.path).path)

    def _body(self) -> bytes | None:
        """The request body within the size bound, or None after answering 411/413."""
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._json(HTTPStatus.LENGTH_REQUIRED, {"error": "Content-Length required"})
            self.close_connection = True
            return None
        if not 0 < length <= self.state.cfg.max_body:
            self.close_connection = True  # the unread body would otherwise be taken for the next request
            self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                       {"error": f"body must be 1..{self.state.cfg.max_body} bytes; send fewer changes at once"})
            return None
        return self.rfile.read(length)

    def do_POST(self) -> None:  # noqa: N802
        if urlsplit(self.path).path != "/api/decisions":
            self.close_connection = True
            return self._json(HTTPStatus.NOT_FOUND, {"error": "POST only to /api/decisions"})
        if not self._allowed(True):
            self.close_connection = True
            return
        if (self.headers.get("Content-Type") or "").split(";")[0].strip().lower() != "application/json":
            self.close_connection = True
            return self._json(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, {"error": "Content-Type must be application/json"})
        if not self._same_origin():
            self.close_connection = True
            return self._json(HTTPStatus.FORBIDDEN, {"error": "cross-origin request refused"})
        body = self._body()
        if body is None:
            return
        try:
            reply = self.state.write(json.loads(body))
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: [[[[…
            return self._json(HTTPStatus.BAD_REQUEST, {"error": f"body is not JSON: {exc}"})
        except DecisionError as exc:
            return self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc), "problems": exc.problems})
        except Conflict as exc:
            return self._json(HTTPStatus.CONFLICT, {"error": str(exc), "conflicts": exc.current})
        except JournalFailed as exc:
            return self._json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": str(exc)})
        return self._json(HTTPStatus.OK, reply)


class ReviewServer(ThreadingHTTPServer):
    """A threading HTTP server that owns the site's state (a review journal is closed, with a last snapshot, on
    server_close)."""

    daemon_threads = True
    request_queue_size = 128  # a team's tabs connect at once; the default backlog of 5 resets connections
    state: SiteState

    def server_close(self) -> None:
        super().server_close()
        self.state.close()

    def urls(self) -> list[str]:
        """The URL to open here, and (beyond loopback) the one to share, with the token if there is one."""
        host = self.state.cfg.host
        query = f"?token={self.state.token}" if self.state.token else ""
        local = "127.0.0.1" if host in ("0.0.0.0", "") else "[::1]" if host == "::" else \
            f"[{host}]" if ":" in host else host
        out = [f"http://{local}:{self.server_port}/{query}"]
        if not is_loopback(host):
            name = socket.gethostname() if host in ("0.0.0.0", "::", "") else local
            shared = name if name and not is_loopback(name) else "THIS-MACHINE'S-ADDRESS"
            out.append(f"http://{shared}:{self.server_port}/{query}")
        return out


def make_server(review_dir: str | os.PathLike, host: str = "127.0.0.1", port: int = 8765,
                cfg: ServeConfig | None = None,
                state_class: Callable[[Path, ServeConfig], SiteState] = ReviewState) -> ReviewServer:
    """A ready (not yet serving) server for *review_dir*; port 0 picks a free port (see ``server.server_port``).

    *cfg* overrides *host* and *port* when given. *state_class* makes the site's state (default: a review site).
    """
    cfg = cfg or ServeConfig(host=host, port=port)
    state = state_class(Path(review_dir), cfg)
    handler = type("BoundReviewHandler", (ReviewHandler,), {"state": state})
    family = socket.AF_INET6 if ":" in cfg.host else socket.AF_INET
    server_cls = type("BoundReviewServer", (ReviewServer,), {"address_family": family, "state": state})
    try:
        return server_cls((cfg.host, cfg.port), handler)
    except OSError:
        state.close()
        raise


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def serve(review_dir: str | os.PathLike, cfg: ServeConfig | None = None,
          state_class: Callable[[Path, ServeConfig], SiteState] = ReviewState, verb: str = "reviewing") -> None:
    """Serve *review_dir* until interrupted (Ctrl+C or SIGTERM), then close its state (a review's last snapshot)."""
    server = make_server(review_dir, cfg=cfg, state_class=state_class)
    urls = server.urls()
    print(f"{verb} {server.state.root}: open {urls[0]}  (Ctrl+C stops)", flush=True)
    if len(urls) > 1:
        print(f"share with your team: {urls[1]}", flush=True)
    if not server.state.token and not is_loopback(server.state.cfg.host):
        print("warning: --no-auth: anyone who can reach this address can read and write decisions", flush=True)
    signal.signal(signal.SIGTERM, _interrupt)  # a service manager's stop also ends with a last snapshot
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
