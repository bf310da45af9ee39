"""Stop candidates in the review queue: a person confirms or rejects the detector's decision, and
the detector-vs-people tally reads those decisions."""

from __future__ import annotations

from sqlmodel import Session, create_engine, select, update

from runner.analysis.stops import stop_agreement
from runner.engine.stop_flow import review_item
from runner.store.tables import MessageRow, StopCandidateRow, SuggestionRow
from tests.tui.conftest import SIZE, q, settle
from tests.tui.test_review import card, open_review


def _enqueue(store) -> tuple[str, int]:  # type: ignore[no-untyped-def]
    engine = create_engine(store.url)
    with Session(engine) as s:
        s.exec(update(SuggestionRow).values(status="accepted"))  # leave only the stop candidate pending
        msg = s.exec(select(MessageRow).where(MessageRow.conversation_id == store.conversations[0])
                     .where(MessageRow.role == "assistant").order_by(MessageRow.idx)).first()
        assert msg is not None and len(msg.content) > 6
        cand = StopCandidateRow(conversation_id=msg.conversation_id, message_idx=msg.idx, stop_channel="phrase",
                                phrase="x", match="used", decision="used", rule="own_line", span_start=0,
                                span_end=6, text=msg.content[:6], evidence="the phrase is a line of its own: …",
                                prompted=True, counted=True)
        s.add(cand)
        s.add(review_item(cand))
        s.commit()
        idx = msg.idx
    engine.dispose()
    return store.conversations[0], idx


async def test_a_person_rejects_a_detected_stop(app_factory, store) -> None:  # type: ignore[no-untyped-def]
    conversation_id, idx = _enqueue(store)
    app = app_factory(coder="ana")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_review(pilot)
        assert [i.suggestion.kind for i in screen.items] == ["stop"]
        text = card(screen)
        assert "detector: used" in text and "rule own_line" in text and "prompted" in text
        assert f"#{idx} model" in text and "it is not a stop" in text
        await pilot.press("r")
        await settle(pilot, lambda: q(store, "SELECT status FROM suggestions WHERE kind = 'stop'")[0]["status"]
                     == "rejected")
    (row,) = q(store, "SELECT * FROM suggestions WHERE kind = 'stop'")
    assert (row["conversation_id"], row["message_idx"], row["decided_by"]) == (conversation_id, idx, "ana")
    engine = create_engine(store.url)
    with Session(engine) as s:
        report = stop_agreement(s, [store.run_id])
    engine.dispose()
    assert (report.reviewed, report.agree, report.false_stops, report.missed_stops) == (1, 0, 1, 0)
    assert report.by_rule == {"own_line": (0, 1)}
