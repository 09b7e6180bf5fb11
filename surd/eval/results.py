"""Per-image scores → the paper's tables: paired-softmax CLIP score and CLIPScore per prompt type, semantic accuracy
per type and per prompt by each judge (VQA, the detector; people once their labels are imported) with how often the
judges agree (Table 2, Tables 1/7), quality with the paper's equal-variance t-test and Welch's beside it (Table 3),
and the preference study; written as ``results.json`` (summaries) and ``results.csv`` (one row per image)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from surd.eval.config import BASELINE, EvalConfig
from surd.eval.generate import image_path, model_names, seeds
from surd.eval.prompts import EvalPrompt, PromptSet
from surd.eval.stats import paired_softmax, proportion, student, summary, welch
from surd.review.agreement import cohen_kappa

FORMAT = "surd-eval-results"
QUALITY = ("brisque", "clip_iqa", "musiq")
LOWER_BETTER = {"brisque": True, "clip_iqa": False, "musiq": False}
CSV_COLUMNS = ("model", "prompt_id", "type", "source", "seed", "prompt", "image", "clip_cos", "clipscore",
               "paired_clip_vs_baseline", "correct", "vqa", "detect_correct", "detect_reason", "brisque", "clip_iqa",
               "musiq")
JUDGES = ("vqa", "detect")  # automated judges of semantic accuracy; "human" joins them from imported labels

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


def verdicts(row: dict[str, Any]) -> dict[str, bool]:
    """Each automated judge's yes/no on one image's row (a judge that did not judge it is absent)."""
    out = {}
    if "correct" in row:
        out["vqa"] = bool(row["correct"])
    if isinstance(row.get("detect"), dict) and row["detect"].get("correct") is not None:
        out["detect"] = bool(row["detect"]["correct"])
    return out


def _rate(values: list[bool]) -> dict[str, Any] | None:
    return proportion(sum(values), len(values)) if values else None


def agreement(pairs: list[tuple[bool, bool]]) -> dict[str, Any]:
    """How often two judges say the same on the images both judged: n, agreeing share, Cohen's kappa (None if
    undefined)."""
    if not pairs:
        return {"n": 0, "agree": None, "kappa": None}
    k = cohen_kappa([(str(a), str(b)) for a, b in pairs])
    return {"n": len(pairs), "agree": sum(a == b for a, b in pairs) / len(pairs), "kappa": None if k != k else k}


def judge_rates(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy by each automated judge over *rows*."""
    vs = [verdicts(r) for r in rows]
    return {j: _rate([v[j] for v in vs if j in v]) for j in JUDGES}


def _type_entry(scores: Scores, models: list[str], prompts: list[EvalPrompt], seed_list: list[int]) -> dict[str, Any]:
    entry: dict[str, Any] = {"prompts": len(prompts), "models": {}, "paired_clip": {}}
    both: list[tuple[bool, bool]] = []
    for m in models:
        rows = _rows(scores, m, prompts, seed_list)
        judges = judge_rates(rows)
        both += [(v["vqa"], v["detect"]) for v in map(verdicts, rows) if len(v) == 2]
        entry["models"][m] = {
            "images": len(rows),
            "semantic_accuracy": judges["vqa"],  # VQA: the judge every prompt type has
            "judges": judges,
            "clipscore": summary([r["clipscore"] for r in rows if "clipscore" in r]),
        }
    entry["judge_agreement"] = agreement(both)
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
                           "tests": {a: student(vals[a], vals[BASELINE]) for a in models[1:]},  # the paper's test
                           "welch": {a: welch(vals[a], vals[BASELINE]) for a in models[1:]}}
    return {
        "format": FORMAT, "version": 1, "config": cfg.to_json(), "models": models, "seeds": seed_list,
        "prompt_set": {"name": prompts.name, "path": prompts.path, "prompts": len(prompts.prompts),
                       "by_source": prompts.count_by_source(),
                       "by_type": {t: len(ps) for t, ps in prompts.by_type().items()}},
        "per_type": {t: _type_entry(scores, models, ps, seed_list) for t, ps in groups.items()},
        "per_prompt": {p.id: {"type": p.type, "source": p.source, "text": p.text,
                              "models": {m: judge_rates(_rows(scores, m, [p], seed_list)) for m in models}}
                       for p in prompts.prompts},
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
                det = r.get("detect") or {}
                w.writerow([m, p.id, p.type, p.source, s, p.text,
                            image_path(out, m, p.id, s).relative_to(out).as_posix(),
                            *(_cell(r.get(k)) for k in ("clip_cos", "clipscore")), _cell(paired),
                            _cell(r.get("correct")), vqa, _cell(det.get("correct")), det.get("reason", ""),
                            *(_cell(r.get(k)) for k in QUALITY)])
    return buf.getvalue()


def _cell(v: Any) -> Any:
    if v is None or v == "":
        return ""
    if isinstance(v, bool):
        return int(v)
    return round(v, 6) if isinstance(v, float) else v


def majority(votes: dict[str, str]) -> bool | None:
    """People's verdict on one image: the majority of yes/no votes ("skip" counts for neither; a tie is None)."""
    yes, no = sum(v == "yes" for v in votes.values()), sum(v == "no" for v in votes.values())
    return None if yes == no else yes > no


def add_human(results: dict[str, Any], labels: dict[str, Any], scores: Scores, image_rel: Any) -> None:
    """Put people's labels (``judge_labels.json``) into *results*: the human accuracy per type and prompt (the
    paper's measure), each automated judge's accuracy and Cohen's κ against people, the raters' own agreement, and
    every image where a judge disagrees with people."""
    people: dict[tuple[str, str, int], bool] = {}
    for item in labels["items"].values():
        verdict = majority(item["votes"])
        if verdict is not None:
            people[(item["model"], item["prompt_id"], int(item["seed"]))] = verdict
    for group, entry in results["per_type"].items():
        for m, me in entry["models"].items():
            vals = [v for (mm, pid, _), v in people.items() if mm == m and (
                group == "all" or results["per_prompt"].get(pid, {}).get("type") == group)]
            me.setdefault("judges", {})["human"] = _rate(vals)
    for pid, entry in results["per_prompt"].items():
        for m, judges in entry["models"].items():
            judges["human"] = _rate([v for (mm, p, _), v in people.items() if mm == m and p == pid])
    judges: dict[str, Any] = {}
    disagree = []
    for j in JUDGES:
        pairs = []
        for (m, pid, seed), h in sorted(people.items()):
            row = scores.get(m, {}).get((pid, seed)) or {}
            v = verdicts(row)
            if j in v:
                pairs.append((v[j], h))
                if v[j] != h:
                    disagree.append({"model": m, "prompt_id": pid, "seed": seed, "judge": j, "judge_says": v[j],
                                     "people_say": h, "image": image_rel(m, pid, seed),
                                     "reason": (row.get("detect") or {}).get("reason", "") if j == "detect" else
                                     ", ".join(q["answer"] for q in row.get("vqa", []))})
        a = agreement(pairs)
        judges[j] = {"n": a["n"], "accuracy": a["agree"], "kappa": a["kappa"]}
    raters = sorted({r for item in labels["items"].values() for r in item["votes"]})
    pooled = [(item["votes"][a], item["votes"][b]) for item in labels["items"].values()
              for i, a in enumerate(raters) for b in raters[i + 1:]
              if item["votes"].get(a) in ("yes", "no") and item["votes"].get(b) in ("yes", "no")]
    k = cohen_kappa(pooled) if pooled else float("nan")
    results["human"] = {"raters": raters, "images": len(people), "judges": judges, "disagreements": disagree,
                        "rater_agreement": {"n": len(pooled), "agree": (sum(a == b for a, b in pooled) / len(pooled))
                                            if pooled else None, "kappa": None if k != k else k}}
