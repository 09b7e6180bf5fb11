"""Existing webdataset shards (img2dataset's and LAION's layout): ``{key}.jpg`` + ``{key}.txt`` + ``{key}.json`` per
sample, and img2dataset's ``{shard}.parquet`` beside each tar when present.

``path`` is a tar, a folder of tars (searched recursively), a glob (``shards/*.tar``) or a brace range
(``shards/{00000..00099}.tar``), local or at any fsspec URL (http(s) tars come through the guarded downloader).
Members are grouped by key as webdataset does (the name up to the first dot of its last part). Rows reference the
image by its data offset in the tar (`surd.fetch.tar`), so ingest reads each image once, with no second scan.
Each sample keeps its original key, URL and metadata (``.json``, else its parquet row) under ``provenance``.

Nothing is lost quietly: a sample with no image, a link or special member, a cut member, a non-UTF-8 caption, a
bad or oversized ``.json``, a key with a path separator, is a row rejected with that reason; a key img2dataset's
parquet lists as a success but the tar lacks is ``missing_in_tar``; a tar that cannot be read, or that ends
without its end-of-archive blocks, adds a ``bad_tar`` / ``truncated_tar`` row naming the byte where it stops.
"""

from __future__ import annotations

import glob as globlib
import json
import os
import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import pyarrow.parquet as pq

from surd import storage
from surd.fetch.http import DownloadConfig, download_cached, is_remote
from surd.fetch.result import FetchError
from surd.fetch.tar import tar_ref
from surd.options import config, option
from surd.sources.rows import make_row

COMPRESSED = (".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar.zst")
_MEMBER = re.compile(r"^((?:.*/|)[^./]+)\.([^/]*)$")  # webdataset's base_plus_ext: key = up to the first dot
_RANGE = re.compile(r"\{(\d+)\.\.(\d+)\}")
_LIST = re.compile(r"\{([^{}]*,[^{}]*)\}")


USES_NETWORK = True  # `surd ingest webdataset` takes the download options (tars at http(s) URLs)


@config
class Config:
    """Which shards to read and which members hold the image, the caption and the metadata."""

    path: str = option("", cli=False,
                      help="A .tar, a folder of tars, a glob or a {00000..00099}.tar range; local or a URL (img2dataset's and LAION's output as is).")
    image_exts: tuple[str, ...] = option(("jpg", "jpeg", "png", "webp"), flag="--image-ext",
                                        help='The image member: the first of these extensions present (repeatable).')
    caption_ext: str = option("txt", help="Member holding the prompt (else the .json's caption).")
    json_ext: str = option("json", help="Member holding the sample's metadata.")
    max_text_bytes: int = option(1 << 20, ge=1,
                                help='A larger caption or .json is rejected (caption_too_large / metadata_too_large).')
    source_name: str = option("webdataset",
                             help='Source name recorded in each sample (its source id is <tar path>/<key>).')
    http: dict[str, Any] = option(default_factory=dict, cli=False,
                                 help='DownloadConfig options for http(s) tars (the command fills it from its download options).')

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_exts", tuple(e.lower().lstrip(".") for e in self.image_exts))
        if not self.path:
            raise ValueError("webdataset needs a tar, a folder of tars, a glob or a {00000..00099}.tar range")
        if not self.image_exts or self.max_text_bytes < 1:
            raise ValueError("webdataset image_exts must name at least one extension; max_text_bytes must be >= 1")
        if self.path.endswith(COMPRESSED):
            raise ValueError(f"{self.path} is a compressed tar: its members have no byte offsets to read; "
                             "decompress it first (e.g. gunzip), then pass the .tar")
        if not storage.is_remote(self.path) and not re.search(r"[*?\[{]", self.path) and not os.path.exists(self.path):
            raise FileNotFoundError(f"webdataset {self.path} not found: pass a tar, a folder of tars, or a glob")
        DownloadConfig(**self.http)


def expand_braces(pattern: str) -> list[str]:
    """``a{00..02}.tar`` → a00.tar, a01.tar, a02.tar and ``{a,b}.tar`` → a.tar, b.tar (webdataset's shard syntax)."""
    m = _RANGE.search(pattern) or _LIST.search(pattern)
    if not m:
        return [pattern]
    if m.re is _RANGE:
        lo, hi = m.group(1), m.group(2)
        items = [str(i).zfill(len(lo)) for i in range(int(lo), int(hi) + 1)]
    else:
        items = m.group(1).split(",")
    return [p for item in items for p in expand_braces(pattern[: m.start()] + item + pattern[m.end() :])]


def _under(folder: str) -> list[str]:
    found = [storage.join(folder, rel) for rel in storage.walk_files(folder)]
    compressed = [f for f in found if f.endswith(COMPRESSED)]
    if compressed:
        raise ValueError(f"{compressed[0]} is a compressed tar: decompress the shards first (members are read "
                         "by byte offset)")
    return [f for f in found if f.endswith(".tar")]


def list_tars(path: str) -> list[str]:
    """Every tar *path* names, in order (sorted within a folder or glob); FileNotFoundError if none."""
    tars: list[str] = []
    for p in expand_braces(path):
        if re.search(r"[*?\[]", p):
            if storage.is_remote(p):
                fs, inner = storage.filesystem(p)
                proto = p.split("://", 1)[0]
                tars += sorted(f"{proto}://{f}" for f in fs.glob(inner) if f.endswith(".tar"))
            else:
                tars += sorted(os.path.abspath(f) for f in globlib.glob(p, recursive=True) if f.endswith(".tar"))
        elif p.endswith(".tar") or is_remote(p):
            tars.append(p if storage.is_remote(p) else os.path.abspath(storage.local(p)))
        else:
            tars += _under(p if storage.is_remote(p) else os.path.abspath(storage.local(p)))
    if not tars:
        raise FileNotFoundError(f"no .tar shards at {path}: pass a tar, a folder of tars, a glob or a range")
    return tars


def _root(tars: list[str]) -> str:
    parents = [t.rsplit("/", 1)[0] if "/" in t else "" for t in tars]
    common = os.path.commonprefix(parents)
    return common if all(p == common or p.startswith(common + "/") for p in parents) else common.rsplit("/", 1)[0]


def _open(location: str, cfg: Config) -> tuple[IO[bytes], int]:
    """(seekable file, size) of a tar; http(s) tars are downloaded once into the cache."""
    if is_remote(location):
        local = download_cached(location, DownloadConfig(**cfg.http))
        if isinstance(local, FetchError):
            raise OSError(f"{local.reason}: {local.detail}")
        location = str(local)
    if storage.is_remote(location):
        fs, inner = storage.filesystem(location)
        return fs.open(inner, "rb"), int(fs.size(inner))
    path = storage.local(location)
    return open(path, "rb"), os.path.getsize(path)


def _parquet(location: str, cfg: Config) -> list[dict[str, Any]]:
    """img2dataset's per-shard parquet beside the tar (its rows), or [] when there is none."""
    where = location[: -len(".tar")] + ".parquet"
    try:
        if is_remote(where):
            got = download_cached(where, DownloadConfig(**cfg.http))
            if isinstance(got, FetchError):
                return []
            where = str(got)
        if not storage.exists(where):
            return []
        with storage.open_file(where) as f:
            return pq.read_table(f, use_threads=False).to_pylist()
    except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
        raise _ShardError("bad_parquet", f"{where}: {e}") from e


class _ShardError(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def _safe(name: str) -> str:
    """A member name as valid UTF-8 text (tarfile keeps undecodable bytes as surrogates)."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


@dataclass
class _Sample:
    key: str
    members: dict[str, tuple[int, int]] = field(default_factory=dict)  # ext → (data offset, size)
    texts: dict[str, bytes] = field(default_factory=dict)  # caption and json members' bytes
    problems: list[tuple[str, str]] = field(default_factory=list)  # (reason, detail), first wins


def _add_member(tf: tarfile.TarFile, m: tarfile.TarInfo, size: int, samples: dict[str, _Sample], cfg: Config) -> None:
    name = m.name[2:] if m.name.startswith("./") else m.name
    hit = _MEMBER.match(name)
    key, ext = (hit.group(1), hit.group(2).lower()) if hit else (name, "")
    s = samples.setdefault(key, _Sample(key))
    shown = _safe(m.name)
    if ext in s.members:
        s.problems.append(("duplicate_member", f"{shown} appears twice"))
    elif not m.isfile():
        kind = "a symlink" if m.issym() else "a hard link" if m.islnk() else "not a regular file"
        s.problems.append(("link_member" if m.issym() or m.islnk() else "special_member", f"{shown} is {kind}"))
    elif m.offset_data + m.size > size:
        s.problems.append(("truncated_member", f"{shown}: {m.size} bytes at {m.offset_data}, the tar has {size}"))
    else:
        s.members[ext] = (m.offset_data, m.size)
        if ext in (cfg.caption_ext, cfg.json_ext):
            reason = "caption_too_large" if ext == cfg.caption_ext else "metadata_too_large"
            if m.size > cfg.max_text_bytes:
                s.problems.append((reason, f"{shown}: {m.size} bytes > max_text_bytes {cfg.max_text_bytes}"))
            else:
                s.texts[ext] = tf.extractfile(m).read()  # type: ignore[union-attr]


def read_tar(location: str, cfg: Config) -> tuple[dict[str, _Sample], list[tuple[str, str]]]:
    """The samples of one tar, grouped by key in first-seen order, and tar-level problems (reason, detail)."""
    samples: dict[str, _Sample] = {}
    problems: list[tuple[str, str]] = []
    try:
        f, size = _open(location, cfg)
    except OSError as e:
        return samples, [("bad_tar", f"{location}: {e}")]
    with f:
        try:
            with tarfile.open(fileobj=f, mode="r:") as tf:  # type: ignore[call-overload]
                for m in tf:
                    if not m.isdir():
                        _add_member(tf, m, size, samples, cfg)
                end = tf.offset
        except (tarfile.TarError, OSError, EOFError) as e:
            reason = "truncated_tar" if "end of data" in str(e) else "bad_tar"  # tarfile's words for a cut file
            return samples, [(reason, f"{location}: {type(e).__name__}: {e} (the samples before it are listed; "
                              "any after it are lost)")]
        f.seek(end)
        if f.read(512) != b"\0" * 512:  # tarfile stops quietly at a cut header: the end blocks tell it apart
            problems.append(("truncated_tar", f"{location} ends at byte {size} without its end-of-archive "
                             f"blocks (expected at byte {end}): samples after it, if any, are lost"))
    return samples, problems


def _decode(s: _Sample, ext: str) -> tuple[str | None, str]:
    """(text, problem detail) of a caption member: strict UTF-8, so a mojibake caption is rejected, not kept."""
    raw = s.texts.get(ext)
    if raw is None:
        return None, ""
    try:
        return raw.decode("utf-8"), ""
    except UnicodeDecodeError as e:
        return None, f"{s.key}.{ext} is not UTF-8 (byte {e.start}: {raw[e.start:e.start + 4]!r})"


def _metadata(s: _Sample, cfg: Config, listed: dict[str, Any] | None) -> tuple[dict[str, Any] | None, str]:
    raw = s.texts.get(cfg.json_ext)
    if raw is None:
        return listed, ""  # no .json member: img2dataset's parquet row, when there is one, says the same
    try:
        meta = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as e:
        return None, f"{s.key}.{cfg.json_ext}: {e}"
    return (meta, "") if isinstance(meta, dict) else (None, f"{s.key}.{cfg.json_ext} is not a JSON object")


def _sample_row(s: _Sample, location: str, rel: str, cfg: Config, listed: dict[str, Any] | None) -> dict[str, Any]:
    key = _safe(s.key)
    problems = list(s.problems)
    if key != s.key or "/" in key or "\\" in key or key in ("", ".", ".."):
        problems.insert(0, ("bad_key", f"key {key!r}: a webdataset key is one file-name part (no path separator, "
                            "valid UTF-8)"))
    caption, bad_caption = _decode(s, cfg.caption_ext)
    meta, bad_meta = _metadata(s, cfg, listed)
    if bad_caption:
        problems.append(("bad_caption", bad_caption))
    if bad_meta:
        problems.append(("bad_metadata", bad_meta))
    meta = meta or {}
    if caption is None and not bad_caption:
        caption = meta.get("caption") if isinstance(meta.get("caption"), str) else None
    image_ext = next((e for e in cfg.image_exts if e in s.members), None)
    if image_ext is None:
        problems.append(("missing_image", f"{key}: members {sorted(s.members) or 'none'} hold no "
                         f"{'/'.join(cfg.image_exts)} image"))
    elif caption is None and not bad_caption:
        problems.append(("missing_caption", f"{key}: no .{cfg.caption_ext} member and no caption in its metadata"))
    offset, size = s.members.get(image_ext or "", (0, 0))
    error, detail = problems[0] if problems else (None, "")
    if len(problems) > 1:
        detail += "; also " + "; ".join(f"{r}: {d}" for r, d in problems[1:])
    url = meta.get("url") if isinstance(meta.get("url"), str) else ""
    return make_row(
        source=cfg.source_name, source_id=f"{rel}/{key}", complex_prompt=caption, url=url,
        image=tar_ref(location, offset, size, f"{key}.{image_ext}") if image_ext and not error else "",
        provenance={"format": "webdataset", "tar": location, "key": key, "members": sorted(s.members),
                    "metadata": json.loads(json.dumps(meta, default=str))},
        error=error, error_detail=detail,
    )


def list_rows(cfg: Config, state_dir: str | None = None, append: bool = False) -> Iterator[dict[str, Any]]:
    """One row per sample key, tars in order; then each tar's listed-but-absent keys and tar-level problems."""
    tars = list_tars(cfg.path)
    root = _root(tars)
    for location in tars:
        rel = location[len(root) :].lstrip("/") if root else location
        samples, problems = read_tar(location, cfg)
        try:
            listed = {str(r.get("key")): r for r in _parquet(location, cfg) if r.get("key") is not None}
        except _ShardError as e:
            listed, problems = {}, [*problems, (e.reason, e.detail)]
        for s in samples.values():
            yield _sample_row(s, location, rel, cfg, listed.get(s.key))
        for key, rec in listed.items():
            if key not in samples and rec.get("status", "success") == "success":
                yield make_row(source=cfg.source_name, source_id=f"{rel}/{_safe(key)}", image="",
                               complex_prompt=rec.get("caption"), url=rec.get("url") or "",
                               provenance={"format": "webdataset", "tar": location, "key": key,
                                           "metadata": json.loads(json.dumps(rec, default=str))},
                               error="missing_in_tar", error_detail=f"{key}: a success in the shard's parquet, "
                               "absent from the tar")
        for i, (reason, detail) in enumerate(problems):
            yield make_row(source=cfg.source_name, source_id=f"{rel}#{reason}-{i}", image="", complex_prompt=None,
                           provenance={"format": "webdataset", "tar": location}, error=reason, error_detail=detail)
