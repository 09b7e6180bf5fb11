"""A finished run read back from its own records: each stage's config, stats and versions, and one provenance row
per sample ever seen (its source, licence, hashes, scores, and every stage's decision with its reason).

Nothing here is typed by hand: everything comes from ``runs/<name>/NN_<stage>/`` (``_config.json``, the
``NNNNN.stats.json`` markers, the ``NNNNN.samples.parquet`` sidecars) and the files a job stage wrote.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from surd import shards, storage
from surd.stages.safety import Config as SafetyConfig
from surd.stages.safety import metadata_verdict

STAGE_DIR = re.compile(r"^(\d{2})_([a-z][a-z0-9_]*)$")
CREATOR_KEYS = ("username", "creator", "author", "user", "artist")  # where sources name who made an image
MODEL_KEYS = ("model", "pretrained", "head", "clip_model", "clip_pretrained", "llm", "base", "lavis_checkpoint",
              "nudenet_model")
NSFW_LEVELS = ("sfw", "unrated", "nsfw")  # ordered: a release's --max-nsfw keeps this level and the ones before it


@dataclass
class StageInfo:
    """One ``NN_<stage>`` folder: its config (and hash), totals over its done shards, versions, when it finished."""

    dirname: str
    stage: str
    path: str
    config: dict[str, Any]
    surd_version: str
    config_hash: str
    n_in: int = 0
    kept: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    shards: int = 0
    versions: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    finished: str = ""  # the last stats marker's time (ISO 8601, UTC)
    files: dict[str, str] = field(default_factory=dict)  # a job's outputs: name → sha256

    @property
    def has_shards(self) -> bool:
        return self.shards > 0


@dataclass
class RunInfo:
    """A run folder: its stages in order and one provenance row per key (`provenance_rows`)."""

    path: str
    name: str
    stages: list[StageInfo]
    rows: list[dict[str, Any]]
    column_of: dict[str, str]  # stage dirname → the prefix of its provenance columns
    records: dict[str, dict[str, Any]]  # stage name → the first per-sample record it wrote (model, revision, ...)

    @property
    def data_stages(self) -> list[StageInfo]:
        return [s for s in self.stages if s.has_shards]

    @property
    def final(self) -> StageInfo:
        """The last stage with shards: its kept samples are the dataset."""
        return self.data_stages[-1]


def config_hash(config: Any) -> str:
    """sha256 of the canonical JSON of a resolved stage config (sorted keys, no spaces): equal configs, equal hash."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with storage.open_file(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _mtime(path: str) -> str:
    """When a file was last written (UTC, ISO 8601); for an object, its LastModified."""
    if storage.is_remote(path):
        fs, inner = storage.filesystem(path)
        info = fs.info(inner)
        when = info.get("LastModified") or info.get("mtime") or info.get("last_modified")
        if isinstance(when, dt.datetime):
            return when.astimezone(dt.timezone.utc).isoformat(timespec="seconds")
        return str(when or "")
    stamp = os.path.getmtime(storage.local(path))
    return dt.datetime.fromtimestamp(stamp, dt.timezone.utc).isoformat(timespec="seconds")


def read_stage(run_dir: str, dirname: str) -> StageInfo:
    """One stage folder's config and totals; a folder without shards (a job: training, evaluation) lists its files."""
    path = storage.join(run_dir, dirname)
    saved = shards.read_config(path) or {}
    stage = STAGE_DIR.match(dirname).group(2)  # type: ignore[union-attr]
    cfg = saved.get("config", {})
    info = StageInfo(dirname, saved.get("stage", stage), path, cfg, str(saved.get("surd_version", "")),
                     config_hash(cfg) if saved else "")
    stats = shards.read_stats(path)
    for st in stats.values():
        info.n_in += int(st["in"])
        info.kept += int(st["kept"])
        for reason, n in st.get("rejected", {}).items():
            info.rejected[reason] = info.rejected.get(reason, 0) + int(n)
        info.versions.update(st.get("versions") or {})
        info.seconds += float(st.get("seconds") or 0.0)
    info.shards = len(stats)
    if stats:
        info.finished = max(_mtime(storage.join(path, f"{s}{shards.STATS_SUFFIX}")) for s in stats)
    else:
        for rel in storage.walk_files(path):
            if not rel.startswith(("checkpoints/", "_")) and "/" not in rel:
                info.files[rel] = file_sha256(storage.join(path, rel))
    info.rejected = dict(sorted(info.rejected.items()))
    return info


def read_stages(run_dir: str) -> list[StageInfo]:
    """Every ``NN_<stage>`` folder of a run, in order."""
    try:
        names = storage.listdir(run_dir)
    except FileNotFoundError:
        raise FileNotFoundError(f"run folder {run_dir} does not exist: pass runs/<name> of a finished "
                                "`surd run`") from None
    # a card step's own folder (NN_card) describes the run; it is not part of it
    stages = [read_stage(run_dir, n) for n in names if STAGE_DIR.match(n) and STAGE_DIR.match(n).group(2) != "card"]
    if not any(s.has_shards for s in stages):
        raise ValueError(f"{run_dir} holds no stage with finished shards (NN_<stage>/NNNNN.stats.json): run the "
                         "pipeline first, or pass the run folder (runs/<name>), not a stage folder")
    return stages


def creator(meta: dict[str, Any]) -> str:
    """Who made the image, where the source names one (Civitai's username, a manifest's creator column)."""
    extra = meta.get("extra") or {}
    for k in CREATOR_KEYS:
        if isinstance(extra, dict) and extra.get(k):
            return str(extra[k])
    return ""


def image_url(meta: dict[str, Any]) -> str:
    """The URL the image bytes were fetched from ("" for local files)."""
    if meta.get("image_url"):
        return str(meta["image_url"])
    prov = meta.get("provenance")
    if isinstance(prov, dict) and "list" in prov and str(meta.get("url", "")).startswith(("http://", "https://")):
        return str(meta["url"])  # a URL list ingested before image_url was recorded: its url is the image
    return ""


def nsfw_level(meta: dict[str, Any]) -> str:
    """``nsfw`` (the source rates it unsafe, or a classifier scored it at or over its threshold), ``sfw`` (rated
    safe by the source or scored under the threshold), else ``unrated``."""
    verdict, _ = metadata_verdict(meta.get("nsfw"), SafetyConfig())
    safety = (meta.get("stages") or {}).get("safety") or {}
    score, threshold = safety.get("score"), safety.get("threshold", 0.5)
    if verdict == "unsafe" or (isinstance(score, (int, float)) and score >= threshold):
        return "nsfw"
    if verdict == "safe" or isinstance(score, (int, float)):
        return "sfw"
    return "unrated"


def _facts(meta: dict[str, Any]) -> dict[str, Any]:
    """The provenance columns a sample's json (as recorded by its latest stage) gives."""
    st, extra = meta.get("stages") or {}, meta.get("extra") or {}
    clip, safety, review = st.get("clip_filter") or {}, st.get("safety") or {}, st.get("review") or {}
    return {
        "source": meta.get("source") or "", "source_id": str(meta.get("source_id") or ""),
        "url": meta.get("url") or "", "image_url": image_url(meta), "creator": creator(meta),
        "license": meta.get("license") or "", "sha256": meta.get("sha256") or "",
        "created_at": str(extra.get("created_at") or "") if isinstance(extra, dict) else "",
        "phash": (st.get("dedup") or {}).get("phash") or "",
        "complex_prompt": meta.get("complex_prompt") or "", "simple_prompt": meta.get("simple_prompt") or "",
        "negative_prompt": meta.get("negative_prompt") or "",
        "width": meta.get("width"), "height": meta.get("height"),
        "nsfw_metadata": json.dumps(meta.get("nsfw"), sort_keys=True) if meta.get("nsfw") is not None else "",
        "nsfw_level": nsfw_level(meta),
        "clip_simple_score": clip.get("simple_score"), "clip_complex_score": clip.get("complex_score"),
        "nsfw_score": safety.get("score"), "reviewer": review.get("reviewer") or "",
    }  # fmt: skip


def column_prefixes(stages: list[StageInfo]) -> dict[str, str]:
    """Stage dirname → its provenance column prefix: the stage name, or the dirname when a stage repeats."""
    counts = Counter(s.stage for s in stages)
    return {s.dirname: s.stage if counts[s.stage] == 1 else s.dirname for s in stages}


def provenance_rows(stages: list[StageInfo],
                    records: dict[str, dict[str, Any]] | None = None) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """One row per key any stage saw, in first-seen order (shard, then position): the sample's facts from its latest
    record, when its ingest shard was committed (``fetch_time``: its images were fetched before then), each stage's
    status/reason/detail, and where it left the pipeline (``rejected_at``, ``reason``) or ``kept``."""
    data = [s for s in stages if s.has_shards]
    prefix = column_prefixes(data)
    rows: dict[str, dict[str, Any]] = {}
    for s in data:
        p = prefix[s.dirname]
        for stem in shards.list_done(s.path):
            when = _mtime(storage.join(s.path, f"{stem}{shards.STATS_SUFFIX}")) if s is data[0] else ""
            for r in shards.read_sidecar(s.path, stem):
                row = rows.get(r["key"])
                if row is None:
                    row = rows[r["key"]] = {"key": r["key"], "fetch_time": when}
                if r["meta"]:
                    row.update(_facts(r["meta"]))
                    if records is not None:
                        for name, rec in (r["meta"].get("stages") or {}).items():
                            records.setdefault(name, rec)
                row[f"{p}_status"], row[f"{p}_reason"], row[f"{p}_detail"] = r["status"], r["reason"], r["detail"]
                if r["status"] == "rejected":
                    row["rejected_at"], row["reason"] = s.dirname, r["reason"]
    last = data[-1]
    out = []
    for row in rows.values():
        if "rejected_at" not in row:
            reached = row.get(f"{prefix[last.dirname]}_status") == "kept"
            row["rejected_at"], row["reason"] = ("", "") if reached else (_vanished(row, data, prefix), "missing")
        row["status"] = "kept" if not row["rejected_at"] else "rejected"
        out.append(row)
    return out, prefix


def _vanished(row: dict[str, Any], data: list[StageInfo], prefix: dict[str, str]) -> str:
    """The first stage that never saw a key its previous stage kept (a run cut short): named, never hidden."""
    for s in data:
        if f"{prefix[s.dirname]}_status" not in row:
            return s.dirname
    return data[-1].dirname


def read_run(run_dir: str | os.PathLike) -> RunInfo:
    """A run folder read back: stages (configs, totals, job files) and the provenance rows."""
    run = storage.normalize(str(run_dir))
    stages = read_stages(run)
    records: dict[str, dict[str, Any]] = {}
    rows, prefix = provenance_rows(stages, records)
    return RunInfo(run, storage.basename(run), stages, rows, prefix, records)
