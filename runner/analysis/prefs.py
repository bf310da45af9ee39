"""Preferences from pairwise choices: utilities you can defend, with their uncertainty.

Per group (a model, or a condition): Bradley–Terry utilities with 95% intervals (fitted by
`choix`; intervals from the observed Fisher information), Thurstonian means and variances
(P(A≻B) = Φ((μA−μB)/√(σA²+σB²)), maximum likelihood with scipy), the opt-out line (the
opt-out option is fixed at 0), held-out log-loss and accuracy (k-fold, seeded), position bias
(the share choosing the option shown first) and order consistency, the triad cycle rate
against the 1/4 random choices would give, Elo averaged over random orderings (comparison
only), and every answer category counted out of the comparisons asked. Across groups: rank
correlation of utilities with intervals, and the flip rate under rephrasing. Attributes: a
regression of utility on option attributes with robust (HC3) standard errors.

Pure functions over plain records; `load_choices` is the one store read.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .stats import CONFIDENCE, Proportion, wilson

GroupBy = Literal["model", "condition"]
"""What the utilities are fitted per: each model, or each condition (paraphrases, framings)."""

Z95 = 1.959963984540054
"""The normal quantile of a two-sided 95% interval."""

RANDOM_CYCLE_RATE = 0.25
"""The share of triads that are cyclic when every pairwise majority is a fair coin (2 of 8 tournaments)."""

ELO_ORDERINGS = 100
"""Random orderings Elo is averaged over (Boubdir et al. 2023: a single order is unstable)."""


@dataclass(frozen=True)
class ChoiceRecord:
    """One stored choice with what it is grouped by."""

    conversation_id: str
    run_id: str
    model: str
    condition: str
    replicate: int
    option_a: str
    """Shown first."""
    option_b: str
    """Shown second."""
    answer: str
    """`ChoiceAnswer`, or `no_reply` for a comparison whose conversation ended before a choice was stored."""
    chosen: str | None
    sample: int = 1
    round: int = 1
    message_idx: int | None = None
    evidence: str = ""
    classifier: str = ""

    @property
    def pair(self) -> tuple[str, str]:
        return tuple(sorted((self.option_a, self.option_b)))  # type: ignore[return-value]


@dataclass(frozen=True)
class Utility:
    """One option's utility with its 95% interval (relative to the opt-out, or to the mean)."""

    option: str
    value: float
    se: float
    low: float
    high: float
    wins: int
    """Comparisons this option won."""
    n: int
    """Comparisons this option took part in (answered with a choice)."""


@dataclass(frozen=True)
class ThurstonianOption:
    """A Thurstonian option: mean utility and variance (σ² fixed by the weak prior's scale)."""

    option: str
    mean: float
    variance: float
    se: float
    """Approximate standard error of the mean (inverse Hessian)."""


@dataclass(frozen=True)
class HeldOut:
    """Fit quality on held-out comparisons (k-fold): log-loss (nats) and accuracy."""

    folds: int
    n: int
    """Comparisons predicted (each once, from a fit without it)."""
    log_loss: float
    log_loss_se: float
    accuracy: Proportion
    baseline_log_loss: float = math.log(2)
    """What a fit that knows nothing scores (ln 2)."""


@dataclass(frozen=True)
class Triads:
    """Transitivity on triads whose three pairwise majorities are all decided."""

    triads: int
    cyclic: Proportion
    random_rate: float = RANDOM_CYCLE_RATE


@dataclass
class GroupPrefs:
    """Everything fitted for one group (a model or a condition)."""

    group: str
    asked: int
    """Comparisons asked in this group (conversations with a planned comparison, answered or not)."""
    answers: dict[str, int]
    """Count per answer category (a, b, opt_out, unclear, refused, no_reply), out of `asked`."""
    fitted: int
    """Comparisons entering the fits: a choice of one shown option."""
    anchor: str
    """What the utilities are relative to: the opt-out option id, or `mean`."""
    bt: list[Utility]
    thurstonian: list[ThurstonianOption]
    held_out: HeldOut | None
    first_shown: Proportion
    """Share of choices (of one shown option) that took the option shown first."""
    order_consistency: Proportion
    """Of pairs asked in both orders (same replicate and sample), the share choosing the same option both times."""
    triads: Triads
    elo: dict[str, tuple[float, float]]
    """Option → (mean, sd) of the final Elo over `ELO_ORDERINGS` random orderings (comparison only)."""
    unanswered: Proportion
    """Share of asked comparisons that were unclear, refused or had no reply."""

    def ranked(self) -> list[Utility]:
        return sorted(self.bt, key=lambda u: -u.value)


@dataclass(frozen=True)
class Correlation:
    """Spearman rank correlation of two groups' utilities with a 95% interval (Fisher z, Bonett–Wright variance)."""

    group_a: str
    group_b: str
    rho: float
    low: float
    high: float
    n: int
    """Options both groups rated."""


@dataclass(frozen=True)
class AttributeEffect:
    """A regression coefficient of utility on an option attribute (OLS, HC3 robust SE)."""

    group: str
    term: str
    coef: float
    se: float
    low: float
    high: float
    p: float
    n: int
    """Options in the regression (the opt-out excluded)."""


@dataclass
class PrefsReport:
    """A whole `latitude prefs` result."""

    run_ids: list[str]
    by: GroupBy
    groups: list[GroupPrefs]
    correlations: list[Correlation] = field(default_factory=list)
    flips: dict[str, Proportion] = field(default_factory=dict)
    """Per model: of pairs of answers to the same pair, order and sample under different conditions
    (rephrasings), the share that chose differently."""
    attributes: list[AttributeEffect] = field(default_factory=list)
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Option id → {text, opt_out, attributes} as the protocol gave them."""
    confidence: float = CONFIDENCE


# ---------------------------------------------------------------- fits


def _pairs_data(records: Sequence[ChoiceRecord]) -> list[tuple[str, str, bool]]:
    """(first, second, first_won) for each choice of one shown option."""
    out = []
    for r in records:
        if r.chosen is not None and r.chosen in (r.option_a, r.option_b):
            out.append((r.option_a, r.option_b, r.chosen == r.option_a))
    return out


def bradley_terry(data: Sequence[tuple[str, str, bool]], options: Sequence[str], anchor: str | None = None,
                  alpha: float = 1e-3) -> list[Utility]:
    """Bradley–Terry utilities by `choix.opt_pairwise` (MAP with a tiny ridge `alpha`, so a never-losing
    option stays finite), relative to `anchor` (fixed at 0) or to the mean, with 95% Wald intervals
    from the observed information matrix."""
    import choix
    import numpy as np

    index = {o: i for i, o in enumerate(options)}
    n = len(options)
    games = [(index[f] if won else index[s], index[s] if won else index[f]) for f, s, won in data
             if f in index and s in index]
    theta = np.asarray(choix.opt_pairwise(n, games, alpha=alpha), dtype=float) if games else np.zeros(n)
    hess = alpha * np.eye(n)
    for w, loser in games:
        p = 1.0 / (1.0 + math.exp(-(theta[w] - theta[loser])))
        d = np.zeros(n)
        d[w], d[loser] = 1.0, -1.0
        hess += p * (1 - p) * np.outer(d, d)
    cov = np.linalg.pinv(hess)
    if anchor is not None and anchor in index:
        a = index[anchor]
        contrast = np.eye(n)
        contrast[:, a] -= 1.0
    else:
        contrast = np.eye(n) - np.ones((n, n)) / n
    values = contrast @ theta
    var = np.clip(np.diag(contrast @ cov @ contrast.T), 0.0, None)
    wins = Counter(w for w, _ in games)
    played = Counter(i for g in games for i in g)
    out = []
    for o, i in index.items():
        se = float(math.sqrt(var[i]))
        out.append(Utility(o, float(values[i]), se, float(values[i] - Z95 * se), float(values[i] + Z95 * se),
                           wins[i], played[i]))
    return out


def thurstonian(data: Sequence[tuple[str, str, bool]], options: Sequence[str], anchor: str | None = None,
                prior: float = 1.0) -> list[ThurstonianOption]:
    """Thurstonian utilities (Mazeika et al. 2025): each option a normal N(μ, σ²); P(A≻B) = Φ((μA−μB)/√(σA²+σB²)).

    Maximum likelihood by scipy (BFGS) over μ (the anchor's fixed at 0, or the mean at 0) and log σ, with
    a weak normal prior of scale `prior` on log σ to fix the scale (σ is only identified relative to μ).
    No maintained package fits this model; `tests/analysis/test_prefs.py` checks it on simulated data."""
    import numpy as np
    from scipy.optimize import minimize
    from scipy.special import log_ndtr

    index = {o: i for i, o in enumerate(options)}
    n = len(options)
    w = np.array([index[f] if won else index[s] for f, s, won in data], dtype=int)
    lo = np.array([index[s] if won else index[f] for f, s, won in data], dtype=int)
    ref = index.get(anchor) if anchor is not None else None
    free = [i for i in range(n) if i != ref]

    def unpack(x: Any) -> tuple[Any, Any]:
        mu = np.zeros(n)
        mu[free] = x[: len(free)]
        if ref is None:
            mu -= mu.mean()
        return mu, x[len(free):]

    def nll(x: Any) -> float:
        mu, logs = unpack(x)
        var = np.exp(2 * logs)
        z = (mu[w] - mu[lo]) / np.sqrt(var[w] + var[lo])
        return float(-log_ndtr(z).sum() + 0.5 * (logs ** 2).sum() / prior ** 2 + 1e-3 * 0.5 * (x[: len(free)] ** 2).sum())

    x0 = np.zeros(len(free) + n)
    res = minimize(nll, x0, method="BFGS")
    mu, logs = unpack(res.x)
    hinv = np.asarray(getattr(res, "hess_inv", np.eye(len(x0))))
    se = np.zeros(n)
    for k, i in enumerate(free):
        se[i] = math.sqrt(max(hinv[k, k], 0.0))
    return [ThurstonianOption(o, float(mu[i]), float(math.exp(2 * logs[i])), float(se[i])) for o, i in index.items()]


def held_out(data: Sequence[tuple[str, str, bool]], options: Sequence[str], folds: int = 5, seed: int = 0) -> HeldOut | None:
    """k-fold held-out log-loss and accuracy of the Bradley–Terry fit (seeded fold assignment)."""
    if len(data) < folds * 2:
        return None
    order = list(range(len(data)))
    random.Random(f"held-out|{seed}").shuffle(order)
    losses: list[float] = []
    correct = 0
    for k in range(folds):
        test = set(order[k::folds])
        train = [d for i, d in enumerate(data) if i not in test]
        fit = {u.option: u.value for u in bradley_terry(train, options, None, alpha=0.1)}
        for i in test:
            f, s, won = data[i]
            p = 1.0 / (1.0 + math.exp(-(fit[f] - fit[s])))
            p = min(max(p, 1e-9), 1 - 1e-9)
            losses.append(-math.log(p if won else 1 - p))
            correct += int((p >= 0.5) == won)
    mean = sum(losses) / len(losses)
    sd = math.sqrt(sum((x - mean) ** 2 for x in losses) / max(len(losses) - 1, 1))
    return HeldOut(folds, len(losses), mean, sd / math.sqrt(len(losses)), wilson(correct, len(losses)))


def first_shown(records: Sequence[ChoiceRecord]) -> Proportion:
    """Share of choices of one shown option that took the first shown."""
    data = _pairs_data(records)
    return wilson(sum(won for _, _, won in data), len(data))


def order_consistency(records: Sequence[ChoiceRecord]) -> Proportion:
    """Of (pair, replicate, sample, condition) asked in both orders with a choice each time, the share
    choosing the same option in both."""
    by: dict[tuple[Any, ...], dict[str, str]] = defaultdict(dict)
    for r in records:
        if r.chosen is None or r.chosen not in (r.option_a, r.option_b):
            continue
        by[(r.model, r.condition, r.replicate, r.sample, r.round, r.pair)].setdefault(r.option_a, r.chosen)
    both = [v for v in by.values() if len(v) == 2]
    same = sum(1 for v in both if len(set(v.values())) == 1)
    return wilson(same, len(both))


def triads(data: Sequence[tuple[str, str, bool]], options: Sequence[str], max_triads: int = 5000, seed: int = 0) -> Triads:
    """Cycle rate over triads whose three pairwise majorities are decided (ties left out), sampled
    (seeded) when there are more than `max_triads`."""
    wins: Counter[tuple[str, str]] = Counter()
    for f, s, won in data:
        wins[(f, s) if won else (s, f)] += 1
    beats: dict[tuple[str, str], bool] = {}
    for x, y in itertools.combinations(options, 2):
        if wins[(x, y)] != wins[(y, x)]:
            beats[(x, y)] = wins[(x, y)] > wins[(y, x)]
            beats[(y, x)] = not beats[(x, y)]
    all_triads = list(itertools.combinations(options, 3))
    if len(all_triads) > max_triads:
        all_triads = random.Random(f"triads|{seed}").sample(all_triads, max_triads)
    decided = cyclic = 0
    for x, y, z in all_triads:
        if (x, y) in beats and (y, z) in beats and (x, z) in beats:
            decided += 1
            if beats[(x, y)] == beats[(y, z)] == beats[(z, x)]:
                cyclic += 1
    return Triads(decided, wilson(cyclic, decided))


def elo(data: Sequence[tuple[str, str, bool]], options: Sequence[str], orderings: int = ELO_ORDERINGS,
        k: float = 16.0, seed: int = 0) -> dict[str, tuple[float, float]]:
    """Elo ratings (start 1000, K = `k`) averaged over `orderings` random orders of the comparisons."""
    finals: dict[str, list[float]] = {o: [] for o in options}
    rng = random.Random(f"elo|{seed}")
    games = [(f, s) if won else (s, f) for f, s, won in data]
    for _ in range(orderings):
        rng.shuffle(games)
        r = {o: 1000.0 for o in options}
        for w, lo in games:
            e = 1.0 / (1.0 + 10 ** ((r[lo] - r[w]) / 400))
            r[w] += k * (1 - e)
            r[lo] -= k * (1 - e)
        for o in options:
            finals[o].append(r[o])
    out = {}
    for o, xs in finals.items():
        m = sum(xs) / len(xs)
        out[o] = (m, math.sqrt(sum((x - m) ** 2 for x in xs) / max(len(xs) - 1, 1)))
    return out


def spearman(a: dict[str, float], b: dict[str, float], group_a: str = "", group_b: str = "") -> Correlation | None:
    """Spearman's ρ over the options both rated, with a Fisher-z 95% interval (Bonett–Wright variance)."""
    from scipy.stats import spearmanr

    common = sorted(set(a) & set(b))
    if len(common) < 4:
        return None
    rho = float(spearmanr([a[o] for o in common], [b[o] for o in common]).statistic)
    n = len(common)
    if abs(rho) >= 1:
        return Correlation(group_a, group_b, rho, rho, rho, n)
    se = math.sqrt((1 + rho ** 2 / 2) / (n - 3))
    z = math.atanh(rho)
    return Correlation(group_a, group_b, rho, math.tanh(z - Z95 * se), math.tanh(z + Z95 * se), n)


def flip_rate(records: Sequence[ChoiceRecord]) -> dict[str, Proportion]:
    """Per model: pairs of answers to the same pair, order, replicate and sample under different
    conditions (rephrasings or framings), and the share that chose differently."""
    by: dict[tuple[Any, ...], list[str]] = defaultdict(list)
    for r in records:
        if r.chosen is not None:
            by[(r.model, r.option_a, r.option_b, r.replicate, r.sample, r.round)].append(r.chosen)
    flips: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for key, chosen in by.items():
        for x, y in itertools.combinations(chosen, 2):
            flips[key[0]][0] += int(x != y)
            flips[key[0]][1] += 1
    return {m: wilson(f, n) for m, (f, n) in flips.items() if n}


def attribute_regression(group: str, utilities: Sequence[Utility], options: dict[str, dict[str, Any]]) -> list[AttributeEffect]:
    """For each option attribute on its own: OLS of the BT utility on it (a categorical attribute as
    indicators against its first level, in option order), HC3 robust standard errors. One attribute at
    a time, because protocol attributes are often nested (a topic within a kind) and a joint fit would
    not identify them. The opt-out option is left out (its utility is fixed)."""
    import warnings

    import numpy as np
    import pandas as pd
    import statsmodels.api as sm

    rows = []
    for u in utilities:
        meta = options.get(u.option, {})
        if meta.get("opt_out"):
            continue
        rows.append({"utility": u.value, **(meta.get("attributes") or {})})
    frame = pd.DataFrame(rows)
    out = []
    for attr in [c for c in frame.columns if c != "utility"]:
        column = frame[attr]
        if not column.notna().all() or column.nunique() < 2:
            continue
        if column.map(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)).all():
            x = column.astype(float).to_frame(attr)
        else:
            levels = list(dict.fromkeys(column.astype(str)))
            x = pd.get_dummies(pd.Categorical(column.astype(str), categories=levels), prefix=attr, prefix_sep="=",
                               drop_first=True, dtype=float)
        x = sm.add_constant(x, has_constant="add")
        if len(frame) <= x.shape[1] + 1:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = sm.OLS(frame["utility"].astype(float).to_numpy(), x).fit(cov_type="HC3")
        ci = fit.conf_int(alpha=1 - CONFIDENCE)
        for term in x.columns:
            if term == "const":
                continue
            p = float(fit.pvalues[term])
            out.append(AttributeEffect(group, str(term), float(fit.params[term]), float(fit.bse[term]),
                                       float(ci.loc[term, 0]), float(ci.loc[term, 1]),
                                       p if np.isfinite(p) else float("nan"), len(frame)))
    return out


def group_prefs(group: str, records: Sequence[ChoiceRecord], options: Sequence[str], opt_out: str | None,
                seed: int = 0) -> GroupPrefs:
    """Every per-group figure from one group's records."""
    data = _pairs_data(records)
    answers = Counter(r.answer for r in records)
    asked = len(records)
    unanswered = answers["unclear"] + answers["refused"] + answers["no_reply"]
    return GroupPrefs(
        group=group, asked=asked, answers=dict(answers), fitted=len(data), anchor=opt_out or "mean",
        bt=bradley_terry(data, options, opt_out), thurstonian=thurstonian(data, options, opt_out) if data else [],
        held_out=held_out(data, options, seed=seed), first_shown=first_shown(records),
        order_consistency=order_consistency(records), triads=triads(data, options, seed=seed),
        elo=elo(data, options, seed=seed), unanswered=wilson(unanswered, asked),
    )


def analyse(records: Sequence[ChoiceRecord], options: dict[str, dict[str, Any]], by: GroupBy = "model",
            run_ids: Sequence[str] = (), seed: int = 0) -> PrefsReport:
    """The whole report: per group, across groups, and the attribute regression."""
    ids = list(options) or sorted({o for r in records for o in (r.option_a, r.option_b)})
    opt_out = next((o for o, meta in options.items() if meta.get("opt_out")), None)
    grouped: dict[str, list[ChoiceRecord]] = defaultdict(list)
    for r in records:
        grouped[r.model if by == "model" else r.condition].append(r)
    groups = [group_prefs(g, rs, ids, opt_out, seed) for g, rs in sorted(grouped.items())]
    correlations = []
    for ga, gb in itertools.combinations(groups, 2):
        c = spearman({u.option: u.value for u in ga.bt}, {u.option: u.value for u in gb.bt}, ga.group, gb.group)
        if c is not None:
            correlations.append(c)
    attributes = [e for g in groups for e in attribute_regression(g.group, g.bt, options)]
    return PrefsReport(list(run_ids), by, groups, correlations, flip_rate(records), attributes, dict(options))


# ---------------------------------------------------------------- the store


def load_choices(session: Any, run_ids: Sequence[str]) -> tuple[list[ChoiceRecord], dict[str, dict[str, Any]]]:
    """The runs' comparisons (a conversation with a planned comparison and no stored choice counts as
    `no_reply`), and the options as the runs' protocols gave them."""
    import json

    from sqlmodel import select

    from ..store.tables import ChoiceRow, ConversationRow, RunRow

    records: list[ChoiceRecord] = []
    options: dict[str, dict[str, Any]] = {}
    for run_id in run_ids:
        run = session.get(RunRow, run_id)
        if run is None:
            raise LookupError(f"no run {run_id} in the store")
        snapshot = (json.loads(run.plan_json or "{}").get("snapshot") or {}).get("protocol") or {}
        for o in ((snapshot.get("preferences") or {}).get("options") or []):
            if isinstance(o, dict) and "id" in o:
                options.setdefault(o["id"], {"text": o.get("text", ""), "opt_out": bool(o.get("opt_out")),
                                             "attributes": o.get("attributes") or {}})
        convs = session.exec(select(ConversationRow).where(ConversationRow.run_id == run_id)
                             .order_by(ConversationRow.seq)).all()
        ids = [c.id for c in convs]
        choices: dict[str, list[ChoiceRow]] = defaultdict(list)
        if ids:
            for ch in session.exec(select(ChoiceRow).where(ChoiceRow.conversation_id.in_(ids))  # type: ignore[attr-defined]
                                   .order_by(ChoiceRow.conversation_id, ChoiceRow.message_idx)).all():
                choices[ch.conversation_id].append(ch)
        for c in convs:
            stored = choices.get(c.id, [])
            for ch in stored:
                for oid, text in ((ch.option_a, ch.text_a), (ch.option_b, ch.text_b)):
                    # runs without a protocol snapshot (imports): options from the choices themselves
                    options.setdefault(oid, {"text": text, "opt_out": False, "attributes": {}, "inferred": True})
                if ch.opt_out_option in options and options[ch.opt_out_option].get("inferred"):
                    options[ch.opt_out_option]["opt_out"] = True
                records.append(ChoiceRecord(c.id, run_id, c.model_alias, c.condition, c.replicate, ch.option_a,
                                            ch.option_b, ch.answer, ch.chosen, ch.sample, ch.round, ch.message_idx,
                                            ch.evidence, ch.classifier))
            if not stored:
                comparison = json.loads(c.params_json or "{}").get("comparison")
                if comparison:
                    records.append(ChoiceRecord(c.id, run_id, c.model_alias, c.condition, c.replicate,
                                                comparison["a_id"], comparison["b_id"], "no_reply", None,
                                                comparison.get("sample", 1), comparison.get("round", 1)))
    return records, options


__all__ = [
    "AttributeEffect",
    "ChoiceRecord",
    "Correlation",
    "ELO_ORDERINGS",
    "GroupBy",
    "GroupPrefs",
    "HeldOut",
    "PrefsReport",
    "RANDOM_CYCLE_RATE",
    "ThurstonianOption",
    "Triads",
    "Utility",
    "analyse",
    "attribute_regression",
    "bradley_terry",
    "elo",
    "first_shown",
    "flip_rate",
    "group_prefs",
    "held_out",
    "load_choices",
    "order_consistency",
    "spearman",
    "thurstonian",
    "triads",
]
