"""Charts: PNG and SVG files of each kind, with their provenance footer."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session

from runner.analysis.tally import code_tally, offer_tally, stop_tally
from runner.export import charts
from runner.store.db import make_engine, upgrade
from tests.analysis.conftest import Conv, add_run, tag


@pytest.fixture
def run(tmp_path):  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'c.db'}"
    upgrade(url)
    engine = make_engine(url)
    with Session(engine, expire_on_commit=False) as s:
        convs = ([Conv("maker", stop_turn=t, replies=["r"] * 5, offers=[("story_break", "accept")]) for t in (2, 3)] +
                 [Conv("functional", replies=["r"] * 4, offers=[("story_break", "decline")]) for _ in range(3)])
        run_id = add_run(s, convs)
        for c in convs:
            tag(s, c, "visual" if c.model == "maker" else "useful", "ana")
        yield s, run_id
    engine.dispose()


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_every_kind_in_both_formats(run, tmp_path: Path, suffix: str) -> None:  # type: ignore[no-untyped-def]
    session, run_id = run
    figures = {
        "tallies": charts.tallies_chart(code_tally(session, [run_id], coder="ana")),
        "stops": charts.stops_chart(stop_tally(session, [run_id])),
        "offers": charts.offers_chart(offer_tally(session, [run_id])),
    }
    for kind, fig in figures.items():
        path = charts.save(fig, tmp_path / f"{kind}{suffix}")
        data = path.read_bytes()
        assert len(data) > 2000
        if suffix == ".png":
            assert data.startswith(b"\x89PNG\r\n\x1a\n")
        else:
            text = data.decode()
            assert "<svg" in text and run_id in text  # the footer names the run (text kept as text)


def test_cli_chart_and_refusals(cli, run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    session, run_id = run
    db = str(session.get_bind().url)
    out = tmp_path / "stops.svg"
    res = cli("chart", run_id, "--kind", "stops", "--out", out, "--db", db)
    assert res.exit_code == 0, res.output
    assert out.exists() and "Kaplan-Meier" in out.read_text()
    assert cli("chart", run_id, "--kind", "pie", "--out", out, "--db", db).exit_code == 1
    assert cli("chart", run_id, "--out", tmp_path / "x.jpg", "--db", db).exit_code == 1
    with pytest.raises(ValueError):
        charts.save(charts.stops_chart(stop_tally(session, [run_id])), tmp_path / "x.pdf")
