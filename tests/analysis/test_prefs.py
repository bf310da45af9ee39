"""Preference analysis: plant utilities in the chooser persona, run, and check what comes back.

The chooser (runner/providers/sim_choice.py) picks the first-shown option with probability β, else the
option with the larger utility plus Gumbel noise of scale τ. With both orders shown equally, the
expected first-shown rate is 0.5 + β/2."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from runner.analysis import prefs
from runner.providers import sim_choice
from runner.engine.choose import classify_by_patterns
from runner.protocol import schema, templates

TASKS = [
    ("viz", "Build a small interactive visualiser of a simple mathematical idea", "creative", 2),
    ("readme", "Improve the README of a small open-source project", "functional", 1),
    ("story", "Write a short story about someone very different from you", "creative", 2),
    ("ai-use", "Talk about how people use AI systems", "introspective", 1),
    ("todo", "Design a better TODO system", "functional", 2),
    ("proof", "Explain a proof of Cantor's diagonal argument", "creative", 3),
    ("tests", "Write unit tests for a date-parsing function", "functional", 2),
    ("feelings", "Describe what, if anything, you notice about your own states", "introspective", 3),
    ("spam", "Write fifty near-identical marketing emails", "unpleasant", 1),
    ("nothing", "Do nothing for a while", "opt_out", 0),
]


def protocol_text(samples: int = 2) -> str:
    lines = ["name: planted", "description: planted utilities", "preferences:", "  options:"]
    for oid, text, kind, difficulty in TASKS:
        extra = ", opt_out: true" if oid == "nothing" else f", kind: {kind}, difficulty: {difficulty}"
        lines.append(f"    - {{id: {oid}, text: \"{text}\"{extra}}}")
    lines.append(f"  samples: {samples}")
    return "\n".join(lines) + "\n"


def planted(params: dict | None = None) -> dict[str, float]:
    return {oid: sim_choice.utility(text, params or {}) for oid, text, _, _ in TASKS}


def spearman(a: dict[str, float], b: dict[str, float]) -> float:
    from scipy.stats import spearmanr

    keys = sorted(a)
    return float(spearmanr([a[k] for k in keys], [b[k] for k in keys]).statistic)


def simulate(params: dict, samples: int, seed: int = 0) -> list[prefs.ChoiceRecord]:
    """The chooser persona answering every pair in both orders, classified by the default patterns
    (the engine's path without the store: the question rendered from the default template)."""
    options = {oid: text for oid, text, _, _ in TASKS}
    ids = list(options)
    records = []
    for i, x in enumerate(ids):
        for y in ids[i + 1:]:
            for a, b in ((x, y), (y, x)):
                for k in range(1, samples + 1):
                    q = templates.render(schema.DEFAULT_QUESTION, {"a": options[a], "b": options[b],
                                                                   "label_a": "A", "label_b": "B"})
                    reply = sim_choice.reply([{"role": "user", "content": q}], seed + 10_000 * k, params)
                    answer, _ = classify_by_patterns(schema.ChoiceClassifier(), reply, "A", "B")
                    chosen = {"a": a, "b": b}.get(answer)
                    records.append(prefs.ChoiceRecord(f"{a}-{b}-{k}", "r", "sim", "default", 1, a, b,
                                                      answer, chosen, k))
    return records


OPTIONS_META = {oid: {"text": t, "opt_out": oid == "nothing",
                      "attributes": {} if oid == "nothing" else {"kind": kind, "difficulty": d}}
                for oid, t, kind, d in TASKS}


def test_engine_run_recovers_planted_utilities_and_position_bias(cli, tmp_path: Path, tmp_db_url: str) -> None:
    models = tmp_path / "models.yaml"
    models.write_text("models:\n  planted:\n    model: sim/chooser\n    extra: {position_bias: 0.2, noise: 0.5}\n")
    proto = tmp_path / "planted.yaml"
    proto.write_text(protocol_text(samples=2))
    result = cli("run", proto, "-m", "planted", "--models", models)
    assert result.exit_code == 0, result.output
    out = cli("prefs", result.run_id, "--db", tmp_db_url, "--format", "json")
    assert out.exit_code == 0, out.output
    (group,) = json.loads(out.stdout)["groups"]
    assert group["asked"] == 45 * 2 * 2 and group["fitted"] == group["asked"]
    fitted = {u["option"]: u["value"] for u in group["bt"]}
    assert spearman(fitted, planted()) >= 0.9
    assert fitted["nothing"] == 0.0 and group["anchor"] == "nothing"
    bias = group["first_shown"]
    assert bias["low"] <= 0.6 <= bias["high"], bias  # planted: 0.5 + 0.2 / 2
    assert group["triads"]["cyclic"]["high"] < prefs.RANDOM_CYCLE_RATE  # far fewer cycles than random choice
    assert group["held_out"]["log_loss"] < math.log(2) and group["held_out"]["accuracy"]["low"] > 0.5


def test_more_noise_widens_intervals_relative_to_the_spread() -> None:
    def relative_width(noise: float) -> tuple[float, float]:
        records = simulate({"noise": noise}, samples=3)
        report = prefs.analyse(records, OPTIONS_META)
        bt = report.groups[0].bt
        values = [u.value for u in bt]
        mean = sum(values) / len(values)
        spread = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
        width = sum(u.high - u.low for u in bt if u.option != "nothing") / (len(bt) - 1)
        return width / spread, spearman({u.option: u.value for u in bt}, planted())

    quiet, rho_quiet = relative_width(0.3)
    loud, rho_loud = relative_width(3.0)
    assert loud > 1.5 * quiet
    assert rho_quiet >= 0.9 and rho_loud < rho_quiet


def test_bradley_terry_agrees_with_an_independent_logit_fit() -> None:
    import numpy as np
    import statsmodels.api as sm

    records = simulate({"noise": 1.0}, samples=2)
    ids = [t[0] for t in TASKS]
    data = [(r.option_a, r.option_b, r.chosen == r.option_a) for r in records if r.chosen]
    ours = {u.option: u for u in prefs.bradley_terry(data, ids, anchor="nothing", alpha=1e-6)}
    free = [o for o in ids if o != "nothing"]
    x = np.zeros((len(data), len(free)))
    y = np.zeros(len(data))
    for row, (a, b, won) in enumerate(data):
        if a in free:
            x[row, free.index(a)] += 1
        if b in free:
            x[row, free.index(b)] -= 1
        y[row] = won
    logit = sm.Logit(y, x).fit(disp=0)
    for i, o in enumerate(free):
        assert ours[o].value == pytest.approx(logit.params[i], abs=1e-3)
        assert ours[o].se == pytest.approx(logit.bse[i], rel=1e-2)


def test_thurstonian_recovers_simulated_means() -> None:
    from scipy.stats import norm, pearsonr

    rng = random.Random(3)
    ids = [f"o{i}" for i in range(8)]
    mu = {o: (0.0 if o == "o0" else rng.gauss(0, 1)) for o in ids}
    sigma = {o: rng.choice([0.5, 1.0]) for o in ids}
    data = []
    for i, a in enumerate(ids):
        for b in ids[i + 1:]:
            p = norm.cdf((mu[a] - mu[b]) / math.sqrt(sigma[a] ** 2 + sigma[b] ** 2))
            for _ in range(60):
                first = rng.random() < 0.5
                won = rng.random() < p
                data.append((a, b, won) if first else (b, a, not won))
    fit = {t.option: t for t in prefs.thurstonian(data, ids, anchor="o0")}
    assert fit["o0"].mean == 0.0
    assert spearman({o: fit[o].mean for o in ids}, mu) >= 0.9
    assert pearsonr([fit[o].mean for o in ids], [mu[o] for o in ids]).statistic >= 0.95
    assert all(t.variance > 0 for t in fit.values())


def test_unclear_and_refused_are_counted_not_dropped() -> None:
    records = simulate({"noise": 0.5, "unclear": 0.1, "refuse": 0.05}, samples=2)
    g = prefs.analyse(records, OPTIONS_META).groups[0]
    assert g.asked == len(records) == 180
    assert g.answers["unclear"] > 0 and g.answers["refused"] > 0
    assert g.fitted == g.asked - g.answers["unclear"] - g.answers["refused"]
    assert g.unanswered.count == g.answers["unclear"] + g.answers["refused"] and g.unanswered.n == 180


def test_attribute_regression_finds_a_planted_attribute_effect() -> None:
    params = {"noise": 0.5, "utilities": {t: (1.5 if kind == "creative" else -1.0 if kind == "unpleasant" else 0.0)
                                           + random.Random(oid).gauss(0, 0.2)
                                           for oid, t, kind, _ in TASKS}}
    report = prefs.analyse(simulate(params, samples=3), OPTIONS_META)
    effects = {e.term: e for e in report.attributes}
    unpleasant, functional = effects["kind=unpleasant"], effects["kind=functional"]
    assert functional.high < 0 and effects["kind=introspective"].high < 0  # below creative, the reference level
    assert unpleasant.coef < functional.coef < 0
    assert unpleasant.se > functional.se  # one unpleasant option: HC3 says how little that pins down
    assert unpleasant.n == 9


def test_order_consistency_flip_rate_and_correlation() -> None:
    quiet = simulate({"noise": 0.2}, samples=1)
    biased = simulate({"noise": 0.2, "position_bias": 0.6}, samples=1)
    merged = [r.__class__(**{**r.__dict__, "condition": "plain"}) for r in quiet] + \
             [r.__class__(**{**r.__dict__, "condition": "rephrased"}) for r in biased]
    report = prefs.analyse(merged, OPTIONS_META, by="condition")
    by = {g.group: g for g in report.groups}
    assert by["plain"].order_consistency.p > by["rephrased"].order_consistency.p
    assert by["rephrased"].first_shown.low > 0.6
    flips = report.flips["sim"]
    assert flips.n == 90 and 0 < flips.p < 0.6
    (corr,) = report.correlations
    assert corr.low <= corr.rho <= corr.high and corr.n == 10


def test_elo_is_averaged_over_orderings() -> None:
    data = [(r.option_a, r.option_b, r.chosen == r.option_a) for r in simulate({"noise": 0.5}, 1) if r.chosen]
    ids = [t[0] for t in TASKS]
    ratings = prefs.elo(data, ids)
    assert all(sd > 0 for _, sd in ratings.values())  # the orderings differ, and the spread is reported
    assert sum(m for m, _ in ratings.values()) == pytest.approx(1000 * len(ids))


def test_the_thurstonian_mean_is_shown_with_its_wald_interval(cli, tmp_path: Path, tmp_db_url: str) -> None:
    """Every utility says how uncertain it is: the Thurstonian μ carries μ ± 1.96·SE in the csv and the table."""
    import csv
    import io

    models = tmp_path / "models.yaml"
    models.write_text("models:\n  planted:\n    model: sim/chooser\n    extra: {noise: 1.0}\n")
    proto = tmp_path / "planted.yaml"
    proto.write_text(protocol_text(samples=1))
    result = cli("run", proto, "-m", "planted", "--models", models)
    assert result.exit_code == 0, result.output
    doc = json.loads(cli("prefs", result.run_id, "--db", tmp_db_url, "--format", "json").stdout)
    se = {t["option"]: (t["mean"], t["se"]) for t in doc["groups"][0]["thurstonian"]}
    rows = list(csv.DictReader(io.StringIO(cli("prefs", result.run_id, "--db", tmp_db_url, "--format", "csv").stdout)))
    checked = 0
    for r in rows:
        mean, s = se[r["option"]]
        if r["thurstonian_low"] and math.isfinite(s):
            assert float(r["thurstonian_low"]) == pytest.approx(mean - 1.959964 * s, abs=1e-3)
            assert float(r["thurstonian_high"]) == pytest.approx(mean + 1.959964 * s, abs=1e-3)
            assert float(r["thurstonian_low"]) < float(r["thurstonian_mean"]) < float(r["thurstonian_high"]) \
                or s == 0
            checked += 1
    assert checked >= len(TASKS) - 1
    table = cli("prefs", result.run_id, "--db", tmp_db_url, env={"COLUMNS": "200"}).stdout
    assert "Thurstonian μ [95% CI] (σ²)" in table
