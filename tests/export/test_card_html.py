"""card.html: a self-contained page with the plots (inline SVG) and the datasheet; prompts are escaped."""

from __future__ import annotations

import re

from surd.export.card_html import hbars, histogram, markdown, page
from surd.export.figures import figures
from surd.export.runinfo import read_run
from tests.card_run import make_run


def test_page_has_every_plot_and_no_outside_resource(tmp_path):
    run = read_run(make_run(tmp_path))
    figs = figures(run)
    body = "# T\n\n| a | b |\n|---|---|\n| 1 | 2 |"
    html = page(figs, {"pretty_name": "t <x>", "tags": ["a"], "license": "other"}, body)
    # funnel, sources, prompt lengths, CLIP margins; this run has no safety stage, and the page says so
    assert html.count("<svg") == 4 and "<figcaption>Funnel" in html and "Prompt lengths" in html
    assert "No scores recorded" in html
    assert "t &lt;x&gt;" in html and "<table><tr><th>a</th>" in html
    assert not re.search(r"(src|href)=\"https?://", html) and "<script" not in html
    # the funnel's bars carry the exact counts
    assert "<title>kept: 6</title>" in html and "<title>rejected: 2</title>" in html


def test_plot_helpers():
    assert hbars([]) == "<p>No data.</p>" and "No scores" in histogram({"x": []})
    svg = histogram({"samples": [0.1, 0.2, 0.2, 0.9]}, bins=4, mark=0.5)
    assert svg.count("<rect") == 4 and "[0.1, 0.3): 3" in svg and "<title>threshold 0.5</title>" in svg
    assert markdown("**NEEDS A PERSON:** x <b>") == '<p class="todo"><b>NEEDS A PERSON:</b> x &lt;b&gt;</p>'
