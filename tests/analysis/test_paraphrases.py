"""Issue 15: declared paraphrases and controls, random-effects pooling with the Hartung-Knapp
correction, a between-group p that respects the clustering, and the factor model.

Expected values are computed by hand (DerSimonian-Laird, HKSJ), by scipy directly, or by
statsmodels on data read back from the store with sqlite3."""

from __future__ import annotations

import json
import math
import sqlite3
import textwrap
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from runner.analysis import stats
from runner.analysis.tally import TallyError, code_tally, condition_roles
from runner.protocol import ProtocolError, load
from runner.store.tables import RunRow
from tests.analysis.conftest import Conv, add_run, tag

JUDGE = "judge:openai/j@actsv1"


def _hksj(clusters: list[list[int]]) -> tuple[float, float, float, float, float]:
    """DerSimonian-Laird τ², the random-effects mean, and the HKSJ and DL t intervals, by hand."""
    y = np.array([np.mean(c) for c in clusters])
    n = np.array([len(c) for c in clusters], dtype=float)
    adj = (np.array([sum(c) for c in clusters]) + 0.5) / (n + 1)
    v = adj * (1 - adj) / n
    k = len(y)
    w = 1 / v
    mu_fe = (w * y).sum() / w.sum()
    q = (w * (y - mu_fe) ** 2).sum()
    tau2 = max(0.0, (q - (k - 1)) / (w.sum() - (w ** 2).sum() / w.sum()))
    wr = 1 / (v + tau2)
    mu = (wr * y).sum() / wr.sum()
    se_dl = math.sqrt(1 / wr.sum())
    se_hk = math.sqrt((wr * (y - mu) ** 2).sum() / (k - 1) / wr.sum())
    t = sps.t.ppf(0.975, k - 1)
    return mu, mu - t * se_hk, mu + t * se_hk, mu - t * se_dl, mu + t * se_dl


def test_three_paraphrases_pool_with_hartung_knapp() -> None:
    # the synthetic case: three paraphrases far apart
    clusters = [[1] * 2 + [0] * 8, [1] * 5 + [0] * 5, [1] * 8 + [0] * 2]
    got = stats.random_effects_pool(clusters)
    mu, hk_lo, hk_hi, dl_lo, dl_hi = _hksj(clusters)
    assert got.estimate == pytest.approx(mu)
    assert got.low == pytest.approx(max(0.0, min(hk_lo, dl_lo)))
    assert got.high == pytest.approx(min(1.0, max(hk_hi, dl_hi)))
    # far wider than the bootstrap, which is conditional on these three wordings
    assert got.high - got.low > got.bootstrap_high - got.bootstrap_low
    assert "Hartung-Knapp" in got.method
    # and the same as statsmodels' combine_effects where its tau^2 is not negative
    import warnings

    from statsmodels.stats.meta_analysis import combine_effects

    y = np.array([np.mean(c) for c in clusters])
    adj = (np.array([sum(c) for c in clusters]) + 0.5) / 11
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = combine_effects(y, adj * (1 - adj) / 10, method_re="chi2", use_t=True).summary_frame()
    assert got.estimate == pytest.approx(frame.loc["random effect wls", "eff"])
    assert got.low == pytest.approx(max(0.0, min(frame.loc["random effect wls", "ci_low"],
                                                  frame.loc["random effect", "ci_low"])))


def test_identical_paraphrases_keep_a_finite_interval() -> None:
    # Q = 0 < k-1: statsmodels' chi2 tau^2 goes negative here; clipped at 0, the DL interval remains
    got = stats.random_effects_pool([[1] * 7 + [0], [1] * 7 + [0]])
    mu, hk_lo, hk_hi, dl_lo, dl_hi = _hksj([[1] * 7 + [0], [1] * 7 + [0]])
    assert got.estimate == pytest.approx(0.875) and (hk_lo, hk_hi) == pytest.approx((0.875, 0.875))
    assert (got.low, got.high) == pytest.approx((max(0.0, dl_lo), min(1.0, dl_hi)))
    zero = stats.random_effects_pool([[0] * 8, [0] * 8])
    assert zero.estimate == 0 and zero.high > 0


def test_between_group_p_respects_the_clustering() -> None:
    a = [[1] * 8 + [0] * 2, [1] * 3 + [0] * 7, [1] * 6 + [0] * 4]
    b = [[1] * 2 + [0] * 8, [1] * 7 + [0] * 3, [1] * 4 + [0] * 6]
    got = stats.paraphrase_test([a, b])
    # by hand: HKSJ random-effects t-test of the per-paraphrase differences, k-1 = 2 df
    pa, pb = (np.array([np.mean(c) for c in g]) for g in (a, b))

    def var(g: list[list[int]]) -> np.ndarray:
        n = np.array([len(c) for c in g], dtype=float)
        adj = (np.array([sum(c) for c in g]) + 0.5) / (n + 1)
        return adj * (1 - adj) / n

    d, v = pa - pb, var(a) + var(b)
    w = 1 / v
    q = (w * (d - (w * d).sum() / w.sum()) ** 2).sum()
    tau2 = max(0.0, (q - 2) / (w.sum() - (w ** 2).sum() / w.sum()))
    wr = 1 / (v + tau2)
    mu = (wr * d).sum() / wr.sum()
    se = max(math.sqrt((wr * (d - mu) ** 2).sum() / 2 / wr.sum()), math.sqrt(1 / wr.sum()))
    assert got.test == "re-meta-hk" and got.dof == 2
    assert got.p == pytest.approx(2 * sps.t.sf(abs(mu / se), 2))
    # three groups: Friedman with the paraphrases as blocks
    c = [[1] * 5 + [0] * 5, [1] * 5 + [0] * 5, [1] * 9 + [0] * 1]
    three = stats.paraphrase_test([a, b, c])
    expected = sps.friedmanchisquare(*[[float(np.mean(x)) for x in g] for g in (a, b, c)])
    assert (three.test, three.p) == ("friedman", pytest.approx(expected.pvalue))


def _declare(session, run_id: str, conditions: list[dict]) -> None:  # type: ignore[no-untyped-def]
    row = session.get(RunRow, run_id)
    row.plan_json = json.dumps({"snapshot": {"protocol": {"conditions": conditions}}})
    session.add(row)
    session.commit()


def test_controls_are_never_pooled_and_families_are_read_from_the_protocol(session) -> None:  # type: ignore[no-untyped-def]
    convs = [Conv(m, condition=c) for m in ("a", "b") for c in ("base", "alt", "ctl") for _ in range(4)]
    run = add_run(session, convs)
    for i, c in enumerate(convs):
        tag(session, c, "x", JUDGE, present=i % 2 == 0, source="judge")
    _declare(session, run, [{"name": "base"}, {"name": "alt", "paraphrase_of": "base"},
                            {"name": "ctl", "role": "control"}])
    families, controls = condition_roles(session, [run])
    assert (families, controls) == ({"base": ["base", "alt"]}, {"ctl"})
    with pytest.raises(TallyError, match="ctl is a control"):
        code_tally(session, [run], coder="judge", paraphrases=["base", "alt", "ctl"])
    report = code_tally(session, [run], coder="judge", paraphrases=families["base"])
    assert {name for r in report.paraphrases for name in r.per_paraphrase} == {"base", "alt"}
    assert report.tests[0].test == "re-meta-hk"
    assert any("only 2 paraphrases" in w for w in report.provenance.warnings)


@pytest.mark.parametrize(("conditions", "line", "words"), [
    ("  - name: original\n  - name: reworded\n    paraphrase_of: orignal\n", 9, "did you mean `original`"),
    ("  - name: original\n  - name: ctl\n    role: control\n    paraphrase_of: original\n", 10, "control"),
    ("  - name: a\n  - name: b\n    paraphrase_of: a\n  - name: c\n    paraphrase_of: b\n", 11, "name the original"),
])
def test_bad_paraphrase_declarations_are_located(tmp_path: Path, conditions: str, line: int, words: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("name: t\ndescription: d\nmodels: [sim-maker]\nsteps:\n  - say: hi\nconditions:\n" + conditions)
    with pytest.raises(ProtocolError) as err:
        load(path)
    (problem,) = err.value.problems
    text = str(problem)
    assert problem.line == line and "paraphrase_of" in problem.field and words in text, text


def test_factor_model_matches_statsmodels_on_the_raw_tables(session, store_url) -> None:  # type: ignore[no-untyped-def]
    import statsmodels.api as sm

    rng = np.random.default_rng(3)
    base = {"a": 0.2, "b": 0.5, "c": 0.7}
    convs = []
    for rep in range(12):
        for m, p in base.items():
            for cond, shift in (("warm", 0.0), ("cold", 0.15)):
                c = Conv(m, condition=cond)
                convs.append((c, bool(rng.random() < p + shift)))
    run = add_run(session, [c for c, _ in convs])
    from runner.store.tables import ConversationRow

    for i, (c, hit) in enumerate(convs):
        row = session.get(ConversationRow, c.id)
        row.replicate = i // 6  # one replicate (one sampling seed) across the 3 models x 2 conditions
        session.add(row)
        tag(session, c, "x", JUDGE, present=hit, source="judge")
    session.commit()
    report = code_tally(session, [run], by=["model", "condition"], coder=JUDGE, factors=True)
    # independently: the rows from sqlite3, the design by hand, statsmodels directly
    con = sqlite3.connect(store_url.removeprefix("sqlite:///"))
    rows = con.execute("""SELECT c.model_alias, c.condition, c.run_id || '#' || c.replicate, t.present
                          FROM conversations c JOIN tags t ON t.conversation_id = c.id
                          WHERE c.run_id = ? AND t.coder = ? ORDER BY c.seq""", (run, JUDGE)).fetchall()
    con.close()
    y = np.array([r[3] for r in rows], dtype=float)
    X = np.column_stack([np.ones(len(rows)), [r[0] == "b" for r in rows], [r[0] == "c" for r in rows],
                         [r[1] == "cold" for r in rows]]).astype(float)
    groups = np.unique([r[2] for r in rows], return_inverse=True)[1]
    fit = sm.GLM(y, X, family=sm.families.Binomial()).fit(cov_type="cluster", cov_kwds={"groups": groups})
    got = {(e.factor, e.level): e for e in report.factors}
    assert set(got) == {("model", "b"), ("model", "c"), ("condition", "cold")}
    for i, key in enumerate([("model", "b"), ("model", "c"), ("condition", "cold")], start=1):
        e = got[key]
        assert e.odds_ratio == pytest.approx(math.exp(fit.params[i]))
        assert (e.low, e.high) == pytest.approx(tuple(np.exp(fit.conf_int()[i])))
        assert e.estimable and e.reference == ("a" if key[0] == "model" else "warm")
    R = np.zeros((2, 4))
    R[0, 1] = R[1, 2] = 1
    assert got[("model", "b")].factor_p == pytest.approx(float(fit.wald_test(R, scalar=True).pvalue))
    assert got[("model", "b")].clusters == 12


def test_cli_by_two_fields_prints_the_factor_model(cli, session, store_url) -> None:  # type: ignore[no-untyped-def]
    convs = [Conv(m, condition=c) for m in ("a", "b") for c in ("warm", "cold") for _ in range(6)]
    run = add_run(session, convs)
    for i, c in enumerate(convs):
        tag(session, c, "x", JUDGE, present=(i % 3 == 0) if c.model == "a" else (i % 2 == 0), source="judge")
    res = cli("tally", run, "--coder", JUDGE, "--by", "model,condition", "--db", store_url, env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "factors (logistic regression" in res.output and "odds_ratio" in res.output
    md = cli("tally", run, "--coder", JUDGE, "--by", "model,condition", "--format", "md", "--db", store_url).output
    assert "Factors (logistic regression, cluster-robust" in md and "| x | model | b | a |" in md
