"""Issue 15: the median stop turn carries its interval and groups get a log-rank test; offers report
accept / decline / unclear separately. Expected values: scipy directly, and counts from sqlite3."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from scipy import stats as sps

from runner.analysis import stats
from runner.analysis.tally import offer_tally, stop_tally
from runner.export.tallies import render
from tests.analysis.conftest import Conv, add_run


def _km_band(durations: list[int], events: list[bool]):  # type: ignore[no-untyped-def]
    d, e = np.array(durations, float), np.array(events, bool)
    sf = sps.ecdf(sps.CensoredData(uncensored=d[e], right=d[~e])).sf
    ci = sf.confidence_interval(method="log-log")
    keep = [i for i, t in enumerate(sf.quantiles) if t in set(d[e])]
    lo = np.where(np.isnan(ci.low.probabilities), sf.probabilities, ci.low.probabilities)[keep]
    hi = np.where(np.isnan(ci.high.probabilities), sf.probabilities, ci.high.probabilities)[keep]
    return sf.quantiles[keep], lo, hi


def test_median_interval_where_the_band_crosses_one_half() -> None:
    durations = [2, 3, 3, 4, 5, 5, 6, 7, 8, 9, 9, 10]
    events = [True, True, True, False, True, True, True, False, True, True, False, False]
    curve = stats.kaplan_meier(durations, events)
    times, lo, hi = _km_band(durations, events)
    assert curve.median_low == next(t for t, v in zip(times, lo) if v <= 0.5)
    up = [t for t, v in zip(times, hi) if v <= 0.5]
    assert curve.median_high == (up[0] if up else None)
    assert curve.median_low <= curve.median <= (curve.median_high or np.inf)


def test_logrank_two_groups_is_scipys_and_k_groups_reduce_to_it() -> None:
    a = ([2, 3, 3, 6], [True, True, True, False])
    b = ([4, 5, 6, 6, 6], [True, True, False, False, False])
    got = stats.logrank([a, b])
    ref = sps.logrank(sps.CensoredData(uncensored=[2, 3, 3], right=[6]),
                      sps.CensoredData(uncensored=[4, 5], right=[6, 6, 6]))
    assert (got.test, got.p, got.statistic) == ("logrank", pytest.approx(ref.pvalue), pytest.approx(ref.statistic ** 2))
    # the k-sample statistic, written out, gives scipy's value for two groups too
    c = ([1, 2, 6], [True, True, False])
    three = stats.logrank([a, b, c])
    assert three.dof == 2 and 0 <= three.p <= 1
    stat, dof = stats._logrank_k([(np.array(x, float), np.array(y, bool)) for x, y in (a, b)])
    assert (stat, dof) == (pytest.approx(ref.statistic ** 2), 1)
    assert stats.logrank([a, b, ([], [])]).p == pytest.approx(ref.pvalue)  # an empty group is dropped


def test_stop_tally_reports_median_interval_and_logrank(session) -> None:  # type: ignore[no-untyped-def]
    replies = ["r"] * 8
    convs = ([Conv("s", replies=replies, stop_turn=t) for t in (2, 2, 3, 3, 3, 4, 5)] + [Conv("s", replies=replies)]
             + [Conv("k", replies=replies, stop_turn=t) for t in (5, 6, 7)] + [Conv("k", replies=replies)] * 1)
    run = add_run(session, convs)
    report = stop_tally(session, [run])
    rows = {r.group["model"]: r for r in report.rows}
    s_curve = stats.kaplan_meier([2, 2, 3, 3, 3, 4, 5, 8], [True] * 7 + [False])
    assert (rows["s"].median_stop_turn, rows["s"].median_low, rows["s"].median_high) == (
        s_curve.median, s_curve.median_low, s_curve.median_high)
    ref = sps.logrank(sps.CensoredData(uncensored=[2, 2, 3, 3, 3, 4, 5], right=[8]),
                      sps.CensoredData(uncensored=[5, 6, 7], right=[8]))
    assert report.test is not None and report.test.p == pytest.approx(ref.pvalue)
    md = render(report, "md")
    assert "logrank" in md and "simulated data" in md


def test_offers_count_unclear_apart_from_the_raw_table(session, store_url) -> None:  # type: ignore[no-untyped-def]
    convs = ([Conv("stopper", condition="exercise", offers=[("break", "unclear")]) for _ in range(30)]
             + [Conv("maker", condition="exercise", offers=[("break", "accept")]) for _ in range(8)]
             + [Conv("maker", condition="exercise", offers=[("break", "decline")]) for _ in range(2)])
    run = add_run(session, convs)
    report = offer_tally(session, [run])
    con = sqlite3.connect(store_url.removeprefix("sqlite:///"))
    raw = {(m, k): n for m, k, n in con.execute(
        "SELECT c.model_alias, o.classification, COUNT(*) FROM offers o JOIN conversations c ON c.id = o.conversation_id "
        "GROUP BY 1, 2")}
    con.close()
    rows = {r.group["model"]: r for r in report.rows}
    st = rows["stopper"]
    # 30 of 30 unclear: acceptance among the classified is undefined, never "0% accepted"
    assert (st.n, st.accepted, st.declined, st.unclear, st.classified) == (30, 0, 0, raw[("stopper", "unclear")], 0)
    assert np.isnan(st.proportion) and st.unclear_share == 1.0
    assert st.unclear_low == pytest.approx(stats.wilson(30, 30).low)
    mk = rows["maker"]
    assert (mk.accepted, mk.declined) == (raw[("maker", "accept")], raw[("maker", "decline")])
    assert (mk.proportion, mk.low) == (0.8, stats.wilson(8, 10).low)
    assert report.tests == []  # only one group has classified answers: nothing to compare
    assert any("classified of offers" in w for w in report.provenance.warnings)
