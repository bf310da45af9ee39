"""Stop candidates in the transcript (issue 14/10): every candidate the detector recorded is shown under
its turn, rejected and ambiguous ones included, so a reader sees why a quoted phrase did not end it."""

from __future__ import annotations

from sqlmodel import Session, create_engine, select

from runner.store.tables import MessageRow, StopCandidateRow
from tests.tui.conftest import SIZE, settle, to_transcript


def _candidates(store, conversation_id: str) -> list[int]:  # type: ignore[no-untyped-def]
    engine = create_engine(store.url)
    with Session(engine) as s:
        msgs = s.exec(select(MessageRow).where(MessageRow.conversation_id == conversation_id)
                      .where(MessageRow.role == "assistant").order_by(MessageRow.idx)).all()
        assert msgs
        idx = msgs[0].idx
        s.add(StopCandidateRow(conversation_id=conversation_id, message_idx=idx, stop_channel="phrase",
                               phrase="I am done", match="used", decision="rejected", rule="quoted",
                               text="he said ‘I am done’", evidence="inside quotation marks"))
        s.add(StopCandidateRow(conversation_id=conversation_id, message_idx=idx, stop_channel="phrase",
                               phrase="I am done", match="used", decision="ambiguous", rule="question",
                               text="am I done?", evidence="asked, not said"))
        # an older detection is not shown once a re-detection exists
        s.add(StopCandidateRow(conversation_id=conversation_id, message_idx=idx, stop_channel="phrase",
                               phrase="OLD-PHRASE", match="used", decision="used", rule="own_line",
                               text="OLD-PHRASE", detection=0))
        s.commit()
    engine.dispose()
    return [idx]


async def test_rejected_and_ambiguous_stop_candidates_are_marked_under_their_turn(app_factory, store) -> None:  # type: ignore[no-untyped-def]
    conversation_id = store.conversations[0]
    (idx,) = _candidates(store, conversation_id)
    app = app_factory(coder="ana")
    async with app.run_test(size=SIZE) as pilot:
        screen = await to_transcript(pilot, row=0)
        await settle(pilot, lambda: screen.loaded_id == conversation_id)
        view = next(v for v in screen._views() if v.idx == idx)
        text = str(view.render())
        assert "□ stop candidate rejected" in text and "phrase · quoted" in text and "‘I am done’" in text
        assert "□ stop candidate ambiguous" in text and "question" in text
        assert "OLD-PHRASE" not in text
        others = "".join(str(v.render()) for v in screen._views() if v.idx != idx)
        assert "stop candidate" not in others
