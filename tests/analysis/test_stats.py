"""Every statistic against a published worked example or an independent computation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps

from runner.analysis import stats


# ----------------------------------------------------------------------------- Wilson


@pytest.mark.parametrize(
    ("count", "n", "low", "high"),
    [  # Newcombe (1998), Statistics in Medicine 17:857-872, Table I, method 3 (score interval)
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0000, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_matches_newcombe_table(count: int, n: int, low: float, high: float) -> None:
    p = stats.wilson(count, n)
    assert (p.count, p.n) == (count, n)
    assert p.p == pytest.approx(count / n)
    assert p.low == pytest.approx(low, abs=5e-5)
    assert p.high == pytest.approx(high, abs=5e-5)


def test_wilson_matches_the_closed_form() -> None:
    count, n, z = 7, 31, sps.norm.ppf(0.975)
    phat = count / n
    centre = (phat + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n))
    p = stats.wilson(count, n)
    assert p.low == pytest.approx(centre - half, rel=1e-9)
    assert p.high == pytest.approx(centre + half, rel=1e-9)


def test_wilson_edges_are_exact_and_empty_is_nan() -> None:
    assert stats.wilson(0, 12).low == 0.0
    assert stats.wilson(12, 12).high == 1.0
    empty = stats.wilson(0, 0)
    assert empty.n == 0 and math.isnan(empty.p) and math.isnan(empty.low)
    with pytest.raises(ValueError):
        stats.wilson(5, 3)


# ----------------------------------------------------------------------------- tests between groups


def test_chi_square_matches_the_textbook_formula() -> None:
    table = np.array([[30, 10], [18, 22], [12, 28]])
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
    chi2 = float(((table - expected) ** 2 / expected).sum())
    res = stats.independence_test(table)
    assert res.test == "chi2"
    assert res.statistic == pytest.approx(chi2)
    assert res.dof == 2
    assert res.p == pytest.approx(sps.chi2.sf(chi2, 2))
    assert res.cramers_v == pytest.approx(math.sqrt(chi2 / (table.sum() * 1)))


def test_fisher_lady_tasting_tea() -> None:
    # Fisher (1935): 3 of 4 cups right; two-sided p = 34/70 = 0.4857
    res = stats.independence_test([[3, 1], [1, 3]])
    assert res.test == "fisher"
    assert res.p == pytest.approx(34 / 70)
    assert res.statistic == pytest.approx(9.0)  # sample odds ratio


def _freeman_halton(table: np.ndarray) -> float:
    """Exact p by enumerating every r x 2 table with the observed margins (independent of scipy)."""
    rows = table.sum(1)
    col0 = int(table[:, 0].sum())
    n = int(table.sum())

    def prob(first_col: tuple[int, ...]) -> float:
        num = math.prod(math.comb(int(r), int(a)) for r, a in zip(rows, first_col))
        return num / math.comb(n, col0)

    observed = prob(tuple(int(v) for v in table[:, 0]))
    total = 0.0
    for combo in itertools.product(*(range(int(r) + 1) for r in rows)):
        if sum(combo) == col0:
            p = prob(combo)
            if p <= observed * (1 + 1e-7):
                total += p
    return total


def test_fisher_r_by_two_matches_enumeration() -> None:
    table = np.array([[3, 1], [1, 3], [0, 4]])
    res = stats.independence_test(table)
    assert res.test == "fisher"
    assert res.p == pytest.approx(_freeman_halton(table), rel=1e-9)


def test_empty_rows_are_dropped_and_degenerate_tables_have_no_test() -> None:
    assert stats.independence_test([[3, 1], [0, 0], [1, 3]]).p == pytest.approx(34 / 70)
    none = stats.independence_test([[5, 0], [7, 0]])
    assert none.test == "none" and math.isnan(none.p)


def test_benjamini_hochberg_hand_computed() -> None:
    # sorted 0.005 0.01 0.03 0.04 → 0.02 0.02 0.04 0.04 (step-up, m = 4)
    adjusted = stats.bh_adjust([0.01, 0.04, 0.03, 0.005, float("nan")])
    assert adjusted[:4] == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert math.isnan(adjusted[4])


def test_cramers_v_two_by_two_is_abs_phi() -> None:
    a, b, c, d = 20, 5, 10, 15
    phi = (a * d - b * c) / math.sqrt((a + b) * (c + d) * (a + c) * (b + d))
    assert stats.cramers_v([[a, b], [c, d]]) == pytest.approx(abs(phi))


# ----------------------------------------------------------------------------- agreement


def test_cohen_kappa_wikipedia_example() -> None:
    # 50 proposals: both yes 20, A yes/B no 5, A no/B yes 10, both no 15 → κ = 0.4
    a = [1] * 25 + [0] * 25
    b = [1] * 20 + [0] * 5 + [1] * 10 + [0] * 15
    assert stats.cohen_kappa(a, b) == pytest.approx(0.4)
    assert stats.raw_agreement([a, b]) == pytest.approx(35 / 50)


def test_cohen_kappa_skips_missing_and_is_nan_without_variation() -> None:
    assert stats.cohen_kappa([1, 0, None, 1], [1, 0, 1, 0]) == pytest.approx(
        stats.cohen_kappa([1, 0, 1], [1, 0, 0]))
    assert math.isnan(stats.cohen_kappa([1, 1, 1], [1, 1, 1]))


def test_krippendorff_alpha_published_example() -> None:
    # Krippendorff (2011) "Computing Krippendorff's alpha-reliability", nominal data with
    # missing values, 4 coders x 12 units: alpha = 0.743
    n = None
    data = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, n, n, n],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, n, 3],
        [n, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, n],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, n],
    ]
    assert stats.krippendorff_alpha(data) == pytest.approx(0.743, abs=5e-4)
    res = stats.agreement(["a", "b", "c", "d"], data)
    assert res.kappa is None and res.units == 11


def test_two_coder_alpha_and_kappa_are_close() -> None:
    a = [1] * 25 + [0] * 25
    b = [1] * 20 + [0] * 5 + [1] * 10 + [0] * 15
    res = stats.agreement(["x", "y"], [a, b])
    assert res.kappa == pytest.approx(0.4)
    # for two coders, alpha = 1 - (2n-1) D_o / ... ≈ kappa with a small-sample correction
    assert res.alpha == pytest.approx(0.4, abs=0.02)


# ----------------------------------------------------------------------------- survival


SIX_MP_TIMES = [6, 6, 6, 6, 7, 9, 10, 10, 11, 13, 16, 17, 19, 20, 22, 23, 25, 32, 32, 34, 35]
SIX_MP_EVENT = [1, 1, 1, 0, 1, 0, 1, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]


def test_kaplan_meier_freireich_six_mp() -> None:
    # Freireich et al. (1963) 6-MP arm, as worked in Kleinbaum & Klein, Survival Analysis, ch. 2
    curve = stats.kaplan_meier(SIX_MP_TIMES, [bool(e) for e in SIX_MP_EVENT])
    assert curve.times == (6, 7, 10, 13, 16, 22, 23)
    assert [round(s, 4) for s in curve.survival] == [0.8571, 0.8067, 0.7529, 0.6902, 0.6275, 0.5378, 0.4482]
    assert curve.median == 23
    assert (curve.n, curve.events) == (21, 9)
    # log-log pointwise interval at t=6, as R's survfit(conf.type = "log-log") gives
    assert curve.low[0] == pytest.approx(0.620, abs=1e-3)
    assert curve.high[0] == pytest.approx(0.952, abs=1e-3)
    assert curve.at(12) == pytest.approx(0.7529, abs=1e-4)


def test_kaplan_meier_without_censoring_is_one_minus_ecdf() -> None:
    d = [3, 3, 5, 8]
    curve = stats.kaplan_meier(d, [True] * 4)
    assert curve.survival == pytest.approx((0.5, 0.25, 0.0))
    assert curve.median == 3


def test_kaplan_meier_no_events() -> None:
    curve = stats.kaplan_meier([4, 5], [False, False])
    assert curve.times == () and curve.median is None and curve.at(10) == 1.0


# ----------------------------------------------------------------------------- cluster bootstrap


def test_cluster_bootstrap_point_estimate_and_spread() -> None:
    res = stats.cluster_bootstrap([[1, 1, 0, 1], [0, 0, 1, 0], [1, 1, 1, 1]], resamples=500, seed=3)
    assert res.estimate == pytest.approx((0.75 + 0.25 + 1.0) / 3)
    assert res.spread == pytest.approx(0.75)
    assert res.sd == pytest.approx(np.std([0.75, 0.25, 1.0], ddof=1))
    assert res.low <= res.estimate <= res.high
    again = stats.cluster_bootstrap([[1, 1, 0, 1], [0, 0, 1, 0], [1, 1, 1, 1]], resamples=500, seed=3)
    assert (again.low, again.high) == (res.low, res.high)


def test_cluster_bootstrap_one_cluster_is_the_plain_bootstrap() -> None:
    # one cluster: a percentile bootstrap of a proportion ≈ the normal interval p ± 1.96 se
    units = [1] * 90 + [0] * 210
    res = stats.cluster_bootstrap([units], resamples=4000, seed=0)
    se = math.sqrt(0.3 * 0.7 / 300)
    assert res.low == pytest.approx(0.3 - 1.96 * se, abs=0.01)
    assert res.high == pytest.approx(0.3 + 1.96 * se, abs=0.01)


def test_cluster_bootstrap_is_wider_than_wilson_when_paraphrases_disagree() -> None:
    clusters = [[1] * 18 + [0] * 2, [1] * 2 + [0] * 18, [1] * 10 + [0] * 10]
    pooled = stats.cluster_bootstrap(clusters, seed=0)
    naive = stats.wilson(30, 60)
    assert pooled.high - pooled.low > naive.high - naive.low


def test_cluster_bootstrap_never_narrower_than_pooled_wilson_at_the_edges() -> None:
    res = stats.cluster_bootstrap([[1] * 8, [1] * 8], seed=0)
    assert (res.bootstrap_low, res.bootstrap_high) == (1.0, 1.0)  # the percentile bootstrap degenerates
    assert (res.low, res.high) == (stats.wilson(16, 16).low, 1.0)
