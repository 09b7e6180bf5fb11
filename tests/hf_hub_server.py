"""A local stand-in for the Hugging Face Hub endpoints `huggingface_hub` calls to create a dataset repo and commit
files to it, on 127.0.0.1 (point ``HF_ENDPOINT`` at it). Shapes follow huggingface_hub's own client code
(``hf_api.create_repo``, ``list_repo_tree``, ``_commit_api._fetch_upload_modes`` / ``_send_commit``, ``_validate_yaml``):

  POST /api/repos/create                          {name, organization, type} → {url}; 409 when it exists
  POST /api/validate-yaml                         {content, repoType} → {errors, warnings}; 400 on bad front matter
  GET  /api/datasets/O/N/tree/REV[?recursive=..]  [{type, path, oid, size}]
  POST /api/datasets/O/N/preupload/REV            {files: [{path, sample, size}]} → {files: [{path, uploadMode,
                                                  shouldIgnore, oid}]} (every file "regular": no LFS/xet upload)
  POST /api/datasets/O/N/commit/REV               NDJSON header + {key: file, value: {path, content, encoding}}
                                                  → {commitUrl, commitOid}

``fail_commits`` holds what to answer the next commits with, one entry each: None accepts it, a status refuses it
(429 carries ``Retry-After: 1``), to test backoff and resuming; every accepted commit is kept in ``commits``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlparse

import yaml


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class HubState:
    def __init__(self) -> None:
        self.repos: dict[str, dict[str, bytes]] = {}
        self.commits: list[dict[str, Any]] = []
        self.fail_commits: list[int | None] = []
        self.requests: list[str] = []
        self.lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    state: HubState

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _send(self, code: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _repo(self, parts: list[str]) -> tuple[str, str, str]:
        # /api/datasets/O/N/<verb>/<rev...>
        return f"{parts[2]}/{parts[3]}", parts[4], "/".join(parts[5:]) or "main"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = urlparse(self.path).path
        self.state.requests.append(f"GET {path}")
        parts = path.strip("/").split("/")
        if path == "/api/agent-harnesses":  # huggingface_hub's agent registry; its own empty value
            return self._send(200, {"standardEnvVars": [], "harnesses": {}})
        if parts[:2] == ["api", "datasets"] and len(parts) >= 6 and parts[4] == "tree":
            repo = self.state.repos.get(f"{parts[2]}/{parts[3]}")
            if repo is None:
                return self._send(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
            return self._send(200, [{"type": "file", "path": p, "oid": git_blob_id(d), "size": len(d)}
                                    for p, d in sorted(repo.items())])
        self._send(404, {"error": f"no such endpoint in the stand-in: {path}"})

    def do_POST(self) -> None:  # noqa: N802
        path = urlparse(self.path).path
        self.state.requests.append(f"POST {path}")
        body = self._body()
        parts = path.strip("/").split("/")
        if path == "/api/repos/create":
            doc = json.loads(body)
            repo_id = f"{doc['organization']}/{doc['name']}" if doc.get("organization") else doc["name"]
            if doc.get("type") != "dataset":
                return self._send(400, {"error": "the stand-in only hosts datasets"})
            with self.state.lock:
                if repo_id in self.state.repos:  # huggingface_hub reads "url" from this answer too (exist_ok)
                    return self._send(409, {"error": "You already created this dataset repo",
                                            "url": f"http://{self.headers['Host']}/datasets/{repo_id}"})
                self.state.repos[repo_id] = {}
            return self._send(200, {"url": f"http://{self.headers['Host']}/datasets/{repo_id}", "name": repo_id})
        if path == "/api/validate-yaml":
            content = json.loads(body)["content"]
            try:
                head = content.split("---\n")[1] if content.startswith("---\n") else ""
                meta = yaml.safe_load(head) or {}
                assert isinstance(meta, dict)
            except Exception as e:  # noqa: BLE001 (any parse failure is the client's error)
                return self._send(400, {"errors": [{"message": f"invalid YAML: {e}"}], "warnings": []})
            return self._send(200, {"errors": [], "warnings": []})
        if parts[:2] == ["api", "datasets"] and len(parts) >= 5:
            repo_id, verb, rev = self._repo(parts)
            repo = self.state.repos.get(repo_id)
            if repo is None:
                return self._send(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
            if verb == "preupload":
                files = json.loads(body)["files"]
                return self._send(200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                                                   "oid": git_blob_id(repo[f["path"]]) if f["path"] in repo else None}
                                                  for f in files]})
            if verb == "commit":
                return self._commit(repo_id, repo, body, rev)
        self._send(404, {"error": f"no such endpoint in the stand-in: {path}"})

    def _commit(self, repo_id: str, repo: dict[str, bytes], body: bytes, rev: str) -> None:
        with self.state.lock:
            code = self.state.fail_commits.pop(0) if self.state.fail_commits else None
            if code is not None:
                return self._send(code, {"error": "try again later"}, {"Retry-After": "1"} if code == 429 else None)
            lines = [json.loads(line) for line in body.splitlines() if line.strip()]
            header = next(x["value"] for x in lines if x["key"] == "header")
            added = {}
            for item in lines:
                if item["key"] == "file":
                    v = item["value"]
                    assert v["encoding"] == "base64", v
                    added[v["path"]] = base64.b64decode(v["content"])
                elif item["key"] != "header":
                    return self._send(400, {"error": f"the stand-in takes regular files only, got {item['key']}"})
            repo.update(added)
            oid = hashlib.sha1(json.dumps(sorted(repo)).encode() + str(len(self.state.commits)).encode()).hexdigest()
            self.state.commits.append({"repo": repo_id, "revision": rev, "summary": header["summary"],
                                       "files": sorted(added)})
        self._send(200, {"commitUrl": f"http://{self.headers['Host']}/datasets/{repo_id}/commit/{oid}",
                         "commitOid": oid, "pullRequestUrl": None})


class HubServer:
    """``with HubServer() as hub: hub.url`` — the stand-in on a free port of 127.0.0.1."""

    def __init__(self) -> None:
        self.state = HubState()
        handler = type("BoundHandler", (Handler,), {"state": self.state})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> HubServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
