"""The paper's own figures beside a run's: Tables 2 and 3 for the setting that matches the run (or the one named),
and the per-prompt accuracies of Tables 1/7. The figures ship with the package, verbatim, in
``data/sur-adapter-eval.yaml`` (Zhong et al., arXiv 2305.05189: every number there is the paper's)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

FIGURES_PATH = Path(__file__).parent / "data" / "sur-adapter-eval.yaml"
CITATION = ("Zhong et al., SUR-adapter: Enhancing Text-to-Image Pre-trained Diffusion Models with Large Language "
            "Models, arXiv 2305.05189 (Tables 1/7, 2, 3; LLaMA 13B)")
PIPELINE_METHOD = {"sd": "-", "sag": "Self-attention Guidance", "panorama": "MultiDiffusion"}
CARTOON_BASES = ("ghibli",)  # DM (cartoon) = nitrosocke/Ghibli-Diffusion
TYPE_COLUMNS = {"action": "action_pct", "color": "color_pct", "counting": "counting_pct"}
QUALITY_COLUMNS = ("brisque", "clip_iqa", "musiq")


@cache
def figures() -> dict[str, Any]:
    """The paper's prompts and tables as shipped (parsed once)."""
    return yaml.safe_load(FIGURES_PATH.read_text(encoding="utf-8"))


def settings() -> list[str]:
    """Every setting the paper reports, as "MODEL / METHOD"."""
    return [f"{r['model']} / {r['method']}" for r in figures()["table2"]["rows"]]


def setting_for(config: dict[str, Any]) -> str:
    """The paper's setting a run compares with: the one named in ``paper_setting``, else the run's own (SD 1.5, or
    the cartoon model for a Ghibli base; the method by pipeline: sd → none, sag → Self-attention Guidance, panorama →
    MultiDiffusion)."""
    named = (config.get("paper_setting") or "").strip()
    if named:
        if named not in settings():
            raise ValueError(f"paper setting {named!r} is not one of the paper's: {'; '.join(settings())}")
        return named
    model = "DM (cartoon)" if any(b in str(config.get("base", "")).lower() for b in CARTOON_BASES) else "DM (1.5)"
    return f"{model} / {PIPELINE_METHOD.get(config.get('pipeline', 'sd'), '-')}"


def rows_for(setting: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(Table 2 row, Table 3 row) of a setting."""
    model, _, method = setting.partition(" / ")
    pick = [(r2, r3) for r2, r3 in zip(figures()["table2"]["rows"], figures()["table3"]["rows"])
            if r2["model"] == model and r2["method"] == method]
    if not pick:
        raise ValueError(f"paper setting {setting!r} is not one of the paper's: {'; '.join(settings())}")
    return pick[0]


def _pct(p: dict[str, Any] | None) -> float | None:
    return None if not p or p.get("rate") is None else 100.0 * p["rate"]


def _row(metric: str, paper: list[Any], run: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"metric": metric, "paper_baseline": paper[0], "paper_sur_adapter": paper[1], "run": run, **extra}


def table_rows(results: dict[str, Any], setting: str) -> list[dict[str, Any]]:
    """One row per metric of Tables 2 and 3: the paper's baseline and SUR-adapter figures, the run's per model (and
    per judge for semantic accuracy)."""
    t2, t3 = rows_for(setting)
    models, adapters, pt = results["models"], results["models"][1:], results["per_type"]
    out = []
    if "all" in pt and adapters:
        pair = pt["all"]["paired_clip"][adapters[0]]
        run = {m: pt["all"]["paired_clip"][m]["adapter"]["mean"] for m in adapters} | {models[0]: pair["baseline"]}
        out.append(_row("CLIP score (paired softmax)", t2["clip_score"], run))
    for t, col in TYPE_COLUMNS.items():
        if t not in pt:
            continue
        for judge in ("human", "vqa", "detect"):
            run = {m: _pct(pt[t]["models"][m].get("judges", {}).get(judge)) for m in models}
            if any(v is not None for v in run.values()):
                out.append(_row(f"{t} accuracy %", t2[col], run, judge=judge))
    for metric in QUALITY_COLUMNS:
        q = results["quality"].get(metric)
        if q is None:
            continue
        run = {m: q["models"][m]["mean"] for m in models}
        out.append(_row(metric, t3[metric], run, paper_unchanged=t3[metric][2],
                        run_unchanged={a: q["tests"][a]["unchanged"] for a in adapters}))
    pref = (results.get("preference") or {}).get("adapters") or {}
    if pref:
        run = {a: 100.0 * p["rate"] for a, p in pref.items()}
        run[models[0]] = 100.0 - run[next(iter(pref))]
        out.append(_row("user preference %", t3["user_preference_pct"], run))
    return out


def table1_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The paper's per-prompt accuracies of Tables 1/7 (baseline, SUR-adapter) beside the run's, for those of the
    nine prompts the run used (matched by their verbatim text)."""
    paper = {p["text"]: p for p in figures()["prompts"] if "acc_baseline" in p}
    out = []
    for pid, entry in results.get("per_prompt", {}).items():
        fig = paper.get(entry["text"])
        if fig is None:
            continue
        out.append({"prompt_id": pid, "type": entry["type"], "text": entry["text"],
                    "paper_baseline": fig["acc_baseline"], "paper_sur_adapter": fig["acc_sur_adapter"],
                    "run": {m: {j: _pct(p) for j, p in judges.items()} for m, judges in entry["models"].items()},
                    "images": {m: max((p["n"] for p in judges.values() if p), default=0)
                               for m, judges in entry["models"].items()}})
    return out


def comparison(results: dict[str, Any]) -> dict[str, Any]:
    """Everything the report's paper columns need, stored in results.json under "paper"."""
    setting = setting_for(results["config"])
    return {"setting": setting, "source": CITATION, "tables": table_rows(results, setting),
            "table1": table1_rows(results)}
