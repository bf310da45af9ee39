"""Layouts that fit 80×24 and 200×50, and keys that can be found (issue 14)."""

from __future__ import annotations

import pytest
from rich.text import Text

from tests.tui.conftest import settle, to_conversations, to_transcript
from tui.screens.codebook import CodebookScreen
from tui.screens.conversations import ConversationsScreen
from tui.screens.help import HelpScreen
from tui.screens.modals import CodePickerModal, FilterModal
from tui.screens.review import ReviewScreen
from tui.screens.runs import RUN_COLUMNS, RunsScreen
from tui.screens.tallies import TalliesScreen
from tui.widgets.code_bar import CodeBar
from tui.widgets.footer import RankedFooter
from tui.widgets.status_line import StatusLine
from tui.widgets.telemetry import TelemetryPanel

SMALL = (80, 24)
LARGE = (200, 50)


def footer(app) -> list[str]:
    return app.screen.query_one(RankedFooter).shown


async def _open(pilot, which: str):
    app = pilot.app
    if which == "runs":
        await settle(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loaded)
    elif which == "conversations":
        await to_conversations(pilot)
    elif which == "transcript":
        await to_transcript(pilot, row=0)
    else:
        await settle(pilot, lambda: getattr(app.screen, "loaded", False))
        await pilot.press({"codebook": "f3", "review": "f4", "tallies": "f5"}[which])
        kind = {"codebook": CodebookScreen, "review": ReviewScreen, "tallies": TalliesScreen}[which]
        await settle(pilot, lambda: isinstance(app.screen, kind) and app.screen.loaded)
    return app.screen


@pytest.mark.parametrize("which", ["runs", "conversations", "transcript", "codebook", "review", "tallies"])
async def test_footer_keeps_help_and_back_at_80_columns(app_factory, which: str) -> None:
    app = app_factory()
    async with app.run_test(size=SMALL) as pilot:
        await _open(pilot, which)
        await settle(pilot, lambda: footer(app))
        shown = footer(app)
        assert shown[0] == "Keys"  # `?` first, always
        if which != "runs":
            assert "Back" in shown
        keys = app.screen.query_one(RankedFooter).query("FooterKey")
        assert sum(k.region.width for k in keys) <= SMALL[0]  # nothing cut at the edge


async def test_footer_shows_the_function_keys_when_there_is_room(app_factory) -> None:
    app = app_factory()
    async with app.run_test(size=LARGE) as pilot:
        await to_conversations(pilot)
        await settle(pilot, lambda: footer(app))
        assert {"Runs", "Codebook", "Review", "Tallies"} <= set(footer(app))
        labels = {k.key_display for k in app.screen.query_one(RankedFooter).query("FooterKey")}
        assert {"f2", "f3", "f4", "f5"} <= {label.lower() for label in labels}


async def test_runs_keep_their_essential_columns_at_80(app_factory) -> None:
    app = app_factory()
    async with app.run_test(size=SMALL) as pilot:
        screen = await _open(pilot, "runs")
        shown = [RUN_COLUMNS[i] for i in screen.shown_columns]
        assert {"run", "status", "done", "running", "error"} <= set(shown)
        table = screen.query_one("#runs")
        assert table.virtual_size.width <= table.size.width  # nothing to scroll to
        run_ids = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
        assert all(len(r) == 12 for r in run_ids)  # never cut
    async with app_factory().run_test(size=LARGE) as pilot:
        screen = await _open(pilot, "runs")
        assert len(screen.shown_columns) == len(RUN_COLUMNS)


async def test_conversation_columns_fit_and_size_to_content(app_factory) -> None:
    app = app_factory()
    async with app.run_test(size=SMALL) as pilot:
        screen = await to_conversations(pilot)
        labels = [label for label, _ in screen.columns_layout]
        assert labels[:3] == ["#", "model", "condition"] and "stop" in labels and "status" in labels
        assert sum(w for _, w in screen.columns_layout) + len(labels) - 1 <= SMALL[0] - 4
    async with app_factory().run_test(size=LARGE) as pilot:
        screen = await to_conversations(pilot)
        widths = dict(screen.columns_layout)
        assert len(widths) == 12  # every column, echo included
        longest = max(len(r.condition) for r in screen.rows.values())
        assert widths["condition"] >= longest  # never "brainstorm…" when there is room
        assert max(len(", ".join(r.tags)) for r in screen.rows.values()) <= widths["tags"]


async def test_telemetry_hidden_below_120_columns_and_the_toggle_kept(app_factory) -> None:
    app = app_factory()
    async with app.run_test(size=SMALL) as pilot:
        screen = await to_transcript(pilot, row=1)
        panel = screen.query_one(TelemetryPanel)
        assert not panel.display
        await pilot.press("i")
        assert panel.display
    async with app_factory().run_test(size=LARGE) as pilot:
        screen = await to_transcript(pilot, row=1)
        assert screen.query_one(TelemetryPanel).display


async def test_code_bar_wraps_and_keeps_every_key(app_factory, store) -> None:
    from tui.coding import Coding

    names = [f"long-code-name-{i}" for i in range(1, 10)]
    yaml = "name: wide\ncodes:\n" + "".join(f"  - name: {n}\n" for n in names)
    coding = Coding(store.url, "ana")
    try:
        coding.submit(coding.import_codebook(yaml)).result()
    finally:
        coding.close()
    app = app_factory()
    async with app.run_test(size=SMALL) as pilot:
        screen = await to_transcript(pilot, row=0)
        await settle(pilot, lambda: [c.name for c in app.codes] == names)
        await settle(pilot)
        bar = screen.query_one(CodeBar)
        assert bar.region.height >= 2
        lines = [line.text for line in bar.render_lines(bar.region.reset_offset)]
        joined = " ".join(lines)
        for i, n in enumerate(names, 1):
            assert f"{i} {n}" in joined  # a key is never split from its code


async def test_dialogs_keep_their_border_at_80(app_factory) -> None:
    app = app_factory()
    async with app.run_test(size=SMALL) as pilot:
        await to_transcript(pilot, row=0)
        await pilot.press("t")
        await settle(pilot, lambda: isinstance(app.screen, CodePickerModal))
        dialog = app.screen.query_one(".dialog")
        assert dialog.region.x >= 0 and dialog.region.right <= SMALL[0]


async def test_help_starts_with_this_screen_and_keeps_descriptions_at_80(app_factory) -> None:
    app = app_factory()
    async with app.run_test(size=SMALL) as pilot:
        await to_transcript(pilot, row=0)
        await pilot.press("question_mark")
        await settle(pilot, lambda: isinstance(app.screen, HelpScreen))
        assert app.screen.sections[0] == "transcript" and app.screen.sections[1] == "app"
        first = app.screen.query("Static")[1]
        rendered = "\n".join(s.text for s in first.render_lines(first.region.reset_offset))
        assert "Transcript (this screen)" in rendered
        assert "next conversation in the current filter" in " ".join(rendered.split())  # the description column


async def test_palette_shows_each_actions_key(app_factory) -> None:
    from textual.command import CommandPalette

    app = app_factory()
    async with app.run_test(size=LARGE) as pilot:
        await to_conversations(pilot)
        await pilot.press("ctrl+p")
        await settle(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press(*"message text")
        options = app.screen.query_one("CommandList")
        await settle(pilot, lambda: options.option_count > 0)
        prompts = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        hit = next(p for p in prompts if "search: Message text" in p)
        assert hit.splitlines()[0].rstrip().endswith("/")


async def test_g_G_home_end_jump_in_lists(app_factory) -> None:
    app = app_factory()
    async with app.run_test(size=LARGE) as pilot:
        screen = await to_conversations(pilot)
        table = screen.query_one("#conversations")
        await pilot.press("G")
        assert table.cursor_row == table.row_count - 1
        await pilot.press("g")
        assert table.cursor_row == 0
        await pilot.press("end")
        assert table.cursor_row == table.row_count - 1
        await pilot.press("home")
        assert table.cursor_row == 0
        await pilot.press("escape")
        await settle(pilot, lambda: isinstance(app.screen, RunsScreen))
        await pilot.press("G")
        assert app.screen.query_one("#runs").cursor_row == 1


async def test_filter_dialog_focuses_its_first_field(app_factory) -> None:
    app = app_factory()
    async with app.run_test(size=LARGE) as pilot:
        await to_conversations(pilot)
        await pilot.press("f")
        await settle(pilot, lambda: isinstance(app.screen, FilterModal))
        assert app.screen.focused is app.screen.query_one("#f-model")
        await pilot.press("enter")  # the first Enter opens the list, it is not lost
        await settle(pilot, lambda: app.screen.query_one("#f-model").expanded)


async def test_search_refuses_exclusions_only_in_words(app_factory, store) -> None:
    app = app_factory()
    async with app.run_test(size=LARGE) as pilot:
        screen = await to_conversations(pilot)
        await pilot.press("slash", *"-cat", "enter")
        await settle(pilot)
        assert screen.filter.search is None and screen.count == 14  # nothing silently dropped or applied
        status = screen.query_one(StatusLine).message
        assert "only excludes" in status and "add a word to look for" in status
        assert screen.query_one("#search").has_focus  # the text stays there to fix
        assert not app._notifications  # one status line, no toast


async def test_search_hits_show_a_highlighted_snippet(app_factory) -> None:
    app = app_factory()
    async with app.run_test(size=LARGE) as pilot:
        screen = await to_conversations(pilot)
        await pilot.press("slash", *"lighthouse", "enter")
        await settle(pilot, lambda: screen.filter.search == "lighthouse" and screen.count is not None)
        table = screen.query_one("#conversations")
        assert screen.rows
        for key in table.rows:
            line: Text = table.get_row(key)[0]
            first, _, snippet = line.plain.partition("\n")
            assert "lighthouse" in snippet.lower()
            at = len(first) + 1 + snippet.lower().index("lighthouse")
            assert any(s.start <= at < s.end and "reverse" in str(s.style) for s in line.spans)
