"""The coding loop (issue 14): n lands on the model's reply, next uncoded, progress, one status line,
a suggested theme renamed before it becomes a code, code names checked as they are typed."""

from __future__ import annotations

from tests.tui.conftest import SIZE, live_tags, q, settle, to_transcript
from tui.screens.modals import CodeFormModal, CodePickerModal
from tui.screens.review import ReviewScreen
from tui.widgets.status_line import StatusLine


def coded_by(store, coder: str) -> set[str]:
    return {r["conversation_id"] for r in q(store, "SELECT DISTINCT t.conversation_id FROM tags t JOIN conversations c "
                                                   "ON c.id = t.conversation_id WHERE c.run_id = ? AND t.coder = ? "
                                                   "AND t.deleted_at IS NULL", store.run_id, coder)}


def title(screen) -> str:
    return str(screen.query_one("#transcript-title").render())


async def test_n_lands_on_the_first_model_turn_and_1_tags_it(app_factory, store) -> None:
    app = app_factory(coder="cleo")
    async with app.run_test(size=SIZE) as pilot:
        screen = await to_transcript(pilot, row=0)
        await pilot.press("n")
        await settle(pilot, lambda: screen.loaded_id == store.conversations[1])
        turn = screen.current()
        assert turn.message.role == "assistant" and turn.message.speaker == "model"
        first_model = min(m["idx"] for m in q(store, "SELECT idx FROM messages WHERE conversation_id = ? AND "
                                                     "role = 'assistant'", store.conversations[1]))
        assert turn.idx == first_model
        await pilot.press("1")
        await settle(pilot, lambda: live_tags(store, "cleo"))
        assert [(t["conversation_id"], t["message_idx"]) for t in live_tags(store, "cleo")] == [
            (store.conversations[1], first_model)]


async def test_progress_and_next_uncoded_by_this_coder(app_factory, store) -> None:
    app = app_factory(coder="ana")
    async with app.run_test(size=SIZE) as pilot:
        screen = await to_transcript(pilot, row=0)
        total = len(store.conversations)
        done = coded_by(store, "ana")
        await settle(pilot, lambda: screen.coded is not None)
        assert f"{len(done)} of {total} coded by ana" in title(screen)
        await pilot.press("N")
        await settle(pilot, lambda: screen.loaded_id not in (None, store.conversations[0]))
        uncoded = [c for c in store.conversations if c not in done]
        assert screen.loaded_id == uncoded[0]
        assert screen.current().message.role == "assistant"
        await pilot.press("1")
        await settle(pilot, lambda: screen.loaded_id in coded_by(store, "ana"))
        await settle(pilot, lambda: f"{len(done) + 1} of {total} coded by ana" in title(screen))
        await pilot.press("N")
        await settle(pilot, lambda: screen.loaded_id == uncoded[1])


async def test_messages_go_to_one_status_line_not_toasts(app_factory, store) -> None:
    app = app_factory(coder="cleo")
    async with app.run_test(size=SIZE) as pilot:
        screen = await to_transcript(pilot, row=0)
        for key in ("1", "2", "3"):
            await pilot.press(key)
        await settle(pilot, lambda: len(live_tags(store, "cleo")) == 3)
        await settle(pilot, lambda: "consent" in screen.query_one(StatusLine).message)
        assert len(screen.query(StatusLine)) == 1
        assert not app._notifications  # nothing piled over the text
        assert [m for _, m in app.status_log if m.startswith("+ ")][-3:] == [
            f"+ {c} on #{screen.current().idx}" for c in ("curiosity", "boredom", "consent")]
        await pilot.press("ctrl+l")  # the log of the session
        await settle(pilot, lambda: app.screen.query("#text-view"))
        assert "+ consent" in str(app.screen.query_one("#text-view").render())


async def test_accepting_a_theme_offers_to_rename_it_and_edit_its_definition(app_factory, store) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: getattr(app.screen, "loaded", False))
        await pilot.press("f4")
        await settle(pilot, lambda: isinstance(app.screen, ReviewScreen) and app.screen.loaded)
        review = app.screen
        await pilot.press("s", "s")
        await settle(pilot)
        assert review.current().suggestion.kind == "theme"
        await pilot.press("a")
        await settle(pilot, lambda: isinstance(app.screen, CodeFormModal))
        form = app.screen
        assert form.query_one("#c-name").value == "tides" and form.focused is form.query_one("#c-name")
        assert form.query_one("#c-definition").value == "Talks about tides, the sea and the moon."
        form.query_one("#c-name").value = "sea-and-moon"
        form.query_one("#c-definition").value = "The model talks about the sea, tides or the moon."
        await pilot.press("ctrl+s")
        await settle(pilot, lambda: "sea-and-moon" in [c.name for c in app.codes])
        newest = q(store, "SELECT id FROM codebooks ORDER BY id DESC LIMIT 1")[0]["id"]
        (code,) = q(store, "SELECT * FROM codes WHERE codebook_id = ? AND name = 'sea-and-moon'", newest)
        assert code["definition"] == "The model talks about the sea, tides or the moon."
        assert not q(store, "SELECT * FROM codes WHERE codebook_id = ? AND name = 'tides'", newest)
        assert q(store, "SELECT status FROM suggestions WHERE code = 'tides'")[0]["status"] == "accepted"


async def test_a_new_codes_name_is_checked_as_it_is_typed(app_factory, store) -> None:
    app = app_factory(coder="cleo")
    async with app.run_test(size=SIZE) as pilot:
        await to_transcript(pilot, row=0)
        before = q(store, "SELECT count(*) AS n FROM codebooks")[0]["n"]
        await pilot.press("t", *"bad!name")
        await settle(pilot, lambda: isinstance(app.screen, CodePickerModal))
        await pilot.press("enter")  # "+ create code bad!name"
        await settle(pilot, lambda: isinstance(app.screen, CodeFormModal))
        form = app.screen
        error = str(form.query_one("#c-name-error").render())
        assert "Not allowed in a name: !" in error  # said before the definition is typed
        form.query_one("#c-name").focus()
        await pilot.press("end", "backspace", "backspace", "backspace", "backspace", "backspace", "backspace",
                          "backspace", "backspace")
        await settle(pilot)
        assert "needs a name" in str(form.query_one("#c-name-error").render())
        await pilot.press(*"curiosity")
        await settle(pilot)
        assert "already a code" in str(form.query_one("#c-name-error").render())
        await pilot.press("ctrl+s")  # refused: still the form, nothing written
        await settle(pilot)
        assert isinstance(app.screen, CodeFormModal)
        await pilot.press(*"-2")
        await settle(pilot, lambda: str(form.query_one("#c-name-error").render()).strip() == "")
        await pilot.press("ctrl+s")
        await settle(pilot, lambda: any(t["code"] == "curiosity-2" for t in live_tags(store, "cleo")))
        assert q(store, "SELECT count(*) AS n FROM codebooks")[0]["n"] == before + 1


async def test_a_conversation_marked_reviewed_counts_as_coded_and_next_uncoded_skips_it(app_factory, store) -> None:
    """A reviewed mark (read, nothing to code) is coding: it enters "k of n coded by" and `N` passes it by."""
    app = app_factory(coder="ana")
    async with app.run_test(size=SIZE) as pilot:
        screen = await to_transcript(pilot, row=0)
        total = len(store.conversations)
        done = coded_by(store, "ana")
        uncoded = [c for c in store.conversations if c not in done]
        assert len(uncoded) >= 2
        await settle(pilot, lambda: screen.coded is not None)
        await pilot.press("N")
        await settle(pilot, lambda: screen.loaded_id == uncoded[0])
        await pilot.press("x")
        await settle(pilot, lambda: q(store, "SELECT 1 FROM reviewed_marks WHERE coder = 'ana' AND conversation_id = ? "
                                             "AND deleted_at IS NULL", uncoded[0]))
        assert uncoded[0] not in coded_by(store, "ana")  # no tag: only the mark
        await settle(pilot, lambda: f"{len(done) + 1} of {total} coded by ana" in title(screen))
        await pilot.press("N")
        await settle(pilot, lambda: screen.loaded_id not in (None, uncoded[0]))
        assert screen.loaded_id == uncoded[1]
