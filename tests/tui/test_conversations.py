"""The conversations screen: the table, paging, filters on every column, full-text search."""

from __future__ import annotations

import json
import re
from pathlib import Path

from sqlmodel import Session

from runner.store.db import make_engine, upgrade
from runner.store.tables import ConversationRow, MessageRow, RunRow
from tests.tui.conftest import SIZE, q, settle, to_conversations
from tui.screens.compare import CompareScreen
from tui.screens.conversations import ConversationsScreen, cell_text
from tui.screens.modals import ChoiceModal, FilterModal
from tui.screens.runs import RunsScreen


def column(screen: ConversationsScreen, label: str) -> list[str]:
    table = screen.query_one("#conversations")
    return [cell_text(table.get_row(row_key)[0].plain, label, screen.columns_layout) for row_key in table.rows]


async def test_table_columns_and_counts(app_factory, store) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await to_conversations(pilot)
        assert list(screen.rows) == store.conversations
        assert screen.count == 14 and screen.total == 14
        assert column(screen, "model")[:5] == ["gpt-4o"] * 4 + ["claude-sonnet"]
        assert column(screen, "model")[8] == "sim-maker sim"
        # columns are sized to their content when there is room (was cut to "gpt-4o ↔ claude-s…")
        assert column(screen, "model")[12] == "gpt-4o ↔ claude-sonnet"
        assert column(screen, "stop")[1] == "stop_phrase" and column(screen, "stop")[10] == "error:timeout"
        # the echo column took the last cells of room at 120 columns: the longest stop reason is cut by one
        assert column(screen, "stop")[13] == "experimenter_end…"
        assert column(screen, "offers")[:3] == ["✓1", "?1", "?1"]
        assert column(screen, "tags")[0] == "curiosity, vis…"  # the room left at 120 columns (beside echo)
        assert column(screen, "echo")[:2] == ["0.10", "0.00"]
        assert column(screen, "cost")[0] == "$0.0125"
        title = str(screen.query_one("#conversations-title").render())
        assert "14 conversations" in title


async def test_search_finds_message_text(app_factory, store) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await to_conversations(pilot)
        await pilot.press("slash")
        assert screen.query_one("#search").has_focus
        await pilot.press(*"tides", "enter")
        await settle(pilot, lambda: screen.filter.search == "tides" and screen.count is not None)
        hits = list(screen.rows)
        assert hits and set(hits) <= set(store.conversations)
        assert store.pair in hits  # "Let's talk about tides" in the pair
        assert screen.count == len(hits) < 14
        assert "of 14 conversations" in str(screen.query_one("#conversations-title").render())
        assert screen.query_one("#conversations").has_focus
        # a phrase and an exclusion
        await pilot.press("slash")
        screen.query_one("#search").value = '"lighthouse keeper" -cat'
        await pilot.press("enter")
        await settle(pilot, lambda: screen.filter.search == '"lighthouse keeper" -cat' and screen.count is not None)
        # conversation-level: the phrase in some message, "cat" in none (counted with sqlite3 + Python)
        by_conv: dict[str, list[str]] = {}
        for m in q(store, "SELECT conversation_id, content, reasoning FROM messages ORDER BY idx"):
            by_conv.setdefault(m["conversation_id"], []).append(f"{m['content']} {m['reasoning'] or ''}".lower())
        expected = {c for c, texts in by_conv.items()
                    if any(re.search(r"\blighthouse\W+keeper\b", t) for t in texts)
                    and not any(re.search(r"\bcat\b", t) for t in texts)}
        assert set(screen.rows) == expected and screen.count == len(expected)
        # Escape in the box closes it, keeps the search
        await pilot.press("slash", "escape")
        assert screen.query_one("#conversations").has_focus and screen.filter.search
        # the transcript highlights the hits and opens at the first one
        await pilot.press("enter")
        await settle(pilot, lambda: getattr(app.screen, "loaded_id", None) is not None)
        transcript = app.screen
        assert transcript.current().idx == 4
        body = transcript.current().build()
        pos = body.plain.index("lighthouse keeper")
        assert any(s.start <= pos < s.end and "reverse" in str(s.style) for s in body.spans)


async def test_search_text_is_never_query_syntax(app_factory) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await to_conversations(pilot)
        for text in ['"unbalanced', "NEAR(a b)", "col:umn", "a AND OR NOT", "*", "^start", "[bold]"]:
            await pilot.press("slash")
            screen.query_one("#search").value = text
            await pilot.press("enter")
            await settle(pilot, lambda: screen.count is not None)
            assert screen.count is not None  # no error, just (probably) no hit


async def test_filter_modal_filters_every_column(app_factory, store) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await to_conversations(pilot)
        cases = {
            "model": ("claude-sonnet", 6), "vendor": ("sim", 4), "condition": ("cold", 7), "replicate": (1, 6),
            "stop_reason": ("stop_phrase", 3), "status": ("error", 1), "offer_outcome": ("decline", 4),
            "tag": ("humour", 1), "kind": ("pair", 1),
        }
        for name, (value, expected) in cases.items():
            await pilot.press("f")
            await settle(pilot, lambda: isinstance(app.screen, FilterModal))
            modal = app.screen
            for other in cases:
                modal.query_one(f"#f-{other}").clear()
            modal.query_one(f"#f-{name}").value = value
            await pilot.press("ctrl+s")
            await settle(pilot, lambda: isinstance(app.screen, ConversationsScreen) and screen.count is not None)
            assert screen.filter.active() == {name: value}, name
            assert screen.count == len(screen.rows) == expected, name
        assert "kind: pair" in str(screen.query_one("#conversations-filters").render())
        await pilot.press("backspace")
        await settle(pilot, lambda: screen.count == 14)
        assert screen.filter.active() == {}


async def test_filter_by_value_of_the_cell_under_the_cursor(app_factory, store) -> None:
    """``=`` filters on the cell under the cursor at once (row × the underlined column), no chooser."""
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await to_conversations(pilot)
        assert screen.column_cursor == "model"
        for _ in range(4):
            await pilot.press("down")
        await pilot.press("equals_sign")
        await settle(pilot, lambda: screen.filter.model == "claude-sonnet" and screen.count is not None)
        assert not isinstance(app.screen, ChoiceModal)
        assert screen.count == len(q(store, "SELECT id FROM conversations WHERE run_id = ? AND (model_alias = ? OR "
                                            "partner_alias = ?)", store.run_id, "claude-sonnet", "claude-sonnet")) == 6
        await pilot.press("right", "right")  # model → vendor → condition
        assert screen.column_cursor == "condition"
        header = screen.query_one("#conversations").ordered_columns[0].label
        start = header.plain.index("condition")
        assert any(sp.start <= start < sp.end and "underline" in str(sp.style) for sp in header.spans)
        await pilot.press("equals_sign")
        await settle(pilot, lambda: screen.filter.condition == "warm" and screen.count is not None)
        assert screen.count == 3  # two singles and the pair (claude-sonnet is its partner)
        # a row with several tags asks which one
        await pilot.press("backspace")
        await settle(pilot, lambda: screen.count == 14)
        while screen.column_cursor != "tags":  # tags is the last filterable column shown at 120
            await pilot.press("right")
        await pilot.press("home", "equals_sign")
        await settle(pilot, lambda: isinstance(app.screen, ChoiceModal))
        await pilot.press("enter")
        await settle(pilot, lambda: screen.filter.tag == "curiosity" and screen.count is not None)


async def test_escape_goes_back_and_mark_compare(app_factory, store) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await to_conversations(pilot)
        await pilot.press("c", "down", "c")
        await settle(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.loaded)
        assert (app.screen.left_id, app.screen.right_id) == tuple(store.conversations[:2])
        await pilot.press("escape")
        await settle(pilot, lambda: app.screen is screen)
        await pilot.press("escape")
        await settle(pilot, lambda: isinstance(app.screen, RunsScreen))


def _big_run(path: Path, n: int) -> str:
    url = f"sqlite:///{path}"
    upgrade(url)
    engine = make_engine(url, write=True)
    with Session(engine) as s:
        s.add(RunRow(id="bigrun000001", protocol_name="big", protocol_version="1", protocol_path="b.yaml",
                     protocol_text="", protocol_hash="", plan_json="{}", models_json=json.dumps({}),
                     options_json="{}", latitude_version="t", litellm_version="t", status="done"))
        s.flush()
        for i in range(n):
            s.add(ConversationRow(id=f"b{i:011d}", run_id="bigrun000001", seq=i, model_alias=f"m{i % 3}",
                                  litellm_model="sim/x", vendor="sim", condition="c", replicate=i, status="done"))
        s.flush()
        for i in range(n):
            s.add(MessageRow(conversation_id=f"b{i:011d}", idx=0, role="user", speaker="user", step="s",
                             content="needle" if i % 50 == 7 else "hay"))
        s.commit()
    engine.dispose()
    return url


async def test_long_lists_are_paged(tmp_path, monkeypatch) -> None:
    from tui.app import make_app

    monkeypatch.setenv("TEXTUAL_ANIMATIONS", "none")
    url = _big_run(tmp_path / "big.db", 450)
    app = make_app(db_url=url, coder="ana", cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await to_conversations(pilot, run_row=0)
        assert len(screen.rows) == 100 and screen.count == 450 and screen.next_key == (99, "b00000000099")
        for _ in range(90):
            await pilot.press("down")
        await settle(pilot, lambda: len(screen.rows) == 200)
        await pilot.press("ctrl+end")
        await settle(pilot, lambda: len(screen.rows) == 300)
        await pilot.press("slash", *"needle", "enter")
        await settle(pilot, lambda: screen.filter.search == "needle" and screen.count is not None)
        assert screen.count == len(screen.rows) == 9 and screen.next_key is None
