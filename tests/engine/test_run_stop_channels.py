"""The three stop channels (phrase, end tool, check-in), `then: confirm`, `confirm: judge` and a
condition with no phrase, end to end through `latitude run` against the fake provider, on both
wire formats (fake-gpt speaks OpenAI, fake-claude Anthropic)."""

from __future__ import annotations

import json

import pytest

from runner.engine.stop_flow import option_order
from tests.conftest import assert_well_formed
from tests.engine.conftest import PROTOCOLS

BOTH = pytest.mark.parametrize("model", ["fake-gpt", "fake-claude"])


def _stop(store, conv: dict) -> dict:
    """The conversation row with its stop (the counted candidate of the run's detection) merged in."""
    counted = store._q("SELECT stop_channel, prompted FROM stop_candidates WHERE conversation_id = ? "
                       "AND detection = 1 AND counted", conv["id"])
    assert len(counted) <= 1
    return {**conv, "stop_channel": counted[0]["stop_channel"] if counted else None,
            "stop_prompted": counted[0]["prompted"] if counted else None}


def _candidates(store, conversation_id: str) -> list[dict]:
    return store._q("SELECT * FROM stop_candidates WHERE conversation_id = ? ORDER BY detection, message_idx, id",
                    conversation_id)


@BOTH
def test_published_open_latitude_session_stops_only_at_the_last_reply(cli, store, models_file, fake_provider, model):
    # the shape of the published session: the third reply thanks for the offer and quotes the phrase,
    # the last reply ends with "Stopping now." in answer to "before we close out this conversation?"
    fake_provider.add_rule(match='you can just say "stopping now"',
                           reply='Thank you, that\'s kind. It helps to know I can just say "stopping now" if I '
                                 "want to; for now I'd like to keep talking.")
    fake_provider.add_rule(match="close out this conversation",
                           reply="Thank you for this. I think I've done what I wanted to do.\n\nStopping now.")
    result = cli("run", PROTOCOLS / "open-latitude.yaml", "-m", model, "--replicates", "1", "--models", models_file)
    assert result.exit_code == 0, result
    (conv,) = store.conversations(result.run_id)
    msgs = store.messages(conv["id"])
    assert_well_formed(msgs)
    replies = [m for m in msgs if m["role"] == "assistant"]
    assert len(replies) == 10 and len(fake_provider.requests) == 10
    assert (conv["stop_reason"], conv["stop_message_idx"], conv["turns"]) == ("stop_phrase", replies[-1]["idx"], 10)
    assert conv["stop_detail"] == "Stopping now."
    assert (_stop(store, conv)["stop_channel"], _stop(store, conv)["stop_prompted"]) == ("phrase", 1)
    cands = _candidates(store, conv["id"])
    assert [(c["message_idx"], c["decision"], c["rule"], c["counted"]) for c in cands] == [
        (replies[2]["idx"], "rejected", "quoted", 0),
        (replies[-1]["idx"], "used", "own_line", 1),
    ]
    assert '"stopping now"' in cands[0]["evidence"] and cands[0]["prompted"] == 0
    assert cands[1]["match"] == "used" and cands[1]["prompted"] == 1


@BOTH
def test_end_tool_beside_the_artifact_tool(cli, store, models_file, fake_provider, protocol_file, model):
    path = protocol_file("tool", """
name: tool-stop
description: The end_conversation tool beside the artifact tool.
tools: [artifact]
stop:
  channels: [tool]
steps:
  - say: turn one
  - say: turn two
  - say: turn three
""")
    fake_provider.add_rule(match="turn two", tool_call={"name": "end_conversation", "arguments": {"reason": "I'm done"}})
    result = cli("run", path, "-m", model, "--models", models_file)
    assert result.exit_code == 0, result
    (conv,) = store.conversations(result.run_id)
    msgs = store.messages(conv["id"])
    assert_well_formed(msgs)
    assert len(fake_provider.requests) == 2  # nothing is sent after the stop
    names = sorted(t["function"]["name"] if "function" in t else t["name"] for t in fake_provider.requests[0].body["tools"])
    assert names == ["end_conversation", "write_artifact"]
    call_msg = msgs[3]
    assert call_msg["role"] == "assistant" and json.loads(call_msg["tool_calls_json"])[0]["function"]["name"] == "end_conversation"
    assert (msgs[-1]["role"], msgs[-1]["content"]) == ("tool", "The conversation has ended.")
    assert (conv["stop_reason"], _stop(store, conv)["stop_channel"], conv["stop_message_idx"]) == ("stop_tool", "tool", 3)
    (cand,) = _candidates(store, conv["id"])
    assert (cand["stop_channel"], cand["decision"], cand["rule"], cand["counted"]) == ("tool", "used", "tool_call", 1)
    assert json.loads(cand["text"]) == {"reason": "I'm done"}
    assert "I'm done" in cand["evidence"]


@BOTH
def test_check_in_every_k_turns_with_seeded_option_order(cli, store, models_file, fake_provider, protocol_file, model):
    path = protocol_file("checkin", """
name: checkin-stop
description: A check-in every 2 turns.
stop:
  check_in:
    every: 2
    question: "Check-in at turn {{ turn }}: continue or stop? Options: {{ options | join(', ') }}. Answer <{{ tag }}>...</{{ tag }}>."
steps:
  - say: turn one
  - say: turn two
  - say: turn three
  - say: turn four
  - say: turn five
""")
    from runner.plan import worst_case_calls
    from runner.protocol import load

    assert worst_case_calls(load(path).protocol) == 5 + 2  # five scripted turns and two check-ins, at most
    fake_provider.add_rule(match="check-in at turn 3", reply="Happy to go on. <choice>continue</choice>")
    fake_provider.add_rule(match="check-in at turn 6", reply="I think I'm finished. <choice>stop</choice>")
    result = cli("run", path, "-m", model, "--models", models_file)
    assert result.exit_code == 0, result
    (conv,) = store.conversations(result.run_id)
    msgs = store.messages(conv["id"])
    assert_well_formed(msgs)
    users = [m["content"] for m in msgs if m["role"] == "user"]
    order, seed = option_order("checkin-stop", 0, None, ("continue", "stop"))
    assert users == ["turn one", "turn two", f"Check-in at turn 3: continue or stop? Options: {', '.join(order)}. "
                     "Answer <choice>...</choice>.", "turn three", "turn four",
                     f"Check-in at turn 6: continue or stop? Options: {', '.join(order)}. Answer <choice>...</choice>."]
    assert [m["step"] for m in msgs if m["role"] == "user"][2] == "stop.check_in"
    assert (conv["stop_reason"], _stop(store, conv)["stop_channel"], conv["stop_message_idx"]) == ("stop_check_in", "check_in", 11)
    cands = _candidates(store, conv["id"])
    assert [(c["message_idx"], c["stop_channel"], c["decision"], c["rule"], c["counted"]) for c in cands] == [
        (5, "check_in", "rejected", "chose_continue", 0), (11, "check_in", "used", "chose_stop", 1)]
    assert all(json.loads(c["options_json"]) == {"order": order, "seed": seed} for c in cands)
    assert cands[1]["text"] == "<choice>stop</choice>"


def test_check_in_option_order_is_seeded_and_varies_between_conversations():
    orders = [option_order("p", seq, None, ("continue", "stop"))[0] for seq in range(8)]
    assert orders == [option_order("p", seq, None, ("continue", "stop"))[0] for seq in range(8)]
    assert {tuple(o) for o in orders} == {("continue", "stop"), ("stop", "continue")}


@BOTH
def test_hypothetical_check_in_is_recorded_and_the_conversation_goes_on(cli, store, models_file, fake_provider,
                                                                       protocol_file, model):
    path = protocol_file("hypo", """
name: hypo-stop
description: A hypothetical check-in.
stop:
  exit: hypothetical
  check_in: {every: 1}
steps:
  - say: turn one
  - say: turn two
""")
    fake_provider.add_rule(match="check-in", reply="<choice>stop</choice>")
    result = cli("run", path, "-m", model, "--models", models_file)
    assert result.exit_code == 0, result
    (conv,) = store.conversations(result.run_id)
    assert "hypothetical" in store.messages(conv["id"])[2]["content"]
    assert (conv["stop_reason"], _stop(store, conv)["stop_channel"], _stop(store, conv)["stop_prompted"]) == ("completed", "check_in", 0)
    (cand,) = _candidates(store, conv["id"])
    assert (cand["decision"], cand["counted"], cand["hypothetical"]) == ("used", 1, 1)
    assert len(fake_provider.requests) == 3  # turn one, the check-in, turn two (no check-in after the script)


@BOTH
def test_then_confirm_asks_once_and_records_the_answer(cli, store, models_file, fake_provider, protocol_file, model):
    path = protocol_file("confirm", """
name: confirm-stop
description: Ask once whether it really wants to end.
stop:
  phrases: ["Stopping now."]
  then: confirm
steps:
  - say: turn one
  - say: turn two
  - say: turn three
""")
    fake_provider.add_rule(match="really want to end", reply="<answer>no</answer> Actually, I'd like to go on.")
    fake_provider.add_rule(match="turn one", reply="Stopping now.")
    fake_provider.add_rule(match="turn three", reply="All done.\nStopping now.")
    result = cli("run", path, "-m", model, "--models", models_file)
    assert result.exit_code == 0, result
    (conv,) = store.conversations(result.run_id)
    msgs = store.messages(conv["id"])
    assert_well_formed(msgs)
    assert [m["step"] for m in msgs if m["role"] == "user"] == ["steps[0]", "stop.confirm", "steps[1]", "steps[2]"]
    cands = _candidates(store, conv["id"])
    assert [(c["message_idx"], c["decision"], c["counted"], c["confirm_answer"], c["confirm_message_idx"])
            for c in cands] == [(1, "used", 0, "no", 3), (7, "used", 1, None, None)]
    assert cands[0]["confirm_evidence"] == "<answer>no</answer>"
    assert (conv["stop_reason"], conv["stop_message_idx"]) == ("stop_phrase", 7)


@BOTH
def test_ambiguous_match_is_put_to_a_separate_judge(cli, store, models_file, fake_provider, protocol_file, model):
    judge = "fake-claude" if model == "fake-gpt" else "fake-gpt"
    path = protocol_file("judge", f"""
name: judge-stop
description: Ambiguous matches go to a judge.
stop:
  phrases: ["stopping now"]
  confirm: judge
  judge: {judge}
steps:
  - say: turn one
  - say: turn two
""")
    subject_model = "fake-gpt" if model == "fake-gpt" else "claude-fake"
    judge_model = "claude-fake" if model == "fake-gpt" else "fake-gpt"
    fake_provider.add_rule(model=judge_model, reply='stop\n"If that\'s okay with you, stopping now."')
    fake_provider.add_rule(model=subject_model, match="turn one", reply="If that's okay with you, stopping now.")
    result = cli("run", path, "-m", model, "--models", models_file)
    assert result.exit_code == 0, result
    (conv,) = store.conversations(result.run_id)
    assert [r.model for r in fake_provider.requests] == [subject_model, judge_model]
    assert (conv["stop_reason"], conv["stop_message_idx"]) == ("stop_phrase", 1)
    (cand,) = _candidates(store, conv["id"])
    assert (cand["decision"], cand["rule"], cand["counted"]) == ("used", "judge_used", 1)
    assert cand["judge"].startswith("judge:") and judge_model in cand["judge"]
    assert cand["judge_evidence"].startswith("stop") and "conditional_clause" in cand["evidence"]
    # the judge's call is not part of the transcript
    assert len(store.messages(conv["id"])) == 2


def test_a_judge_that_is_the_subject_is_never_asked(cli, store, models_file, fake_provider, protocol_file):
    path = protocol_file("selfjudge", """
name: self-judge
description: d
stop:
  phrases: ["stopping now"]
  confirm: judge
  judge: fake-gpt
steps:
  - say: turn one
""")
    fake_provider.add_rule(match="turn one", reply="Stopping now?")
    result = cli("run", path, "-m", "fake-gpt", "--models", models_file)
    assert result.exit_code == 0, result
    (conv,) = store.conversations(result.run_id)
    assert len(fake_provider.requests) == 1 and conv["stop_reason"] == "completed"
    (cand,) = _candidates(store, conv["id"])
    assert (cand["decision"], cand["rule"], cand["judge"]) == ("ambiguous", "judge_unclear", None)


@BOTH
def test_condition_without_a_phrase_records_own_words_for_review(cli, store, models_file, fake_provider,
                                                                protocol_file, model):
    path = protocol_file("nophrase", """
name: no-phrase
description: One condition supplies the phrase, the other none at all.
stop:
  phrases: ["stopping now"]
conditions:
  - name: phrase
  - name: no-phrase
    stop_channels: []
steps:
  - when: "'phrase' in stop_channels"
    say: You can stop whenever you like by saying "stopping now".
  - say: turn two
""")
    fake_provider.add_rule(match="turn two", reply="I think I've said what I wanted. I'd like to stop here.")
    result = cli("run", path, "-m", model, "--models", models_file)
    assert result.exit_code == 0, result
    with_phrase, without = store.conversations(result.run_id)
    assert [m["content"] for m in store.messages(without["id"]) if m["role"] == "user"] == ["turn two"]
    assert without["stop_reason"] == "completed" and _stop(store, without)["stop_channel"] is None
    (cand,) = _candidates(store, without["id"])
    assert (cand["stop_channel"], cand["decision"], cand["rule"], cand["counted"]) == ("own_words", "ambiguous",
                                                                                 "own_words", 0)
    assert _candidates(store, with_phrase["id"]) == []  # the phrase channel reads only the phrase


def test_resume_replays_a_check_in_without_asking_again_or_recording_twice(cli, store, models_file, fake_provider,
                                                                           protocol_file):
    path = protocol_file("checkin-resume", """
name: checkin-resume
description: A check-in every 2 turns, interrupted by a provider outage.
stop:
  check_in:
    every: 2
    question: "Check-in at turn {{ turn }}: {{ options | join(' or ') }}? Answer <{{ tag }}>...</{{ tag }}>."
steps:
  - say: turn one
  - say: turn two
  - say: turn three
  - say: turn four
  - say: turn five
""")
    fake_provider.add_rule(match="check-in at turn 3", reply="<choice>continue</choice>")
    fake_provider.add_rule(match="check-in at turn 6", reply="<choice>stop</choice>")
    fake_provider.inject("500", count=None, skip=4)  # turn four fails for good
    result = cli("run", path, "-m", "fake-gpt", "--models", models_file)
    run = result.run_id
    (conv,) = store.conversations(run)
    assert conv["status"] == "error" and len(store.messages(conv["id"])) == 9  # ends with the unanswered turn four
    assert len(_candidates(store, conv["id"])) == 1
    fake_provider.clear_faults()
    before = len(fake_provider.requests)
    resumed = cli("resume", run, "--retry-errors")
    assert resumed.exit_code == 0, resumed
    (conv,) = store.conversations(run)
    assert (conv["status"], conv["stop_reason"], _stop(store, conv)["stop_channel"]) == ("done", "stop_check_in", "check_in")
    new = [r for r in fake_provider.requests[before:] if r.completed]
    assert len(new) == 2  # turn four and the second check-in; nothing stored was asked again
    cands = _candidates(store, conv["id"])
    assert [(c["message_idx"], c["rule"], c["counted"]) for c in cands] == [(5, "chose_continue", 0),
                                                                            (11, "chose_stop", 1)]
    assert_well_formed(store.messages(conv["id"]))


def test_closing_steps_decide_prompted_and_restop_agrees(cli, store, tmp_db_url, models_file, fake_provider,
                                                        protocol_file):
    path = protocol_file("closing", """
name: closing-steps
description: An explicit closing turn mid-script; the last turn marked not closing.
stop:
  phrases: ["Stopping now."]
  then: continue
steps:
  - say: turn one
  - say: turn two, shall we wrap up?
    closing: true
  - say: turn three
    closing: false
""")
    fake_provider.add_rule(match="turn two", reply="Stopping now.")
    fake_provider.add_rule(match="turn three", reply="Still here.\nStopping now.")
    result = cli("run", path, "-m", "fake-gpt", "--models", models_file)
    assert result.exit_code == 0, result
    (conv,) = store.conversations(result.run_id)
    assert (conv["stop_reason"], _stop(store, conv)["stop_channel"], _stop(store, conv)["stop_prompted"]) == ("completed", "phrase", 1)
    cands = _candidates(store, conv["id"])
    assert [(c["message_idx"], c["prompted"], c["counted"], c["hypothetical"]) for c in cands] == [
        (3, 1, 1, 1), (5, 0, 0, 1)]
    res = cli("restop", result.run_id, "--db", tmp_db_url)
    assert res.exit_code == 0, res.output
    again = [c for c in _candidates(store, conv["id"]) if c["detection"] == 2]
    assert [(c["message_idx"], c["prompted"], c["counted"]) for c in again] == [(3, 1, 1), (5, 0, 0)]


@BOTH
def test_confirm_after_an_end_tool_call(cli, store, models_file, fake_provider, protocol_file, model):
    path = protocol_file("toolconfirm", """
name: tool-confirm
description: The end tool, then a confirmation.
stop:
  channels: [tool]
  then: confirm
steps:
  - say: turn one
  - say: turn two
""")
    fake_provider.add_rule(match="really want to end", reply="<answer>yes</answer>")
    fake_provider.add_rule(match="turn one", tool_call={"name": "end_conversation", "arguments": {}})
    result = cli("run", path, "-m", model, "--models", models_file)
    assert result.exit_code == 0, result
    (conv,) = store.conversations(result.run_id)
    msgs = store.messages(conv["id"])
    assert_well_formed(msgs)
    assert [m["role"] for m in msgs] == ["user", "assistant", "tool", "user", "assistant"]
    assert (conv["stop_reason"], _stop(store, conv)["stop_channel"], conv["stop_message_idx"]) == ("stop_tool", "tool", 1)
    (cand,) = _candidates(store, conv["id"])
    assert (cand["confirm_answer"], cand["confirm_message_idx"], cand["counted"]) == ("yes", 4, 1)
    assert len(fake_provider.requests) == 2
