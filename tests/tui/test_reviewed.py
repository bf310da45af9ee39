"""The reviewed mark from the transcript (issue 15): `x` marks the conversation read by the coder,
again withdraws it; asserted on the store with plain sqlite3."""

from __future__ import annotations

from tests.tui.conftest import SIZE, q, settle, to_transcript


def marks(store, coder: str = "ana") -> list[dict]:  # type: ignore[no-untyped-def]
    return q(store, "SELECT conversation_id, coder, deleted_at FROM reviewed_marks WHERE coder = ? ORDER BY id",
             coder)


async def test_x_marks_and_unmarks_the_conversation_reviewed(app_factory, store) -> None:  # type: ignore[no-untyped-def]
    app = app_factory(coder="cleo")
    async with app.run_test(size=SIZE) as pilot:
        screen = await to_transcript(pilot)
        cid = screen.loaded_id
        assert marks(store, "cleo") == []
        await pilot.press("x")
        await settle(pilot, lambda: len(marks(store, "cleo")) == 1)
        (mark,) = marks(store, "cleo")
        assert (mark["conversation_id"], mark["deleted_at"]) == (cid, None)
        await pilot.press("x")
        await settle(pilot, lambda: marks(store, "cleo")[0]["deleted_at"] is not None)
        assert len(marks(store, "cleo")) == 1  # withdrawn, kept for audit
