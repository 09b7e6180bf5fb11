"""Export a dataset directory for manual review: a static review site, Label Studio tasks, or a CSV.

A site (``--format site``) is self-contained and works from ``file://`` (data is loaded as ``<script>`` files,
since browsers block ``fetch()`` of local JSON) or from ``surd review serve``::

  index.html app.js style.css   the page (no CDN, no build step)
  site.json                     keys of this review batch (the server validates decisions against it)
  data/index.js                 keys + CLIP scores of every sample: what filtering and paging need at load
  data/chunk_NNNN.js            prompts, loaded lazily per page (``chunk_size`` samples each)
  images/<key>.jpg              the dataset image as stored (no re-encoding)
  thumbs/<key>.jpg              a thumbnail made at export
  decisions.json                written by `surd review serve` as the reviewer works

With ``split`` > 1, samples sorted by key are cut into N contiguous, disjoint batches, each a full export in
``batch_XX/``; ``overlap`` = f also gives a deterministic fraction f of the samples (the first by sha256 of the key)
to a second batch, so two reviewers decide them and `surd review import` can measure their agreement. An
adjudication site (`export_adjudication`) holds only the disagreements, with every reviewer's opinion shown.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image
from tqdm import tqdm

from surd import storage
from surd.review.labelstudio import LABEL_CONFIG, make_tasks
from surd.review.site import SITE_FORMAT
from surd.sample import Sample
from surd.shards import iter_dataset, list_shards, read_stats

FORMATS = ("site", "labelstudio", "csv")
IMAGE_EXTS = ("jpg", "jpeg", "webp", "png")
STATIC_DIR = Path(__file__).parent / "static"
STATIC_FILES = ("index.html", "sitekit.js", "app.js", "style.css")
CSV_COLUMNS = ("key", "image", "simple_prompt", "complex_prompt", "simple_score", "complex_score", "decision", "note")


@dataclass(frozen=True)
class ExportConfig:
    """How `export_review` writes a review: format, number of batches and their overlap, thumbnails, chunking."""

    format: str = "site"
    split: int = 1
    overlap: float = 0.0  # fraction of samples given to two batches (two reviewers), for agreement
    thumb_size: int = 256
    chunk_size: int = 500
    image_url_prefix: str = ""  # labelstudio: e.g. "/data/local-files/?d=review/" for Label Studio local storage
    workers: int = 0  # thumbnail threads; 0 = min(4, cpu count)

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {self.format!r}")
        if not 1 <= self.split <= 1000:
            raise ValueError(f"split must be between 1 and 1000 batches, got {self.split}")
        if not 0.0 <= self.overlap <= 1.0:
            raise ValueError(f"overlap must be a fraction between 0 and 1 (e.g. 0.1), got {self.overlap}")
        if self.overlap > 0 and self.split < 2:
            raise ValueError("overlap gives samples to two batches: use it with --split 2 or more")
        if not 32 <= self.thumb_size <= 1024:
            raise ValueError(f"thumb_size must be between 32 and 1024 pixels, got {self.thumb_size}")
        if not 10 <= self.chunk_size <= 100_000:
            raise ValueError(f"chunk_size must be between 10 and 100000 samples, got {self.chunk_size}")
        if self.workers < 0:
            raise ValueError(f"workers must be >= 0 (0 = automatic), got {self.workers}")


@dataclass
class ExportResult:
    """What an export wrote: sample count, batch directories, seconds taken."""

    n: int
    batches: list[Path] = field(default_factory=list)
    shared: int = 0  # samples in two batches (overlap)
    seconds: float = 0.0


def sample_row(sample: Sample) -> dict[str, Any]:
    """The review fields of one sample; tolerant of missing prompts and missing CLIP scores."""
    meta = sample.get("json") if isinstance(sample.get("json"), dict) else {}
    clip = ((meta.get("stages") or {}).get("clip_filter") or {}) if isinstance(meta.get("stages"), dict) else {}
    ext = next((e for e in IMAGE_EXTS if e in sample), None)
    return {
        "key": sample["__key__"],
        "ext": ext,
        "simple_prompt": str(meta.get("simple_prompt") or ""),
        "complex_prompt": str(meta.get("complex_prompt") or ""),
        "simple_score": _score(clip.get("simple_score")),
        "complex_score": _score(clip.get("complex_score")),
    }


def _score(value: Any) -> float | None:
    return round(float(value), 5) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def make_thumbnail(data: bytes, size: int) -> bytes:
    """A JPEG thumbnail that fits in size×size (Pillow drafts JPEG decoding at a reduced scale)."""

    with Image.open(io.BytesIO(data)) as im:
        im.thumbnail((size, size))
        buf = io.BytesIO()
        im.convert("RGB").save(buf, "JPEG", quality=82)
    return buf.getvalue()


def _write_media(sample: Sample, row: dict[str, Any], media_dir: Path, thumb_size: int | None) -> None:
    """Write the image as stored, and a thumbnail; an undecodable image gets no thumbnail (the page falls back)."""
    if row["ext"] is None:
        return
    data = bytes(sample[row["ext"]])
    (media_dir / "images" / f"{row['key']}.{row['ext']}").write_bytes(data)
    if thumb_size:
        try:
            (media_dir / "thumbs" / f"{row['key']}.jpg").write_bytes(make_thumbnail(data, thumb_size))
            row["thumb"] = True
        except (OSError, ValueError, SyntaxError):
            row["thumb"] = False


def _collect(dataset_dir: str, media_dir: Path, cfg: ExportConfig, progress: bool,
             only: set[str] | None = None) -> list[dict[str, Any]]:
    """Stream the dataset once (keeping only keys in *only* if given): write media on a thread pool, return rows."""

    for sub in ("images", "thumbs") if cfg.format == "site" else ("images",):
        (media_dir / sub).mkdir(parents=True, exist_ok=True)
    total = (sum(s.get("kept", 0) for s in read_stats(dataset_dir).values()) or None) if only is None else len(only)
    thumb = cfg.thumb_size if cfg.format == "site" else None
    rows: dict[str, dict[str, Any]] = {}
    pending: deque[Future] = deque()
    workers = cfg.workers or min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool, tqdm(total=total, desc="export", unit="img", disable=not progress) as bar:
        for sample in iter_dataset(dataset_dir):
            if only is not None and sample["__key__"] not in only:
                continue
            row = sample_row(sample)
            if row["key"] in rows:
                raise ValueError(f"key {row['key']!r} appears twice in {dataset_dir}; a surd dataset has unique keys")
            rows[row["key"]] = row
            pending.append(pool.submit(_write_media, sample, row, media_dir, thumb))
            while len(pending) > 4 * workers:  # bound memory: at most a few samples' bytes in flight
                pending.popleft().result()
                bar.update()
        while pending:
            pending.popleft().result()
            bar.update()
    return [rows[k] for k in sorted(rows)]


def split_rows(rows: list[dict[str, Any]], n: int) -> list[list[dict[str, Any]]]:
    """N contiguous, disjoint batches of key-sorted rows, sizes differing by at most one."""
    size, extra = divmod(len(rows), n)
    out, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        out.append(rows[start:end])
        start = end
    return out


def assign_batches(rows: list[dict[str, Any]], n: int, overlap: float = 0.0) -> list[list[dict[str, Any]]]:
    """Split rows into n batches (contiguous in key order) and give round(overlap·len) rows a second batch.

    The shared rows are the first by sha256 of the key (spread over the dataset, the same on every run); the j-th
    shared row of batch i also goes to batch i+1+(j mod n−1), so every pair of neighbouring batches shares some.
    """
    batches = split_rows(rows, n)
    if overlap <= 0 or n < 2:
        return batches
    primary = {r["key"]: i for i, b in enumerate(batches) for r in b}
    count = round(overlap * len(rows))
    shared = sorted(sorted(rows, key=lambda r: hashlib.sha256(r["key"].encode()).digest())[:count],
                    key=lambda r: r["key"])
    extra: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    for j, r in enumerate(shared):
        extra[(primary[r["key"]] + 1 + j % (n - 1)) % n].append(r)
    return [sorted(b + e, key=lambda r: r["key"]) for b, e in zip(batches, extra)]


def export_review(dataset_dir: str | os.PathLike, out_dir: str | os.PathLike, cfg: ExportConfig | None = None,
                  progress: bool = True, *, opinions: Mapping[str, list[list[str]]] | None = None) -> ExportResult:
    """Export *dataset_dir* for review into *out_dir* (which must be new or empty: it may hold decisions).

    With *opinions* (key → [[reviewer, decision, note], …]) only those keys are exported, as an adjudication site
    that shows each reviewer's opinion (see `export_adjudication`).

    Either may be a URL (`surd.storage`); an export to a URL is written to a local temp folder, then uploaded
    (the returned batches are then URLs too).
    """
    cfg = cfg or ExportConfig()
    dataset_dir, out_dir = storage.normalize(dataset_dir), storage.normalize(out_dir)
    if not list_shards(dataset_dir):
        raise FileNotFoundError(f"no shards (NNNNN.tar) in {dataset_dir}: point at a stage's output directory")
    if storage.isdir(out_dir) and storage.listdir(out_dir):
        raise FileExistsError(f"{out_dir} is not empty (it may hold review decisions); choose a new --out directory")
    if not storage.is_remote(out_dir):
        return _export(dataset_dir, Path(out_dir), cfg, progress, opinions)
    with tempfile.TemporaryDirectory(prefix="surd-review-") as tmp:
        result = _export(dataset_dir, Path(tmp), cfg, progress, opinions)
        storage.upload_tree(tmp, out_dir)
    result.batches = [storage.join(out_dir, *b.relative_to(tmp).parts) for b in result.batches]  # type: ignore[misc]
    return result


def _export(dataset_dir: str, out: Path, cfg: ExportConfig, progress: bool,
            opinions: Mapping[str, list[list[str]]] | None) -> ExportResult:
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    media = out if cfg.split == 1 else out / ".staging"
    rows = _collect(dataset_dir, media, cfg, progress, None if opinions is None else set(opinions))
    for r in rows:
        if opinions is not None:
            r["opinions"] = [list(o) for o in opinions[r["key"]]]
    result = ExportResult(n=len(rows))
    batches = assign_batches(rows, cfg.split, cfg.overlap)
    seen: dict[str, int] = {}
    for r in (r for b in batches for r in b):
        seen[r["key"]] = seen.get(r["key"], 0) + 1
    shared = {k for k, c in seen.items() if c > 1}
    result.shared = len(shared)
    info = {"dataset": storage.resolve(dataset_dir), "batches": cfg.split, "overlap": cfg.overlap,
            "role": "review" if opinions is None else "adjudication"}
    for i, batch in enumerate(batches):
        bdir = out if cfg.split == 1 else out / f"batch_{i:02d}"
        if cfg.split > 1:
            _move_media(batch, media, bdir, cfg.format == "site", shared)
        _WRITERS[cfg.format](batch, bdir, cfg, {**info, "batch": i})
        result.batches.append(bdir)
    if cfg.split > 1:
        shutil.rmtree(media)
        if cfg.format == "site":
            _write_batch_list(out, result.batches, batches)
    result.seconds = time.perf_counter() - t0
    return result


def export_adjudication(dataset_dir: str | os.PathLike, out_dir: str | os.PathLike,
                        opinions: Mapping[str, list[list[str]]], progress: bool = True) -> ExportResult:
    """A review site of only the keys in *opinions* (the disagreements), each card showing who decided what."""
    return export_review(dataset_dir, out_dir, ExportConfig(), progress, opinions=opinions)


def _move_media(batch: list[dict[str, Any]], staging: Path, bdir: Path, thumbs: bool, shared: set[str]) -> None:
    """Move a batch's files out of staging; a key in two batches is copied (staging is removed at the end)."""
    for sub in ("images", "thumbs") if thumbs else ("images",):
        (bdir / sub).mkdir(parents=True, exist_ok=True)
    place = shutil.copyfile
    for row in batch:
        put = place if row["key"] in shared else os.replace
        if row["ext"] is not None:
            name = f"{row['key']}.{row['ext']}"
            put(staging / "images" / name, bdir / "images" / name)
        if thumbs and row.get("thumb"):
            put(staging / "thumbs" / f"{row['key']}.jpg", bdir / "thumbs" / f"{row['key']}.jpg")


def _image_path(row: dict[str, Any]) -> str:
    return f"images/{row['key']}.{row['ext']}" if row["ext"] else ""


def _js(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _chunks(rows: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start:start + size]


def write_site(rows: list[dict[str, Any]], bdir: Path, cfg: ExportConfig, info: dict[str, Any]) -> None:
    """The static review page for one batch: page files, site.json, the index and the lazily loaded chunks."""
    keys = [r["key"] for r in rows]
    for name in STATIC_FILES:
        shutil.copyfile(STATIC_DIR / name, bdir / name)
    (bdir / "data").mkdir(exist_ok=True)
    has_scores = any(r["simple_score"] is not None or r["complex_score"] is not None for r in rows)
    role = info.get("role", "review")  # an adjudication site's id differs even over the same keys as a batch
    site_id = hashlib.sha1("\n".join([info["dataset"], *keys, *([role] if role != "review" else [])]).encode()
                           ).hexdigest()[:16]
    title = f"{storage.basename(info['dataset'])}" + (f" · batch {info['batch']:02d}" if info["batches"] > 1 else "")
    if info.get("role") == "adjudication":
        title += " · adjudication"
    index = {
        "version": 1, "title": title, "site_id": site_id, "n": len(rows), "chunk_size": cfg.chunk_size, "keys": keys,
        "role": info.get("role", "review"),
        "scores": {"simple": [r["simple_score"] for r in rows], "complex": [r["complex_score"] for r in rows]}
        if has_scores else None,
    }
    (bdir / "data" / "index.js").write_text(f"window.SURD_INDEX = {_js(index)};\n", encoding="utf-8")
    for ci, chunk in enumerate(_chunks(rows, cfg.chunk_size)):
        items = [{"k": r["key"], "s": r["simple_prompt"], "c": r["complex_prompt"], "i": _image_path(r),
                  "t": f"thumbs/{r['key']}.jpg" if r.get("thumb") else "", **({"o": r["opinions"]} if "opinions" in r
                                                                            else {})} for r in chunk]
        (bdir / "data" / f"chunk_{ci:04d}.js").write_text(f"surdChunk({ci}, {_js(items)});\n", encoding="utf-8")
    site = {"format": SITE_FORMAT, "version": 1, **info, "site_id": site_id, "n": len(rows), "keys": keys}
    (bdir / "site.json").write_text(json.dumps(site, indent=1) + "\n", encoding="utf-8")


def write_csv(rows: list[dict[str, Any]], bdir: Path, cfg: ExportConfig, info: dict[str, Any]) -> None:
    """review.csv for spreadsheets: fill in decision (accept/reject) and note, then `surd review import` it."""
    with open(bdir / "review.csv", "w", newline="", encoding="utf-8-sig") as f:  # BOM: Excel then reads UTF-8
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for r in rows:
            w.writerow([r["key"], _image_path(r), r["simple_prompt"], r["complex_prompt"],
                        "" if r["simple_score"] is None else r["simple_score"],
                        "" if r["complex_score"] is None else r["complex_score"], "", ""])


def write_labelstudio(rows: list[dict[str, Any]], bdir: Path, cfg: ExportConfig, info: dict[str, Any]) -> None:
    """tasks.json (Label Studio import format) and label_config.xml (paste into the project's labeling setup)."""
    table = [{**r, "image": _image_path(r)} for r in rows]
    tasks = make_tasks(table, cfg.image_url_prefix)
    (bdir / "tasks.json").write_text(json.dumps(tasks, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    (bdir / "label_config.xml").write_text(LABEL_CONFIG, encoding="utf-8")


_WRITERS = {"site": write_site, "csv": write_csv, "labelstudio": write_labelstudio}


def _write_batch_list(out: Path, dirs: list[Path], batches: list[list[dict[str, Any]]]) -> None:
    """A plain landing page linking the batches (each batch is reviewed, served and exported on its own)."""
    items = "\n".join(f'<li><a href="{d.name}/index.html">{d.name}</a> ({len(b)} samples)</li>'
                      for d, b in zip(dirs, batches))
    (out / "index.html").write_text(
        "<!doctype html><meta charset=\"utf-8\"><title>surd review batches</title>\n"
        f"<h1>Review batches</h1>\n<ul>\n{items}\n</ul>\n"
        "<p>Serve one batch with <code>surd review serve REVIEW_DIR/batch_XX</code>.</p>\n", encoding="utf-8")
