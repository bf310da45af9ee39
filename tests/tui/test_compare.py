"""Compare: two transcripts side by side; other model, other replicate, swap, move both."""

from __future__ import annotations

from tests.tui.conftest import SIZE, settle, to_transcript
from tui.screens.compare import CompareScreen
from tui.screens.transcript import TranscriptScreen
from tui.widgets.turn_view import TurnView


async def test_compare_models_and_replicates(app_factory, store) -> None:
    c = store.conversations
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await to_transcript(pilot, row=0)
        await pilot.press("c")
        await settle(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.loaded)
        screen = app.screen
        assert (screen.left_id, screen.right_id) == (c[0], c[4])
        left = list(screen.query_one("#left-turns").query(TurnView))
        right = list(screen.query_one("#right-turns").query(TurnView))
        assert left[2].message.content.startswith("I'd like to find out") and len(right) == 5
        assert "claude-sonnet" in str(screen.query_one("#right-title").render())
        await pilot.press("m")  # next model, same condition and replicate
        await settle(pilot, lambda: screen.right_id == c[8])
        await pilot.press("m")  # wraps past the left one
        await settle(pilot, lambda: screen.right_id == c[4])
        await pilot.press("r")  # the other replicate of claude-sonnet
        await settle(pilot, lambda: screen.right_id == c[5])
        await pilot.press("j", "j")
        assert screen.cursor == 2
        cursors = [v.idx for v in screen.query(TurnView) if "-cursor" in v.classes]
        assert cursors == [2, 2]
        await pilot.press("k")
        assert screen.cursor == 1
        await pilot.press("w")
        await settle(pilot, lambda: screen.left_id == c[5] and screen.right_id == c[0])
        await pilot.press("escape")
        await settle(pilot, lambda: isinstance(app.screen, TranscriptScreen))
