"""The evaluation's statistics against hand computation: paired softmax, CLIPScore, the paper's pooled t-test and
Welch's, binomial test."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("scipy")

from surd.eval.stats import clipscore, paired_softmax, preference, proportion, student, summary, welch  # noqa: E402


def test_paired_softmax_by_hand():
    # softmax(100·0.30, 100·0.25) = e^30 / (e^30 + e^25) = 1 / (1 + e^-5)
    a, b = paired_softmax(0.30, 0.25, 100.0)
    assert a == pytest.approx(1 / (1 + math.exp(-5)), rel=1e-12) and a == pytest.approx(0.9933071490757153)
    assert a + b == pytest.approx(1.0, abs=1e-15)
    assert paired_softmax(0.2, 0.2, 100.0) == (0.5, 0.5)
    # large logits do not overflow
    a, b = paired_softmax(9.0, -9.0, 100.0)
    assert a == 1.0 and b == pytest.approx(0.0, abs=1e-300)


def test_clipscore_is_100_times_positive_cosine():
    assert clipscore(0.3125) == pytest.approx(31.25)
    assert clipscore(-0.2) == 0.0


def test_welch_by_hand():
    from scipy.stats import t as student_t

    a, b = [1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0, 8.0, 10.0]
    va, vb = 5 / 3, 10.0  # sample variances
    se2 = va / 4 + vb / 5
    t = (2.5 - 6.0) / math.sqrt(se2)
    df = se2**2 / ((va / 4) ** 2 / 3 + (vb / 5) ** 2 / 4)  # Welch–Satterthwaite
    p = 2 * student_t.sf(abs(t), df)
    res = welch(a, b)
    assert res["t"] == pytest.approx(t, rel=1e-12) and t == pytest.approx(-2.2514, abs=1e-4)
    assert res["df"] == pytest.approx(df, rel=1e-12) and df == pytest.approx(5.5208, abs=1e-4)
    assert res["p"] == pytest.approx(p, rel=1e-12)
    assert res["unchanged"] is True  # p ≈ 0.069 > 0.05: quality unchanged in the paper's sense
    far = welch([1.0, 1.1, 0.9, 1.0], [5.0, 5.1, 4.9, 5.2])
    assert far["p"] < 1e-5 and far["unchanged"] is False


def test_pooled_t_test_by_hand():
    """The paper's test (Table 3): pooled variance, df = n_a + n_b - 2; it differs from Welch's on unequal variances."""
    from scipy.stats import t as student_t

    a, b = [1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0, 8.0, 10.0]
    pooled = (3 * (5 / 3) + 4 * 10.0) / 7  # ((n_a-1)·s_a² + (n_b-1)·s_b²) / (n_a+n_b-2) = 45/7
    t = (2.5 - 6.0) / math.sqrt(pooled * (1 / 4 + 1 / 5))
    res = student(a, b)
    assert res["df"] == 7 and res["t"] == pytest.approx(t, rel=1e-12) and t == pytest.approx(-2.0579, abs=1e-4)
    assert res["p"] == pytest.approx(2 * student_t.sf(abs(t), 7), rel=1e-12)
    assert res["p"] == pytest.approx(0.07857, abs=1e-4) and res["p"] != pytest.approx(welch(a, b)["p"], abs=1e-3)
    assert student([2.0, 2.0], [3.0, 3.0])["unchanged"] is False


def test_welch_edge_cases():
    assert welch([1.0], [2.0, 3.0])["p"] is None  # too few values for a variance
    assert welch([2.0, 2.0], [2.0, 2.0]) == {"t": None, "p": 1.0, "df": None, "unchanged": True}
    assert welch([2.0, 2.0], [3.0, 3.0])["unchanged"] is False


def test_binomial_test_by_hand():
    # 7 of 10 votes: two-sided p = P(X ≥ 7) + P(X ≤ 3) = 2·(C(10,7)+C(10,8)+C(10,9)+C(10,10)) / 2^10
    res = preference(7, 3)
    assert res["p"] == pytest.approx(2 * (120 + 45 + 10 + 1) / 1024, rel=1e-12) == pytest.approx(0.34375)
    assert res["rate"] == 0.7 and res["n"] == 10
    assert preference(0, 0)["p"] is None
    assert preference(60, 40)["p"] == pytest.approx(0.056888, abs=1e-6)


def test_wilson_interval_by_hand():
    k, n, z = 30, 40, 1.959963984540054
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    res = proportion(k, n)
    assert res["rate"] == 0.75
    assert res["ci95"] == pytest.approx([centre - half, centre + half], rel=1e-9)


def test_summary_interval_by_hand():
    from scipy.stats import t as student_t

    vals = [2.0, 4.0, 4.0, 5.0]
    mean, sd = 3.75, math.sqrt(((1.75**2) + 2 * (0.25**2) + 1.25**2) / 3)
    half = student_t.ppf(0.975, 3) * sd / 2
    s = summary(vals + [float("nan")])
    assert s["n"] == 4 and s["mean"] == pytest.approx(mean) and s["std"] == pytest.approx(sd)
    assert s["ci95"] == pytest.approx([mean - half, mean + half])
