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
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "AgreementResult",
    "IndependenceTest",
    "PooledEstimate",
    "Proportion",
    "Survival",
    "TestName",
    "agreement",
    "bh_adjust",
    "cluster_bootstrap",
    "cohen_kappa",
    "cramers_v",
    "independence_test",
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
    return Survival(tuple(float(t) for t in times), tuple(float(v) for v in values), tuple(float(v) for v in low),
                    tuple(float(v) for v in high), int(d.size), int(e.sum()), below[0] if below else None, confidence)
