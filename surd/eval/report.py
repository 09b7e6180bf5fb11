"""``OUT/report.html``: the four tables (CLIP scores, semantic accuracy, quality with Welch's t-test, preference
study), bar charts with error bars per prompt type (matplotlib, ``OUT/charts/*.png``) and image grids (baseline |
adapters, per prompt and seed). Static HTML: opens from ``file://``, images load lazily."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from surd.deps import require
from surd.eval.config import BASELINE
from surd.eval.generate import image_path
from surd.eval.prompts import PromptSet
from surd.files import write_bytes_atomic

QUALITY_NAMES = {"brisque": "BRISQUE ↓", "clip_iqa": "CLIP-IQA ↑", "musiq": "MUSIQ ↑"}
TYPE_ORDER = ("action", "color", "counting", "all")
STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1200px;padding:0 16px;color:#222}
table{border-collapse:collapse;margin:8px 0 20px}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}.note{color:#666}.yes{color:#0a7d2c}
.no{color:#b00020}figure{display:inline-block;margin:4px}img.chart{max-width:560px}
.grid td{text-align:center;vertical-align:top}.grid img{width:160px;height:160px;object-fit:cover;display:block}
.cap{font-size:12px;max-width:160px}h3{margin-bottom:4px}code{background:#f6f6f6;padding:0 3px}
"""


def _e(x: Any) -> str:
    return html.escape(str(x))


def _f(x: Any, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _g(x: Any) -> str:
    return "–" if x is None else f"{x:.4g}"  # quality scales differ by orders of magnitude


def _pct(p: dict[str, Any] | None) -> str:
    if not p or p.get("rate") is None:
        return "–"
    lo, hi = p["ci95"]
    return f"{100 * p['rate']:.1f}% <span class=note>({p['k']}/{p['n']}; {100 * lo:.0f}–{100 * hi:.0f})</span>"


def _types(results: dict[str, Any]) -> list[str]:
    return [t for t in TYPE_ORDER if t in results["per_type"]]


# ------------------------------------------------------------------------------------------------------- charts

def _bars(ax: Any, labels: list[str], series: dict[str, list[tuple[float | None, tuple[float, float] | None]]],
          ylabel: str) -> None:
    width = 0.8 / max(1, len(series))
    for i, (name, vals) in enumerate(series.items()):
        xs = [k + (i - (len(series) - 1) / 2) * width for k in range(len(labels))]
        ys = [v if v is not None else 0.0 for v, _ in vals]
        err = [[max(0.0, (v or 0) - ci[0]) if ci else 0 for v, ci in vals],
               [max(0.0, ci[1] - (v or 0)) if ci else 0 for v, ci in vals]]
        ax.bar(xs, ys, width, yerr=err, capsize=3, label=name)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)


def _ci(s: dict[str, Any] | None, key: str = "mean") -> tuple[float | None, tuple[float, float] | None]:
    if not s or s.get(key) is None:
        return None, None
    return s[key], tuple(s["ci95"]) if s.get("ci95") else None


def write_charts(results: dict[str, Any], charts: Path) -> list[tuple[str, str]]:
    """Bar charts per prompt type with 95% error bars; returns (file name, caption) pairs."""
    mpl = require("matplotlib", "eval")
    mpl.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt  # optional heavy dependency (the eval extra), after choosing the backend

    charts.mkdir(parents=True, exist_ok=True)
    types, models, pt = _types(results), results["models"], results["per_type"]
    made: list[tuple[str, str]] = []

    def save(fig: Any, name: str, caption: str) -> None:
        fig.tight_layout()
        fig.savefig(charts / name, dpi=110)
        plt.close(fig)
        made.append((name, caption))

    if any(pt[t]["models"][m]["semantic_accuracy"] for t in types for m in models):
        fig, ax = plt.subplots(figsize=(6, 3.4))
        _bars(ax, types, {m: [_ci(pt[t]["models"][m]["semantic_accuracy"], "rate") for t in types] for m in models},
              "semantic accuracy (VQA)")
        save(fig, "semantic_accuracy.png", "Semantic accuracy per prompt type (Wilson 95% intervals)")
    if any(pt[t]["models"][m]["clipscore"]["n"] for t in types for m in models):
        fig, ax = plt.subplots(figsize=(6, 3.4))
        _bars(ax, types, {m: [_ci(pt[t]["models"][m]["clipscore"]) for t in types] for m in models}, "CLIPScore")
        save(fig, "clipscore.png", "CLIPScore (100·cos) per prompt type (95% intervals of the mean)")
        adapters = models[1:]
        fig, ax = plt.subplots(figsize=(6, 3.4))
        _bars(ax, types, {a: [_ci(pt[t]["paired_clip"][a]["adapter"]) for t in types] for a in adapters},
              "adapter share of paired CLIP")
        ax.axhline(0.5, color="#888", lw=1, ls="--")
        save(fig, "paired_clip.png", "Paired-softmax CLIP score: the adapter's share against the baseline (0.5 = tie)")
    q = results["quality"]
    if q:
        fig, axes = plt.subplots(1, len(q), figsize=(3.2 * len(q), 3.2), squeeze=False)
        for ax, (metric, entry) in zip(axes[0], q.items()):
            _bars(ax, [QUALITY_NAMES[metric]], {m: [_ci(entry["models"][m])] for m in models}, "")
        save(fig, "quality.png", "Image quality per model (95% intervals of the mean)")
    return made


# ------------------------------------------------------------------------------------------------------- tables

def clip_table(results: dict[str, Any]) -> str:
    models, adapters, pt = results["models"], results["models"][1:], results["per_type"]
    head = "".join(f"<th>{_e(BASELINE)} | {_e(a)}</th>" for a in adapters) + "".join(
        f"<th>CLIPScore {_e(m)}</th>" for m in models)
    rows = []
    for t in _types(results):
        cells = "".join(f"<td>{_f(pt[t]['paired_clip'][a]['baseline'])} | {_f(pt[t]['paired_clip'][a]['adapter']['mean'])}"
                        "</td>" for a in adapters)
        cells += "".join(f"<td>{_f(pt[t]['models'][m]['clipscore']['mean'], 2)}</td>" for m in models)
        rows.append(f"<tr><td>{_e(t)}</td>{cells}</tr>")
    return f"<table><tr><th>type</th>{head}</tr>{''.join(rows)}</table>"


def accuracy_table(results: dict[str, Any]) -> str:
    models, pt = results["models"], results["per_type"]
    rows = "".join(f"<tr><td>{_e(t)}</td>" + "".join(f"<td>{_pct(pt[t]['models'][m]['semantic_accuracy'])}</td>"
                                                      for m in models) + "</tr>" for t in _types(results))
    return f"<table><tr><th>type</th>{''.join(f'<th>{_e(m)}</th>' for m in models)}</tr>{rows}</table>"


def quality_table(results: dict[str, Any]) -> str:
    models, adapters = results["models"], results["models"][1:]
    head = "".join(f"<th>{_e(m)}</th>" for m in models) + "".join(
        f"<th>Welch t, p ({_e(a)} vs {_e(BASELINE)})</th><th>p &gt; 0.05</th>" for a in adapters)
    rows = []
    for metric, entry in results["quality"].items():
        cells = "".join(f"<td>{_g(entry['models'][m]['mean'])} ± {_g(entry['models'][m]['std'])}</td>" for m in models)
        for a in adapters:
            t = entry["tests"][a]
            mark = "–" if t["unchanged"] is None else ("<span class=yes>✓ unchanged</span>" if t["unchanged"]
                                                        else "<span class=no>✗ differs</span>")
            cells += f"<td>{_f(t['t'], 2)}, {_f(t['p'], 4)}</td><td>{mark}</td>"
        rows.append(f"<tr><td>{_e(QUALITY_NAMES[metric])}</td>{cells}</tr>")
    return f"<table><tr><th>metric</th>{head}</tr>{''.join(rows)}</table>"


def preference_table(results: dict[str, Any]) -> str:
    pref = results.get("preference")
    if not pref or not pref.get("adapters"):
        return ("<p class=note>No study answers imported yet. Make the blind A/B page with "
                "<code>surd eval study export OUT</code>, collect answers, then <code>surd eval study import OUT "
                "answers.json …</code>: this table fills in.</p>")
    rows = []
    for a, p in pref["adapters"].items():
        ci = p["ci95"]
        rows.append(f"<tr><td>{_e(a)}</td><td>{100 * p['rate']:.1f}% <span class=note>({100 * ci[0]:.0f}–"
                    f"{100 * ci[1]:.0f})</span></td><td>{100 * (1 - p['rate']):.1f}%</td><td>{p['n']}</td>"
                    f"<td>{_f(p['p'], 4)}</td></tr>")
    return (f"<p>{pref['raters']} rater(s), {pref['answers']} answers (skipped pairs excluded).</p><table><tr>"
            f"<th>adapter</th><th>prefer adapter</th><th>prefer {_e(BASELINE)}</th><th>votes</th>"
            f"<th>binomial p (vs 50%)</th></tr>{''.join(rows)}</table>")


# ------------------------------------------------------------------------------------------------------- grids

def grids(results: dict[str, Any], prompts: PromptSet, scores: dict[str, Any], image_rel: Any) -> str:
    models, out = results["models"], []
    for p in prompts.prompts:
        qs = "; ".join(f"{q.question} → {q.answer}" for q in p.questions)
        head = "".join(f"<th>{_e(m)}</th>" for m in models)
        rows = []
        for s in results["seeds"]:
            cells = []
            for m in models:
                r = scores[m].get((p.id, s), {})
                verdict = "" if "correct" not in r else (
                    "<span class=yes>✓</span> " if r["correct"] else "<span class=no>✗</span> ")
                answers = ", ".join(q["answer"] for q in r.get("vqa", []))
                cap = verdict + _e(answers) + (f" · CLIPScore {_f(r['clipscore'], 1)}" if "clipscore" in r else "")
                cells.append(f"<td><img loading=lazy src=\"{_e(image_rel(m, p.id, s))}\" alt=\"{_e(m)} seed {s}\">"
                             f"<div class=cap>{cap}</div></td>")
            rows.append(f"<tr><td>seed {s}</td>{''.join(cells)}</tr>")
        out.append(f"<h3 id=\"p-{_e(p.id)}\">{_e(p.id)} · {_e(p.type)} · {_e(p.source)}</h3><p>“{_e(p.text)}”"
                   f" <span class=note>({_e(qs)})</span></p><table class=grid><tr><th></th>{head}</tr>"
                   f"{''.join(rows)}</table>")
    return "\n".join(out)


def render(results: dict[str, Any], prompts: PromptSet, scores: dict[str, Any], out: Path) -> Path:
    """Write charts and report.html into *out*; returns the report's path."""
    charts = write_charts(results, out / "charts")
    cfg, ps = results["config"], results["prompt_set"]
    paper = ps["by_source"].get("paper", 0)
    prompt_note = (f"{ps['prompts']} prompts ({paper} verbatim from the paper, "
                   f"{ps['prompts'] - paper} written for surd)")
    figs = "".join(f"<figure><img class=chart src=\"charts/{_e(n)}\" alt=\"{_e(c)}\"><figcaption class=note>"
                   f"{_e(c)}</figcaption></figure>" for n, c in charts)
    models = cfg["models"]
    rel = lambda m, pid, s: image_path(out, m, pid, s).relative_to(out).as_posix()  # noqa: E731
    body = f"""<!doctype html><html lang=en><head><meta charset=utf-8><title>surd eval · {_e(ps['name'])}</title>
<style>{STYLE}</style></head><body>
<h1>surd eval: {_e(' vs '.join(results['models']))}</h1>
<p>Base <code>{_e(cfg['base'])}</code>, prompt set <code>{_e(ps['name'])}</code>: {_e(prompt_note)};
{len(results['seeds'])} images per prompt and model (seeds {results['seeds'][0]}…{results['seeds'][-1]}, the same for
every model), {cfg['steps']} steps, guidance {cfg['guidance']}, pipeline <code>{_e(cfg['pipeline'])}</code>.</p>
<p class=note>Scoring models: CLIP <code>{_e(models['clip'])}</code>/<code>{_e(models['clip_pretrained'])}</code>
(logit scale {_f(results.get('logit_scale'), 2)}), VQA <code>{_e(models['vqa'])}</code>, BRISQUE
<code>{_e(models['brisque'])}</code>, MUSIQ <code>{_e(models['musiq'])}</code>, CLIP-IQA
<code>{_e(models['clip_iqa'])}</code>. Raw numbers: <a href=results.json>results.json</a>,
<a href=results.csv>results.csv</a>.</p>
<h2>1. CLIP score</h2><p class=note>Paired softmax (the paper's): for each prompt and seed, softmax over CLIP's
similarity of the baseline image and the adapter image to the prompt, so each pair of columns sums to 1. It misleads
when both images are poor, so CLIPScore (100·max(cos, 0)) of each image is shown beside it.</p>{clip_table(results)}
<h2>2. Semantic accuracy (the paper's Table 2, judged by VQA)</h2><p class=note>An image counts as correct when the
VQA model's answers match every question its prompt implies (counts, colours, actions); 95% Wilson intervals.</p>
{accuracy_table(results)}
<h2>3. Image quality (the paper's Table 3)</h2><p class=note>Mean ± standard deviation over all images; Welch's
two-sample t-test against the baseline: p &gt; 0.05 means no evidence that quality changed.</p>{quality_table(results)}
<h2>4. Preference study</h2>{preference_table(results)}
<h2>Charts</h2>{figs}
<h2>Images</h2>{grids(results, prompts, scores, rel)}
</body></html>
"""
    path = out / "report.html"
    write_bytes_atomic(path, body.encode("utf-8"))
    return path
