"""`surd eval`: generate (resumable) → score (resumable) → results.json / results.csv / report.html.

Rerunning the same command only does what is missing; a different generation setup (base model, sampler, size,
negative prompt) in the same output folder is refused, since its images would mix with the old ones.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from surd.eval.config import EvalConfig, MetricModels
from surd.eval.generate import generate_images, image_path, model_names
from surd.eval.paper import comparison
from surd.eval.prompts import PromptSet, load_prompt_set
from surd.eval.report import render
from surd.eval.results import add_human, csv_text, summarise
from surd.eval.score import load_all_scores, score_images
from surd.files import write_bytes_atomic, write_json_atomic

CONFIG_NAME = "eval_config.json"
RESULTS_NAME = "results.json"
STUDY_RESULTS_NAME = "study_results.json"
JUDGE_LABELS_NAME = "judge_labels.json"  # people's yes/no per image, written by `surd eval judge import`


def _check_config(cfg: EvalConfig, out: Path) -> None:
    path = out / CONFIG_NAME
    if path.exists():
        old = json.loads(path.read_text(encoding="utf-8"))
        if old.get("generation") != cfg.generation():
            raise ValueError(f"{out} holds images generated with {old.get('generation')}, not {cfg.generation()}: "
                             f"pass a new --out folder (or the same settings to resume)")
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, {"generation": cfg.generation(), "config": cfg.to_json()})


def build_results(cfg: EvalConfig, prompts: PromptSet) -> tuple[dict[str, Any], dict[str, Any]]:
    """Summaries (with the imported study and people's labels, if any, and the paper's figures) and the per-image
    scores."""
    out = Path(cfg.out)
    scores = load_all_scores(cfg, model_names(cfg))
    results = summarise(cfg, prompts, scores)
    study = out / STUDY_RESULTS_NAME
    if study.exists():
        results["preference"] = json.loads(study.read_text(encoding="utf-8"))
    labels = out / JUDGE_LABELS_NAME
    if labels.exists():
        add_human(results, json.loads(labels.read_text(encoding="utf-8")), scores,
                  lambda m, pid, s: image_path(out, m, pid, s).relative_to(out).as_posix())
    results["paper"] = comparison(results)
    return results, scores


def write_outputs(cfg: EvalConfig, prompts: PromptSet, timing: dict[str, Any] | None = None) -> dict[str, Any]:
    """results.json, results.csv and report.html from what is on disk."""
    out = Path(cfg.out)
    results, scores = build_results(cfg, prompts)
    if timing is not None:
        results["timing"] = timing
    elif (out / RESULTS_NAME).exists():  # a report refresh keeps the last run's timing
        results["timing"] = json.loads((out / RESULTS_NAME).read_text(encoding="utf-8")).get("timing")
    write_json_atomic(out / RESULTS_NAME, results)
    write_bytes_atomic(out / "results.csv", csv_text(cfg, prompts, scores).encode("utf-8"))
    render(results, prompts, scores, out)
    return results


def run_eval(cfg: EvalConfig) -> dict[str, Any]:
    """The whole evaluation; returns the summaries (also written to OUT/results.json)."""
    prompts = load_prompt_set(cfg.prompts)
    cfg.model_dirs()  # every adapter folder exists before anything is written
    _check_config(cfg, Path(cfg.out))
    t0 = time.perf_counter()
    gen = generate_images(cfg, prompts)
    scored = score_images(cfg, prompts)
    timing = {**gen, **{f"score_{k}" if k == "seconds" else k: v for k, v in scored.items()},
              "total_seconds": time.perf_counter() - t0}
    return write_outputs(cfg, prompts, timing)


def load_config(out: str | Path) -> EvalConfig:
    """The config an output folder was made with (for the study, compare and report refreshes)."""
    path = Path(out) / CONFIG_NAME
    if not path.exists():
        raise FileNotFoundError(f"{out} is not a `surd eval` output folder (no {CONFIG_NAME})")
    c = dict(json.loads(path.read_text(encoding="utf-8"))["config"])
    c["models"] = MetricModels(**c["models"])
    c["out"] = str(out)
    return EvalConfig(**c)


def run_job(input_dir: str | Path | None, output_dir: str | Path, config: dict[str, Any]) -> dict[str, Any]:
    """The ``eval`` step of a pipeline file: evaluate the adapter the previous step (train_adapter) wrote."""
    if input_dir is None:
        raise ValueError("eval needs an adapter: put it after the train_adapter step in the pipeline")
    values = dict(config)
    models = values.pop("models", {}) or {}
    if models == "tiny":
        models = MetricModels.tiny()
    elif isinstance(models, dict):
        models = MetricModels(**models)
    adapters = tuple(values.pop("adapters", ())) or (f"{Path(input_dir).name.split('_', 1)[-1]}={input_dir}",)
    cfg = EvalConfig(adapters=adapters, out=str(output_dir), models=models, **values)
    results = run_eval(cfg)
    return {"report": str(Path(output_dir) / "report.html"), "models": results["models"],
            "images": results.get("timing", {}).get("generated")}
