"""A release (or card) folder → any fsspec URL (``s3://…``, ``gs://…``, a local folder) or a Hugging Face Hub dataset
repository (``hf://datasets/OWNER/NAME[@REVISION]``, through `huggingface_hub`).

Both are resumable: files already there with the same content are skipped (object stores: same size; the Hub: the
same git blob id, or the same LFS sha256), so rerunning after an interruption uploads only what is missing. The
data goes first and the card files (README.md, croissant.json, card.html) last, so a half-published repository never
shows a card that promises files it lacks. On the Hub, files go in batched commits (``batch_files`` files or
``batch_bytes`` bytes each); a commit answered 429 (or 5xx) is retried after ``Retry-After`` (else exponential
backoff), up to ``retries`` times. Credentials: each backend's own (``HF_TOKEN``, ``AWS_*``); the Hub's endpoint is
``HF_ENDPOINT`` when set.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from surd import storage
from surd.deps import require

CARD_FILES = ("card.html", "croissant.json", "README.md")  # uploaded last, README.md the very last
HUB_URL = re.compile(r"^hf://datasets/([A-Za-z0-9][\w.-]*/[\w.-]+)(?:@([\w./-]+))?/?$")


@dataclass(frozen=True)
class PublishConfig:
    """Batching and retry settings of a Hub upload."""

    batch_files: int = 500
    batch_bytes: int = 1 << 30
    retries: int = 8
    max_wait: float = 120.0  # the longest Retry-After honoured, seconds

    def __post_init__(self) -> None:
        if self.batch_files < 1 or self.batch_bytes < 1:
            raise ValueError("batch_files and batch_bytes must be >= 1")
        if self.retries < 0:
            raise ValueError(f"retries must be >= 0, got {self.retries}")


def ordered_files(folder: Path) -> list[str]:
    """Every file of the release (``/``-separated, relative), data first, card files last."""
    if not (folder / "README.md").is_file():
        raise FileNotFoundError(f"{folder} has no README.md: publish the folder `surd release` (or `surd card`) wrote")
    rels = [r for r in storage.walk_files(folder) if not r.split("/")[-1].startswith(".")]
    return sorted(rels, key=lambda r: (CARD_FILES.index(r) + 1 if r in CARD_FILES else 0, r))


def git_blob_id(data: bytes) -> str:
    """The git object id of a file's bytes (what the Hub reports for a regular file)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _remote_sizes(url: str) -> dict[str, int]:
    """Relative path → size of every object already under *url* (local folders too)."""
    if not storage.is_remote(url):
        root = Path(storage.local(url))
        return {r: (root / r).stat().st_size for r in storage.walk_files(root)} if root.is_dir() else {}
    fs, inner = storage.filesystem(url)
    prefix = inner.rstrip("/") + "/"
    try:
        found = fs.find(inner, detail=True)
    except FileNotFoundError:
        return {}
    return {p[len(prefix):]: int(info.get("size") or 0) for p, info in found.items() if p.startswith(prefix)}


def publish_fsspec(folder: Path, url: str) -> dict[str, Any]:
    """Copy the release to *url*, skipping files already there with the same size."""
    there = _remote_sizes(url)
    sent = skipped = 0
    for rel in ordered_files(folder):
        local = folder / rel
        if there.get(rel) == local.stat().st_size:
            skipped += 1
            continue
        target = storage.join(url, *rel.split("/"))
        if storage.is_remote(target):
            storage.put_file(local, target)
        else:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            _copy(local, target)
        sent += 1
    return {"to": url, "uploaded": sent, "skipped": skipped, "commits": 0}


def _copy(src: Path, dst: str) -> None:
    tmp = dst + ".partial"
    with open(src, "rb") as f, open(tmp, "wb") as g:
        while chunk := f.read(1 << 20):
            g.write(chunk)
    os.replace(tmp, dst)


def _batches(folder: Path, rels: list[str], cfg: PublishConfig) -> Iterator[list[str]]:
    batch: list[str] = []
    size = 0
    for rel in rels:
        n = (folder / rel).stat().st_size
        if batch and (len(batch) >= cfg.batch_files or size + n > cfg.batch_bytes or rel in CARD_FILES):
            yield batch
            batch, size = [], 0
        batch.append(rel)
        size += n
    if batch:
        yield batch


def _same(remote: Any, data: bytes) -> bool:
    lfs = getattr(remote, "lfs", None)
    if lfs is not None:
        return getattr(lfs, "sha256", None) == hashlib.sha256(data).hexdigest()
    return getattr(remote, "blob_id", None) == git_blob_id(data)


def _status(err: Exception) -> int | None:
    response = getattr(err, "response", None)
    return getattr(response, "status_code", None)


def with_backoff(call: Callable[[], Any], cfg: PublishConfig,
                 sleep: Callable[[float], None] = time.sleep) -> Any:
    """Run *call*; on 429 or 5xx wait (Retry-After, else 2^attempt seconds) and try again, up to cfg.retries."""
    for attempt in range(cfg.retries + 1):
        try:
            return call()
        except Exception as err:  # noqa: BLE001 (huggingface_hub's HTTP errors carry the response; others re-raise)
            code = _status(err)
            if code is None or not (code == 429 or code >= 500) or attempt == cfg.retries:
                raise
            after = getattr(getattr(err, "response", None), "headers", {}).get("Retry-After", "")
            wait = float(after) if str(after).isdigit() else float(2**attempt)
            sleep(min(wait, cfg.max_wait))
    raise AssertionError("unreachable")  # the loop returns or raises


def publish_hub(folder: Path, repo_id: str, revision: str | None, cfg: PublishConfig) -> dict[str, Any]:
    """Upload the release to a Hub dataset repository in batched commits, skipping files already there."""
    hub = require("huggingface_hub", "publish")  # optional extra: only Hub uploads need it
    api = hub.HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None)
    with_backoff(lambda: api.create_repo(repo_id, repo_type="dataset", exist_ok=True), cfg)
    rev = revision or "main"
    remote = {f.path: f for f in with_backoff(lambda: list(api.list_repo_tree(
        repo_id, repo_type="dataset", revision=rev, recursive=True)), cfg) if hasattr(f, "blob_id")}
    rels = ordered_files(folder)
    todo = [r for r in rels if r not in remote or not _same(remote[r], (folder / r).read_bytes())]
    commits = 0
    for batch in _batches(folder, todo, cfg):
        ops = [hub.CommitOperationAdd(path_in_repo=r, path_or_fileobj=str(folder / r)) for r in batch]
        message = f"surd publish: {len(batch)} file(s)" + (" (card)" if set(batch) & set(CARD_FILES) else "")

        def commit(ops: list[Any] = ops, message: str = message) -> Any:
            fresh = [hub.CommitOperationAdd(path_in_repo=o.path_in_repo, path_or_fileobj=o.path_or_fileobj)
                     for o in ops]  # an operation object is single-use, also after a failed attempt
            return api.create_commit(repo_id, fresh, commit_message=message, repo_type="dataset", revision=rev)

        with_backoff(commit, cfg)
        commits += 1
    return {"to": f"hf://datasets/{repo_id}" + (f"@{revision}" if revision else ""), "uploaded": len(todo),
            "skipped": len(rels) - len(todo), "commits": commits}


def publish(folder: str | os.PathLike, url: str, cfg: PublishConfig = PublishConfig()) -> dict[str, Any]:
    """`surd publish RELEASE --to URL`."""
    src = Path(folder)
    if not src.is_dir():
        raise FileNotFoundError(f"release folder {src} does not exist: run `surd release` first")
    if url.startswith("hf://"):
        m = HUB_URL.match(url)
        if not m:
            raise ValueError(f"{url}: a Hub destination is hf://datasets/OWNER/NAME (optionally @REVISION)")
        return publish_hub(src, m.group(1), m.group(2), cfg)
    return publish_fsspec(src, url)
