"""The review queue: one suggestion at a time, disagreements first, a / r / s with undo."""

from __future__ import annotations

from tests.tui.conftest import SIZE, live_tags, q, settle
from tui.screens.modals import CodeFormModal
from tui.screens.review import ReviewScreen
from tui.screens.transcript import TranscriptScreen


async def open_review(pilot) -> ReviewScreen:
    app = pilot.app
    await settle(pilot, lambda: getattr(app.screen, "loaded", False))
    await pilot.press("f4")
    await settle(pilot, lambda: isinstance(app.screen, ReviewScreen) and app.screen.loaded)
    return app.screen


def status(store) -> dict[int, str]:
    return {r["id"]: r["status"] for r in q(store, "SELECT id, status FROM suggestions ORDER BY id")}


def card(screen: ReviewScreen) -> str:
    return str(screen.query_one("#review-card").render())


async def test_disagreements_come_first(app_factory, store) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_review(pilot)
        first = screen.current()
        assert first.suggestion.conversation_id == store.conversations[1] and first.disagreement
        assert first.coders_for == ("ben",) and "ana" in first.coders_against
        assert [i.suggestion.kind for i in screen.items] == ["judge", "judge", "theme"]
        text = card(screen)
        assert "coders disagree: ben applied it" in text and "evidence: Says it is curious." in text
        assert "#2 model" in text and "3 pending (1 with disagreement)" in str(
            screen.query_one("#review-title").render())


async def test_accept_reject_skip_and_undo(app_factory, store) -> None:
    app = app_factory(coder="cleo")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_review(pilot)
        ids = [i.suggestion.id for i in screen.items]
        await pilot.press("a")  # judge suggestion → cleo's tag on that message
        await settle(pilot, lambda: status(store)[ids[0]] == "accepted")
        (tag,) = live_tags(store, "cleo")
        assert (tag["conversation_id"], tag["message_idx"], tag["code"], tag["source"]) == (
            store.conversations[1], 2, "curiosity", "suggestion")
        decided = q(store, "SELECT decided_by, decided_at FROM suggestions WHERE id = ?", ids[0])[0]
        assert decided["decided_by"] == "cleo" and decided["decided_at"]
        await pilot.press("r")
        await settle(pilot, lambda: status(store)[ids[1]] == "rejected")
        assert len(live_tags(store, "cleo")) == 1
        await pilot.press("s")
        await settle(pilot, lambda: status(store)[ids[2]] == "skipped")
        assert "Nothing to review" in card(screen)
        # undo, newest first: the skip, the rejection, then the acceptance (and its tag)
        await pilot.press("u")
        await settle(pilot, lambda: status(store)[ids[2]] == "pending" and screen.current() is not None)
        await pilot.press("u")
        await settle(pilot, lambda: status(store)[ids[1]] == "pending")
        await pilot.press("ctrl+z")
        await settle(pilot, lambda: status(store)[ids[0]] == "pending")
        assert live_tags(store, "cleo") == []
        await settle(pilot, lambda: screen.current() is not None and screen.current().suggestion.id == ids[0])


async def test_accept_theme_adds_code(app_factory, store) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_review(pilot)
        await pilot.press("s", "s")
        await settle(pilot)
        assert screen.current().suggestion.kind == "theme"
        assert "4 texts in this theme" in card(screen) and "terms: tides, moon, sea" in card(screen)
        await pilot.press("a")
        await settle(pilot, lambda: isinstance(app.screen, CodeFormModal))  # rename / edit first; Enter keeps
        await pilot.press("enter")
        await settle(pilot, lambda: "tides" in [c.name for c in app.codes])
        newest = q(store, "SELECT id, version FROM codebooks ORDER BY id DESC LIMIT 1")[0]
        (code,) = q(store, "SELECT * FROM codes WHERE codebook_id = ? AND name = 'tides'", newest["id"])
        assert code["definition"] == "Talks about tides, the sea and the moon." and code["include"]
        await pilot.press("u")
        await settle(pilot, lambda: "tides" not in [c.name for c in app.codes])


async def test_open_the_conversation(app_factory, store) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await open_review(pilot)
        await pilot.press("o")
        await settle(pilot, lambda: isinstance(app.screen, TranscriptScreen) and app.screen.loaded_id)
        assert app.screen.loaded_id == store.conversations[1]
        await pilot.press("escape")
        await settle(pilot, lambda: isinstance(app.screen, ReviewScreen))
