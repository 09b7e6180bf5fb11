"""Paths that are local or remote (``s3://``, ``gs://``, ``hf://``, any fsspec URL), behind one small API.

Local paths (and ``file://`` URLs) use the standard library, exactly as before: no fsspec import, the same bytes.
URLs go through fsspec (``pip install 'surd[remote]'``, plus ``gcsfs`` for ``gs://``); credentials and endpoints
come only from each backend's own environment and config files (``AWS_ACCESS_KEY_ID``, ``AWS_ENDPOINT_URL``,
``GOOGLE_APPLICATION_CREDENTIALS``, ``HF_TOKEN``, fsspec's ``FSSPEC_<PROTOCOL>_<OPTION>`` variables ...): surd
never takes, logs or saves them.

Object stores have no directories and no rename: `listdir` lists key prefixes, `makedirs` is a no-op there, and
every object appears whole when its upload finishes (see `surd.files` for how finished files are published).
Listings are never cached (see `filesystem`), since other processes and nodes write the same prefixes.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urlparse

from surd.deps import require

PathLike = str | os.PathLike
# Backends where a "directory" is only a key prefix: nothing to create (s3fs would even create the bucket).
OBJECT_STORES = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "hf", "oss", "r2", "b2"}


def scheme(path: PathLike) -> str:
    """``s3://b/k`` → ``s3``; a plain path, ``file://`` URL or Windows drive (``C:\\``) → ``file``."""
    parsed = urlparse(str(path))
    return parsed.scheme.lower() if len(parsed.scheme) > 1 and "://" in str(path) else "file"


def is_remote(path: PathLike) -> bool:
    """True for an fsspec URL other than ``file://``."""
    return scheme(path) != "file"


def local(path: PathLike) -> str:
    """A local path or ``file://`` URL as a plain path (the error names the fix for a remote URL)."""
    s = str(path)
    if is_remote(s):
        raise ValueError(f"{s} is a remote URL; this needs a local path")
    return unquote(urlparse(s).path) if s.startswith("file://") else s


def normalize(path: PathLike) -> str:
    """A path as surd passes it around: URLs unchanged (no trailing slash), local paths as given."""
    s = os.fspath(path)
    return s.rstrip("/") if is_remote(s) else local(s)


def filesystem(path: PathLike) -> tuple[Any, str]:
    """(fsspec filesystem, path within it) for a URL; filesystems are cached per process by fsspec.

    Listings are never cached: other workers and nodes write the same prefixes, and s3fs answers even the size of
    a file from a cached listing of its folder, so a stale one would hide a shard written since.
    """
    fsspec = require("fsspec", "remote")  # optional extra: only remote URLs need it
    try:
        return fsspec.core.url_to_fs(str(path), use_listings_cache=False)
    except TypeError:  # a backend without fsspec's listings cache takes no such option
        return fsspec.core.url_to_fs(str(path))


def join(base: PathLike, *names: str) -> str:
    """``join("s3://b/run", "00000.tar")`` → ``s3://b/run/00000.tar``; local paths join with os.path."""
    b = normalize(base)
    if is_remote(b):
        return "/".join([b.rstrip("/"), *(n.strip("/") for n in names)])
    return os.path.join(b, *names)


def parent(path: PathLike) -> str:
    """The folder holding *path* (for a URL, the prefix before the last ``/``)."""
    p = normalize(path)
    if is_remote(p):
        head, _, _ = p.rstrip("/").rpartition("/")
        return head if "://" in head else p
    return os.path.dirname(os.path.abspath(p))


def basename(path: PathLike) -> str:
    p = normalize(path)
    return p.rstrip("/").rpartition("/")[2] if is_remote(p) else os.path.basename(p)


def resolve(path: PathLike) -> str:
    """An absolute local path, or the URL unchanged: what configs record as a run's input."""
    p = normalize(path)
    return p if is_remote(p) else str(Path(p).resolve())


def exists(path: PathLike) -> bool:
    p = normalize(path)
    if not is_remote(p):
        return os.path.exists(p)
    fs, inner = filesystem(p)
    return bool(fs.exists(inner))


def isfile(path: PathLike) -> bool:
    p = normalize(path)
    if not is_remote(p):
        return os.path.isfile(p)
    fs, inner = filesystem(p)
    return bool(fs.isfile(inner))


def isdir(path: PathLike) -> bool:
    """A local directory, or a remote prefix holding at least one object."""
    p = normalize(path)
    if not is_remote(p):
        return os.path.isdir(p)
    fs, inner = filesystem(p)
    return bool(fs.isdir(inner))


def version_tag(path: PathLike) -> dict[str, Any]:
    """What changes when a file changes: size and modification time (an object's ETag on stores that have one)."""
    p = normalize(path)
    if not is_remote(p):
        st = os.stat(p)
        return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    fs, inner = filesystem(p)
    info = fs.info(inner)
    tag = info.get("ETag") or info.get("etag") or info.get("md5Hash") or str(info.get("LastModified") or
                                                                            info.get("mtime") or "")
    return {"size": int(info.get("size") or 0), "etag": str(tag).strip('"')}


def makedirs(path: PathLike) -> None:
    """Create a local directory (and parents); on object stores a no-op (prefixes need no creating)."""
    p = normalize(path)
    if not is_remote(p):
        os.makedirs(p, exist_ok=True)
        return
    fs, inner = filesystem(p)
    protocols = {fs.protocol} if isinstance(fs.protocol, str) else set(fs.protocol)
    if not protocols & OBJECT_STORES:
        fs.makedirs(inner, exist_ok=True)  # file-system-like backends (sftp, smb, memory) do have directories


def listdir(path: PathLike) -> list[str]:
    """Names of the entries directly inside *path*, sorted; FileNotFoundError if there are none."""
    p = normalize(path)
    if not is_remote(p):
        return sorted(os.listdir(p))
    fs, inner = filesystem(p)
    try:
        entries = fs.ls(inner, detail=False)
    except FileNotFoundError:
        entries = []
    names = sorted({e.rstrip("/").rpartition("/")[2] for e in entries} - {""})
    if not names:
        raise FileNotFoundError(f"{p} does not exist (or holds nothing)")
    return names


def read_bytes(path: PathLike) -> bytes:
    p = normalize(path)
    if not is_remote(p):
        with open(p, "rb") as f:
            return f.read()
    fs, inner = filesystem(p)
    return fs.cat_file(inner)


def read_text(path: PathLike, encoding: str = "utf-8") -> str:
    return read_bytes(path).decode(encoding)


def read_many(paths: list[str]) -> list[bytes]:
    """The bytes of several files, in order; remote ones are fetched concurrently (one request each)."""
    remote = [p for p in paths if is_remote(p)]
    got: dict[str, bytes] = {}
    if remote:
        fs, _ = filesystem(remote[0])
        inner = {p: filesystem(p)[1] for p in remote}
        fetched = fs.cat(list(inner.values()), on_error="raise")
        got = {p: fetched[i] for p, i in inner.items()}
    return [got[p] if p in got else read_bytes(p) for p in paths]


def open_file(path: PathLike, mode: str = "rb", **kwargs: Any) -> IO[Any]:
    """An open file object (reads stream; remote writes appear whole on close)."""
    p = normalize(path)
    if not is_remote(p):
        return open(p, mode, **kwargs)
    fs, inner = filesystem(p)
    return fs.open(inner, mode, **kwargs)


def put_file(local_path: PathLike, path: PathLike) -> None:
    """Upload a local file to a URL (one object, visible once complete)."""
    fs, inner = filesystem(path)
    fs.put_file(os.fspath(local_path), inner)


def put_bytes(path: PathLike, data: bytes) -> None:
    """Write bytes to a URL as one object."""
    fs, inner = filesystem(path)
    fs.pipe_file(inner, data)


def remove(path: PathLike, missing_ok: bool = True) -> None:
    p = normalize(path)
    if not is_remote(p):
        try:
            os.unlink(p)
        except FileNotFoundError:
            if not missing_ok:
                raise
        return
    fs, inner = filesystem(p)
    if missing_ok and not fs.exists(inner):
        return
    fs.rm_file(inner)


def walk_files(path: PathLike) -> Iterator[str]:
    """Every file under *path*, as paths relative to it (``/``-separated), sorted."""
    p = normalize(path)
    if not is_remote(p):
        root = Path(p)
        yield from sorted(f.relative_to(root).as_posix() for f in root.rglob("*") if f.is_file())
        return
    fs, inner = filesystem(p)
    prefix = inner.rstrip("/") + "/"
    yield from sorted(f[len(prefix):] for f in fs.find(inner) if f.startswith(prefix))


def upload_tree(local_dir: PathLike, path: PathLike, skip: Iterable[str] = ()) -> int:
    """Copy every file under a local folder to *path* (local or remote); returns how many. Files named in
    ``skip`` (top-level names) are left out."""
    src = Path(local_dir)
    skipped = set(skip)
    n = 0
    for rel in walk_files(src):
        if rel.split("/", 1)[0] in skipped:
            continue
        target = join(path, *rel.split("/"))
        if is_remote(target):
            put_file(src / rel, target)
        else:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(src / rel, target)
        n += 1
    return n


def download_tree(path: PathLike, local_dir: PathLike) -> int:
    """Copy every file under *path* into a local folder; returns how many (0 when *path* holds nothing)."""
    dst = Path(local_dir)
    n = 0
    for rel in walk_files(path) if exists(path) else ():
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(read_bytes(join(path, *rel.split("/"))))
        n += 1
    return n
