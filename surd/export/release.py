"""A run's kept samples → a release folder others can load, filtered by licence, source and NSFW level, with the
card of exactly what it holds.

``full``: ``data/train/<key>.<ext>`` + ``data/train/metadata.jsonl`` (the imagefolder layout `datasets` loads from the
card's ``configs``). ``urls``: no image bytes: ``urls.parquet`` (img2dataset's input list: url, caption, plus
simple/negative prompt, width/height, sha256, licence, source, source id, key and, when asked, the embeddings) and
``rebuild.yaml``, a pipeline that downloads the list again with ``surd ingest urls``, rejecting an image whose bytes
changed as ``hash_mismatch``. Either way: README.md, croissant.json, card.html, provenance.parquet, LICENSE.md.
The release is built in a hidden folder beside OUT and renamed into place when complete.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from surd import shards
from surd.embed.prompt2vec import vector_from_npy
from surd.export import croissant
from surd.export.card import Distribution, load_about, write_card
from surd.export.imagefolder import COLUMNS, IMAGE_MEMBERS, metadata_row
from surd.export.runinfo import NSFW_LEVELS, RunInfo, read_run

MODES = ("full", "urls")
RULE_KEYS = {"only_licence", "exclude_source", "max_nsfw"}
URL_COLUMNS = ("url", "caption", "simple_prompt", "negative_prompt", "width", "height", "sha256", "license", "source",
               "source_id", "key")
EMBEDDINGS = {"clip.npy": "clip_embedding", "llm.npy": "llm_embedding"}


@dataclass(frozen=True)
class Rules:
    """What a release leaves out: licences not listed (when any are), sources listed, NSFW levels above max_nsfw."""

    only_licence: tuple[str, ...] = ()
    exclude_source: tuple[str, ...] = ()
    max_nsfw: str = "nsfw"  # sfw < unrated < nsfw: keep this level and the safer ones

    def __post_init__(self) -> None:
        if self.max_nsfw not in NSFW_LEVELS:
            raise ValueError(f"max_nsfw must be one of {', '.join(NSFW_LEVELS)} (sfw: rated safe only; unrated: also "
                             f"samples nobody rated), got {self.max_nsfw!r}")

    def verdict(self, row: dict[str, Any]) -> str | None:
        """The reason a kept sample stays out of the release, or None."""
        if self.exclude_source and row.get("source") in self.exclude_source:
            return "excluded_source"
        if self.only_licence and (row.get("license") or "") not in self.only_licence:
            return "excluded_licence"
        if NSFW_LEVELS.index(row.get("nsfw_level") or "unrated") > NSFW_LEVELS.index(self.max_nsfw):
            return "excluded_nsfw"
        return None

    def as_dict(self) -> dict[str, Any]:
        return {"only_licence": list(self.only_licence), "exclude_source": list(self.exclude_source),
                "max_nsfw": self.max_nsfw}


def load_rules(path: str | os.PathLike | None, **overrides: Any) -> Rules:
    """Rules from a YAML file (only_licence, exclude_source, max_nsfw), command-line values added on top."""
    doc: dict[str, Any] = {}
    if path:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"rule file {p} not found")
        doc = yaml.safe_load(p.read_text()) or {}
        if not isinstance(doc, dict) or set(doc) - RULE_KEYS:
            raise ValueError(f"{p}: a rule file maps {', '.join(sorted(RULE_KEYS))} to values; got "
                             f"{sorted(doc) if isinstance(doc, dict) else type(doc).__name__}")
    merged = {k: tuple(doc.get(k) or ()) if k != "max_nsfw" else doc.get(k, "nsfw") for k in RULE_KEYS}
    for k, v in overrides.items():
        if v:
            merged[k] = v if k == "max_nsfw" else tuple(merged[k]) + tuple(v)
    return Rules(**merged)


@dataclass(frozen=True)
class ReleaseConfig:
    """How to release: full (images) or urls (a list to rebuild from), the rules, embeddings in the URL list."""

    mode: str = "full"
    rules: Rules = field(default_factory=Rules)
    embeddings: bool = False
    about: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"--mode must be full or urls, got {self.mode!r}")
        if self.embeddings and self.mode != "urls":
            raise ValueError("--embeddings adds the vectors to a urls release's list; a full release keeps images only")


def _staging(out: Path) -> Path:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"{out} exists and is not empty: pass a new folder (a release is written whole)")
    for stale in out.parent.glob(f".{out.name}.partial-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    tmp.mkdir(parents=True)
    return tmp


def select(run: RunInfo, rules: Rules, mode: str) -> tuple[list[dict[str, Any]], Counter[str]]:
    """The kept rows the rules let through, and how many each rule left out; a URL-only release of samples that
    have no image URL is refused (they would silently be missing)."""
    released, excluded = [], Counter()
    for row in run.rows:
        if row["status"] != "kept":
            continue
        why = rules.verdict(row)
        if why:
            excluded[why] += 1
        else:
            released.append(row)
    if mode == "urls":
        local = Counter(r["source"] for r in released if not r.get("image_url"))
        if local:
            raise ValueError(f"{sum(local.values())} sample(s) to release have no image URL (their images came from "
                             f"local files: {', '.join(f'{s} {n}' for s, n in sorted(local.items()))}): a urls release "
                             "cannot list them. Use --mode full, or leave them out with --exclude-source")
    if not released:
        raise ValueError(f"nothing to release: the run keeps {sum(excluded.values())} sample(s) and the rules leave out "
                         f"all of them ({dict(excluded)})")
    return released, excluded


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_full(run: RunInfo, keys: set[str], tmp: Path) -> Distribution:
    """The images as stored (not re-encoded) and one metadata.jsonl, in data/train/."""
    folder = tmp / "data" / "train"
    folder.mkdir(parents=True)
    n, size, exts = 0, 0, set()
    with open(folder / "metadata.jsonl", "w", encoding="utf-8") as meta:
        for sample in shards.iter_dataset(run.final.path):
            if sample["__key__"] not in keys:
                continue
            ext = next((e for e in IMAGE_MEMBERS if e in sample), None)
            if ext is None:
                raise ValueError(f"sample {sample['__key__']} in {run.final.path} has no image member")
            name = f"{sample['__key__']}.{ext}"
            (folder / name).write_bytes(sample[ext])
            meta.write(json.dumps(metadata_row(sample, name), ensure_ascii=False) + "\n")
            n, size, exts = n + 1, size + len(sample[ext]), exts | {ext}
    if n != len(keys):
        raise ValueError(f"{run.final.path} holds {n} of the {len(keys)} samples its sidecars keep: rerun its stage")
    size += (folder / "metadata.jsonl").stat().st_size
    features = [{"name": "image", "dtype": "image"}] + [{"name": c, "dtype": "string"} for c in COLUMNS[1:]]
    files = [croissant.file_object("metadata.jsonl", "data/train/metadata.jsonl", None, "application/jsonlines",
                                   _sha(folder / "metadata.jsonl")),
             *(croissant.file_set(f"images-{e}", f"data/train/*.{e}", f"image/{'jpeg' if e == 'jpg' else e}")
               for e in sorted(exts))]
    cols = [(c, "sc:Text") for c in COLUMNS]
    samples = {"@type": "cr:RecordSet", "@id": "samples", "name": "samples", "key": {"@id": "samples/key"},
               "description": "One row per image: file_name, simple prompt (text), complex prompt (prompt), ...",
               "field": croissant.column_fields("samples", {"fileObject": "metadata.jsonl"}, cols)}
    images = {"@type": "cr:RecordSet", "@id": "images", "name": "images", "field": [
        {"@type": "cr:Field", "@id": "images/file_name", "name": "file_name", "dataType": "sc:Text",
         "source": {"fileSet": f"images-{e}", "extract": {"fileProperty": "filename"}}} for e in sorted(exts)[:1]] + [
        {"@type": "cr:Field", "@id": "images/image", "name": "image", "dataType": "sc:ImageObject",
         "source": {"fileSet": f"images-{e}", "extract": {"fileProperty": "content"}}} for e in sorted(exts)[:1]]}
    return Distribution(
        configs=[{"config_name": "default", "default": True, "data_files": [{"split": "train", "path": "data/train/*"}]}],
        info=[{"config_name": "default", "features": features,
               "splits": [{"name": "train", "num_bytes": size, "num_examples": n}], "download_size": size}],
        files=files, record_sets=[samples, images] if len(exts) == 1 else [samples])


def _url_table(run: RunInfo, rows: list[dict[str, Any]], embeddings: bool) -> pa.Table:
    data: dict[str, list[Any]] = {c: [] for c in URL_COLUMNS}
    for r in rows:
        values = {**r, "url": r["image_url"], "caption": r["complex_prompt"]}
        for c in URL_COLUMNS:
            data[c].append(values.get(c))
    columns = {c: pa.array(v, pa.int64() if c in ("width", "height") else pa.string()) for c, v in data.items()}
    if embeddings:
        vectors = _vectors(run, {r["key"] for r in rows})
        for member, col in EMBEDDINGS.items():
            if any(member in v for v in vectors.values()):
                columns[col] = pa.array([vectors[r["key"]].get(member) for r in rows], pa.list_(pa.float32()))
    return pa.table(columns)


def _vectors(run: RunInfo, keys: set[str]) -> dict[str, dict[str, list[float]]]:
    """The stored embeddings of the released samples (parsed as plain .npy arrays, never unpickled)."""
    out: dict[str, dict[str, list[float]]] = {}
    for sample in shards.iter_dataset(run.final.path):
        if sample["__key__"] in keys:
            out[sample["__key__"]] = {m: np.asarray(vector_from_npy(sample[m]), np.float32).tolist()
                                      for m in EMBEDDINGS if m in sample}
    return out


def rebuild_pipeline(run: RunInfo) -> dict[str, Any]:
    """A pipeline that downloads the list again with the run's own image settings, keys and hash check."""
    ingest = dict(run.stages[0].config)
    image = {k: ingest[k] for k in ("size", "resize_mode", "quality", "image_format", "min_size", "max_pixels",
                                   "resample") if k in ingest}
    return {"name": f"{run.name}-rebuild", "stages": [{"stage": "ingest", "config": {
        "source": "urls", "path": "urls.parquet", "options": {"url_col": "url", "caption_col": "caption",
                                                              "id_col": "source_id", "source_col": "source"},
        **image, "shard_size": 1000}}]}


def write_urls(run: RunInfo, rows: list[dict[str, Any]], tmp: Path, embeddings: bool) -> Distribution:
    table = _url_table(run, rows, embeddings)
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    (tmp / "urls.parquet").write_bytes(buf.getvalue())
    (tmp / "rebuild.yaml").write_text(
        "# Rebuild this release: download every image again, checking its sha256 (hash_mismatch when the host now\n"
        "# serves other bytes), with the original keys (source + source_id). From this folder: surd run rebuild.yaml\n"
        + yaml.safe_dump(rebuild_pipeline(run), sort_keys=False))
    types = {pa.string(): ("string", "sc:Text"), pa.int64(): ("int64", "sc:Integer")}
    plain = [f for f in table.schema if f.type in types]
    features = [{"name": f.name, "dtype": types[f.type][0]} for f in plain] + [
        {"name": f.name, "sequence": "float32"} for f in table.schema if f.type not in types]
    record = {"@type": "cr:RecordSet", "@id": "urls", "name": "urls", "key": {"@id": "urls/key"},
              "description": "One row per released image: where to download it and the sha256 it must have.",
              "field": croissant.column_fields("urls", {"fileObject": "urls.parquet"},
                                               [(f.name, types[f.type][1]) for f in plain])}
    return Distribution(
        configs=[{"config_name": "default", "default": True, "data_files": [{"split": "train", "path": "urls.parquet"}]}],
        info=[{"config_name": "default", "features": features,
               "splits": [{"name": "train", "num_bytes": len(buf.getvalue()), "num_examples": table.num_rows}]}],
        files=[croissant.file_object("urls.parquet", "urls.parquet", buf.getvalue(), "application/x-parquet")],
        record_sets=[record])


def release(run_dir: str | os.PathLike, out: str | os.PathLike, cfg: ReleaseConfig) -> dict[str, Any]:
    """Write a release of *run_dir* into the new folder *out*; returns what it holds and what it left out."""
    run = read_run(run_dir)
    about = load_about(cfg.about)
    rows, excluded = select(run, cfg.rules, cfg.mode)
    out = Path(out)
    tmp = _staging(out)
    try:
        if cfg.mode == "full":
            dist = write_full(run, {r["key"] for r in rows}, tmp)
        else:
            dist = write_urls(run, rows, tmp, cfg.embeddings)
        summary = {"mode": cfg.mode, "released": len(rows), "excluded": dict(sorted(excluded.items())),
                   "rules": cfg.rules.as_dict(), "run": run.path, "out": str(out)}
        write_card(run, str(tmp), about, rows=rows, dist=dist, release=summary)
        (tmp / "release.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return summary
