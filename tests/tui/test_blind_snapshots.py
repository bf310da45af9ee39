"""Snapshots of every screen in blind mode at 80×24 (cursor blink off), each also checked for leaks.

Update them (on the pinned Python only) with
``uv run pytest tests/tui/test_blind_snapshots.py --snapshot-update`` and look at the report before committing.
"""

from __future__ import annotations

from tests.tui.conftest import settle, to_conversations, to_transcript
from tests.tui.test_blind import leaks
from tui.screens.codebook import CodebookScreen
from tui.screens.compare import CompareScreen
from tui.screens.preferences import PreferencesScreen
from tui.screens.review import ReviewScreen
from tui.screens.runs import RunsScreen
from tui.screens.tallies import TalliesScreen

SIZE = (80, 24)
"""The smallest terminal people use: where a hidden column would most likely be squeezed back in."""


def blind_app(app_factory):  # type: ignore[no-untyped-def]
    return app_factory("cat", blind=True)


def test_runs_blind(snap_compare, app_factory) -> None:
    async def before(pilot) -> None:
        await settle(pilot, lambda: isinstance(pilot.app.screen, RunsScreen) and pilot.app.screen.loaded)
        assert leaks(pilot.app) == []

    assert snap_compare(blind_app(app_factory), terminal_size=SIZE, run_before=before)


def test_conversations_blind(snap_compare, app_factory) -> None:
    async def before(pilot) -> None:
        await to_conversations(pilot)
        await pilot.press("down", "down")
        assert leaks(pilot.app) == []

    assert snap_compare(blind_app(app_factory), terminal_size=SIZE, run_before=before)


def test_transcript_blind(snap_compare, app_factory) -> None:
    async def before(pilot) -> None:
        await to_transcript(pilot, row=0)
        await pilot.press("s", "j")
        assert leaks(pilot.app) == []

    assert snap_compare(blind_app(app_factory), terminal_size=SIZE, run_before=before)


def test_compare_blind(snap_compare, app_factory) -> None:
    async def before(pilot) -> None:
        await to_conversations(pilot)
        await pilot.press("c", "down", "c")
        await settle(pilot, lambda: isinstance(pilot.app.screen, CompareScreen) and pilot.app.screen.loaded)
        assert leaks(pilot.app) == []

    assert snap_compare(blind_app(app_factory), terminal_size=SIZE, run_before=before)


def test_tallies_blind(snap_compare, app_factory) -> None:
    async def before(pilot) -> None:
        await settle(pilot, lambda: getattr(pilot.app.screen, "loaded", False))
        await pilot.press("down", "t")
        await settle(pilot, lambda: isinstance(pilot.app.screen, TalliesScreen) and pilot.app.screen.loaded)
        assert leaks(pilot.app) == []

    assert snap_compare(blind_app(app_factory), terminal_size=SIZE, run_before=before)


def test_preferences_blind(snap_compare, app_factory) -> None:
    async def before(pilot) -> None:
        await to_conversations(pilot)
        await pilot.press("f6")
        await settle(pilot, lambda: isinstance(pilot.app.screen, PreferencesScreen) and pilot.app.screen.loaded)
        assert leaks(pilot.app) == []

    assert snap_compare(blind_app(app_factory), terminal_size=SIZE, run_before=before)


def test_review_blind(snap_compare, app_factory) -> None:
    async def before(pilot) -> None:
        await settle(pilot, lambda: getattr(pilot.app.screen, "loaded", False))
        await pilot.press("f4")
        await settle(pilot, lambda: isinstance(pilot.app.screen, ReviewScreen) and pilot.app.screen.loaded)
        assert leaks(pilot.app) == []

    assert snap_compare(blind_app(app_factory), terminal_size=SIZE, run_before=before)


def test_codebook_blind(snap_compare, app_factory) -> None:
    async def before(pilot) -> None:
        await settle(pilot, lambda: getattr(pilot.app.screen, "loaded", False))
        await pilot.press("f3")
        await settle(pilot, lambda: isinstance(pilot.app.screen, CodebookScreen) and pilot.app.screen.codes)
        assert leaks(pilot.app) == []

    assert snap_compare(blind_app(app_factory), terminal_size=SIZE, run_before=before)
