"""Charts fit for a paper (issue 15): 20 models are small multiples with a colour-blind-safe palette that
never repeats, zero bars are marked, every survival curve carries its censoring marks, the offers chart
draws the groups the offers tally shows. The PNGs were also looked at by eye."""

from __future__ import annotations

from pathlib import Path

import pytest
from matplotlib.collections import PolyCollection
from matplotlib.patches import Rectangle
from sqlmodel import Session

from runner.analysis.tally import code_tally, offer_tally, stop_tally
from runner.export import charts
from runner.store.db import make_engine, upgrade
from tests.analysis.conftest import Conv, add_run, tag

JUDGE = "judge:j@bv1"


@pytest.fixture
def twenty(tmp_path):  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'c.db'}"
    upgrade(url)
    engine = make_engine(url)
    with Session(engine, expire_on_commit=False) as s:
        convs = [Conv(f"model-{m:02d}", condition=cond, replies=["r"] * 5,
                      stop_turn=(r % 3 + 2) if m % 4 == 0 and r < 3 else None,
                      offers=[("story_break", ("accept", "decline", "unclear")[(m + r) % 3])])
                 for m in range(20) for cond in ("warm", "cold") for r in range(4)]
        run = add_run(s, convs)
        for i, c in enumerate(convs):
            tag(s, c, "visual", JUDGE, present=int(c.model[-2:]) % 5 != 0 and i % 2 == 0, source="judge")
        yield s, run
    engine.dispose()


def _visible_axes(fig):  # type: ignore[no-untyped-def]
    return [ax for ax in fig.axes if ax.get_visible()]


def test_palette_never_repeats() -> None:
    pairs = charts.palette(20)
    assert len(set(pairs)) == 20
    assert [c for c, _ in pairs[:8]] == list(charts.OKABE_ITO)


def test_twenty_models_are_small_multiples(twenty, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    session, run = twenty
    report = code_tally(session, [run], by=["model", "condition"], coder=JUDGE)
    fig = charts.tallies_chart(report)
    axes = _visible_axes(fig)
    assert len(axes) == 20 and [ax.get_title() for ax in axes][:2] == ["model-00", "model-01"]
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == ["warm", "cold"]  # 2 entries, not 40
    colours = {tuple(p.get_facecolor()) for ax in axes for p in ax.patches if isinstance(p, Rectangle)}
    assert len(colours) == 2  # one colour per condition, the same in every panel
    # zero bars are marked with a "0", one per zero cell
    zeros = sum(1 for r in report.rows if r.n and r.count == 0)
    assert zeros > 0
    assert sum(1 for ax in axes for t in ax.texts if t.get_text() == "0") == zeros
    # every bar says what it is out of
    assert sum(1 for ax in axes for t in ax.texts if t.get_text() == "4/4") == sum(1 for r in report.rows if r.n == 4)
    charts.save(fig, tmp_path / "t.png")


def test_every_survival_curve_has_its_censoring_marks(twenty) -> None:  # type: ignore[no-untyped-def]
    session, run = twenty
    few = stop_tally(session, [run], by=["model"])
    fig = charts.stops_chart(few)
    axes = _visible_axes(fig)
    assert len(axes) == 20  # more than eight groups: faceted
    censor = [line for ax in axes for line in ax.get_lines() if line.get_marker() == "|"]
    assert len(censor) == sum(1 for r in few.rows if r.censored_turns) == 20
    assert "log-rank" in fig._suptitle.get_text() and "simulated data" in fig._suptitle.get_text()


def test_overlapping_curves_stay_distinguishable(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'o.db'}"
    upgrade(url)
    engine = make_engine(url)
    with Session(engine, expire_on_commit=False) as s:
        convs = [Conv(m, replies=["r"] * 4, stop_turn=t) for m in ("a", "b", "c") for t in (2, 3, None)]
        run = add_run(s, convs)
        fig = charts.stops_chart(stop_tally(s, [run]))
    engine.dispose()
    (ax,) = _visible_axes(fig)
    markers = [line for line in ax.get_lines() if line.get_marker() not in ("|", "None", None, "")]
    assert len({m.get_marker() for m in markers}) == 3  # one marker shape per curve
    xs = [tuple(m.get_xdata()) for m in markers]
    assert len(set(xs)) == 3  # identical curves: their markers are dodged apart
    assert len([line for line in ax.get_lines() if line.get_marker() == "|"]) == 3
    assert len({line.get_linestyle() for line in ax.get_lines() if line.get_marker() in ("None", None, "")}) == 3
    assert len([c for c in ax.collections if isinstance(c, PolyCollection)]) == 3  # a band per curve


def test_offers_chart_draws_what_the_tally_shows(twenty) -> None:  # type: ignore[no-untyped-def]
    session, run = twenty
    report = offer_tally(session, [run])  # model x condition, as `latitude tally --what offers`
    fig = charts.offers_chart(report)
    axes = _visible_axes(fig)
    assert len(axes) == len({r.group["model"] for r in report.rows}) == 20
    (legend,) = fig.legends
    assert sorted(t.get_text() for t in legend.get_texts()) == ["cold", "hatched: share unclear, of offers made", "warm"]
    labels = " | ".join(t.get_text() for ax in axes for t in ax.texts)
    for r in report.rows:  # accepted/classified and unclear/made per (model, condition), none pooled
        assert f"{r.accepted}/{r.classified}" in labels and f"{r.unclear}/{r.n}" in labels
    bars = sum(1 for ax in axes for t in ax.texts if "/" in t.get_text())
    assert bars == 2 * len(report.rows)
