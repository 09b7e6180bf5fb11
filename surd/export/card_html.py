"""A card's figures → ``card.html``: one self-contained page (inline SVG plots, no script, no network) with the
funnel, samples per source, prompt-length histograms, CLIP and NSFW score distributions, then the datasheet."""

from __future__ import annotations

import html
import re
from typing import Any

import numpy as np

WIDTH, BAR_H, GAP = 640, 22, 6
COLORS = {"kept": "#2e7d32", "rejected": "#c62828", "simple": "#1565c0", "complex": "#ef6c00", "bars": "#455a64",
          "samples": "#5c6bc0"}
STYLE = """body{font:15px/1.5 system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}
h1{margin-bottom:.2em}.kpis{display:flex;gap:1em;flex-wrap:wrap;margin:1em 0}.kpi{background:#f4f6f8;border-radius:8px;
padding:.6em 1em}.kpi b{display:block;font-size:1.6em}.plots{display:grid;grid-template-columns:1fr;gap:1.5em}
figure{margin:0}figcaption{font-weight:600;margin-bottom:.3em}table{border-collapse:collapse;margin:.8em 0;
font-size:13px}td,th{border:1px solid #ddd;padding:3px 6px;text-align:left}th{background:#f4f6f8}
.todo{background:#fff3cd}code{background:#f4f6f8;padding:0 3px}svg text{font:12px system-ui,sans-serif}"""


def _e(x: Any) -> str:
    return html.escape(str(x))


def legend(names: list[str]) -> str:
    return "<p>" + " ".join(f'<span style="color:{COLORS.get(n, COLORS["bars"])}">■</span> {_e(n)}' for n in names) + \
        "</p>"


def hbars(items: list[tuple[str, list[tuple[str, float]]]], unit: str = "") -> str:
    """Horizontal stacked bars: (label, [(series, value), ...]) per row; series colours from COLORS."""
    if not items:
        return "<p>No data.</p>"
    top = max(sum(v for _, v in parts) for _, parts in items) or 1
    label_w, h = 170, len(items) * (BAR_H + GAP) + 10
    out = [f'<svg width="{WIDTH}" height="{h}" role="img">']
    for i, (label, parts) in enumerate(items):
        y, x = 5 + i * (BAR_H + GAP), label_w
        out.append(f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">{_e(label)}</text>')
        for series, v in parts:
            w = (WIDTH - label_w - 80) * v / top
            out.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{BAR_H}" '
                       f'fill="{COLORS.get(series, COLORS["bars"])}"><title>{_e(series)}: {v:,.0f}{unit}</title></rect>')
            x += w
        total = sum(v for _, v in parts)
        out.append(f'<text x="{x + 4:.1f}" y="{y + 15}">{total:,.0f}{unit}</text>')
    out.append("</svg>")
    return "".join(out)


def histogram(series: dict[str, list[float]], bins: int = 20, mark: float | None = None) -> str:
    """Histograms of one or more series on shared bins; *mark* draws the decision threshold."""
    values = [v for vs in series.values() for v in vs]
    if not values:
        return "<p>No scores recorded (the stage did not run on this data).</p>"
    lo, hi = float(min(values)), float(max(values))
    edges = np.linspace(lo, hi if hi > lo else lo + 1, bins + 1)
    counts = {k: np.histogram(v, edges)[0] for k, v in series.items()}
    top = max(int(c.max()) for c in counts.values()) or 1
    h, pad, bw = 180, 30, (WIDTH - 60) / bins
    out = [f'<svg width="{WIDTH}" height="{h + pad}" role="img">']
    for j, (name, c) in enumerate(counts.items()):
        color = COLORS.get(name, COLORS["bars"])
        for i, n in enumerate(c):
            bh = (h - 10) * n / top
            out.append(f'<rect x="{40 + i * bw + j * bw / len(counts):.1f}" y="{h - bh:.1f}" '
                       f'width="{bw / len(counts) - 1:.1f}" height="{bh:.1f}" fill="{color}" opacity="0.85">'
                       f"<title>{_e(name)} [{edges[i]:.3g}, {edges[i + 1]:.3g}): {n}</title></rect>")
    out.append(f'<text x="40" y="{h + 18}">{lo:.3g}</text><text x="{WIDTH - 20}" y="{h + 18}" text-anchor="end">'
               f"{hi:.3g}</text>")
    if mark is not None and lo <= mark <= hi and hi > lo:
        x = 40 + (WIDTH - 60) * (mark - lo) / (hi - lo)
        out.append(f'<line x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{h}" stroke="#000" stroke-dasharray="4 3">'
                   f"<title>threshold {mark:g}</title></line>")
    legend = " ".join(f'<tspan fill="{COLORS.get(k, COLORS["bars"])}">■ {_e(k)} ({len(v)})</tspan>'
                      for k, v in series.items())
    out.append(f'<text x="{WIDTH / 2}" y="{h + 18}" text-anchor="middle">{legend}</text></svg>')
    return "".join(out)


def length_histogram(lengths: dict[str, Any]) -> str:
    """Simple vs complex prompt lengths on the card's word bins (the paper's Fig. 4)."""
    bins = [b["bin"] for b in lengths["complex"]["histogram"]]
    items = [(f"{b} words", [("simple", lengths["simple"]["histogram"][i]["n"]),
                             ("complex", lengths["complex"]["histogram"][i]["n"])]) for i, b in enumerate(bins)]
    return hbars(items)


def markdown(text: str) -> str:
    """The card body's own markdown (headings, tables, lists, paragraphs, `code`, **bold**) as HTML."""
    out, table, items = [], [], []

    def inline(s: str) -> str:
        s = _e(s)
        s = re.sub(r"`([^`]+)`", r"<code>\1</code>", s)
        return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", s)

    def flush() -> None:
        if table:
            head, *rest = [[c.strip() for c in r.strip().strip("|").split(" | ")] for r in table if "---|" not in r]
            out.append("<table><tr>" + "".join(f"<th>{inline(c)}</th>" for c in head) + "</tr>" + "".join(
                "<tr>" + "".join(f"<td>{inline(c)}</td>" for c in r) + "</tr>" for r in rest) + "</table>")
            table.clear()
        if items:
            out.append("<ul>" + "".join(f"<li>{inline(i)}</li>" for i in items) + "</ul>")
            items.clear()

    for line in text.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        if line.startswith("- "):
            items.append(line[2:])
            continue
        flush()
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            out.append(f"<h{level}>{inline(line[level:].strip())}</h{level}>")
        elif line.strip() and line.strip() != "```":
            cls = ' class="todo"' if "NEEDS A PERSON" in line else ""
            out.append(f"<p{cls}>{inline(line)}</p>")
    flush()
    return "\n".join(out)


def page(figs: dict[str, Any], meta: dict[str, Any], readme_body: str) -> str:
    """The whole page."""
    funnel = [(f["stage"], [("kept", f["kept"]), ("rejected", f["in"] - f["kept"])]) for f in figs["funnel"]]
    sources = [(name, [("kept", s["kept"]), ("rejected", s["seen"] - s["kept"])]) for name, s in figs["sources"].items()]
    clip = figs["clip_filter"]
    kpis = [("samples kept", f"{figs['kept']:,}"), ("seen", f"{figs['seen']:,}"), ("sources", len(figs["sources"])),
            ("CLIP keep rate", f"{100 * clip['rate']:.1f}%" if clip and clip["rate"] is not None else "n/a"),
            ("NSFW-rated kept", f"{figs['nsfw_kept']:,}"), ("licence", meta.get("license", ""))]
    plots = [
        ("Funnel: kept and rejected per stage", legend(["kept", "rejected"]) + hbars(funnel)),
        ("Samples per source: kept and rejected", legend(["kept", "rejected"]) + hbars(sources)),
        ("Prompt lengths of the kept samples (words): simple vs complex",
         legend(["simple", "complex"]) + length_histogram(figs["prompt_lengths"])),
        ("CLIP filter: cos(image, simple) − cos(image, complex) of every scored sample (kept when ≥ 0)",
         histogram({"samples": figs["scores"]["clip_margin"]}, mark=0.0)),
        ("Safety classifier NSFW score of every scored sample (dropped at or over the threshold)",
         histogram({"samples": figs["scores"]["nsfw"]}, mark=figs.get("nsfw_threshold"))),
    ]
    parts = ["<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">",
             f"<title>{_e(meta['pretty_name'])}</title><style>{STYLE}</style></head><body>",
             f"<h1>{_e(meta['pretty_name'])}</h1><p>Tags: {_e(', '.join(meta['tags']))}</p>",
             '<div class="kpis">' + "".join(f'<div class="kpi"><b>{_e(v)}</b>{_e(k)}</div>' for k, v in kpis) + "</div>",
             '<div class="plots">' + "".join(f"<figure><figcaption>{_e(c)}</figcaption>{svg}</figure>"
                                             for c, svg in plots) + "</div>",
             markdown(readme_body), "</body></html>"]
    return "\n".join(parts) + "\n"
