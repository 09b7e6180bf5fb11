"""Vector cache keyed by (model, revision, layer, pooling, ..., prompt): one SQLite file per local cache dir, or
one object per vector under a URL.

SQLite in WAL mode with a busy timeout lets several worker processes read and write the same cache at once
(on a local file system; network file systems do not give SQLite the locks it needs). Rows are only ever
inserted, never updated: a key always maps to the same vector, so concurrent writers cannot disagree.

The same property makes an object store a fine cache shared by every node of a cluster (``--cache-dir
s3://bucket/embed-cache``): each vector is its own object, ``vectors/<key[:2]>/<key>.f16``, read and written
concurrently per batch; two nodes writing one key write the same bytes. `open_cache` picks the layout.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from surd import storage
from surd.embed.core import Embedding

FILE_NAME = "embed_cache.sqlite"
_CHUNK = 500  # keys per SELECT: stays under SQLite's bound-parameter limit
_SCHEMA = ("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, dim INTEGER NOT NULL, "
           "truncated INTEGER NOT NULL, tokens INTEGER NOT NULL, vec BLOB NOT NULL)")


def cache_key(namespace: Mapping[str, Any], prompt: str) -> str:
    """sha256 of the namespace (model, revision, layer, pooling, ...) and the prompt."""
    head = json.dumps(dict(namespace), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(head.encode() + b"\0" + prompt.encode()).hexdigest()


class EmbedCache:
    """Float16 vectors in ``<cache_dir>/embed_cache.sqlite``; one connection per process (fork-safe)."""

    def __init__(self, cache_dir: str | os.PathLike):
        self.path = Path(cache_dir).expanduser() / FILE_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn: sqlite3.Connection | None = None
        self._pid = -1

    def _db(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            conn = sqlite3.connect(self.path, timeout=120)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(_SCHEMA)
            conn.commit()
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    def get_many(self, namespace: Mapping[str, Any], prompts: Sequence[str]) -> dict[str, Embedding]:
        """The cached Embedding of each prompt that has one."""
        keys = {cache_key(namespace, p): p for p in prompts}
        out: dict[str, Embedding] = {}
        db = self._db()
        key_list = list(keys)
        for start in range(0, len(key_list), _CHUNK):
            chunk = key_list[start:start + _CHUNK]
            rows = db.execute(f"SELECT key, dim, truncated, tokens, vec FROM vectors WHERE key IN "
                              f"({','.join('?' * len(chunk))})", chunk).fetchall()
            for key, dim, truncated, tokens, blob in rows:
                vec = np.frombuffer(blob, dtype=np.float16).copy()
                if vec.shape != (dim,):
                    continue  # a row of another layout is recomputed, never misread
                out[keys[key]] = Embedding(vec, bool(truncated), int(tokens))
        return out

    def put_many(self, namespace: Mapping[str, Any], items: Mapping[str, Embedding]) -> None:
        """Store vectors; keys already present are left as they are."""
        rows = [(cache_key(namespace, p), int(e.vector.shape[0]), int(e.truncated), int(e.tokens),
                 np.ascontiguousarray(e.vector, dtype=np.float16).tobytes()) for p, e in items.items()]
        db = self._db()
        with db:
            db.executemany("INSERT OR IGNORE INTO vectors VALUES (?, ?, ?, ?, ?)", rows)

    def __len__(self) -> int:
        return int(self._db().execute("SELECT COUNT(*) FROM vectors").fetchone()[0])

    def close(self) -> None:
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None


_HEADER = struct.Struct("<IIB")  # dim, tokens, truncated; then dim float16 values


class ObjectEmbedCache:
    """Float16 vectors as objects under a URL (``s3://bucket/cache``): the `EmbedCache` interface, no locks needed."""

    def __init__(self, cache_dir: str):
        self.root = storage.join(cache_dir, "vectors")

    def _path(self, key: str) -> str:
        return storage.join(self.root, key[:2], key + ".f16")

    def get_many(self, namespace: Mapping[str, Any], prompts: Sequence[str]) -> dict[str, Embedding]:
        """The cached Embedding of each prompt that has one (one concurrent batch of reads)."""
        paths = {self._path(cache_key(namespace, p)): p for p in prompts}
        if not paths:
            return {}
        fs, _ = storage.filesystem(self.root)
        inner = {storage.filesystem(path)[1]: path for path in paths}
        out: dict[str, Embedding] = {}
        for name, blob in fs.cat(list(inner), on_error="omit").items():
            dim, tokens, truncated = _HEADER.unpack_from(blob)
            vec = np.frombuffer(blob, dtype=np.float16, offset=_HEADER.size).copy()
            if vec.shape == (dim,) and name in inner:  # anything else is recomputed, never misread
                out[paths[inner[name]]] = Embedding(vec, bool(truncated), int(tokens))
        return out

    def put_many(self, namespace: Mapping[str, Any], items: Mapping[str, Embedding]) -> None:
        """Store vectors (one object each, written concurrently)."""
        if not items:
            return
        fs, _ = storage.filesystem(self.root)
        blobs = {storage.filesystem(self._path(cache_key(namespace, p)))[1]:
                 _HEADER.pack(int(e.vector.shape[0]), int(e.tokens), int(e.truncated)) +
                 np.ascontiguousarray(e.vector, dtype=np.float16).tobytes() for p, e in items.items()}
        fs.pipe(blobs)

    def __len__(self) -> int:
        return sum(1 for name in storage.walk_files(self.root) if name.endswith(".f16")) if storage.exists(
            self.root) else 0

    def close(self) -> None:
        pass


def open_cache(cache_dir: str | os.PathLike) -> EmbedCache | ObjectEmbedCache:
    """The cache for *cache_dir*: SQLite in a local folder, one object per vector under a URL."""
    return ObjectEmbedCache(str(cache_dir)) if storage.is_remote(cache_dir) else EmbedCache(cache_dir)
