"""Judge coding on a batch alias: every unit's request goes out in one wave, the verdicts are
stored as on the live transport, an invalid answer's retry goes out in the next wave."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from sqlmodel import select

from runner.analysis.judge import judge_coder, judge_run
from runner.engine.events import BatchEnded, BatchSubmitted
from runner.protocol.models_file import ModelAlias
from runner.store.tables import BatchRequestRow, BatchRow, TagRow
from tests.analysis.test_judge import _answer, _conv_rows, judged_store  # noqa: F401 - the fixture
from tests.engine.batchsim import SimBatchAPI


def test_judge_coding_goes_out_in_waves(monkeypatch: pytest.MonkeyPatch, store_url, session,
                                        judged_store) -> None:  # noqa: F811
    from runner.engine import runs

    run, convs, book, codes = judged_store
    seen: list[int] = []

    def respond(messages: list[dict[str, Any]]) -> str:
        seen.append(len(messages))
        prompt = messages[1]["content"]
        if len(messages) == 2 and "Game of Life" in prompt:
            return _answer(True, False, "a glowing spiral galaxy")  # a quote not in the transcript: rejected
        if "Game of Life" in prompt:
            return _answer(True, False, "a Game of Life visualiser")
        return _answer(False, True, useful_quote="improve the README")

    api = SimBatchAPI(responder=respond)
    monkeypatch.setattr(runs, "batch_api_for", lambda model: api)
    monkeypatch.setenv("LATITUDE_BATCH_POLL_S", "0.05")
    monkeypatch.setenv("LATITUDE_BATCH_IDLE_S", "60")
    judge = ModelAlias(model="openai/gpt-4.1-mini", transport="batch", api_base="http://127.0.0.1:9/v1")
    events: list[Any] = []
    summary = asyncio.run(judge_run(store_url, _conv_rows(session, convs), book, codes, judge, "mini-batch",
                                    emit=events.append))
    assert (summary.judged, summary.failed, summary.rejected_answers) == (2, 0, 1)
    # wave 1: both units; wave 2: the rejected answer asked again (with the rejection in its messages)
    assert [len(b.lines) for b in api.batches.values()] == [2, 1]
    assert sorted(seen) == [2, 2, 4]
    assert summary.cost == pytest.approx(3 * (100 * 2e-7 + 20 * 8e-7))  # gpt-4.1-mini's batch prices
    assert [type(e) for e in events if isinstance(e, (BatchSubmitted, BatchEnded))] == [
        BatchSubmitted, BatchEnded, BatchSubmitted, BatchEnded]
    session.commit()
    coder = judge_coder(judge, book)
    tags = session.exec(select(TagRow).where(TagRow.coder == coder)).all()
    assert {(t.conversation_id, t.code, t.present) for t in tags} == {
        (convs[0].id, "visual", True), (convs[0].id, "useful", False),
        (convs[1].id, "visual", False), (convs[1].id, "useful", True)}
    batches = session.exec(select(BatchRow)).all()
    # a pass over one run keeps its batches under that run (resumable: below)
    assert len(batches) == 2 and {b.run_id for b in batches} == {run} and {b.state for b in batches} == {"ended"}
    reqs = session.exec(select(BatchRequestRow)).all()
    assert sorted(r.purpose for r in reqs) == ["judge"] * 3 and {r.state for r in reqs} == {"succeeded"}
    assert json.loads(batches[0].status_json or "{}") == {"id": "batch_1"}


def test_a_judge_pass_interrupted_with_a_batch_out_polls_it_when_run_again(monkeypatch: pytest.MonkeyPatch,
                                                                           store_url, session,
                                                                           judged_store) -> None:  # noqa: F811
    from runner.engine import runs

    run, convs, book, codes = judged_store

    def respond(messages: list[dict[str, Any]]) -> str:
        if "Game of Life" in messages[1]["content"]:
            return _answer(True, False, "a Game of Life visualiser")
        return _answer(False, True, useful_quote="improve the README")

    api = SimBatchAPI(responder=respond, polls_to_end=None)  # the batch stays out: the pass is stopped
    monkeypatch.setattr(runs, "batch_api_for", lambda model: api)
    monkeypatch.setenv("LATITUDE_BATCH_POLL_S", "0.05")
    monkeypatch.setenv("LATITUDE_BATCH_IDLE_S", "60")
    judge = ModelAlias(model="openai/gpt-4.1-mini", transport="batch", api_base="http://127.0.0.1:9/v1")
    rows = _conv_rows(session, convs)

    async def interrupted() -> None:
        task = asyncio.get_running_loop().create_task(judge_run(store_url, rows, book, codes, judge, "mini-batch"))
        try:
            while api.submits < 1:
                if task.done():
                    task.result()
                    raise AssertionError("the pass ended before its batch went out")
                await asyncio.sleep(0.01)
            while not session.exec(select(BatchRow).where(BatchRow.vendor_id.is_not(None))).first():  # type: ignore[union-attr]
                session.commit()  # a new snapshot of the store
                await asyncio.sleep(0.01)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(interrupted())
    assert api.submits == 1 and sum(api.received.values()) == 2
    api.polls_to_end = 1
    summary = asyncio.run(judge_run(store_url, rows, book, codes, judge, "mini-batch"))
    assert (summary.judged, summary.failed) == (2, 0)
    assert api.submits == 1 and set(api.received.values()) == {1}  # polled, not sent again
    session.commit()
    coder = judge_coder(judge, book)
    assert len(session.exec(select(TagRow).where(TagRow.coder == coder)).all()) == 4
