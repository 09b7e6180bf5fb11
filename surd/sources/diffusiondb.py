"""DiffusionDB source: ``metadata.parquet`` rows → ``zip:<part zip>#<image name>`` refs (read by `surd.fetch.archive`).

The metadata and the part zips may be local paths or http(s) URLs; remote files go through the guarded downloader
into a cache folder once. Rows above the nsfw score thresholds become rows rejected as nsfw_image / nsfw_prompt.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from surd.fetch.http import DownloadConfig, download_cached, is_remote
from surd.fetch.result import FetchError
from surd.options import config, option
from surd.sources.rows import make_row

COLUMNS = ("image_name", "prompt", "part_id", "seed", "step", "cfg", "sampler", "width", "height", "user_name",
           "timestamp", "image_nsfw", "prompt_nsfw")  # fmt: skip


USES_NETWORK = True  # `surd ingest diffusiondb` takes the download options


@config
class Config:
    """Where the metadata and part zips are, which parts to take and the nsfw score thresholds."""

    path: str = option("", help='DiffusionDB metadata.parquet: a local path or an http(s) URL.', cli=False)
    parts: str = option("", help='Folder or base URL of part-NNNNNN.zip (default: <metadata folder>/images).')
    part_ids: tuple[int, ...] = option((), help='Only this part, repeatable (default: all).', flag="--part-id")
    max_image_nsfw: float | None = option(None, help='Reject images whose image_nsfw score is above this.')
    max_prompt_nsfw: float | None = option(None, help='Reject rows whose prompt_nsfw score is above this.')
    max_items: int = option(0, help='Stop listing after this many items (0 = all).', ge=0)
    http: dict[str, Any] = option(default_factory=dict, cli=False,
                                 help='DownloadConfig options for remote metadata (the command fills it from its download options).')

    def __post_init__(self) -> None:
        object.__setattr__(self, "part_ids", tuple(int(p) for p in self.part_ids))
        if not self.path:
            raise ValueError("diffusiondb needs its metadata.parquet: pass a local path or URL")
        if not is_remote(self.path) and not Path(self.path).is_file():
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
        if is_remote(self.path):
            return self.path.rsplit("/", 1)[0] + "/images"
        return str(Path(self.path).resolve().parent / "images")


def _rows_table(cfg: Config) -> list[dict[str, Any]]:

    local = download_cached(cfg.path, DownloadConfig(**cfg.http))
    if isinstance(local, FetchError):
        raise RuntimeError(f"cannot fetch DiffusionDB metadata {cfg.path}: {local.reason}: {local.detail}")
    schema_names = pq.read_schema(local).names
    missing = [c for c in ("image_name", "prompt", "part_id") if c not in schema_names]
    if missing:
        raise ValueError(f"{cfg.path} lacks DiffusionDB column(s) {missing}: is it DiffusionDB's metadata.parquet?")
    table = pq.read_table(local, columns=[c for c in COLUMNS if c in schema_names], use_threads=False)
    if cfg.part_ids:
        table = table.filter(pc.is_in(table["part_id"], value_set=pa.array(cfg.part_ids)))
    table = table.sort_by([("part_id", "ascending"), ("image_name", "ascending")])
    return table.to_pylist()


def _nsfw_error(rec: dict[str, Any], cfg: Config) -> tuple[str | None, str]:
    for col, limit, reason in (("image_nsfw", cfg.max_image_nsfw, "nsfw_image"),
                               ("prompt_nsfw", cfg.max_prompt_nsfw, "nsfw_prompt")):  # fmt: skip
        score = rec.get(col)
        if limit is not None and score is not None and score > limit:
            return reason, f"{col} {score:.3f} > {limit}"
    return None, ""


def list_rows(cfg: Config, state_dir: Path | None = None, append: bool = False) -> Iterator[dict[str, Any]]:
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
