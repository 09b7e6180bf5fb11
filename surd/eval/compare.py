"""`surd eval compare A B`: two evaluations side by side (e.g. adapters trained on LLaMA layer 40 vs 60, the
paper's Table 4): semantic accuracy, CLIP scores and quality per model, with a note when the two runs were not
generated the same way (then their numbers are not comparable)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from surd.eval.report import QUALITY_NAMES, STYLE, TYPE_ORDER
from surd.files import write_bytes_atomic, write_json_atomic


def _load(run: str | Path) -> dict[str, Any]:
    path = Path(run) / "results.json"
    if not path.exists():
        raise FileNotFoundError(f"{run} has no results.json: pass folders written by `surd eval`")
    return json.loads(path.read_text(encoding="utf-8"))


def _num(x: Any, scale: float = 1.0, digits: int = 3) -> str:
    return "–" if x is None else f"{x * scale:.{digits}f}"


def comparison_rows(a: dict[str, Any], b: dict[str, Any], names: tuple[str, str]) -> list[list[str]]:
    """[metric, model @ run, value] rows for every model of both runs."""
    rows: list[list[str]] = []
    for run, name in ((a, names[0]), (b, names[1])):
        for m in run["models"]:
            col = f"{m} @ {name}"
            for t in (t for t in TYPE_ORDER if t in run["per_type"]):
                e = run["per_type"][t]
                acc = e["models"][m]["semantic_accuracy"]
                rows.append([f"semantic accuracy % · {t}", col, _num(acc and acc["rate"], 100, 1)])
                for judge, judge_name in (("detect", "detector"), ("human", "people")):
                    acc = e["models"][m].get("judges", {}).get(judge)
                    if acc:
                        rows.append([f"semantic accuracy % ({judge_name}) · {t}", col, _num(acc["rate"], 100, 1)])
                rows.append([f"CLIPScore · {t}", col, _num(e["models"][m]["clipscore"]["mean"], 1, 2)])
                if m in e["paired_clip"]:
                    rows.append([f"paired CLIP (adapter share) · {t}", col, _num(e["paired_clip"][m]["adapter"]["mean"])])
            for metric, q in run["quality"].items():
                rows.append([QUALITY_NAMES[metric], col, _num(q["models"][m]["mean"])])
                if m in q["tests"]:
                    rows.append([f"{QUALITY_NAMES[metric]} t-test p vs baseline", col, _num(q["tests"][m]["p"], 1, 4)])
                if m in q.get("welch", {}):
                    rows.append([f"{QUALITY_NAMES[metric]} Welch p vs baseline", col, _num(q["welch"][m]["p"], 1, 4)])
            pref = (run.get("preference") or {}).get("adapters", {}).get(m)
            if pref:
                rows.append(["preferred over baseline %", col, _num(pref["rate"], 100, 1)])
    return rows


def compare_runs(run_a: str | Path, run_b: str | Path, out: str | Path | None = None) -> dict[str, Any]:
    """Compare two eval folders; writes compare.html + compare.json into *out* (default: beside nothing, no files)."""
    a, b = _load(run_a), _load(run_b)
    names = (Path(run_a).resolve().name, Path(run_b).resolve().name)
    if names[0] == names[1]:
        names = (f"{names[0]} (A)", f"{names[1]} (B)")
    gen = ("base", "steps", "guidance", "size", "negative_prompt", "pipeline", "prompts", "images_per_prompt", "seed")
    differ = [k for k in gen if a["config"].get(k) != b["config"].get(k)]
    rows = comparison_rows(a, b, names)
    metrics = list(dict.fromkeys(r[0] for r in rows))
    cols = list(dict.fromkeys(r[1] for r in rows))
    table = {m: {c: "" for c in cols} for m in metrics}
    for metric, col, value in rows:
        table[metric][col] = value
    result = {"runs": list(names), "columns": cols, "table": table, "generation_differs": differ}
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / "compare.json", result)
        write_bytes_atomic(out / "compare.html", _html(result).encode("utf-8"))
    return result


def _html(result: dict[str, Any]) -> str:
    e = html.escape
    head = "".join(f"<th>{e(c)}</th>" for c in result["columns"])
    body = "".join(f"<tr><td>{e(m)}</td>" + "".join(f"<td>{e(v)}</td>" for v in row.values()) + "</tr>"
                   for m, row in result["table"].items())
    warn = (f"<p class=no>These runs were generated differently ({e(', '.join(result['generation_differs']))}): "
            "their numbers are not directly comparable.</p>" if result["generation_differs"] else
            "<p class=note>Same base model, prompts, seeds and sampler in both runs.</p>")
    return (f"<!doctype html><html lang=en><meta charset=utf-8><title>surd eval compare</title><style>{STYLE}</style>"
            f"<h1>surd eval compare: {e(' vs '.join(result['runs']))}</h1>{warn}"
            f"<table><tr><th>metric</th>{head}</tr>{body}</table></html>\n")


def format_text(result: dict[str, Any]) -> str:
    """The comparison as a fixed-width text table for the terminal."""
    cols = result["columns"]
    width = max(len(m) for m in result["table"]) + 2
    lines = [" " * width + "".join(f"{c[:22]:>24}" for c in cols)]
    for m, row in result["table"].items():
        lines.append(f"{m:<{width}}" + "".join(f"{row[c]:>24}" for c in cols))
    if result["generation_differs"]:
        lines.append(f"note: generated differently ({', '.join(result['generation_differs'])}): not comparable")
    return "\n".join(lines)
