"""The runs screen: every run with counts, live updates while a run writes, and navigation."""

from __future__ import annotations

from runner.store import StoreWriter
from runner.store.tables import ConversationRow
from tests.tui.conftest import SIZE, settle
from tui.screens.codebook import CodebookScreen
from tui.screens.conversations import ConversationsScreen
from tui.screens.review import ReviewScreen
from tui.screens.runs import RunsScreen
from tui.screens.tallies import TalliesScreen


def cells(screen: RunsScreen) -> list[list[str]]:
    table = screen.query_one("#runs")
    return [[str(c) for c in table.get_row(k)] for k in table.rows]


async def test_runs_listed_newest_first_with_counts(app_factory, store) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loaded)
        rows = cells(app.screen)
        assert [r[0] for r in rows] == [store.live_run_id, store.run_id]
        live, done = rows
        assert live[1:4] == ["breaks v1", "2026-01-05 12:00", "running"]
        assert live[4:9] == ["3", "0", "2", "1", "0"]  # convs, done, running, pending, error
        assert done[3:9] == ["done", "14", "13", "0", "0", "1"]
        assert done[9:] == ["32", "17,656", "$0.2760"]


async def test_live_run_updates_while_it_writes(app_factory, store) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loaded)
        screen = app.screen
        with StoreWriter(store.url) as w:  # a run writing from elsewhere
            w.update_sync(ConversationRow, "l00000000000", status="done", turns=4, cost=0.5)
            w.add_sync(ConversationRow(id="l00000000009", run_id=store.live_run_id, seq=9, model_alias="gpt-4o",
                                       litellm_model="openai/gpt-4o", vendor="openai", condition="warm",
                                       replicate=9))
        await settle(pilot, lambda: cells(screen)[0][4:9] == ["4", "1", "1", "2", "0"], timeout=120)
        assert cells(screen)[0][-1] == "$0.5000"


async def test_enter_opens_conversations_and_keys_navigate(app_factory, store) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loaded)
        await pilot.press("r")
        await settle(pilot)
        await pilot.press("down", "enter")
        await settle(pilot, lambda: isinstance(app.screen, ConversationsScreen))
        assert app.screen.run_id == store.run_id and app.current_run == store.run_id
        for key, screen_type in (("f3", CodebookScreen), ("f4", ReviewScreen), ("f5", TalliesScreen)):
            await pilot.press(key)
            await settle(pilot, lambda: isinstance(app.screen, screen_type))
        await pilot.press("f2")
        await settle(pilot, lambda: isinstance(app.screen, RunsScreen))
        assert len(app.screen_stack) == 2
        await pilot.press("down", "t")
        await settle(pilot, lambda: isinstance(app.screen, TalliesScreen))
        assert app.screen.run_id == store.run_id and not app.screen.all_runs


async def test_empty_store(tmp_path, monkeypatch) -> None:
    from tui.app import make_app

    monkeypatch.setenv("TEXTUAL_ANIMATIONS", "none")
    app = make_app(db_url=f"sqlite:///{tmp_path / 'empty.db'}", coder="ana", cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loaded)
        assert "No runs in this store yet" in str(app.screen.query_one("#runs-empty").render())
        await pilot.press("enter", "f3")
        await settle(pilot, lambda: isinstance(app.screen, CodebookScreen) and app.screen.loaded)
        assert "No codebook yet" in str(app.screen.query_one("#codebook-title").render())
