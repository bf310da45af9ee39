"""Issue 15: consensus states its tie rule and how many it dropped; agreement shows people vs people
first, then the judge vs each person, with intervals on κ; a judge tally carries its κ against
people and is flagged unvalidated below 50 human-coded units. Expected values are computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from runner.analysis import stats
from runner.analysis.tally import VALIDATION_MIN_UNITS, agreement_report, code_tally
from runner.export.tallies import render, table_of
from tests.analysis.conftest import Conv, add_codebook, add_run, tag

JUDGE = "judge:openai/j@actsv1"


def _fce_interval(a: list[int], b: list[int]) -> tuple[float, float, float]:
    """κ and its 95% interval from Fleiss, Cohen & Everitt's (1969) large-sample variance, by hand."""
    t = np.zeros((2, 2))
    for x, y in zip(a, b):
        t[x, y] += 1
    n = t.sum()
    p = t / n
    r, c = p.sum(1), p.sum(0)
    po, pe = np.trace(p), float((r * c).sum())
    k = (po - pe) / (1 - pe)
    A = sum(p[i, i] * (1 - (r[i] + c[i]) * (1 - k)) ** 2 for i in range(2))
    B = (1 - k) ** 2 * sum(p[i, j] * (c[i] + r[j]) ** 2 for i in range(2) for j in range(2) if i != j)
    C = (k - pe * (1 - k)) ** 2
    se = math.sqrt((A + B - C) / (n * (1 - pe) ** 2))
    z = norm.ppf(0.975)
    return k, k - z * se, k + z * se


def test_kappa_interval_against_hand_formula() -> None:
    a = [1] * 20 + [1] * 5 + [0] * 10 + [0] * 15
    b = [1] * 20 + [0] * 5 + [1] * 10 + [0] * 15
    got = stats.kappa_interval(a, b)
    assert (got.kappa, got.low, got.high) == pytest.approx(_fce_interval(a, b))
    assert got.units == 50


@pytest.fixture
def three_people(session):  # type: ignore[no-untyped-def]
    book = add_codebook(session, "acts", ["visual"])
    convs = [Conv("a") for _ in range(8)]
    run = add_run(session, convs)
    ana = [1, 1, 1, 0, 0, 1, 0, 1]
    ben = [1, 0, 1, 0, 1, 1, 0, 0]
    for c, x, y in zip(convs, ana, ben):
        tag(session, c, "visual" if x else "other", "ana", codebook=book)
        tag(session, c, "visual" if y else "other", "ben", codebook=book)
        tag(session, c, "visual", JUDGE, present=bool(x), source="judge", codebook=book)
    return session, run, convs, book, ana, ben


def test_consensus_states_its_rule_and_the_ties_dropped(three_people) -> None:  # type: ignore[no-untyped-def]
    session, run, _, _, ana, ben = three_people
    ties = sum(1 for x, y in zip(ana, ben) if x != y)
    report = code_tally(session, [run], coder="consensus", codes=["visual"])
    (row,) = report.rows
    assert row.n == 8 - ties == 5
    methods = " ".join(report.provenance.methods)
    assert "a tie (as many for as against) is left out" in methods and f"ties dropped: visual {ties}" in methods
    assert any(f"left out {ties} tied" in w for w in report.provenance.warnings)
    assert f"ties dropped: visual {ties}" in render(report, "md")


def test_agreement_people_first_then_judge_vs_each_person(three_people) -> None:  # type: ignore[no-untyped-def]
    session, run, _, _, ana, ben = three_people
    report = agreement_report(session, [run], codes=["visual"])
    assert [(r.coders, r.comparison) for r in report.rows] == [
        (("ana", "ben"), "people"), ((JUDGE, "ana"), "judge vs person"), ((JUDGE, "ben"), "judge vs person")]
    people = report.rows[0]
    assert (people.kappa, people.kappa_low, people.kappa_high) == pytest.approx(_fce_interval(ana, ben))
    judge_ben = report.rows[2]
    assert (judge_ben.kappa, judge_ben.kappa_low, judge_ben.kappa_high) == pytest.approx(_fce_interval(ana, ben))
    # the people's κ is shown even when a judge is present and no coder is named
    cols, rows = table_of(report)
    assert {"kappa_low", "kappa_high", "comparison"} <= set(cols) and rows[0]["coders"] == "ana vs ben"


def test_judge_figures_carry_their_validation(three_people) -> None:  # type: ignore[no-untyped-def]
    session, run, _, _, ana, ben = three_people
    report = code_tally(session, [run], coder=JUDGE, codes=["visual"])
    (v,) = report.validation
    # reference: the consensus of ana and ben, on the conversations where they do not tie
    keep = [i for i in range(8) if ana[i] == ben[i]]
    k = stats.cohen_kappa([ana[i] for i in keep], [ana[i] for i in keep])
    assert (v.reference, v.units) == ("consensus", len(keep))
    assert v.kappa == pytest.approx(k) if not math.isnan(k) else math.isnan(v.kappa)
    assert not v.validated and len(keep) < VALIDATION_MIN_UNITS
    assert any("unvalidated on visual" in w for w in report.provenance.warnings)
    _, rows = table_of(report)
    assert rows[0]["judge_kappa_units"] == len(keep) and rows[0]["judge_validated"] is False


def test_a_judge_with_fifty_human_units_is_validated(session) -> None:  # type: ignore[no-untyped-def]
    convs = [Conv("a") for _ in range(VALIDATION_MIN_UNITS)]
    run = add_run(session, convs)
    for i, c in enumerate(convs):
        tag(session, c, "visual" if i % 3 else "other", "ana")
        tag(session, c, "visual", JUDGE, present=bool(i % 3) if i else True, source="judge")
    (v,) = code_tally(session, [run], coder=JUDGE, codes=["visual"]).validation
    human = [1 if i % 3 else 0 for i in range(VALIDATION_MIN_UNITS)]
    judge = [1 if (i % 3 or i == 0) else 0 for i in range(VALIDATION_MIN_UNITS)]
    assert (v.units, v.validated, v.reference) == (VALIDATION_MIN_UNITS, True, "ana")
    k, low, high = _fce_interval(judge, human)
    assert (v.kappa, v.low, v.high) == pytest.approx((k, low, min(high, 1.0)))  # κ cannot exceed 1
