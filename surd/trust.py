"""Which user-given paths and URLs surd may read or write: the one place that decides.

Input lists, manifests and folder metadata come from other people. A row that names something surd should not touch
is rejected with its own reason (a `Refusal`), never read and never an exception that takes its shard down:

- `check_ref`: an image reference in a URL list. Only ``http(s)://`` unless the user opts in: local files (a plain
  path, ``file://``, ``zip://``) need ``allow_local_files``, object-store URLs (``s3://`` …, read with the user's
  own credentials) need ``allow_object_store``. A reference that does not parse is ``bad_url``.
- `check_inside`: a local file named by a manifest or a folder's metadata must resolve (symlinks followed) inside
  the folder that holds the list, or inside a root the user names (``allowed_roots``).
- `safe_name` / `child`: names that become paths (a pipeline's ``name``) cannot leave the directory they go in.
- `served_file`: the review server answers only for regular files inside its folder.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

WEB_SCHEMES = frozenset({"http", "https"})
LOCAL_SCHEMES = frozenset({"file", "zip"})  # "file" also stands for a plain path
OBJECT_STORE_SCHEMES = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "hf", "oss", "r2"})
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_CONTROL = re.compile(r"[\x00-\x20\x7f]")


@dataclass(frozen=True)
class Refusal:
    """Why a reference is not fetched: a reject reason counted in the stats, and a detail for the sidecar."""

    reason: str
    detail: str


def scheme(ref: str) -> str:
    """The scheme of a reference: ``https://x`` → ``https``; a plain path (or a Windows drive ``C:\\``) → ``file``."""
    m = _SCHEME.match(ref)
    return m.group(1).lower() if m and len(m.group(1)) > 1 else "file"


CONTAINER_SCHEMES = ("zip", "tar")  # zip:<location>#<member>, tar:<location>#<offset>:<size>:<member>


def split_container(ref: str) -> tuple[str, str]:
    """(the container's location, the rest from '#') of a ``zip:`` or ``tar:`` ref."""
    body = ref.split(":", 1)[1]
    location, sep, rest = body.rpartition("#")
    return (location, sep + rest) if sep else (body, "")


def parse_error(ref: str) -> str | None:
    """Why *ref* is not a usable URL or path (None when it is): what ``urlsplit`` or the fetcher would trip on."""
    if not ref:
        return "empty reference"
    if "\x00" in ref:
        return "contains a NUL byte"
    kind = scheme(ref)
    if kind == "file" and not ref.startswith("file:"):
        return None  # a plain path: any string without NUL is one
    if kind == "tar":  # tar:<location>#<offset>:<size>:<member>: the member part is a name, only the location is a URL
        return parse_error(split_container(ref)[0])
    if _CONTROL.search(ref):
        return "contains whitespace or control characters (percent-encode them)"
    try:
        parts = urlsplit(ref)
        port = parts.port  # raises for a port that is not a number in 0..65535
    except ValueError as e:
        return str(e)
    if kind in WEB_SCHEMES:
        if not parts.hostname:
            return "no host"
        if port == 0:
            return "port 0"
    elif kind in OBJECT_STORE_SCHEMES and not parts.netloc:
        return "no bucket"
    return None


def check_ref(ref: str, *, allow_local_files: bool = False, allow_object_store: bool = False) -> Refusal | None:
    """None when an image reference from a URL list may be fetched, else the `Refusal` its row is rejected with."""
    why = parse_error(ref)
    if why is not None:
        return Refusal("bad_url", f"{ref[:200]!r}: {why}")
    kind = scheme(ref)
    if kind in WEB_SCHEMES:
        return None
    if kind in LOCAL_SCHEMES:
        if allow_local_files:
            return None
        return Refusal("local_file_refused", f"{ref[:200]!r} is a local file: a URL list fetches only http(s) "
                       "unless you pass --allow-local-files (allow_local_files: true)")
    if kind in OBJECT_STORE_SCHEMES:
        if allow_object_store:
            return None
        return Refusal("object_store_refused", f"{ref[:200]!r} is read with your storage credentials: a URL list "
                       "fetches only http(s) unless you pass allow_object_store: true")
    return Refusal("unsupported_scheme", f"{ref[:200]!r}: {kind}:// (a URL list fetches http(s))")


def local_path(ref: str) -> str:
    """The file system path of a plain path or a ``file://`` URL."""
    return unquote(urlsplit(ref).path) if ref.startswith("file://") else ref


def roots_of(base: str | os.PathLike, extra: Iterable[str | os.PathLike] = ()) -> tuple[Path, ...]:
    """The folders local files may resolve into: *base* and the user's extra roots, symlinks resolved."""
    return tuple(Path(r).resolve() for r in (base, *extra))


def check_roots(roots: object) -> None:
    """``allowed_roots`` must be a list of existing local folders (the error names the one that is not)."""
    if isinstance(roots, (str, bytes)) or not isinstance(roots, (list, tuple)):
        raise ValueError(f"allowed_roots must be a list of folders, got {roots!r}")
    for r in roots:
        if not isinstance(r, str) or "://" in r or not Path(r).is_dir():
            raise ValueError(f"allowed_roots: {r!r} is not a local folder")


def check_inside(path: str | os.PathLike, roots: Iterable[Path], what: str = "file") -> Refusal | None:
    """None when *path* (symlinks followed) lies inside one of *roots*, else an ``outside_root`` `Refusal`."""
    roots = tuple(roots)
    try:
        real = Path(path).resolve()
    except (OSError, RuntimeError, ValueError) as e:  # a symlink loop, a NUL byte
        return Refusal("bad_file_name", f"{str(path)[:200]!r}: {e}")
    if any(real == r or real.is_relative_to(r) for r in roots):
        return None
    shown = ", ".join(str(r) for r in roots)
    detail = f"{str(path)[:200]!r} resolves to {real}, outside {shown}: pass allowed_roots (--allow-root DIR) to read it"
    return Refusal("outside_root", f"{what} {detail}")


def inside_prefix(base: str, rel: str) -> str | None:
    """``base/rel`` for a URL *base* (``s3://b/lists``), or None when *rel* climbs out of it (``../x``)."""
    joined = posixpath.normpath(rel.replace("\\", "/"))
    if joined == ".." or joined.startswith("../") or posixpath.isabs(joined):
        return None
    return base.rstrip("/") + "/" + joined


def is_safe_name(name: str) -> bool:
    """Whether *name* can be one path component: letters, digits, ``._-``, starting with a letter or digit, no ``..``,
    at most 128 characters."""
    return bool(_NAME.match(name)) and ".." not in name


def safe_name(name: str, what: str = "name") -> str:
    """*name* when it `is_safe_name`, else a ValueError saying what a name may hold."""
    if not is_safe_name(name):
        raise ValueError(f"{what} {name!r} cannot be used as a folder name: use letters, digits, '.', '_' and '-' "
                         "(no '/', no '..', at most 128 characters, starting with a letter or digit)")
    return name


def child(base: str, name: str, what: str = "name") -> str:
    """``base/name`` for a `safe_name` *name* (a local path or a URL base)."""
    safe_name(name, what)
    return base.rstrip("/") + "/" + name if "://" in base else os.path.join(base, name)


def served_file(root: Path, url_path: str) -> Path | None:
    """The regular file a URL path names, only when it resolves inside *root* (a resolved folder), else None."""
    rel = unquote(url_path).lstrip("/") or "index.html"
    if "\x00" in rel:
        return None
    try:
        target = (root / rel).resolve()
    except (OSError, RuntimeError, ValueError):
        return None
    if not target.is_relative_to(root) or not target.is_file():
        return None
    return target
