"""The numbers a dataset card states, computed from a read-back run (`surd.export.runinfo.RunInfo`): the funnel of
every stage with every reject reason, counts and licences per source, the scrape time range, robots.txt / opt-out
refusals, NSFW, near-duplicate, CLIP-filter and review figures, prompt lengths, models and versions."""

from __future__ import annotations

import os
import statistics
from collections import Counter, defaultdict
from typing import Any

from surd import storage
from surd.export.runinfo import MODEL_KEYS, RunInfo, StageInfo, file_sha256
from surd.review.decisions import resolve

REFUSALS = ("robots_disallowed", "robots_unreachable", "opted_out")  # a site or host said no
NSFW_REASONS = ("nsfw", "nsfw_metadata", "nsfw_classifier")
DUPLICATE_REASONS = ("near_duplicate", "duplicate_image", "duplicate_prompt", "duplicate_key")
PAPER_CLIP = {"in": 114_148, "kept": 66_408}  # SUR-adapter §3: the CLIP filter's keep rate in the paper
LENGTH_BINS = (0, 5, 10, 15, 20, 30, 40, 60, 80, 120, 10**9)  # words per prompt


def rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def words(text: str) -> int:
    return len(text.replace(",", " ").split())


def _hist(values: list[int]) -> list[dict[str, Any]]:
    out = []
    for lo, hi in zip(LENGTH_BINS, LENGTH_BINS[1:]):
        label = f"{lo}-{hi - 1}" if hi < 10**9 else f"{lo}+"
        out.append({"bin": label, "n": sum(lo <= v < hi for v in values)})
    return out


def _summary(values: list[int]) -> dict[str, Any]:
    if not values:
        return {"n": 0, "mean": None, "median": None, "max": None, "histogram": _hist([])}
    return {"n": len(values), "mean": round(statistics.fmean(values), 2), "median": statistics.median(values),
            "max": max(values), "histogram": _hist(values)}


def funnel(run: RunInfo) -> list[dict[str, Any]]:
    """Every stage with shards: in, kept, each reject reason (from the stats markers: exact)."""
    return [{"stage": s.dirname, "in": s.n_in, "kept": s.kept, "rejected": dict(s.rejected),
             "keep_rate": rate(s.kept, s.n_in)} for s in run.data_stages]


def per_source(rows: list[dict[str, Any]], run: RunInfo) -> dict[str, dict[str, Any]]:
    """Per source: samples seen, kept at the end, kept after each stage, licences, refusals, NSFW ratings."""
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        src = out.setdefault(r.get("source") or "(unknown)", {
            "seen": 0, "kept": 0, "stages": {s.dirname: {"in": 0, "kept": 0} for s in run.data_stages},
            "licenses": Counter(), "refusals": Counter(), "nsfw_levels": Counter(), "nsfw_rejected": 0})
        src["seen"] += 1
        src["kept"] += r["status"] == "kept"
        src["licenses"][r.get("license") or "(none recorded)"] += 1
        src["nsfw_levels"][r.get("nsfw_level") or "unrated"] += 1
        for s in run.data_stages:
            status = r.get(f"{run.column_of[s.dirname]}_status")
            if status:
                src["stages"][s.dirname]["in"] += 1
                src["stages"][s.dirname]["kept"] += status == "kept"
        if r.get("reason") in REFUSALS:
            src["refusals"][r["reason"]] += 1
        src["nsfw_rejected"] += r.get("reason") in NSFW_REASONS
    for src in out.values():
        for k in ("licenses", "refusals", "nsfw_levels"):
            src[k] = dict(sorted(src[k].items()))
        src["nsfw_rate"] = rate(src["nsfw_levels"].get("nsfw", 0), src["seen"])
    return dict(sorted(out.items()))


def time_range(rows: list[dict[str, Any]], key: str) -> dict[str, str] | None:
    values = sorted(str(r[key]) for r in rows if r.get(key))
    return {"start": values[0], "end": values[-1]} if values else None


def robots_policy(run: RunInfo) -> dict[str, Any]:
    """Whether robots.txt and opt-out headers were honoured, from the ingest config as saved."""
    ingest = run.stages[0].config if run.stages else {}
    dl = ingest.get("download") or {}
    ignored = dl.get("respect_robots") is False or any(
        (s.get("options") or {}).get("http", {}).get("respect_robots") is False
        for s in (ingest.get("options") or {}).get("sources") or [] if isinstance(s, dict))
    return {"robots_txt": "ignored for some requests" if ignored else "honoured",
            "opt_out_headers": "ignored" if dl.get("respect_opt_out") is False else "honoured"}


def review(run: RunInfo, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Review figures: decisions per reviewer (from the samples' records) and agreement (from the decision files
    the review stage read, when they are still there)."""
    stage = next((s for s in run.data_stages if s.stage == "review"), None)
    if stage is None:
        return None
    col = run.column_of[stage.dirname]
    reviewed = [r for r in rows if r.get(f"{col}_status")]
    by = Counter(r["reviewer"] for r in reviewed if r.get("reviewer"))
    out: dict[str, Any] = {"in": stage.n_in, "kept": stage.kept, "rejected": dict(stage.rejected),
                           "reviewers": dict(sorted(by.items())), "agreement": None}
    files = [f for f in stage.config.get("decisions") or [] if storage.exists(f)]
    if files:
        merged = resolve(files, conflict=stage.config.get("conflict", "error"))
        a = merged.agreement
        out["agreement"] = {"paired": a.n, "agree": a.agree, "percent": None if a.n == 0 else round(a.percent, 2),
                            "kappa": None if a.kappa != a.kappa else round(a.kappa, 4)}
    return out


def _model_file(value: str) -> dict[str, Any]:
    """What identifies a model given as a local path: a file's sha256, or a folder's files (name, size) and the
    sha256 of its config.json; hub ids and ``tiny`` are recorded as named."""
    if value == "tiny":
        return {"kind": "tiny: small random model built in code (tests and smoke runs)"}
    if not value or "://" in value or not os.path.exists(value):
        return {"kind": "hub id or name"} if value else {}
    if os.path.isfile(value):
        return {"kind": "file", "sha256": file_sha256(value)}
    files = sorted((os.path.relpath(os.path.join(d, f), value), os.path.getsize(os.path.join(d, f)))
                   for d, _, fs in os.walk(value) for f in fs)
    config = os.path.join(value, "config.json")
    return {"kind": "folder", "files": len(files), "bytes": sum(n for _, n in files),
            "config_sha256": file_sha256(config) if os.path.isfile(config) else None}


def models(run: RunInfo) -> list[dict[str, Any]]:
    """Every model a stage names (config) with the revision its records state and a file hash for local paths."""
    out = []
    for s in run.stages:
        record = run.records.get(s.stage) or {}
        for key in MODEL_KEYS:
            value = s.config.get(key)
            if not isinstance(value, str) or not value:
                continue
            entry = {"stage": s.dirname, "role": key, "id": value, **_model_file(value)}
            if key in ("model", "llm") and record.get("revision"):
                entry["revision"] = record["revision"]
            out.append(entry)
        if s.files:
            out.extend({"stage": s.dirname, "role": "output", "id": name, "kind": "file", "sha256": sha}
                       for name, sha in s.files.items() if name.endswith((".safetensors", ".json")))
    return out


def versions(run: RunInfo) -> list[dict[str, Any]]:
    return [{"stage": s.dirname, "surd": s.surd_version, "config_sha256": s.config_hash, "libraries": s.versions}
            for s in run.stages]


def stage_rate(run: RunInfo, name: str, reasons: tuple[str, ...]) -> dict[str, Any] | None:
    stage = next((s for s in run.data_stages if s.stage == name), None)
    if stage is None:
        return None
    n = sum(stage.rejected.get(r, 0) for r in reasons)
    return {"stage": stage.dirname, "in": stage.n_in, "rejected": n, "rate": rate(n, stage.n_in)}


def prompt_lengths(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Words per simple and per complex prompt of the kept samples (the paper's Fig. 4)."""
    kept = [r for r in rows if r["status"] == "kept"]
    return {"simple": _summary([words(r["simple_prompt"]) for r in kept if r.get("simple_prompt")]),
            "complex": _summary([words(r["complex_prompt"]) for r in kept if r.get("complex_prompt")])}


def scores(rows: list[dict[str, Any]]) -> dict[str, list[float]]:
    """CLIP (simple − complex cosine) and NSFW scores of every sample that has them, for the plots."""
    clip = [r["clip_simple_score"] - r["clip_complex_score"] for r in rows
            if isinstance(r.get("clip_simple_score"), float) and isinstance(r.get("clip_complex_score"), float)]
    return {"clip_margin": clip, "nsfw": [r["nsfw_score"] for r in rows if isinstance(r.get("nsfw_score"), float)]}


def figures(run: RunInfo, rows: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Everything the card states, as plain data. *rows* (default: every row of the run) restricts the per-sample
    figures to a release; the funnel is always the run's."""
    rows = run.rows if rows is None else rows
    kept = [r for r in rows if r["status"] == "kept"]
    clip = next((s for s in run.data_stages if s.stage == "clip_filter"), None)
    dedup = stage_rate(run, "dedup", DUPLICATE_REASONS)
    by_reason: dict[str, int] = defaultdict(int)
    for s in run.data_stages:
        for reason, n in s.rejected.items():
            by_reason[reason] += n
    return {
        "name": run.name, "seen": len(run.rows), "rows": len(rows), "kept": len(kept),
        "final_stage": run.final.dirname, "funnel": funnel(run), "rejected": dict(sorted(by_reason.items())),
        "sources": per_source(rows, run), "fetched": time_range(rows, "fetch_time"),
        "created": time_range(rows, "created_at"), "robots": robots_policy(run),
        "refusals": dict(sorted(Counter(r["reason"] for r in run.rows if r.get("reason") in REFUSALS).items())),
        "nsfw_kept": sum(r.get("nsfw_level") == "nsfw" for r in kept),
        "nsfw_levels_kept": dict(sorted(Counter(r.get("nsfw_level") or "unrated" for r in kept).items())),
        "near_duplicates": dedup,
        "clip_filter": None if clip is None else {"stage": clip.dirname, "in": clip.n_in, "kept": clip.kept,
                                                  "rate": rate(clip.kept, clip.n_in), "paper": PAPER_CLIP,
                                                  "paper_rate": PAPER_CLIP["kept"] / PAPER_CLIP["in"]},
        "review": review(run, rows), "prompt_lengths": prompt_lengths(rows), "scores": scores(rows),
        "nsfw_threshold": (stage_of(run, "safety").config.get("threshold") if stage_of(run, "safety") else None),
        "models": models(run), "versions": versions(run),
        "licenses": dict(sorted(Counter(r.get("license") or "(none recorded)" for r in kept).items())),
        "languages": ["en"],
    }  # fmt: skip


def stage_of(run: RunInfo, name: str) -> StageInfo | None:
    return next((s for s in run.data_stages if s.stage == name), None)
