"""Per-image scores → the paper's tables: paired-softmax CLIP score and CLIPScore per prompt type, VQA semantic
accuracy per type (Table 2), quality with Welch's t-test (Table 3), and the preference study; written as
``results.json`` (summaries) and ``results.csv`` (one row per image)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from surd.eval.config import BASELINE, EvalConfig
from surd.eval.generate import image_path, model_names, seeds
from surd.eval.prompts import EvalPrompt, PromptSet
from surd.eval.stats import paired_softmax, proportion, summary, welch

FORMAT = "surd-eval-results"
QUALITY = ("brisque", "clip_iqa", "musiq")
LOWER_BETTER = {"brisque": True, "clip_iqa": False, "musiq": False}
CSV_COLUMNS = ("model", "prompt_id", "type", "source", "seed", "prompt", "image", "clip_cos", "clipscore",
               "paired_clip_vs_baseline", "correct", "vqa", "brisque", "clip_iqa", "musiq")

Scores = dict[str, dict[tuple[str, int], dict[str, Any]]]


def _rows(scores: Scores, model: str, prompts: list[EvalPrompt], seed_list: list[int]) -> list[dict[str, Any]]:
    return [r for p in prompts for s in seed_list if (r := scores[model].get((p.id, s))) is not None]


def paired_shares(scores: Scores, adapter: str, prompts: list[EvalPrompt], seed_list: list[int]) -> list[float]:
    """The adapter's half of the paper's paired-softmax CLIP score, one value per (prompt, seed) pair."""
    out = []
    for p in prompts:
        for s in seed_list:
            b, a = scores[BASELINE].get((p.id, s)), scores[adapter].get((p.id, s))
            if b and a and "clip_cos" in b and "clip_cos" in a:
                out.append(paired_softmax(b["clip_cos"], a["clip_cos"], b["logit_scale"])[1])
    return out


def _type_entry(scores: Scores, models: list[str], prompts: list[EvalPrompt], seed_list: list[int]) -> dict[str, Any]:
    entry: dict[str, Any] = {"prompts": len(prompts), "models": {}, "paired_clip": {}}
    for m in models:
        rows = _rows(scores, m, prompts, seed_list)
        judged = [r["correct"] for r in rows if "correct" in r]
        entry["models"][m] = {
            "images": len(rows),
            "semantic_accuracy": proportion(sum(judged), len(judged)) if judged else None,
            "clipscore": summary([r["clipscore"] for r in rows if "clipscore" in r]),
        }
    for a in models[1:]:
        shares = paired_shares(scores, a, prompts, seed_list)
        s = summary(shares)
        entry["paired_clip"][a] = {"adapter": s, "baseline": None if s["mean"] is None else 1.0 - s["mean"]}
    return entry


def summarise(cfg: EvalConfig, prompts: PromptSet, scores: Scores) -> dict[str, Any]:
    """The report's numbers: per type and overall, quality tests, counts (preference is added by the study)."""
    models = model_names(cfg)
    seed_list = seeds(cfg)
    groups = {**prompts.by_type(), "all": list(prompts.prompts)}
    quality: dict[str, Any] = {}
    for metric in (m for m in QUALITY if m in cfg.metrics):
        vals = {m: [r[metric] for r in _rows(scores, m, list(prompts.prompts), seed_list) if metric in r]
                for m in models}
        quality[metric] = {"lower_better": LOWER_BETTER[metric],
                           "models": {m: summary(v) for m, v in vals.items()},
                           "tests": {a: welch(vals[a], vals[BASELINE]) for a in models[1:]}}
    return {
        "format": FORMAT, "version": 1, "config": cfg.to_json(), "models": models, "seeds": seed_list,
        "prompt_set": {"name": prompts.name, "path": prompts.path, "prompts": len(prompts.prompts),
                       "by_source": prompts.count_by_source(),
                       "by_type": {t: len(ps) for t, ps in prompts.by_type().items()}},
        "per_type": {t: _type_entry(scores, models, ps, seed_list) for t, ps in groups.items()},
        "quality": quality,
        "logit_scale": next((r["logit_scale"] for m in models for r in scores[m].values() if "logit_scale" in r),
                            None),
        "preference": None,
    }


def csv_text(cfg: EvalConfig, prompts: PromptSet, scores: Scores) -> str:
    """One row per image: every score, the VQA answers, and the image path relative to the output folder."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(CSV_COLUMNS)
    out = Path(cfg.out)
    for m in model_names(cfg):
        for p in prompts.prompts:
            for s in seeds(cfg):
                r = scores[m].get((p.id, s), {})
                base = scores[BASELINE].get((p.id, s), {})
                paired = (paired_softmax(base["clip_cos"], r["clip_cos"], base["logit_scale"])[1]
                          if m != BASELINE and "clip_cos" in r and "clip_cos" in base else "")
                vqa = " | ".join(f"{q['question']} → {q['answer']}" for q in r.get("vqa", []))
                w.writerow([m, p.id, p.type, p.source, s, p.text,
                            image_path(out, m, p.id, s).relative_to(out).as_posix(),
                            *(_cell(r.get(k)) for k in ("clip_cos", "clipscore")), _cell(paired),
                            _cell(r.get("correct")), vqa, *(_cell(r.get(k)) for k in QUALITY)])
    return buf.getvalue()


def _cell(v: Any) -> Any:
    if v is None or v == "":
        return ""
    if isinstance(v, bool):
        return int(v)
    return round(v, 6) if isinstance(v, float) else v
