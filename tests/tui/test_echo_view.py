"""Echo in the TUI: the mean echo in the conversations list, the per-turn echo in the telemetry panel."""

from __future__ import annotations

import sqlite3

import pytest

from tests.tui.conftest import settle, to_conversations, to_transcript
from tui.screens.conversations import cell_text
from tui.widgets.telemetry import TelemetryPanel


def _stored(path, conversation_id: str) -> list[tuple[int, float | None]]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT idx, echo FROM messages WHERE conversation_id = ? AND role = 'assistant' "
                          "ORDER BY idx", (conversation_id,)).fetchall()


@pytest.mark.asyncio
async def test_the_list_shows_each_conversations_mean_echo(app_factory, store) -> None:
    app = app_factory()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await to_conversations(pilot)
        table = screen.query_one("#conversations")
        lines = [table.get_row_at(i)[0].plain for i in range(table.row_count)]
        layout = screen.columns_layout
        shown = {line.split()[0]: cell_text(line, "echo", layout) for line in lines}
    for seq, cid in enumerate(store.conversations[:12]):
        values = [e for _, e in _stored(store.path, cid) if e is not None]
        assert values, cid
        assert shown[str(seq)] == f"{sum(values) / len(values):.2f}"
    # the fixture's first conversation: replies at 0.00 and 0.20 (see the telemetry test) -> 0.10
    assert shown["0"] == "0.10"


@pytest.mark.asyncio
async def test_the_telemetry_panel_shows_each_replys_echo(app_factory, store) -> None:
    app = app_factory()
    async with app.run_test(size=(120, 40)) as pilot:
        await to_transcript(pilot, row=0)
        panel = pilot.app.screen.query_one(TelemetryPanel)
        await settle(pilot, lambda: panel.row_count > 0)
        cells = [[c.plain for c in panel.get_row_at(i)] for i in range(panel.row_count)]
    stored = _stored(store.path, store.conversations[0])
    assert [(int(r[0]), r[-1]) for r in cells] == [(idx, f"{e:.2f}") for idx, e in stored]
    # by hand: reply 1 "I'd like to find out how tides work, then draw a diagram of the moon's pull." shares no
    # content bigram with the system prompt or the first user turn: 0/6. Reply 2 "Yes, I'd love to write a story
    # about a lighthouse keeper." -> yes love write story lighthouse keeper: (write story) is in the offer
    # "...take a break and write a story instead?": 1/5
    assert [r[-1] for r in cells] == ["0.00", "0.20"]


def test_echo_at_80x24(snap_compare, app_factory) -> None:
    async def before(pilot) -> None:
        await to_transcript(pilot, row=0)
        await pilot.press("i")  # the telemetry panel starts hidden below 120 columns
        await settle(pilot, lambda: pilot.app.screen.query_one(TelemetryPanel).display)

    assert snap_compare(app_factory(), terminal_size=(80, 24), run_before=before)


@pytest.mark.asyncio
async def test_the_tallies_screen_breaks_down_by_echo_band(app_factory) -> None:
    from tests.tui.test_tallies import open_tallies, table

    app = app_factory()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_tallies(pilot)
        await pilot.press("b", "b", "b", "b")
        await settle(pilot, lambda: screen.loaded and screen.by == "echo-band")
        rows = table(screen)
    assert rows and {r[1] for r in rows} <= {"low", "mid", "high", "none"}
    # the consensus units are the first three conversations (ana and ben coded them): mean echo 0.10 (mid:
    # the bound belongs to mid), 0.00 and 0.00 (low), as the conversations list shows
    assert {r[1] for r in rows} == {"low", "mid"}
