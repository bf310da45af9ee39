"""Statistics for tallies: intervals, tests between groups, agreement, survival.

Thin wrappers over scipy, statsmodels and krippendorff, so every number can be checked
against the library that computed it. Plain inputs (ints, lists, arrays) and frozen
dataclasses out; nothing here touches the store. The heavy libraries are imported inside
the functions (``latitude --help`` stays fast).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

__all__ = [
    "AgreementResult",
    "IndependenceTest",
    "KappaInterval",
    "PooledEstimate",
    "Proportion",
    "Survival",
    "SurvivalTest",
    "logrank",
    "TestName",
    "agreement",
    "bh_adjust",
    "ClusteredTest",
    "FactorFit",
    "FactorTerm",
    "cluster_bootstrap",
    "logistic_factors",
    "paraphrase_test",
    "random_effects_pool",
    "cohen_kappa",
    "cramers_v",
    "independence_test",
    "kappa_interval",
    "kaplan_meier",
    "krippendorff_alpha",
    "raw_agreement",
    "wilson",
]

CONFIDENCE = 0.95
"""Confidence level of every interval unless a caller says otherwise."""

TestName = Literal["chi2", "fisher", "fisher-monte-carlo", "none"]
"""Which test of independence produced a p-value: Pearson's χ² (every expected count ≥ 5),
Fisher's exact test (some expected count < 5; the Freeman-Halton extension for tables
larger than 2×2), its Monte Carlo version when exact enumeration is too large, or none
(a table with fewer than two non-empty rows or columns)."""


@dataclass(frozen=True, slots=True)
class Proportion:
    """A count out of n with its Wilson score interval."""

    count: int
    """Units where the code is present."""
    n: int
    """Units coded."""
    p: float
    """count / n (NaN when n is 0)."""
    low: float
    """Lower bound of the Wilson interval."""
    high: float
    """Upper bound of the Wilson interval."""
    confidence: float = CONFIDENCE
    """Confidence level of the interval."""


def wilson(count: int, n: int, confidence: float = CONFIDENCE) -> Proportion:
    """The proportion count/n with its Wilson score interval (statsmodels ``proportion_confint``)."""
    if n < 0 or count < 0 or count > n:
        raise ValueError(f"need 0 <= count <= n, got count={count}, n={n}")
    if n == 0:
        nan = float("nan")
        return Proportion(0, 0, nan, nan, nan, confidence)
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(count, n, alpha=1 - confidence, method="wilson")
    # statsmodels leaves rounding noise at the bounds (2.8e-17 for 0/12): the Wilson interval
    # of 0/n starts at exactly 0 and that of n/n ends at exactly 1.
    low = 0.0 if count == 0 else min(max(float(low), 0.0), 1.0)
    high = 1.0 if count == n else min(max(float(high), 0.0), 1.0)
    return Proportion(int(count), int(n), count / n, low, high, confidence)


def wilson_closed_form(count: int, n: int, confidence: float = CONFIDENCE) -> Proportion:
    """The same interval as `wilson`, in closed form with the standard library only: no statsmodels
    import (seconds of start-up for a view that shows a few rows). Agrees with `wilson` to 1e-12."""
    import statistics

    if n < 0 or count < 0 or count > n:
        raise ValueError(f"need 0 <= count <= n, got count={count}, n={n}")
    if n == 0:
        nan = float("nan")
        return Proportion(0, 0, nan, nan, nan, confidence)
    z = statistics.NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    p = count / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if count == 0 else min(max(centre - half, 0.0), 1.0)
    high = 1.0 if count == n else min(max(centre + half, 0.0), 1.0)
    return Proportion(int(count), int(n), p, low, high, confidence)


# ----------------------------------------------------------------------------- between groups


@dataclass(frozen=True, slots=True)
class IndependenceTest:
    """A test of independence on a groups × outcome contingency table."""

    test: TestName
    """Which test gave `p` (`TestName`)."""
    statistic: float
    """χ² statistic (chi2), odds ratio (2×2 Fisher) or table probability (larger Fisher); NaN for none."""
    p: float
    """p-value (NaN for none)."""
    dof: int
    """Degrees of freedom of the table: (rows-1)(columns-1)."""
    cramers_v: float
    """Cramér's V of the table (no bias correction); NaN when undefined."""
    min_expected: float
    """Smallest expected count under independence (what chose the test)."""


def _trim(table: Any) -> Any:
    import numpy as np

    t = np.asarray(table, dtype=float)
    if t.ndim != 2:
        raise ValueError("a contingency table must be two-dimensional")
    t = t[t.sum(axis=1) > 0]
    return t[:, t.sum(axis=0) > 0] if t.size else t


def cramers_v(table: Any) -> float:
    """Cramér's V without bias correction (``scipy.stats.contingency.association``)."""
    from scipy.stats.contingency import association

    t = _trim(table)
    if t.shape[0] < 2 or t.shape[1] < 2:
        return float("nan")
    return float(association(t.astype(int), method="cramer", correction=False))


def independence_test(table: Any, *, min_expected: float = 5.0, seed: int = 0,
                      exact_limit: int = 200_000) -> IndependenceTest:
    """χ² test of independence, or Fisher's exact test when an expected count is below `min_expected`.

    Rows and columns with no observations are dropped first. χ² is Pearson's, without
    Yates' continuity correction. Fisher's test of a 2×2 table is scipy's; of an r×2 table
    it enumerates every table with the same margins (Freeman-Halton); when that would
    exceed `exact_limit` tables, or the table is larger than r×2, it is scipy's Monte Carlo
    version with `seed` (9,999 draws).
    """
    import numpy as np
    from scipy import stats

    t = _trim(table)
    if t.ndim != 2 or t.shape[0] < 2 or t.shape[1] < 2:
        return IndependenceTest("none", float("nan"), float("nan"), 0, float("nan"), float("nan"))
    dof = (t.shape[0] - 1) * (t.shape[1] - 1)
    expected = stats.contingency.expected_freq(t)
    lowest = float(expected.min())
    v = cramers_v(t)
    ints = t.astype(int)
    if lowest >= min_expected:
        res = stats.chi2_contingency(ints, correction=False)
        return IndependenceTest("chi2", float(res.statistic), float(res.pvalue), dof, v, lowest)
    if t.shape == (2, 2):
        res = stats.fisher_exact(ints)
        return IndependenceTest("fisher", float(res.statistic), float(res.pvalue), dof, v, lowest)
    if 2 in t.shape:
        exact = _fisher_r_by_2(ints if t.shape[1] == 2 else ints.T, exact_limit)
        if exact is not None:
            return IndependenceTest("fisher", exact[0], exact[1], dof, v, lowest)
    method = stats.MonteCarloMethod(n_resamples=9_999, rng=np.random.default_rng(seed))
    res = stats.fisher_exact(ints, method=method)
    return IndependenceTest("fisher-monte-carlo", float(res.statistic), float(res.pvalue), dof, v, lowest)


def _fisher_r_by_2(table: Any, limit: int) -> tuple[float, float] | None:
    """Freeman-Halton exact test of an r×2 table: enumerate every first column with the observed
    margins, sum the probabilities (multivariate hypergeometric) of those no more likely than the
    observed table. Returns (probability of the observed table, p), or None past `limit` tables."""
    import numpy as np
    from scipy.special import gammaln

    def log_comb(n: Any, k: Any) -> Any:
        return gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)

    rows = table.sum(axis=1).astype(int)
    first = int(table[:, 0].sum())
    total = int(rows.sum())
    sums = np.zeros(1, dtype=np.int64)
    logp = np.zeros(1)
    for i, r in enumerate(rows):
        rest = int(rows[i + 1:].sum())
        a = np.arange(r + 1)
        s = (sums[:, None] + a[None, :]).ravel()
        lp = (logp[:, None] + log_comb(r, a)[None, :]).ravel()
        keep = (s <= first) & (s + rest >= first)
        sums, logp = s[keep], lp[keep]
        if sums.size > limit:
            return None
    norm = log_comb(total, first)
    observed = float(sum(log_comb(int(r), int(x)) for r, x in zip(rows, table[:, 0])) - norm)
    logp = logp - norm
    p = float(np.exp(logp[logp <= observed + 1e-7]).sum())
    return math.exp(observed), min(p, 1.0)


def bh_adjust(pvalues: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (statsmodels ``multipletests``, ``fdr_bh``).

    NaN p-values (no test possible) stay NaN and do not count towards the number of tests.
    """
    from statsmodels.stats.multitest import multipletests

    idx = [i for i, p in enumerate(pvalues) if p is not None and not math.isnan(p)]
    out = [float("nan")] * len(pvalues)
    if idx:
        _, adjusted, _, _ = multipletests([pvalues[i] for i in idx], method="fdr_bh")
        for i, q in zip(idx, adjusted):
            out[i] = float(q)
    return out


# ----------------------------------------------------------------------------- paraphrases


@dataclass(frozen=True, slots=True)
class PooledEstimate:
    """A proportion pooled over clusters (paraphrases), with a cluster bootstrap interval."""

    estimate: float
    """Mean of the per-cluster proportions: every cluster weighs the same."""
    low: float
    """Lower bound: the bootstrap's, or the pooled Wilson bound where that is lower."""
    high: float
    """Upper bound: the bootstrap's, or the pooled Wilson bound where that is higher."""
    spread: float
    """Largest minus smallest per-cluster proportion."""
    sd: float
    """Standard deviation (ddof=1) of the per-cluster proportions; NaN with one cluster."""
    clusters: int
    """Number of clusters with at least one unit."""
    resamples: int
    """Bootstrap resamples drawn."""
    seed: int
    """Seed of the bootstrap generator."""
    bootstrap_low: float = float("nan")
    """Lower percentile bound of the bootstrap alone."""
    bootstrap_high: float = float("nan")
    """Upper percentile bound of the bootstrap alone."""
    method: str = ("two-stage cluster bootstrap (clusters, then units within), percentile interval, "
                   "widened to the Wilson interval of all units where that is wider")
    """How the interval was computed."""


def cluster_bootstrap(clusters: Sequence[Sequence[int]], *, resamples: int = 2000, seed: int = 0,
                      confidence: float = CONFIDENCE) -> PooledEstimate:
    """Pool 0/1 outcomes grouped in clusters (e.g. one cluster per paraphrase of a prompt).

    The estimate is the mean of the per-cluster proportions. The interval is a two-stage
    percentile bootstrap: draw clusters with replacement, then units with replacement
    within each drawn cluster, and take the mean of the resampled cluster proportions.
    Where the Wilson interval of all units pooled is wider (near 0 or 1, where the
    percentile bootstrap degenerates), its bound is used instead.
    """
    import numpy as np

    groups = [np.asarray(c, dtype=float) for c in clusters if len(c)]
    if not groups:
        nan = float("nan")
        return PooledEstimate(nan, nan, nan, nan, nan, 0, 0, seed)
    props = np.array([g.mean() for g in groups])
    rng = np.random.default_rng(seed)
    k = len(groups)
    stats_ = np.empty(resamples)
    for b in range(resamples):
        picks = rng.integers(0, k, size=k)
        total = 0.0
        for j in picks:
            g = groups[j]
            total += g[rng.integers(0, len(g), size=len(g))].mean()
        stats_[b] = total / k
    tail = (1 - confidence) / 2
    boot_low, boot_high = (float(v) for v in np.quantile(stats_, [tail, 1 - tail]))
    # A percentile bootstrap collapses at 0 and 1 (16/16 resamples to 16/16 every time); the
    # reported interval is never narrower than the Wilson interval of all units pooled.
    units = np.concatenate(groups)
    w = wilson(int(units.sum()), int(units.size), confidence)
    sd = float(props.std(ddof=1)) if k > 1 else float("nan")
    return PooledEstimate(float(props.mean()), min(boot_low, w.low), max(boot_high, w.high),
                          float(props.max() - props.min()), sd, k, resamples, seed, boot_low, boot_high)


RE_METHOD = ("random-effects meta-analysis of the per-paraphrase proportions (DerSimonian-Laird tau^2 clipped at 0, "
             "as statsmodels combine_effects chi2; variances from (x+0.5)/(n+1)), Hartung-Knapp-Sidik-Jonkman interval "
             "on t with k-1 df, never narrower than the DerSimonian-Laird t interval, clipped to [0, 1]")
"""How a pooled paraphrase estimate is made."""


def _re_inputs(groups: Sequence[Any]) -> tuple[Any, Any]:
    import numpy as np

    props = np.array([g.mean() for g in groups], dtype=float)
    ns = np.array([len(g) for g in groups], dtype=float)
    adj = (np.array([g.sum() for g in groups]) + 0.5) / (ns + 1)
    return props, adj * (1 - adj) / ns


def random_effects_pool(clusters: Sequence[Sequence[int]], *, confidence: float = CONFIDENCE, resamples: int = 2000,
                        seed: int = 0) -> PooledEstimate:
    """Pool 0/1 outcomes in clusters (one per paraphrase) with a random-effects meta-analysis.

    With few paraphrases the between-paraphrase variance is barely estimable, so the interval
    uses the Hartung-Knapp-Sidik-Jonkman small-sample correction (t with k-1 df). The two-stage
    cluster bootstrap interval is kept alongside (`bootstrap_low`/`bootstrap_high`) for
    comparison: it is conditional on these paraphrases. With one paraphrase, the estimate and
    its Wilson interval are those of that paraphrase alone.
    """
    import numpy as np

    groups = [np.asarray(c, dtype=float) for c in clusters if len(c)]
    boot = cluster_bootstrap(clusters, resamples=resamples, seed=seed, confidence=confidence)
    if len(groups) < 2:
        return replace(boot, method="one paraphrase: its Wilson interval, conditional on this one wording")
    props, var = _re_inputs(groups)
    re = _dl_hksj(props, var, confidence)
    return PooledEstimate(re.mean, max(0.0, min(re.hk_low, re.dl_low)), min(1.0, max(re.hk_high, re.dl_high)),
                          float(props.max() - props.min()), float(props.std(ddof=1)), len(groups), resamples, seed,
                          boot.bootstrap_low, boot.bootstrap_high, RE_METHOD)


@dataclass(frozen=True, slots=True)
class _RandomEffects:
    mean: float
    tau2: float
    se_dl: float
    se_hk: float
    dl_low: float
    dl_high: float
    hk_low: float
    hk_high: float


def _dl_hksj(y: Any, v: Any, confidence: float = CONFIDENCE) -> _RandomEffects:
    """DerSimonian-Laird τ² (clipped at 0), the random-effects mean, and its t intervals on k-1 df with the
    DL and the Hartung-Knapp-Sidik-Jonkman standard errors. The same estimator as statsmodels'
    ``combine_effects(method_re="chi2")``, which lets τ² go negative when Q < k-1 (then its random-effects
    rows are NaN); here τ² is clipped at 0 as DerSimonian and Laird define it."""
    import numpy as np
    from scipy import stats as sps

    y, v = np.asarray(y, float), np.asarray(v, float)
    k = len(y)
    w = 1 / v
    q = float((w * (y - (w * y).sum() / w.sum()) ** 2).sum())
    tau2 = max(0.0, (q - (k - 1)) / (w.sum() - (w ** 2).sum() / w.sum()))
    wr = 1 / (v + tau2)
    mu = float((wr * y).sum() / wr.sum())
    se_dl = float(np.sqrt(1 / wr.sum()))
    se_hk = float(np.sqrt((wr * (y - mu) ** 2).sum() / (k - 1) / wr.sum()))
    t = float(sps.t.ppf(1 - (1 - confidence) / 2, k - 1))
    return _RandomEffects(mu, tau2, se_dl, se_hk, mu - t * se_dl, mu + t * se_dl, mu - t * se_hk, mu + t * se_hk)


@dataclass(frozen=True, slots=True)
class ClusteredTest:
    """A test between groups whose unit is the paraphrase, not the conversation."""

    test: str
    """``re-meta-hk`` (two groups: random-effects meta-analysis of the per-paraphrase differences, HKSJ t),
    ``friedman`` (three or more groups, paraphrases as blocks) or ``none`` (fewer than two paraphrases)."""
    statistic: float
    """t (re-meta-hk) or Friedman's chi-square."""
    p: float
    """p-value (NaN for none)."""
    dof: int
    """k-1 paraphrases (re-meta-hk) or groups-1 (friedman)."""


def paraphrase_test(per_group: Sequence[Sequence[Sequence[int]]]) -> ClusteredTest:
    """Compare groups when the conversations are clustered in paraphrases.

    `per_group[g][j]` holds the 0/1 outcomes of group g under paraphrase j (same paraphrase order
    in every group). Only paraphrases with units in every group count."""
    import warnings as _w

    import numpy as np
    from scipy import stats as sps

    nan = float("nan")
    k_all = min(len(g) for g in per_group) if per_group else 0
    keep = [j for j in range(k_all) if all(len(g[j]) for g in per_group)]
    if len(per_group) < 2 or len(keep) < 2:
        return ClusteredTest("none", nan, nan, 0)
    if len(per_group) == 2:
        pa, va = _re_inputs([np.asarray(per_group[0][j], float) for j in keep])
        pb, vb = _re_inputs([np.asarray(per_group[1][j], float) for j in keep])
        res = _dl_hksj(pa - pb, va + vb)
        se = max(res.se_hk, res.se_dl)  # the same never-narrower rule as the pooled interval
        t = res.mean / se
        return ClusteredTest("re-meta-hk", t, float(2 * sps.t.sf(abs(t), len(keep) - 1)), len(keep) - 1)
    props = [[float(np.mean(g[j])) for j in keep] for g in per_group]
    if len({v for row in props for v in row}) < 2:
        return ClusteredTest("friedman", 0.0, 1.0, len(per_group) - 1)
    with _w.catch_warnings():
        _w.simplefilter("ignore")
        res = sps.friedmanchisquare(*props)
    return ClusteredTest("friedman", float(res.statistic), float(res.pvalue), len(per_group) - 1)


# ----------------------------------------------------------------------------- factors


@dataclass(frozen=True, slots=True)
class FactorTerm:
    """One level of a factor in a logistic regression, against the factor's reference level."""

    factor: str
    """The factor (``model``, ``condition``...)."""
    level: str
    """The level compared with the reference."""
    reference: str
    """The factor's reference level (the first in plan order)."""
    odds_ratio: float
    """exp(coefficient): odds of the code under `level` over the odds under `reference`, other factors fixed."""
    low: float
    """Lower bound of the 95% cluster-robust interval of the odds ratio."""
    high: float
    """Upper bound."""
    p: float
    """Wald p-value of the coefficient (cluster-robust); NaN when not estimable."""
    estimable: bool = True
    """False under (quasi-)separation: a level where the code is always or never present has no finite odds ratio."""


@dataclass(frozen=True, slots=True)
class FactorFit:
    """A logistic regression of one code on several factors."""

    terms: tuple[FactorTerm, ...]
    """Every non-reference level of every factor."""
    factor_p: dict[str, float]
    """Factor → joint Wald p-value of all its levels (cluster-robust)."""
    n: int
    """Units in the fit."""
    clusters: int
    """Clusters of the robust covariance."""
    method: str = ("logistic regression (statsmodels GLM, binomial, logit link) with treatment-coded factors; "
                   "cluster-robust (sandwich) standard errors; Wald intervals and tests")
    """How it was fitted."""


def logistic_factors(y: Sequence[int], factors: dict[str, Sequence[str]], clusters: Sequence[str]) -> FactorFit:
    """Fit ``logit P(y) = b0 + sum of factor effects`` with cluster-robust standard errors.

    Each factor is treatment-coded against its first level (in the order given). A term whose
    coefficient runs off (|b| > 10 or a standard error > 100: separation) is marked not estimable.
    """
    import warnings as _w

    import numpy as np
    import statsmodels.api as sm

    yv = np.asarray(y, dtype=float)
    cols = [np.ones(len(yv))]
    names: list[tuple[str, str, str]] = []
    for factor, values in factors.items():
        levels = list(dict.fromkeys(values))
        for level in levels[1:]:
            cols.append(np.array([1.0 if v == level else 0.0 for v in values]))
            names.append((factor, level, levels[0]))
    X = np.column_stack(cols)
    codes = {c: i for i, c in enumerate(dict.fromkeys(clusters))}
    groups = np.array([codes[c] for c in clusters])
    with _w.catch_warnings():
        _w.simplefilter("ignore")
        fit = sm.GLM(yv, X, family=sm.families.Binomial()).fit(cov_type="cluster", cov_kwds={"groups": groups})
    params, bse, pvals = np.asarray(fit.params), np.asarray(fit.bse), np.asarray(fit.pvalues)
    ci = np.asarray(fit.conf_int())
    terms = []
    for i, (factor, level, ref) in enumerate(names, start=1):
        ok = bool(abs(params[i]) <= 10 and bse[i] <= 100 and np.isfinite(bse[i]))
        if ok:
            terms.append(FactorTerm(factor, level, ref, float(np.exp(params[i])), float(np.exp(ci[i, 0])),
                                    float(np.exp(ci[i, 1])), float(pvals[i]), True))
        else:  # a coefficient running off to infinity: no number is better than a meaningless one
            nan = float("nan")
            terms.append(FactorTerm(factor, level, ref, nan, nan, nan, nan, False))
    factor_p = {}
    for factor in factors:
        idx = [i for i, n in enumerate(names, start=1) if n[0] == factor]
        if not idx:
            continue
        if not all(terms[i - 1].estimable for i in idx):
            factor_p[factor] = float("nan")
            continue
        R = np.zeros((len(idx), X.shape[1]))
        for r, i in enumerate(idx):
            R[r, i] = 1.0
        with _w.catch_warnings():
            _w.simplefilter("ignore")
            factor_p[factor] = float(np.asarray(fit.wald_test(R, scalar=True).pvalue))
    return FactorFit(tuple(terms), factor_p, int(len(yv)), len(codes))


# ----------------------------------------------------------------------------- agreement


def raw_agreement(ratings: Sequence[Sequence[Any]]) -> float:
    """Share of units on which every coder who rated it gave the same value.

    `ratings` is coders × units; None or NaN marks a unit a coder did not rate. Units
    rated by fewer than two coders are left out.
    """
    units = _units(ratings)
    if not units:
        return float("nan")
    return sum(1 for u in units if len(set(u)) == 1) / len(units)


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _units(ratings: Sequence[Sequence[Any]]) -> list[list[Any]]:
    if not ratings:
        return []
    width = len(ratings[0])
    out = []
    for j in range(width):
        vals = [row[j] for row in ratings if not _missing(row[j])]
        if len(vals) >= 2:
            out.append(vals)
    return out


def cohen_kappa(a: Sequence[Any], b: Sequence[Any]) -> float:
    """Cohen's κ of two coders over the units both rated (scikit-learn ``cohen_kappa_score``).

    NaN when fewer than two units are shared or both coders used one and the same value
    throughout (κ is undefined: expected agreement is 1).
    """
    from sklearn.metrics import cohen_kappa_score

    pairs = [(x, y) for x, y in zip(a, b) if not _missing(x) and not _missing(y)]
    if len(pairs) < 2:
        return float("nan")
    xs, ys = zip(*pairs)
    if len(set(xs) | set(ys)) < 2:
        return float("nan")
    return float(cohen_kappa_score(list(xs), list(ys)))


def krippendorff_alpha(ratings: Sequence[Sequence[Any]], level: str = "nominal") -> float:
    """Krippendorff's α (the ``krippendorff`` package); `ratings` is coders × units, None/NaN missing.

    NaN when there is no variation at all (α undefined) or fewer than two pairable values.
    """
    import krippendorff
    import numpy as np

    data = np.array([[np.nan if _missing(v) else float(v) for v in row] for row in ratings], dtype=float)
    pairable = (~np.isnan(data)).sum(axis=0) >= 2
    values = data[:, pairable]
    values = values[~np.isnan(values)]
    if values.size < 2 or len(np.unique(values)) < 2:
        return float("nan")
    return float(krippendorff.alpha(reliability_data=data, level_of_measurement=level))


@dataclass(frozen=True, slots=True)
class KappaInterval:
    """Cohen's κ of two coders with its asymptotic 95% interval."""

    kappa: float
    """Cohen's κ (NaN when undefined)."""
    low: float
    """Lower bound of the interval (κ ± z·SE, SE from the asymptotic variance; statsmodels ``cohens_kappa``)."""
    high: float
    """Upper bound."""
    units: int
    """Units both coders rated."""


def kappa_interval(a: Sequence[Any], b: Sequence[Any], confidence: float = CONFIDENCE) -> KappaInterval:
    """Cohen's κ over the units both rated, with the asymptotic interval of statsmodels
    ``cohens_kappa`` (Fleiss, Cohen and Everitt's large-sample variance)."""
    import numpy as np
    from statsmodels.stats.inter_rater import cohens_kappa as sm_kappa

    pairs = [(x, y) for x, y in zip(a, b) if not _missing(x) and not _missing(y)]
    kappa = cohen_kappa(a, b)
    nan = float("nan")
    if math.isnan(kappa):
        return KappaInterval(nan, nan, nan, len(pairs))
    values = sorted({v for p in pairs for v in p})
    index = {v: i for i, v in enumerate(values)}
    table = np.zeros((len(values), len(values)))
    for x, y in pairs:
        table[index[x], index[y]] += 1
    from scipy.stats import norm

    with warnings.catch_warnings():  # its z against κ=0 divides by zero on perfect agreement; unused here
        warnings.simplefilter("ignore", RuntimeWarning)
        se = float(sm_kappa(table)["std_kappa"])  # asymptotic SE of κ (not the SE under the null)
    z = float(norm.ppf(1 - (1 - confidence) / 2))
    return KappaInterval(kappa, max(-1.0, kappa - z * se), min(1.0, kappa + z * se), len(pairs))


@dataclass(frozen=True, slots=True)
class AgreementResult:
    """Agreement among coders on one code (binary present/absent per unit)."""

    coders: tuple[str, ...]
    """The coders compared."""
    units: int
    """Units rated by at least two of them."""
    raw: float
    """Share of those units on which all their coders agree."""
    kappa: float | None
    """Cohen's κ when exactly two coders are compared, else None."""
    alpha: float
    """Krippendorff's α (nominal)."""


def agreement(coders: Sequence[str], ratings: Sequence[Sequence[Any]]) -> AgreementResult:
    """Raw agreement, Cohen's κ (two coders) and Krippendorff's α for coders × units ratings."""
    units = len(_units(ratings))
    kappa = cohen_kappa(ratings[0], ratings[1]) if len(coders) == 2 else None
    return AgreementResult(tuple(coders), units, raw_agreement(ratings), kappa, krippendorff_alpha(ratings))


# ----------------------------------------------------------------------------- survival


@dataclass(frozen=True, slots=True)
class Survival:
    """A Kaplan-Meier curve: the share of conversations that had not yet stopped, by turn."""

    times: tuple[float, ...]
    """Distinct turns at which a stop was observed, ascending."""
    survival: tuple[float, ...]
    """S(t) just after each of `times`."""
    low: tuple[float, ...]
    """Lower bound of the pointwise interval (log-log transform)."""
    high: tuple[float, ...]
    """Upper bound of the pointwise interval."""
    n: int
    """Conversations in the curve."""
    events: int
    """Conversations that stopped (the others are censored)."""
    median: float | None
    """First turn at which S(t) ≤ 0.5, or None if it never gets there."""
    confidence: float = CONFIDENCE
    """Confidence level of the pointwise interval."""
    method: str = field(default="Kaplan-Meier (scipy.stats.ecdf, right-censored), log-log pointwise interval")
    """How the curve was computed."""
    median_low: float | None = None
    """Lower bound of the 95% interval of the median: the first turn where the lower band is ≤ 0.5
    (None when even the lower band stays above 0.5)."""
    median_high: float | None = None
    """Upper bound: the first turn where the upper band is ≤ 0.5; None when it is never reached (open above)."""

    def at(self, t: float) -> float:
        """S(t): the share still going after turn t."""
        s = 1.0
        for time, value in zip(self.times, self.survival):
            if time <= t:
                s = value
        return s


def kaplan_meier(durations: Sequence[float], observed: Sequence[bool], confidence: float = CONFIDENCE) -> Survival:
    """Kaplan-Meier estimate from durations (e.g. the turn of the stop phrase) and event flags.

    A conversation that ended otherwise (script ran out, max turns, declined) is right-censored
    at the turn it reached. Wraps ``scipy.stats.ecdf`` on ``CensoredData``.
    """
    import numpy as np
    from scipy import stats

    d = np.asarray(durations, dtype=float)
    e = np.asarray(observed, dtype=bool)
    if d.size == 0:
        return Survival((), (), (), (), 0, 0, None, confidence)
    if not e.any():
        return Survival((), (), (), (), int(d.size), 0, None, confidence)
    data = stats.CensoredData(uncensored=d[e], right=d[~e])
    res = stats.ecdf(data).sf
    times = res.quantiles
    values = res.probabilities
    with warnings.catch_warnings():  # undefined where S(t) is 0 or 1: those bounds are set below
        warnings.simplefilter("ignore", RuntimeWarning)
        ci = res.confidence_interval(confidence_level=confidence, method="log-log")
    # Where the log-log interval is undefined (S(t) = 0 or 1) the bound is the estimate itself.
    low = np.where(np.isnan(ci.low.probabilities), values, ci.low.probabilities)
    high = np.where(np.isnan(ci.high.probabilities), values, ci.high.probabilities)
    # scipy reports every distinct time, censored ones included; keep the event times.
    event_times = set(d[e].tolist())
    keep = [i for i, t in enumerate(times) if float(t) in event_times]
    times, values, low, high = times[keep], values[keep], low[keep], high[keep]
    below = [float(t) for t, s in zip(times, values) if s <= 0.5]
    m_low = [float(t) for t, lo in zip(times, low) if lo <= 0.5]  # the band starts to include 0.5
    m_high = [float(t) for t, h in zip(times, high) if h <= 0.5]  # the whole band is at or below 0.5
    return Survival(tuple(float(t) for t in times), tuple(float(v) for v in values), tuple(float(v) for v in low),
                    tuple(float(v) for v in high), int(d.size), int(e.sum()), below[0] if below else None, confidence,
                    median_low=m_low[0] if m_low else None, median_high=m_high[0] if m_high else None)


@dataclass(frozen=True, slots=True)
class SurvivalTest:
    """A log-rank test of equal stop-turn distributions across groups."""

    test: str
    """``logrank`` (two groups: scipy.stats.logrank; more: the k-sample log-rank χ²) or ``none``."""
    statistic: float
    """χ² statistic (k-1 df); for two groups, the square of scipy's z."""
    p: float
    """p-value (NaN for none)."""
    dof: int
    """Groups minus one."""
    groups: int
    """Groups compared (with at least one conversation)."""


def logrank(samples: Sequence[tuple[Sequence[float], Sequence[bool]]]) -> SurvivalTest:
    """Log-rank test across groups; each sample is (durations, event observed). Two groups go to
    ``scipy.stats.logrank``; more use the k-sample statistic (O - E)' V⁻¹ (O - E) on k-1 df."""
    import numpy as np
    from scipy import stats as sps

    groups = [(np.asarray(d, float), np.asarray(e, bool)) for d, e in samples if len(d)]
    nan = float("nan")
    if len(groups) < 2 or not any(e.any() for _, e in groups):
        return SurvivalTest("none", nan, nan, 0, len(groups))
    if len(groups) == 2:
        data = [sps.CensoredData(uncensored=d[e], right=d[~e]) for d, e in groups]
        res = sps.logrank(data[0], data[1])
        return SurvivalTest("logrank", float(res.statistic) ** 2, float(res.pvalue), 1, 2)
    stat, dof = _logrank_k(groups)
    return SurvivalTest("logrank", stat, float(sps.chi2.sf(stat, dof)), dof, len(groups))


def _logrank_k(groups: Sequence[tuple[Any, Any]]) -> tuple[float, int]:
    """The k-sample log-rank χ² and its degrees of freedom (numpy arrays of durations and event flags)."""
    import numpy as np

    k = len(groups)
    times = np.unique(np.concatenate([d[e] for d, e in groups]))
    observed, expected = np.zeros(k), np.zeros(k)
    var = np.zeros((k, k))
    for t in times:
        at_risk = np.array([(d >= t).sum() for d, _ in groups], float)
        deaths = np.array([((d == t) & e).sum() for d, e in groups], float)
        n, dt = at_risk.sum(), deaths.sum()
        observed += deaths
        expected += at_risk * dt / n
        if n > 1:
            frac = at_risk / n
            var += dt * (n - dt) / (n - 1) * (np.diag(frac) - np.outer(frac, frac))
    diff = (observed - expected)[:-1]
    return float(diff @ np.linalg.pinv(var[:-1, :-1]) @ diff), k - 1
