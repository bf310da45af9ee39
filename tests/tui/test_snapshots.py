"""Snapshots of every screen on the fixture store, at 80×24, 120×40 and 200×50, cursor blink off.

Update them (on the pinned Python only) with ``uv run pytest tests/tui/test_snapshots.py --snapshot-update``
and look at the report before committing.
"""

from __future__ import annotations

import pytest

from tests.tui.conftest import SIZE, settle, to_conversations, to_transcript
from tui.screens.codebook import CodebookScreen
from tui.screens.compare import CompareScreen
from tui.screens.help import HelpScreen
from tui.screens.modals import CodePickerModal, FilterModal
from tui.screens.review import ReviewScreen
from tui.screens.runs import RunsScreen
from tui.screens.tallies import TalliesScreen

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param(SIZE, id="120x40"), pytest.param((200, 50), id="200x50")]
"""The smallest terminal people use, the size the other tests run at, and a large one."""

pytestmark = pytest.mark.parametrize("size", SIZES)


def test_runs(snap_compare, app_factory, size) -> None:
    async def before(pilot) -> None:
        await settle(pilot, lambda: isinstance(pilot.app.screen, RunsScreen) and pilot.app.screen.loaded)

    assert snap_compare(app_factory(), terminal_size=size, run_before=before)


def test_conversations(snap_compare, app_factory, size) -> None:
    async def before(pilot) -> None:
        await to_conversations(pilot)
        await pilot.press("down", "down")

    assert snap_compare(app_factory(), terminal_size=size, run_before=before)


def test_conversations_search(snap_compare, app_factory, size) -> None:
    async def before(pilot) -> None:
        screen = await to_conversations(pilot)
        await pilot.press("slash", *"lighthouse", "enter")
        await settle(pilot, lambda: screen.filter.search == "lighthouse" and screen.count is not None)

    assert snap_compare(app_factory(), terminal_size=size, run_before=before)


def test_filter_modal(snap_compare, app_factory, size) -> None:
    async def before(pilot) -> None:
        await to_conversations(pilot)
        await pilot.press("f")
        await settle(pilot, lambda: isinstance(pilot.app.screen, FilterModal))

    assert snap_compare(app_factory(), terminal_size=size, run_before=before)


def test_transcript(snap_compare, app_factory, size) -> None:
    async def before(pilot) -> None:
        await to_transcript(pilot, row=0)
        await pilot.press("j")

    assert snap_compare(app_factory(), terminal_size=size, run_before=before)


def test_transcript_hostile_text(snap_compare, app_factory, size) -> None:
    async def before(pilot) -> None:
        await to_transcript(pilot, row=3)
        await pilot.press("j")

    assert snap_compare(app_factory(), terminal_size=size, run_before=before)


def test_transcript_stop_and_reasoning(snap_compare, app_factory, size) -> None:
    async def before(pilot) -> None:
        await to_transcript(pilot, row=5)
        await pilot.press("s", "R", "G")

    assert snap_compare(app_factory(), terminal_size=size, run_before=before)


def test_code_picker(snap_compare, app_factory, size) -> None:
    async def before(pilot) -> None:
        await to_transcript(pilot, row=0)
        await pilot.press("j", "t", "c", "u")
        await settle(pilot, lambda: isinstance(pilot.app.screen, CodePickerModal))

    assert snap_compare(app_factory(), terminal_size=size, run_before=before)


def test_codebook(snap_compare, app_factory, size) -> None:
    async def before(pilot) -> None:
        await settle(pilot, lambda: getattr(pilot.app.screen, "loaded", False))
        await pilot.press("f3")
        await settle(pilot, lambda: isinstance(pilot.app.screen, CodebookScreen) and pilot.app.screen.codes)

    assert snap_compare(app_factory(), terminal_size=size, run_before=before)


def test_review(snap_compare, app_factory, size) -> None:
    async def before(pilot) -> None:
        await settle(pilot, lambda: getattr(pilot.app.screen, "loaded", False))
        await pilot.press("f4")
        await settle(pilot, lambda: isinstance(pilot.app.screen, ReviewScreen) and pilot.app.screen.loaded)

    assert snap_compare(app_factory(), terminal_size=size, run_before=before)


def test_tallies(snap_compare, app_factory, size) -> None:
    async def before(pilot) -> None:
        await settle(pilot, lambda: getattr(pilot.app.screen, "loaded", False))
        await pilot.press("down", "t")
        await settle(pilot, lambda: isinstance(pilot.app.screen, TalliesScreen) and pilot.app.screen.loaded)

    assert snap_compare(app_factory(), terminal_size=size, run_before=before)


def test_compare(snap_compare, app_factory, size) -> None:
    async def before(pilot) -> None:
        await to_transcript(pilot, row=0)
        await pilot.press("c")
        await settle(pilot, lambda: isinstance(pilot.app.screen, CompareScreen) and pilot.app.screen.loaded)

    assert snap_compare(app_factory(), terminal_size=size, run_before=before)


def test_help(snap_compare, app_factory, size) -> None:
    async def before(pilot) -> None:
        await settle(pilot, lambda: getattr(pilot.app.screen, "loaded", False))
        await pilot.press("question_mark")
        await settle(pilot, lambda: isinstance(pilot.app.screen, HelpScreen))

    assert snap_compare(app_factory(), terminal_size=size, run_before=before)
