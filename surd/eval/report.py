"""``OUT/report.html``: the four tables (CLIP scores, semantic accuracy by each judge and how often they agree, quality
with the paper's t-test and Welch's, preference study), the paper's figures beside the run's (Tables 1/7, 2, 3), bar
charts with error bars per prompt type (matplotlib, ``OUT/charts/*.png``) and image grids (baseline |
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


JUDGE_NAMES = {"human": "people", "vqa": "VQA", "detect": "detector"}


def _judges(results: dict[str, Any]) -> list[str]:
    pt = results["per_type"]
    return [j for j in JUDGE_NAMES if any(pt[t]["models"][m].get("judges", {}).get(j)
                                          for t in pt for m in results["models"])]


def _kappa(a: dict[str, Any] | None) -> str:
    if not a or not a.get("n"):
        return "–"
    return f"{100 * a['agree']:.0f}% agree, κ {_f(a['kappa'], 2)} <span class=note>(n {a['n']})</span>"


def accuracy_table(results: dict[str, Any]) -> str:
    models, pt, judges = results["models"], results["per_type"], _judges(results) or ["vqa"]
    head = "".join(f"<th>{_e(m)} · {JUDGE_NAMES[j]}</th>" for m in models for j in judges)
    rows = "".join(f"<tr><td>{_e(t)}</td>" + "".join(
        f"<td>{_pct(pt[t]['models'][m].get('judges', {}).get(j))}</td>" for m in models for j in judges)
        + f"<td>{_kappa(pt[t].get('judge_agreement'))}</td></tr>" for t in _types(results))
    return f"<table><tr><th>type</th>{head}<th>VQA vs detector</th></tr>{rows}</table>"


def _test_cells(t: dict[str, Any], mark: bool) -> str:
    cell = f"<td>{_f(t['t'], 2)}, {_f(t['p'], 4)}</td>"
    if not mark:
        return cell
    return cell + "<td>" + ("–" if t["unchanged"] is None else (
        "<span class=yes>✓ unchanged</span>" if t["unchanged"] else "<span class=no>✗ differs</span>")) + "</td>"


def quality_table(results: dict[str, Any]) -> str:
    models, adapters = results["models"], results["models"][1:]
    head = "".join(f"<th>{_e(m)}</th>" for m in models) + "".join(
        f"<th>t-test t, p ({_e(a)} vs {_e(BASELINE)})</th><th>p &gt; 0.05</th><th>Welch t, p</th>" for a in adapters)
    rows = []
    for metric, entry in results["quality"].items():
        cells = "".join(f"<td>{_g(entry['models'][m]['mean'])} ± {_g(entry['models'][m]['std'])}</td>" for m in models)
        for a in adapters:
            cells += _test_cells(entry["tests"][a], True) + _test_cells(entry.get("welch", {}).get(a) or {
                "t": None, "p": None, "unchanged": None}, False)
        rows.append(f"<tr><td>{_e(QUALITY_NAMES[metric])}</td>{cells}</tr>")
    return f"<table><tr><th>metric</th>{head}</tr>{''.join(rows)}</table>"


def _v(x: Any) -> str:
    return "–" if x is None else _g(x)


def human_section(results: dict[str, Any]) -> str:
    """Each automated judge against people (accuracy, Cohen's κ) and the images where they disagree."""
    h = results.get("human")
    if not h:
        return ("<p class=note>No labels from people yet: <code>surd eval judge export OUT --out judge/</code>, "
                "raters answer yes/no per image, then <code>surd eval judge import OUT judge/</code>; the people column "
                "and the table of each judge against people fill in.</p>")
    rows = "".join(f"<tr><td>{JUDGE_NAMES[j]}</td><td>{_f(None if e['accuracy'] is None else 100 * e['accuracy'], 1)}"
                   f"</td><td>{_f(e['kappa'], 2)}</td><td>{e['n']}</td></tr>" for j, e in h["judges"].items())
    ra = h["rater_agreement"]
    items = "".join(
        f"<li><a href=\"#i-{_e(d['model'])}-{_e(d['prompt_id'])}-{d['seed']}\">{_e(d['model'])} · "
        f"{_e(d['prompt_id'])} · seed {d['seed']}</a> (<a href=\"{_e(d['image'])}\">image</a>): "
        f"{JUDGE_NAMES[d['judge']]} says {'yes' if d['judge_says'] else 'no'}, people say "
        f"{'yes' if d['people_say'] else 'no'} <span class=note>{_e(d['reason'])}</span></li>"
        for d in h["disagreements"])
    return (f"<h3>The judges against people</h3><p>{len(h['raters'])} rater(s), {h['images']} image(s) with a majority"
            f" verdict; raters agree with each other on {_f(None if ra['agree'] is None else 100 * ra['agree'], 1)}% "
            f"of shared images (κ {_f(ra['kappa'], 2)}, n {ra['n']}).</p><table><tr><th>judge</th>"
            f"<th>accuracy vs people %</th><th>Cohen's κ</th><th>images</th></tr>{rows}</table>"
            f"<details><summary>{len(h['disagreements'])} disagreement(s)</summary><ul id=disagreements>{items}</ul>"
            f"</details>")


def paper_table(results: dict[str, Any]) -> str:
    """The paper's Tables 2 and 3 row for the run's setting beside the run's numbers."""
    paper = results.get("paper") or {}
    if not paper.get("tables"):
        return "<p class=note>No metric of this run has a figure in the paper.</p>"
    models = results["models"]
    head = "".join(f"<th>this run · {_e(m)}</th>" for m in models)
    rows = []
    for r in paper["tables"]:
        name = r["metric"] + (f" ({JUDGE_NAMES[r['judge']]})" if r.get("judge") else "")
        mark = ""
        if "paper_unchanged" in r:
            run_marks = ", ".join(f"{_e(a)}: {'yes' if u else 'no' if u is not None else '–'}"
                                  for a, u in r["run_unchanged"].items())
            mark = f"{'yes' if r['paper_unchanged'] else 'no'} | {run_marks}"
        rows.append(f"<tr><td>{_e(name)}</td><td>{_v(r['paper_baseline'])}</td><td>{_v(r['paper_sur_adapter'])}</td>"
                    + "".join(f"<td>{_v(r['run'].get(m))}</td>" for m in models) + f"<td>{mark}</td></tr>")
    return (f"<p>Setting <b>{_e(paper['setting'])}</b> (SD 1.5 = DM (1.5); pass <code>--paper-setting</code> for "
            f"another). Source: {_e(paper['source'])}. Accuracies in %, the paper's judged by hand.</p><table><tr>"
            f"<th>metric</th><th>paper · baseline</th><th>paper · SUR-adapter</th>{head}"
            f"<th>P &gt; 0.05? paper | run (t-test)</th></tr>{''.join(rows)}</table>")


def table1_table(results: dict[str, Any]) -> str:
    """Tables 1/7: the paper's per-prompt accuracy (130 images each, by hand) beside the run's, per judge."""
    rows_in = (results.get("paper") or {}).get("table1") or []
    if not rows_in:
        return "<p class=note>None of the nine prompts of Tables 1/7 is in this prompt set.</p>"
    models, judges = results["models"], _judges(results) or ["vqa"]
    head = "".join(f"<th>{_e(m)} · {JUDGE_NAMES[j]}</th>" for m in models for j in judges)
    rows = "".join(
        f"<tr><td><a href=\"#p-{_e(r['prompt_id'])}\">{_e(r['text'])}</a></td><td>{_v(r['paper_baseline'])}</td>"
        f"<td>{_v(r['paper_sur_adapter'])}</td>" + "".join(f"<td>{_f(r['run'][m].get(j), 1)}</td>"
                                                             for m in models for j in judges)
        + f"<td>{', '.join(str(r['images'][m]) for m in models)}</td></tr>" for r in rows_in)
    return (f"<table><tr><th>prompt (Table 7 wording)</th><th>paper · baseline</th><th>paper · SUR-adapter</th>{head}"
            f"<th>images judged</th></tr>{rows}</table>")


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
                det = r.get("detect")
                found = "" if not det else (" · detector " + ("✓ " if det["correct"] else "✗ ") + _e(det["reason"]))
                cap = verdict + _e(answers) + found + (
                    f" · CLIPScore {_f(r['clipscore'], 1)}" if "clipscore" in r else "")
                cells.append(f"<td id=\"i-{_e(m)}-{_e(p.id)}-{s}\"><img loading=lazy src=\"{_e(image_rel(m, p.id, s))}\" alt=\"{_e(m)} seed {s}\">"
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
(logit scale {_f(results.get('logit_scale'), 2)}), VQA <code>{_e(models['vqa'])}</code>, detector
<code>{_e(models.get('detector', '–'))}</code> (threshold {_e(models.get('detect_threshold', '–'))}), BRISQUE
<code>{_e(models['brisque'])}</code>, MUSIQ <code>{_e(models['musiq'])}</code>, CLIP-IQA
<code>{_e(models['clip_iqa'])}</code>. Raw numbers: <a href=results.json>results.json</a>,
<a href=results.csv>results.csv</a>.</p>
<h2>1. CLIP score</h2><p class=note>Paired softmax (the paper's): for each prompt and seed, softmax over CLIP's
similarity of the baseline image and the adapter image to the prompt, so each pair of columns sums to 1. It misleads
when both images are poor, so CLIPScore (100·max(cos, 0)) of each image is shown beside it.</p>{clip_table(results)}
<h2>2. Semantic accuracy (the paper's Table 2)</h2><p class=note>Each judge says whether an image shows what its
prompt asks. VQA: the VQA model's answers match every question the prompt implies (counts, colours, actions). Detector
(counting and colour, GenEval-style): the open-vocabulary detector finds exactly the asked number of objects, and each
asked colour on its own object by CLIP on the object's crop. People (the paper's judge): the majority of the raters of
<code>surd eval judge</code>. 95% Wilson intervals; the last column: how often VQA and the detector agree on the images
both judged (Cohen's κ).</p>
{accuracy_table(results)}{human_section(results)}
<h2>3. Image quality (the paper's Table 3)</h2><p class=note>Mean ± standard deviation over all images; the paper's
test, the two-sample t-test with equal variances, against the baseline (p &gt; 0.05: no evidence that quality
changed), and Welch's (unequal variances) beside it.</p>{quality_table(results)}
<h2>4. Preference study</h2>{preference_table(results)}
<h2>5. The paper's figures beside this run's</h2>{paper_table(results)}
<h3>Tables 1/7: per-prompt accuracy</h3>{table1_table(results)}
<h2>Charts</h2>{figs}
<h2>Images</h2>{grids(results, prompts, scores, rel)}
</body></html>
"""
    path = out / "report.html"
    write_bytes_atomic(path, body.encode("utf-8"))
    return path
