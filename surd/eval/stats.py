"""The statistics of the paper's evaluation: paired-softmax CLIP score, CLIPScore, summaries with confidence
intervals, the paper's equal-variance t-test and Welch's (quality unchanged if p > 0.05) and the binomial test of a preference study (scipy)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from surd.deps import require

ALPHA = 0.05


def paired_softmax(cos_a: float, cos_b: float, logit_scale: float) -> tuple[float, float]:
    """The paper's CLIP score of two images for one prompt: softmax over (s·cos_a, s·cos_b); the pair sums to 1.

    ``logit_scale`` is CLIP's learned temperature exp(t) (100 for OpenAI's weights).
    """
    za, zb = logit_scale * cos_a, logit_scale * cos_b
    m = max(za, zb)  # shift for numerical stability: exp of large logits overflows
    ea, eb = math.exp(za - m), math.exp(zb - m)
    return ea / (ea + eb), eb / (ea + eb)


def clipscore(cos: float) -> float:
    """CLIPScore as torchmetrics reports it: 100 · max(cos(image, prompt), 0)."""
    return 100.0 * max(cos, 0.0)


def summary(values: Sequence[float]) -> dict[str, Any]:
    """n, mean, sample std, and the 95% confidence interval of the mean (Student t)."""
    st = require("scipy.stats", "eval")
    vals = [float(v) for v in values if v is not None and math.isfinite(v)]
    n = len(vals)
    if n == 0:
        return {"n": 0, "mean": None, "std": None, "ci95": None}
    mean = sum(vals) / n
    if n == 1:
        return {"n": 1, "mean": mean, "std": None, "ci95": None}
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1))
    half = float(st.t.ppf(0.975, n - 1)) * std / math.sqrt(n)
    return {"n": n, "mean": mean, "std": std, "ci95": [mean - half, mean + half]}


def proportion(k: int, n: int) -> dict[str, Any]:
    """k successes of n: the rate and its Wilson 95% interval (scipy's binomtest)."""
    st = require("scipy.stats", "eval")
    if n == 0:
        return {"k": 0, "n": 0, "rate": None, "ci95": None}
    ci = st.binomtest(k, n).proportion_ci(0.95, method="wilson")
    return {"k": k, "n": n, "rate": k / n, "ci95": [float(ci.low), float(ci.high)]}


def ttest(a: Sequence[float], b: Sequence[float], equal_var: bool = True) -> dict[str, Any]:
    """Two-sample t-test of the means; ``unchanged`` is the paper's "P > 0.05?" column.

    ``equal_var=True`` is the paper's test (Table 3: "the T-test for the means of two independent samples", pooled
    variance, df = n_a + n_b - 2); ``False`` is Welch's (unequal variances, Welch–Satterthwaite df).
    """
    st = require("scipy.stats", "eval")
    xa = [float(v) for v in a if v is not None and math.isfinite(v)]
    xb = [float(v) for v in b if v is not None and math.isfinite(v)]
    if len(xa) < 2 or len(xb) < 2:
        return {"t": None, "p": None, "df": None, "unchanged": None}
    if len(set(xa)) == 1 and len(set(xb)) == 1:  # no variance: the t statistic is undefined
        same = xa[0] == xb[0]
        return {"t": None, "p": 1.0 if same else 0.0, "df": None, "unchanged": same}
    res = st.ttest_ind(xa, xb, equal_var=equal_var)
    t, p = float(res.statistic), float(res.pvalue)
    return {"t": t, "p": p, "df": float(res.df), "unchanged": p > ALPHA}


def student(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """The paper's equal-variance (pooled) two-sample t-test."""
    return ttest(a, b, equal_var=True)


def welch(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """Welch's two-sample t-test (unequal variances), shown beside the paper's test."""
    return ttest(a, b, equal_var=False)


def preference(wins: int, losses: int) -> dict[str, Any]:
    """A pairwise preference: share of votes for the first model and a two-sided binomial test against 50%."""
    st = require("scipy.stats", "eval")
    n = wins + losses
    if n == 0:
        return {"wins": 0, "losses": 0, "n": 0, "rate": None, "p": None, "ci95": None}
    res = st.binomtest(wins, n, 0.5, alternative="two-sided")
    ci = res.proportion_ci(0.95, method="wilson")
    return {"wins": wins, "losses": losses, "n": n, "rate": wins / n, "p": float(res.pvalue),
            "ci95": [float(ci.low), float(ci.high)]}
