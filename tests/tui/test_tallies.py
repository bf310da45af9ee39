"""Tallies: code × group with n, count, percent and the Wilson interval; coder, breakdown and scope switch."""

from __future__ import annotations

from tests.tui.conftest import SIZE, settle
from tui.screens.tallies import TalliesScreen
from tui.widgets.interval_chart import draw_bar


async def open_tallies(pilot) -> TalliesScreen:
    app = pilot.app
    await settle(pilot, lambda: getattr(app.screen, "loaded", False))
    await pilot.press("down", "t")
    await settle(pilot, lambda: isinstance(app.screen, TalliesScreen) and app.screen.loaded)
    return app.screen


def table(screen: TalliesScreen) -> list[list[str]]:
    t = screen.query_one("#tallies")
    return [[str(c) for c in t.get_row(k)] for k in t.rows]


async def test_tally_rows_and_chart(app_factory) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_tallies(pilot)
        assert "consensus" in screen.coders and "ana" in screen.coders and "builtin" in screen.coders
        rows = table(screen)
        assert rows, "no tally rows"
        # default rule: consensus of ana and ben (both coded the first three gpt-4o conversations)
        gpt_humour = next(r for r in rows if r[0] == "humour" and r[1] == "gpt-4o")
        assert gpt_humour[2:5] == ["3", "1", "33.3"]
        low, high = (float(x) for x in gpt_humour[5].split(" – "))
        assert 0 < low < 33.3 < high < 100
        chart = str(screen.query_one("#tallies-chart").render())
        assert "humour" in chart and "┣" in chart and "n=3" in chart


async def test_switch_coder_breakdown_and_scope(app_factory, store) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_tallies(pilot)
        seen = []
        for _ in range(len(screen.coders) + 1):
            await pilot.press("c")
            await settle(pilot, lambda: screen.loaded)
            seen.append(screen.coder)
            if screen.coder == "ana":
                ana = table(screen)
                assert next(r for r in ana if r[0] == "boredom")[2:4] == ["3", "1"]
            if screen.coder and screen.coder.startswith("judge:"):
                judge = table(screen)
                assert {r[0] for r in judge} == {"curiosity"}
                assert next(r for r in judge if r[1] == "gpt-4o")[2:4] == ["3", "1"]
        assert seen[-1] is None and "consensus" in seen
        await pilot.press("b")
        await settle(pilot, lambda: screen.loaded and screen.by == "condition")
        assert {r[1] for r in table(screen)} <= {"warm", "cold"}
        await pilot.press("b", "b")
        await settle(pilot, lambda: screen.by == "protocol")
        assert {r[1] for r in table(screen)} == {"breaks"}
        await pilot.press("a")
        await settle(pilot, lambda: screen.all_runs)
        assert "all runs" in str(screen.query_one("#tallies-title").render())


def test_bar_draws_interval() -> None:
    bar = draw_bar(0.5, 0.25, 0.75, 20).plain
    assert len(bar) == 20
    assert bar.index("┣") == 5 and bar.index("┫") == 14
    assert bar[:5] == "█" * 5 and bar[15:] == " " * 5
    assert draw_bar(float("nan"), float("nan"), float("nan"), 10).plain == " " * 10
