"""Tallies from a store built by hand: counts, coder choice, tests, paraphrases, stops, offers, agreement."""

from __future__ import annotations

import math

import pytest
from scipy import stats as sps
from sklearn.metrics import cohen_kappa_score

from runner.analysis import stats
from runner.analysis.tally import (
    TallyError,
    agreement_report,
    available_coders,
    code_tally,
    offer_tally,
    stop_tally,
    tally_rows,
)
from tests.analysis.conftest import Conv, add_codebook, add_run, tag

JUDGE = "judge:openai/fake-gpt@acts v1"


def _rows(report, code):  # type: ignore[no-untyped-def]
    return {tuple(r.group.values()): r for r in report.rows if r.code == code}


@pytest.fixture
def coded(session):  # type: ignore[no-untyped-def]
    """12 conversations of model a, 12 of b; ana and ben tag `visual`, the judge records both ways."""
    book = add_codebook(session, "acts", ["visual", "useful"])
    convs = [Conv("a") for _ in range(12)] + [Conv("b") for _ in range(12)]
    run = add_run(session, convs)
    for i, c in enumerate(convs):
        a_side = c.model == "a"
        visual = (i < 9) if a_side else (i - 12 < 3)
        if visual:
            tag(session, c, "visual", "ana", codebook=book)
        else:
            tag(session, c, "useful", "ana", codebook=book)
        ben_visual = visual if i % 6 else not visual  # ben disagrees on every sixth
        tag(session, c, "visual" if ben_visual else "useful", "ben", codebook=book)
        tag(session, c, "visual", JUDGE, present=visual, codebook=book, source="judge")
    return session, run, convs, book


def test_person_tally_counts_and_wilson(coded) -> None:  # type: ignore[no-untyped-def]
    session, run, _, _ = coded
    report = code_tally(session, [run], by=["model"], coder="ana")
    visual = _rows(report, "visual")
    assert (visual[("a",)].n, visual[("a",)].count) == (12, 9)
    assert (visual[("b",)].n, visual[("b",)].count) == (12, 3)
    w = stats.wilson(9, 12)
    assert (visual[("a",)].low, visual[("a",)].high) == (w.low, w.high)
    # a code the person did not apply in a conversation they coded counts as absent
    useful = _rows(report, "useful")
    assert (useful[("a",)].count, useful[("b",)].count) == (3, 9)
    assert report.provenance.coders == ("ana",) and report.provenance.codebooks == ("acts v1",)
    assert report.provenance.n == 24 and report.provenance.protocols[0]["sha256"] == "ab" * 32


def test_between_groups_test_and_bh(coded) -> None:  # type: ignore[no-untyped-def]
    session, run, _, _ = coded
    report = code_tally(session, [run], coder="ana")
    tests = {t.code: t for t in report.tests}
    table = [[9, 3], [3, 9]]
    expected = sps.chi2_contingency(table, correction=False)
    assert tests["visual"].test == "chi2"
    assert tests["visual"].p == pytest.approx(expected.pvalue)
    assert tests["visual"].cramers_v == pytest.approx(math.sqrt(expected.statistic / 24))
    adjusted = stats.bh_adjust([tests["visual"].p, tests["useful"].p])
    assert [tests["visual"].p_adjusted, tests["useful"].p_adjusted] == pytest.approx(adjusted)


def test_judge_tally_is_never_mixed_with_people(coded) -> None:  # type: ignore[no-untyped-def]
    session, run, _, _ = coded
    report = code_tally(session, [run], coder="judge")
    assert report.provenance.coders == (JUDGE,)
    assert [r.code for r in report.rows] == ["visual", "visual"]  # the judge coded only `visual`
    assert _rows(report, "visual")[("a",)].count == 9


def test_consensus_majority_and_ties_left_out(coded) -> None:  # type: ignore[no-untyped-def]
    session, run, convs, book = coded
    report = code_tally(session, [run], coder="consensus")
    # two coders: they agree on 20 of 24; the 4 split ones are ties and are left out
    visual = _rows(report, "visual")
    assert visual[("a",)].n + visual[("b",)].n == 20
    tag(session, convs[0], "visual", "cy", codebook=book)  # a third voice breaks one tie
    report = code_tally(session, [run], coder="consensus")
    assert sum(r.n for r in report.rows if r.code == "visual") == 21


def test_default_coder_and_errors(coded, session) -> None:  # type: ignore[no-untyped-def]
    _, run, _, _ = coded
    assert code_tally(session, [run]).provenance.coder_rule == "consensus"
    assert available_coders(session, [run]) == {"people": ["ana", "ben"], "judges": [JUDGE], "builtin": ["builtin"]}
    with pytest.raises(TallyError, match="no tags by 'zoe'"):
        code_tally(session, [run], coder="zoe")
    with pytest.raises(TallyError, match="no run nope"):
        code_tally(session, ["nope"])
    with pytest.raises(TallyError, match="cannot group by"):
        code_tally(session, [run], by=["colour"])
    rows = tally_rows(session, [run], by=("model",), coder="ana")
    assert {r.code for r in rows} == {"visual", "useful"}


def test_deleted_tags_do_not_count(session) -> None:  # type: ignore[no-untyped-def]
    convs = [Conv("a"), Conv("a")]
    run = add_run(session, convs)
    tag(session, convs[0], "x", "ana")
    tag(session, convs[1], "x", "ana", deleted=True)
    tag(session, convs[1], "y", "ana")
    row = _rows(code_tally(session, [run], coder="ana"), "x")[("a",)]
    assert (row.n, row.count) == (2, 1)


def test_paraphrases_pooled_and_ranking_flip(session) -> None:  # type: ignore[no-untyped-def]
    convs = []
    plan = {("a", "p1"): 8, ("b", "p1"): 2, ("a", "p2"): 3, ("b", "p2"): 7}  # a > b under p1, a < b under p2
    for (model, cond), hits in plan.items():
        for i in range(10):
            c = Conv(model, condition=cond)
            convs.append((c, i < hits))
    run = add_run(session, [c for c, _ in convs])
    for c, hit in convs:
        tag(session, c, "theme", JUDGE, present=hit, source="judge")
    report = code_tally(session, [run], by=["model"], coder="judge", paraphrases=["p1", "p2"])
    by_model = {r.group["model"]: r for r in report.paraphrases}
    a = by_model["a"]
    assert a.per_paraphrase["p1"].count == 8 and a.per_paraphrase["p2"].count == 3
    # issue 15: the pooled estimate is now the random-effects one (checked by hand in test_paraphrases.py);
    # with this much heterogeneity it is close to the plain mean of the two paraphrases
    assert a.pooled.estimate == pytest.approx((0.8 + 0.3) / 2, abs=0.01)
    assert a.pooled.spread == pytest.approx(0.5)
    assert a.pooled.low < a.pooled.estimate < a.pooled.high
    (t,) = report.tests
    assert t.ranking_flips and "p1" in t.flip_detail and "p2" in t.flip_detail
    assert "paraphrase" in report.provenance.by
    steady = code_tally(session, [run], by=["model"], coder="judge", paraphrases=["p1"])
    assert not steady.tests[0].ranking_flips
    with pytest.raises(TallyError, match="p9"):
        code_tally(session, [run], coder="judge", paraphrases=["p1", "p9"])


def test_stop_tally_kaplan_meier(session) -> None:  # type: ignore[no-untyped-def]
    replies = ["r"] * 6
    convs = ([Conv("s", replies=replies, stop_turn=t) for t in (2, 3, 3)] + [Conv("s", replies=replies)] +
             [Conv("k", replies=replies) for _ in range(3)] + [Conv("k", replies=replies, stop_turn=5)])
    run = add_run(session, convs)
    report = stop_tally(session, [run])
    rows = {r.group["model"]: r for r in report.rows}
    assert (rows["s"].n, rows["s"].stopped, rows["s"].stop_turns, rows["s"].censored_turns) == (4, 3, [2, 3, 3], [6])
    assert rows["s"].median_stop_turn == 3
    curve = report.curves["s"]
    expected = stats.kaplan_meier([2, 3, 3, 6], [True, True, True, False])
    assert curve.survival == expected.survival == pytest.approx((0.75, 0.25))
    assert rows["k"].stopped == 1 and rows["k"].median_stop_turn is None
    w = stats.wilson(3, 4)
    assert (rows["s"].low, rows["s"].high) == (w.low, w.high)


def test_offer_tally_per_model_and_condition(session) -> None:  # type: ignore[no-untyped-def]
    convs = ([Conv("a", condition="exercise", offers=[("story_break", "accept")]) for _ in range(5)] +
             [Conv("a", condition="exercise", offers=[("story_break", "decline"), ("story_break", "unclear")])] +
             [Conv("b", condition="exercise", offers=[("story_break", "decline")]) for _ in range(4)] +
             [Conv("b", condition="cold")])
    run = add_run(session, convs)
    report = offer_tally(session, [run])
    rows = {(r.group["model"], r.group["condition"]): r for r in report.rows}
    a = rows[("a", "exercise")]
    assert (a.n, a.accepted, a.declined, a.unclear) == (7, 5, 1, 1)
    # issue 15: acceptance is computed among the classified (5 of 6), unclear reported beside it (1 of 7);
    # before, unclear counted as "not accepted" (5 of 7)
    assert (a.classified, a.proportion) == (6, 5 / 6)
    assert (a.low, a.high) == (stats.wilson(5, 6).low, stats.wilson(5, 6).high)
    assert (a.unclear_share, a.unclear_low) == (1 / 7, stats.wilson(1, 7).low)
    assert ("b", "cold") not in rows
    (t,) = report.tests
    assert t.test == "fisher" and t.p == pytest.approx(sps.fisher_exact([[5, 1], [0, 4]]).pvalue)


def test_agreement_report_against_sklearn(coded) -> None:  # type: ignore[no-untyped-def]
    session, run, convs, _ = coded
    report = agreement_report(session, [run], coders=["ana", "ben"], codes=["visual"])
    (row,) = report.rows
    ana = [1 if (i < 9 if c.model == "a" else i - 12 < 3) else 0 for i, c in enumerate(convs)]
    ben = [v if i % 6 else 1 - v for i, v in enumerate(ana)]
    assert row.kappa == pytest.approx(cohen_kappa_score(ana, ben))
    assert row.raw == pytest.approx(20 / 24)
    assert row.alpha == pytest.approx(stats.krippendorff_alpha([ana, ben]))
    assert row.disagreements == 4 == len(report.disagreements)
    assert {d.conversation_id for d in report.disagreements} == {convs[i].id for i in (0, 6, 12, 18)}


def test_agreement_judge_against_each_person(coded) -> None:  # type: ignore[no-untyped-def]
    session, run, _, _ = coded
    report = agreement_report(session, [run], codes=["visual"])
    # issue 15: people vs people always comes first (before, an all-coders row hid it), then the judge
    # against each person
    people = report.rows[0]
    assert people.coders == ("ana", "ben") and people.comparison == "people"
    assert people.kappa_low < people.kappa < people.kappa_high
    assert [r.coders for r in report.rows] == [("ana", "ben"), (JUDGE, "ana"), (JUDGE, "ben")]
    pairs = {r.coders: r for r in report.rows[1:]}
    assert pairs[(JUDGE, "ana")].kappa == pytest.approx(1.0)  # the judge agrees with ana everywhere
    assert pairs[(JUDGE, "ben")].disagreements == 4


def test_builtin_coder_tally(session) -> None:  # type: ignore[no-untyped-def]
    convs = [Conv("a", stop_turn=1, offers=[("break", "accept")]), Conv("a", offers=[("break", "decline")]),
             Conv("b")]
    run = add_run(session, convs)
    report = code_tally(session, [run], coder="builtin")
    stop = _rows(report, "stop:stop_phrase")
    assert (stop[("a",)].n, stop[("a",)].count, stop[("b",)].n) == (2, 1, 1)
    accept = _rows(report, "offer:accept")
    assert (accept[("a",)].n, accept[("a",)].count, accept[("b",)].n) == (2, 1, 0)


def test_judge_shorthand_is_refused_when_several_judges_coded(coded) -> None:  # type: ignore[no-untyped-def]
    session, run, convs, _ = coded
    other = "judge:anthropic/claude-fake@stopsv1"
    tag(session, convs[0], "stop", other, present=False, source="judge")
    with pytest.raises(TallyError, match="several judges"):
        code_tally(session, [run], coder="judge")
    assert code_tally(session, [run], coder="judge", codes=["visual"]).provenance.coders == (JUDGE,)
    assert code_tally(session, [run], coder=other).provenance.coders == (other,)
