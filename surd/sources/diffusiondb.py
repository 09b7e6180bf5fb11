"""DiffusionDB source: ``metadata.parquet`` rows → ``zip:<part zip>#<image name>`` refs, and the fetcher for them.

The metadata and the part zips may be local paths or http(s) URLs; remote files go through the guarded downloader
into a cache folder once. Rows above the nsfw score thresholds become rows rejected as nsfw_image / nsfw_prompt.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from surd.download import DownloadConfig, client_for
from surd.fetchers import FetchError
from surd.net import sniff_image
from surd.sources import make_row

COLUMNS = ("image_name", "prompt", "part_id", "seed", "step", "cfg", "sampler", "width", "height", "user_name",
           "timestamp", "image_nsfw", "prompt_nsfw")  # fmt: skip
REMOTE_MAX_BYTES = 8 * 1024**3  # a DiffusionDB part zip is ~1 GB; the metadata parquet a few hundred MB
REMOTE_TIMEOUT = 900.0


def _is_remote(location: str) -> bool:
    return urlsplit(location).scheme in ("http", "https")


@dataclass(frozen=True)
class Config:
    """Where the metadata and part zips are, which parts to take and the nsfw score thresholds."""

    path: str = ""  # metadata.parquet (local path or URL)
    parts: str = ""  # folder or base URL holding part-NNNNNN.zip ("" = <metadata folder>/images)
    part_ids: tuple[int, ...] = ()  # only these parts (empty = every part in the metadata)
    max_image_nsfw: float | None = None  # reject rows whose image_nsfw score is above this
    max_prompt_nsfw: float | None = None  # reject rows whose prompt_nsfw score is above this
    max_items: int = 0
    http: dict[str, Any] = field(default_factory=dict)  # DownloadConfig options for remote metadata

    def __post_init__(self) -> None:
        object.__setattr__(self, "part_ids", tuple(int(p) for p in self.part_ids))
        if not self.path:
            raise ValueError("diffusiondb needs its metadata.parquet: pass a local path or URL")
        if not _is_remote(self.path) and not Path(self.path).is_file():
            raise FileNotFoundError(f"DiffusionDB metadata {self.path} not found: check the path")
        for name in ("max_image_nsfw", "max_prompt_nsfw"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 2.0:
                raise ValueError(f"diffusiondb {name} is a score threshold in [0, 1] (or None to keep all)")
        if self.max_items < 0:
            raise ValueError("diffusiondb max_items must be >= 0 (0 = no limit)")
        DownloadConfig(**self.http)

    def parts_location(self) -> str:
        if self.parts:
            return self.parts.rstrip("/")
        if _is_remote(self.path):
            return self.path.rsplit("/", 1)[0] + "/images"
        return str(Path(self.path).resolve().parent / "images")


def cached(location: str, cfg: DownloadConfig) -> Path | FetchError:
    """A local path for *location*, downloading a remote file once into the cache folder."""
    if not _is_remote(location):
        return Path(location)
    cache = Path(cfg.cache_dir or Path.home() / ".cache" / "surd") / "downloads"
    name = os.path.basename(urlsplit(location).path) or "file"
    target = cache / f"{hashlib.sha1(location.encode()).hexdigest()[:16]}-{name}"
    if target.exists():
        return target
    big = dataclasses.replace(cfg, max_bytes=max(cfg.max_bytes, REMOTE_MAX_BYTES), timeout=max(cfg.timeout, REMOTE_TIMEOUT))
    data = client_for(big).fetch(location, kind="data")
    if isinstance(data, FetchError):
        return data
    cache.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, target)  # atomic: a concurrent worker sees either nothing or the whole file
    return target


def _rows_table(cfg: Config) -> list[dict[str, Any]]:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    local = cached(cfg.path, DownloadConfig(**cfg.http))
    if isinstance(local, FetchError):
        raise RuntimeError(f"cannot fetch DiffusionDB metadata {cfg.path}: {local.reason}: {local.detail}")
    schema_names = pq.read_schema(local).names
    missing = [c for c in ("image_name", "prompt", "part_id") if c not in schema_names]
    if missing:
        raise ValueError(f"{cfg.path} lacks DiffusionDB column(s) {missing}: is it DiffusionDB's metadata.parquet?")
    table = pq.read_table(local, columns=[c for c in COLUMNS if c in schema_names])
    if cfg.part_ids:
        table = table.filter(pc.is_in(table["part_id"], value_set=__import__("pyarrow").array(cfg.part_ids)))
    table = table.sort_by([("part_id", "ascending"), ("image_name", "ascending")])
    return table.to_pylist()


def _nsfw_error(rec: dict[str, Any], cfg: Config) -> tuple[str | None, str]:
    for col, limit, reason in (("image_nsfw", cfg.max_image_nsfw, "nsfw_image"),
                               ("prompt_nsfw", cfg.max_prompt_nsfw, "nsfw_prompt")):  # fmt: skip
        score = rec.get(col)
        if limit is not None and score is not None and score > limit:
            return reason, f"{col} {score:.3f} > {limit}"
    return None, ""


def list_rows(cfg: Config, state_dir: Path | None = None) -> Iterator[dict[str, Any]]:
    """One row per metadata record (sorted by part, so a shard reads few zips)."""
    parts = cfg.parts_location()
    for n, rec in enumerate(_rows_table(cfg)):
        if cfg.max_items and n >= cfg.max_items:
            return
        prompt = (rec.get("prompt") or "").strip()
        error, detail = _nsfw_error(rec, cfg)
        if not prompt:
            error, detail = "missing_prompt", "empty prompt in the metadata"
        part = f"{parts}/part-{int(rec['part_id']):06d}.zip"
        extra = {k: rec.get(k) for k in ("seed", "step", "cfg", "sampler", "width", "height", "user_name", "part_id")}
        extra["timestamp"] = str(rec["timestamp"]) if rec.get("timestamp") is not None else None
        yield make_row(
            source="diffusiondb", source_id=rec["image_name"], image=f"zip:{part}#{rec['image_name']}",
            complex_prompt=prompt or None, url=part, license="CC0-1.0",
            provenance={"dataset": "poloclub/diffusiondb", "part": part, "image_name": rec["image_name"]},
            nsfw={"image_nsfw": rec.get("image_nsfw"), "prompt_nsfw": rec.get("prompt_nsfw")},
            extra={k: v for k, v in extra.items() if v is not None}, error=error, error_detail=detail,
        )  # fmt: skip


def _read_member(zf: zipfile.ZipFile, name: str, cfg: DownloadConfig) -> bytes | FetchError:
    try:
        info = zf.getinfo(name)
    except KeyError:
        return FetchError("missing_in_zip", f"{name} not in {zf.filename}")
    if info.file_size > cfg.max_bytes:  # checked before inflating: a zip member can be a bomb too
        return FetchError("too_large", f"{name}: {info.file_size} bytes > max_bytes {cfg.max_bytes}")
    try:
        data = zf.read(info)
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        return FetchError("bad_zip", f"{name} in {zf.filename}: {e}")
    return data if sniff_image(data) else FetchError("not_an_image", f"{name}: first bytes {data[:16]!r}")


def fetch_many(refs: list[str], options: dict[str, Any]) -> list[bytes | FetchError]:
    """Read ``zip:<zip path or URL>#<member>`` refs, opening each zip once; results in the order of *refs*."""
    cfg = DownloadConfig(**options)
    groups: dict[str, list[tuple[int, str]]] = defaultdict(list)
    out: list[bytes | FetchError | None] = [None] * len(refs)
    for i, ref in enumerate(refs):
        location, sep, member = ref[len("zip:") :].rpartition("#")
        if not sep or not member:
            out[i] = FetchError("invalid_ref", f"{ref!r} is not zip:<zip path or URL>#<member name>")
        else:
            groups[location].append((i, member))
    for location, members in groups.items():
        local = cached(location, cfg)
        try:
            zf = zipfile.ZipFile(local) if not isinstance(local, FetchError) else None
        except (OSError, zipfile.BadZipFile) as e:
            local = FetchError("missing_file" if isinstance(e, FileNotFoundError) else "bad_zip", f"{location}: {e}")
            zf = None
        for i, member in members:
            out[i] = local if zf is None else _read_member(zf, member, cfg)
        if zf is not None:
            zf.close()
    return out  # type: ignore[return-value]
