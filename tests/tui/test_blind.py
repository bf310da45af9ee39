"""Blind coding in the TUI: no screen shows a model, vendor or condition; the coder's own order;
tags made blind are marked; unblinding is one confirmed action, recorded in the store."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from runner.rigour.blind import blind_seed
from tests.tui.conftest import live_tags, q, settle, to_conversations, to_transcript
from tui.screens.codebook import CodebookScreen
from tui.screens.compare import CompareScreen
from tui.screens.conversations import ConversationsScreen
from tui.screens.preferences import PreferencesScreen
from tui.screens.review import ReviewScreen
from tui.screens.runs import RunsScreen
from tui.screens.tallies import TalliesScreen
from tui.screens.transcript import TranscriptScreen

BIG = (160, 50)
"""Tall and wide, so as much of each screen as possible is rendered (and checked)."""

FORBIDDEN = ("gpt-4o", "claude-sonnet", "sim-maker", "openai/gpt-4o", "anthropic/claude-sonnet-4", "sim/maker",
             "openai", "anthropic", "claude", "gpt", "sim", "warm", "cold", "SIMULATED")
"""The fixture's aliases, model strings, vendors and conditions (`tests.data.tui_fixtures`)."""
_LEAK = re.compile(r"(?<![\w])(?:" + "|".join(re.escape(f) for f in sorted(FORBIDDEN, key=len, reverse=True))
                   + r")(?![\w])", re.IGNORECASE)


def screen_text(app) -> str:
    """The text of the screen as rendered now (what a person sees), like `App.export_screenshot`."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True, record=True,
                      legacy_windows=False, safe_box=False, color_system="truecolor")
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text()


def leaks(app) -> list[str]:
    return sorted({m.group(0) for m in _LEAK.finditer(screen_text(app))})


def test_the_leak_check_sees_names_on_an_ordinary_screen(app_factory) -> None:
    """Not vacuous: the same check finds the names when the coder is not blind."""
    import asyncio

    async def go() -> list[str]:
        app = app_factory("ana")
        async with app.run_test(size=BIG) as pilot:
            await to_conversations(pilot)
            return leaks(app)

    found = asyncio.run(go())
    assert {"gpt-4o", "claude-sonnet", "warm", "cold", "openai"} <= {f.lower() for f in found}


async def test_every_screen_hides_models_vendors_and_conditions(app_factory, store) -> None:
    app = app_factory("cat", blind=True)
    async with app.run_test(size=BIG) as pilot:
        await settle(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loaded)
        assert leaks(app) == [] and "BLIND" in screen_text(app)
        screen = await to_conversations(pilot)
        assert leaks(app) == [], "conversations"
        text = screen_text(app)
        assert "#0001" in text and "BLIND" in text
        assert len(screen.rows) == len(store.conversations)
        # every transcript, the pair and the experimenter conversation included
        await pilot.press("enter")
        await settle(pilot, lambda: isinstance(app.screen, TranscriptScreen) and app.screen.loaded_id is not None)
        seen = set()
        for _ in range(len(store.conversations)):
            tr = app.screen
            seen.add(tr.loaded_id)
            assert leaks(app) == [], f"transcript {tr.loaded_id}"
            for cmd in ("s", "R"):  # the system prompt and the reasoning, expanded
                await pilot.press(cmd)
            await pilot.pause()
            assert leaks(app) == [], f"transcript {tr.loaded_id} expanded"
            before = tr.loaded_id
            await pilot.press("n")
            await settle(pilot, lambda: app.screen.loaded_id != before or not app.screen.app.workers._workers)
            if app.screen.loaded_id == before:
                break
        assert seen == set(store.conversations)
        await pilot.press("c")  # compare with another model: refused while blind
        await settle(pilot)
        assert isinstance(app.screen, TranscriptScreen)
        await pilot.press("escape")
        await settle(pilot, lambda: isinstance(app.screen, ConversationsScreen))
        await pilot.press("c", "up", "c")  # two marked conversations side by side
        await settle(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.loaded)
        assert leaks(app) == [], "compare"
        await pilot.press("m")  # another model of the same condition: refused
        await settle(pilot)
        assert leaks(app) == [], "compare after m"
        await pilot.press("escape")
        await settle(pilot, lambda: isinstance(app.screen, ConversationsScreen))
        for key, kind in (("f5", TalliesScreen), ("f6", PreferencesScreen), ("f4", ReviewScreen),
                          ("f3", CodebookScreen)):
            await pilot.press(key)
            await settle(pilot, lambda kind=kind: isinstance(app.screen, kind))
            assert leaks(app) == [], kind.__name__
            if kind is TalliesScreen:
                assert "group 1" in screen_text(app)
                for _ in range(4):  # every breakdown, every coder (the judge's name names a model)
                    await pilot.press("b")
                    await settle(pilot, lambda: app.screen.loaded)
                    assert leaks(app) == [], f"tallies by {app.screen.by}"
                    await pilot.press("c")
                    await settle(pilot, lambda: app.screen.loaded)
                    assert leaks(app) == [], f"tallies coder {app.screen.coder}"
            if kind is ReviewScreen:
                labelled = 0
                for _ in range(3):
                    text = screen_text(app)
                    assert not any(cid in text for cid in store.conversations), "a conversation id in the card"
                    item = app.screen.current()
                    if item is not None and item.conversation is not None:
                        assert re.search(r"of #\d{4}", text), "the card names the conversation by the coder's label"
                        labelled += 1
                    await pilot.press("s")
                    await settle(pilot)
                    assert leaks(app) == [], "review"
                assert labelled, "no card on a conversation was seen"
            await pilot.press("escape")
            await settle(pilot)
    rows = q(store, "SELECT * FROM coder_settings WHERE coder = 'cat' ORDER BY id")
    assert [(r["run_id"], r["unblinded_at"]) for r in rows] == [(None, None), (store.run_id, None)]
    assert rows[1]["seed"] == blind_seed(store.run_id, "cat")


async def test_filters_and_searches_that_would_name_a_condition_are_refused(app_factory) -> None:
    app = app_factory("cat", blind=True)
    async with app.run_test(size=BIG) as pilot:
        screen = await to_conversations(pilot)
        await pilot.press("slash", *"warm", "enter")
        await settle(pilot)
        assert screen.filter.search is None
        assert "Not while blind" in app.status_log[-1][1]
        await pilot.press("escape", "slash", *"lighthouse", "enter")
        await settle(pilot, lambda: screen.filter.search == "lighthouse" and screen.count is not None)
        assert screen.rows and leaks(app) == []
        await pilot.press("f")
        await settle(pilot)
        assert leaks(app) == [], "filter dialog"


async def test_order_is_the_coders_own_and_stays_the_same(app_factory, store) -> None:
    orders = {}
    for coder in ("cat", "dan", "cat"):
        app = app_factory(coder, blind=True)
        async with app.run_test(size=BIG) as pilot:
            screen = await to_conversations(pilot)
            order = list(screen.rows)
        assert sorted(order) == sorted(store.conversations)
        if coder in orders:
            assert orders[coder] == order  # the same coder, a later session: the same order
        orders[coder] = order
    assert orders["cat"] != orders["dan"]
    assert orders["cat"] != store.conversations  # not plan order


async def test_tags_made_blind_are_marked_and_unblinding_is_recorded(app_factory, store) -> None:
    app = app_factory("cat", blind=True)
    async with app.run_test(size=BIG) as pilot:
        tr = await to_transcript(pilot, row=0)
        first = tr.loaded_id
        order = list(app.screen_stack[-2].rows)
        assert order[0] == first
        await pilot.press("j", "1")
        await settle(pilot, lambda: live_tags(store, "cat"))
        assert [(t["conversation_id"], t["blind"]) for t in live_tags(store, "cat")] == [(first, 1)]
        await pilot.press("N")  # next uncoded by me, in my order
        await settle(pilot, lambda: app.screen.loaded_id == order[1])
        await pilot.press("p")
        await settle(pilot, lambda: app.screen.loaded_id == first)
        await pilot.press("U")
        await settle(pilot)
        await pilot.press("n")  # the confirmation's "no"
        await settle(pilot)
        assert q(store, "SELECT unblinded_at FROM coder_settings WHERE run_id = ?", store.run_id)[0]["unblinded_at"] \
            is None
        await pilot.press("U")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot, lambda: q(store, "SELECT unblinded_at FROM coder_settings WHERE run_id = ?",
                                      store.run_id)[0]["unblinded_at"] is not None)
        await settle(pilot, lambda: "BLIND" not in screen_text(app))  # the transcript is read again, unmasked
        assert leaks(app)
        await pilot.press("2")
        await settle(pilot, lambda: len(live_tags(store, "cat")) == 2)
        assert [t["blind"] for t in live_tags(store, "cat")] == [1, 0]
        await pilot.press("escape")
        await settle(pilot, lambda: isinstance(app.screen, ConversationsScreen) and app.screen.count is not None)
        assert "gpt-4o" in screen_text(app) and "BLIND" not in screen_text(app)  # no refresh key needed
    rows = q(store, "SELECT coder, run_id, unblinded_at FROM coder_settings WHERE coder = 'cat' ORDER BY id")
    assert rows[0]["run_id"] is None and rows[0]["unblinded_at"] is None  # still blind to other runs
    assert rows[1]["run_id"] == store.run_id and rows[1]["unblinded_at"] is not None


async def test_a_coder_who_opened_blind_stays_blind(app_factory, store) -> None:
    app = app_factory("cat", blind=True)
    async with app.run_test(size=BIG) as pilot:
        await to_conversations(pilot)
    later = app_factory("cat")  # no --blind this time
    async with later.run_test(size=BIG) as pilot:
        await to_conversations(pilot)
        assert leaks(later) == [] and "BLIND" in screen_text(later)
    other = app_factory("ana")
    async with other.run_test(size=BIG) as pilot:
        await to_conversations(pilot)
        assert leaks(other)  # another coder is not blind


@pytest.mark.parametrize("coder", ["ana"])
async def test_the_researcher_is_flagged_on_their_own_run(app_factory, store, coder) -> None:
    import sqlite3

    con = sqlite3.connect(store.path)
    con.execute("UPDATE runs SET researcher = ? WHERE id = ?", (coder, store.run_id))
    con.commit()
    con.close()
    app = app_factory(coder)
    async with app.run_test(size=BIG) as pilot:
        await to_transcript(pilot, row=0)
        assert "you ran this conversation" in screen_text(app)
    app = app_factory("ben")
    async with app.run_test(size=BIG) as pilot:
        await to_transcript(pilot, row=0)
        assert "you ran this conversation" not in screen_text(app)


async def test_a_blind_coder_sees_no_other_coders_tags(app_factory, store) -> None:
    """Coding blind is coding alone: the list has no tags column and the transcript shows only the coder's
    own tags (another coder's or a judge's codes would say what they saw, and where a code goes with one
    model, which model it is)."""
    others = q(store, "SELECT DISTINCT t.code, t.coder FROM tags t JOIN conversations c ON c.id = t.conversation_id "
                      "WHERE c.run_id = ? AND t.deleted_at IS NULL", store.run_id)
    assert others  # the fixture has tags by other coders (people and a judge)
    app = app_factory("dee", blind=True)
    async with app.run_test(size=BIG) as pilot:
        tr = await to_transcript(pilot, row=0)
        conv = app.screen_stack[-2]
        assert isinstance(conv, ConversationsScreen)
        assert "tags" not in [label for label, _ in conv.columns_layout]
        assert tr.tags == [] and tr.record is not None and tr.record.tags == []
        await pilot.press("j", "1")
        await settle(pilot, lambda: live_tags(store, "dee"))
        await settle(pilot, lambda: len(tr.tags) == 1)
        assert {t.coder for t in tr.tags} == {"dee"}
        shown = screen_text(app)
        for row in others:
            assert f"· {row['coder']}" not in shown and f"· {row['coder'].split('@')[0]}" not in shown
