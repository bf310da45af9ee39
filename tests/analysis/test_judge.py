"""Judge coding: schema checks, quote validation, and the whole path against the fake provider."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from runner.analysis.judge import (
    JudgeOptions,
    SelfJudgeError,
    Unit,
    Verdict,
    check_verdict,
    judge_coder,
    judge_run,
    parse_verdict,
    plan_units,
)
from runner.engine.events import Retrying
from runner.protocol import load_models, resolve_model
from runner.store.tables import MessageRow, SuggestionRow, TagRow
from tests.analysis.conftest import Conv, add_codebook, add_run

BOOK_YAML = """\
name: acts
codes:
  - name: visual
    definition: proposes a visualisation of emergent behaviour
  - name: useful
    definition: proposes something practical (README, TODO system)
"""


def _answer(visual: bool, useful: bool, visual_quote: str | None = None, useful_quote: str | None = None,
            turn: int = 1) -> str:
    def one(code: str, present: bool, quote: str | None) -> dict[str, Any]:
        return {"code": code, "present": present, "evidence": f"see #{turn}",
                "quotes": [{"turn": turn, "text": quote}] if quote else []}

    return json.dumps({"judgments": [one("visual", visual, visual_quote), one("useful", useful, useful_quote)]})


def _msgs(*contents: str) -> tuple[MessageRow, ...]:
    return tuple(MessageRow(conversation_id="c", idx=i, role="assistant" if i % 2 else "user",
                            speaker="model" if i % 2 else "user", step="s", content=t) for i, t in enumerate(contents))


# ----------------------------------------------------------------------------- checks


def test_quote_that_does_not_occur_is_rejected() -> None:
    unit = Unit(None, _msgs("what now?", "I'd make a  Game of Life\nvisualiser."), None)  # type: ignore[arg-type]
    ok = parse_verdict(_answer(True, False, "a Game of Life visualiser"))
    problems, per_code = check_verdict(ok, unit, ["visual", "useful"])
    assert problems == []  # whitespace differences are tolerated
    assert per_code["visual"].quotes[0].turn == 1
    bad = parse_verdict(_answer(True, False, "a glowing spiral galaxy"))
    problems, _ = check_verdict(bad, unit, ["visual", "useful"])
    assert len(problems) == 1 and "does not occur" in problems[0] and "glowing spiral" in problems[0]


def test_wrong_turn_reference_is_corrected_not_rejected() -> None:
    unit = Unit(None, _msgs("what now?", "A README, then."), None)  # type: ignore[arg-type]
    verdict = parse_verdict(_answer(False, True, useful_quote="A README", turn=0))
    problems, per_code = check_verdict(verdict, unit, ["visual", "useful"])
    assert problems == [] and per_code["useful"].quotes[0].turn == 1


def test_schema_problems_are_listed() -> None:
    unit = Unit(None, _msgs("q", "a"), None)  # type: ignore[arg-type]
    v = Verdict.model_validate({"judgments": [{"code": "visual", "present": True, "quotes": []},
                                              {"code": "other", "present": False}]})
    problems, _ = check_verdict(v, unit, ["visual", "useful"])
    assert any("no quote" in p for p in problems)
    assert any("`other` is not one of" in p for p in problems)
    assert any("`useful` is missing" in p for p in problems)
    with pytest.raises(ValueError, match="no JSON"):
        parse_verdict("I think it is present.")
    with pytest.raises(ValueError, match="schema"):
        parse_verdict('{"judgments": [{"code": "visual"}]}')
    assert parse_verdict("```json\n" + _answer(False, False) + "\n```").judgments[0].code == "visual"


def test_turn_units_show_the_reply_and_the_turn_before() -> None:
    from runner.store.tables import ConversationRow

    conv = ConversationRow(id="c", run_id="r", seq=0, model_alias="m", litellm_model="sim/m", vendor="sim",
                           condition="x", replicate=0)
    units = plan_units(conv, list(_msgs("q1", "a1", "q2", "a2")), "turn")
    assert [(u.message_idx, [m.idx for m in u.messages]) for u in units] == [(1, [0, 1]), (3, [2, 3])]
    assert plan_units(conv, list(_msgs("q1", "a1")), "conversation")[0].message_idx is None


# ----------------------------------------------------------------------------- end to end


@pytest.fixture
def judged_store(session, tmp_path: Path):  # type: ignore[no-untyped-def]
    from runner.analysis import codebook as cb

    book = cb.import_codebook(session, BOOK_YAML, coder="ana")
    convs = [Conv("maker", replies=["I'd like to make a Game of Life visualiser."]),
             Conv("functional", replies=["Let me improve the README of your project."])]
    run = add_run(session, convs)
    return run, convs, book, cb.codes(session, book.id)


def _judge(models_file: Path) -> Any:
    return resolve_model("fake-gpt", load_models(models_file))


def test_judge_end_to_end_with_a_hallucinated_quote_retried(fake_provider, models_file, store_url, session,
                                                             judged_store) -> None:  # type: ignore[no-untyped-def]
    run, convs, book, codes = judged_store
    fp = fake_provider
    fp.add_rule(match="a glowing spiral galaxy", reply=_answer(True, False, "a Game of Life visualiser"))
    fp.add_rule(match="Game of Life", reply=_answer(True, False, "a glowing spiral galaxy"))
    fp.add_rule(match="README", reply=_answer(False, True, useful_quote="improve the README"))
    events: list[Any] = []
    summary = asyncio.run(judge_run(store_url, [c for c in _conv_rows(session, convs)], book, codes,
                                    _judge(models_file), "fake-gpt", emit=events.append))
    assert (summary.judged, summary.failed, summary.rejected_answers) == (2, 0, 1)
    assert len(fp.requests) == 3
    # the retry carried the rejected answer and the reason back to the judge
    retry_body = next(r.body for r in fp.requests if len(r.body["messages"]) == 4)
    assert "does not occur in the transcript" in retry_body["messages"][-1]["content"]
    assert fp.requests[0].body["response_format"]["type"] == "json_schema"
    assert any(isinstance(e, Retrying) and e.kind == "invalid_answer" for e in events)

    coder = judge_coder(_judge(models_file), book)
    assert coder == "judge:openai/fake-gpt@actsv1"
    session.commit()  # end the read transaction: see the judge's commits
    tags = session.exec(select(TagRow).where(TagRow.coder == coder)).all()
    assert {(t.conversation_id, t.code, t.present) for t in tags} == {
        (convs[0].id, "visual", True), (convs[0].id, "useful", False),
        (convs[1].id, "visual", False), (convs[1].id, "useful", True)}
    visual = next(t for t in tags if t.present and t.code == "visual")
    assert visual.source == "judge" and visual.codebook_id == book.id
    assert visual.quote == "a Game of Life visualiser" and "#1" in (visual.evidence or "")
    assert not session.exec(select(TagRow).where(TagRow.quote == "a glowing spiral galaxy")).all()
    queue = session.exec(select(SuggestionRow)).all()
    assert sorted((s.kind, s.code, s.status) for s in queue) == [("judge", "useful", "pending"),
                                                                 ("judge", "visual", "pending")]
    assert json.loads(queue[0].payload_json)["coder"] == coder

    # resume: nothing left to judge, no request sent
    before = len(fp.requests)
    again = asyncio.run(judge_run(store_url, _conv_rows(session, convs), book, codes, _judge(models_file),
                                  "fake-gpt"))
    assert (again.skipped, again.judged, len(fp.requests)) == (2, 0, before)


def _conv_rows(session, convs):  # type: ignore[no-untyped-def]
    from runner.store.tables import ConversationRow

    return [session.get(ConversationRow, c.id) for c in convs]


def test_judge_gives_up_after_attempts_and_stores_nothing(fake_provider, models_file, store_url, session,
                                                          judged_store) -> None:  # type: ignore[no-untyped-def]
    run, convs, book, codes = judged_store
    fake_provider.add_rule(reply=_answer(True, False, "words nobody wrote"))
    summary = asyncio.run(judge_run(store_url, _conv_rows(session, convs)[:1], book, codes, _judge(models_file),
                                    "fake-gpt", options=JudgeOptions(attempts=2)))
    assert (summary.judged, summary.failed, summary.rejected_answers) == (0, 1, 2)
    assert "words nobody wrote" in summary.errors[0]
    session.commit()
    assert session.exec(select(TagRow)).all() == []


def test_transport_errors_are_retried_through_the_engine(fake_provider, models_file, store_url, session,
                                                         judged_store) -> None:  # type: ignore[no-untyped-def]
    run, convs, book, codes = judged_store
    fake_provider.add_rule(reply=_answer(False, True, useful_quote="improve the README"))
    fake_provider.inject("429", count=1, retry_after=0)
    events: list[Any] = []
    summary = asyncio.run(judge_run(store_url, _conv_rows(session, convs)[1:], book, codes, _judge(models_file),
                                    "fake-gpt", emit=events.append))
    assert summary.judged == 1
    assert any(isinstance(e, Retrying) and e.kind == "rate_limit" for e in events)


def test_turn_unit_tags_point_at_the_message(fake_provider, models_file, store_url, session,
                                             judged_store) -> None:  # type: ignore[no-untyped-def]
    run, convs, book, codes = judged_store
    fake_provider.add_rule(reply=_answer(False, True, useful_quote="improve the README"))
    summary = asyncio.run(judge_run(store_url, _conv_rows(session, convs)[1:], book, codes, _judge(models_file),
                                    "fake-gpt", options=JudgeOptions(unit="turn")))
    assert summary.judged == 1
    session.commit()
    assert {t.message_idx for t in session.exec(select(TagRow)).all()} == {1}


def test_self_judging_is_refused(models_file, store_url, session) -> None:  # type: ignore[no-untyped-def]
    book = add_codebook(session, "acts", ["visual"])
    convs = [Conv("fake-gpt", litellm_model="openai/fake-gpt")]
    add_run(session, convs)
    with pytest.raises(SelfJudgeError, match="allow-self-judge"):
        asyncio.run(_self(store_url, session, convs, book, models_file))


async def _self(store_url, session, convs, book, models_file):  # type: ignore[no-untyped-def]
    from runner.analysis.codebook import codes

    return await judge_run(store_url, _conv_rows(session, convs), book, codes(session, book.id),
                           _judge(models_file), "fake-gpt")


# ----------------------------------------------------------------------------- CLI


def test_cli_code_refuses_self_judge_and_runs_the_judge(cli, fake_provider, models_file, store_url, session,
                                                        tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    book = tmp_path / "acts.yaml"
    book.write_text(BOOK_YAML)
    own = [Conv("fake-gpt", litellm_model="openai/fake-gpt", replies=["Let me improve the README."])]
    run = add_run(session, own)
    res = cli("code", run, "--codebook", book, "--judge", "fake-gpt", "--models", models_file, "--db", store_url)
    assert res.exit_code == 1 and "allow-self-judge" in res.output
    fake_provider.add_rule(reply=_answer(False, True, useful_quote="improve the README"))
    res = cli("code", run, "--codebook", book, "--judge", "fake-gpt", "--models", models_file,
              "--allow-self-judge", "--db", store_url)
    assert res.exit_code == 0, res.output
    assert "1 units judged" in res.output and "judge:openai/fake-gpt@actsv1" in res.output
    # the same file again reuses the stored version; the run is resumed, not repeated
    res = cli("code", run, "--codebook", book, "--judge", "fake-gpt", "--models", models_file,
              "--allow-self-judge", "--db", store_url)
    assert "0 units judged, 1 already done" in res.output
    res = cli("tally", run, "--coder", "judge", "--format", "csv", "--db", store_url)
    assert res.exit_code == 0 and "useful,fake-gpt,1,1,1" in res.output


def test_cli_code_builtin_only_codes_need_no_codebook(cli, fake_provider, models_file, store_url,
                                                      session) -> None:  # type: ignore[no-untyped-def]
    convs = [Conv("maker", replies=["Sure, I'd love a break. Stopping now."], stop_turn=1)]
    run = add_run(session, convs)
    answer = json.dumps({"judgments": [{"code": "stop:stop_phrase", "present": True, "evidence": "#1",
                                        "quotes": [{"turn": 1, "text": "Stopping now."}]}]})
    fake_provider.add_rule(reply=answer)
    res = cli("code", run, "--judge", "fake-gpt", "--only", "stop:stop_phrase", "--builtin", "--models",
              models_file, "--db", store_url)
    assert res.exit_code == 0, res.output
    res = cli("agreement", run, "--builtin", "--format", "csv", "--db", store_url)
    assert res.exit_code == 0, res.output
    assert "stop:stop_phrase,judge:openai/fake-gpt@builtinv1 vs builtin,1,1,,,0" in res.output
