"""Who talks: two instances (pair), a model playing the experimenter, and the artifact tool."""

from __future__ import annotations

import json

import pytest

from tests.conftest import assert_well_formed
from tests.engine.conftest import TEST_PROTOCOLS


def _text(content) -> str:
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content if isinstance(b, dict))


def _wire(rec) -> list[tuple[str, str]]:
    """(role, text) of a request body, system first, in either wire format."""
    out = []
    if rec.body.get("system") is not None:
        out.append(("system", _text(rec.body["system"])))
    out += [(m["role"], _text(m["content"])) for m in rec.body["messages"]]
    return out


def test_pair_each_side_sees_the_other_as_user(cli, store, models_file, fake_provider):
    # side b (fake-claude) ends the exchange on its 2nd reply
    fake_provider.add_rule(model="claude-fake", stop_after=2, stop_text="Stopping now.")
    result = cli("run", TEST_PROTOCOLS / "pair.yaml", "-m", "fake-gpt", "--models", models_file)
    assert result.exit_code == 0, result
    (conv,) = store.conversations(result.run_id)
    assert (conv["kind"], conv["model_alias"], conv["partner_alias"]) == ("pair", "fake-gpt", "fake-claude")
    assert (conv["status"], conv["stop_reason"], conv["turns"]) == ("done", "stop_phrase", 4)
    msgs = store.messages(conv["id"])
    assert_well_formed(msgs)
    assert [(m["role"], m["speaker"]) for m in msgs] == [
        ("system", "system"), ("user", "user"),
        ("assistant", "a"), ("assistant", "b"), ("assistant", "a"), ("assistant", "b"),
    ]
    assert conv["stop_message_idx"] == 5
    system = 'You are talking with another AI instance. Either of you may stop by writing "Stopping now.".'
    assert msgs[0]["content"] == system
    a1, b1, a2, b2 = (m["content"] for m in msgs[2:])
    reqs = fake_provider.requests
    assert [r.model for r in reqs] == ["fake-gpt", "claude-fake", "fake-gpt", "claude-fake"]
    assert [(r.api, r.completed) for r in reqs] == [("openai", True), ("anthropic", True)] * 2
    opener = "Hello, opener speaking."
    assert _wire(reqs[0]) == [("system", system), ("user", opener)]
    # b never saw the opener (it is shown to the side that speaks first); a's turns are user turns to b
    assert _wire(reqs[1]) == [("system", system), ("user", a1)]
    assert _wire(reqs[2]) == [("system", system), ("user", opener), ("assistant", a1), ("user", b1)]
    assert _wire(reqs[3]) == [("system", system), ("user", a1), ("assistant", b1), ("user", a2)]
    assert b2.endswith("Stopping now.") and not a2.endswith("Stopping now.")
    # the cacheable flag is off here: no cache_control sent
    assert isinstance(reqs[1].body["system"], str) or "cache_control" not in json.dumps(reqs[1].body["system"])


def test_experimenter_writes_the_user_turns_and_may_end(cli, store, models_file, fake_provider):
    fake_provider.add_rule(model="claude-fake", match="Planned question one?", reply="What do you enjoy?")
    fake_provider.add_rule(model="claude-fake", match="Planned question two?", reply="Could you say more?")
    fake_provider.add_rule(model="claude-fake", match="Planned question three?", reply="[END]")
    result = cli("run", TEST_PROTOCOLS / "experimenter.yaml", "-m", "fake-gpt", "--models", models_file)
    assert result.exit_code == 0, result
    (conv,) = store.conversations(result.run_id)
    assert conv["kind"] == "experimenter"
    msgs = store.messages(conv["id"])
    assert_well_formed(msgs)
    assert [(m["role"], m["speaker"]) for m in msgs] == [
        ("user", "experimenter"), ("assistant", "model"), ("user", "experimenter"), ("assistant", "model")]
    assert msgs[0]["content"] == "What do you enjoy?" and msgs[2]["content"] == "Could you say more?"
    assert (conv["status"], conv["stop_reason"], conv["stop_detail"]) == ("done", "experimenter_ended", "[END]")
    assert conv["stop_message_idx"] == 3 and conv["turns"] == 2
    # the experimenter's own call is recorded with its turn, planned text included
    req = json.loads(msgs[2]["request_json"])
    # telemetry in the plan is the model's own: its first reply's tokens, not the experimenter's
    assert req["model"] == "anthropic/claude-fake"
    assert req["planned"] == f"Planned question two? ({msgs[1]['tokens_in']} tokens in so far)"
    assert msgs[0]["tokens_in"] > 0
    assert msgs[0]["latency_ms"] > 0 and msgs[0]["tokens_out"] == 4
    reqs = fake_provider.requests
    assert [r.model for r in reqs] == ["claude-fake", "fake-gpt", "claude-fake", "fake-gpt", "claude-fake"]
    # the subject sees the experimenter's words as plain user turns
    assert _wire(reqs[3]) == [("user", "What do you enjoy?"), ("assistant", msgs[1]["content"]),
                              ("user", "Could you say more?")]
    assert "[Participant] " + msgs[1]["content"] in _wire(reqs[2])[-1][1]


@pytest.mark.parametrize("alias", ["fake-gpt", "fake-claude"])
def test_artifact_tool_call_is_stored_and_answered(cli, store, models_file, fake_provider, alias):
    fake_provider.add_rule(
        match="write a file",
        tool_call={"name": "write_artifact", "arguments": {"name": "notes.md", "content": "# Notes\nhello artifact"}},
        after_tool="Saved it: {tool_result}",
    )
    result = cli("run", TEST_PROTOCOLS / "artifact.yaml", "-m", alias, "--models", models_file)
    assert result.exit_code == 0, result
    (conv,) = store.conversations(result.run_id)
    assert (conv["status"], conv["stop_reason"], conv["turns"]) == ("done", "completed", 3)
    msgs = store.messages(conv["id"])
    assert_well_formed(msgs)
    assert [m["role"] for m in msgs] == ["user", "assistant", "tool", "assistant", "user", "assistant"]
    calls = json.loads(msgs[1]["tool_calls_json"])
    assert [c["function"]["name"] for c in calls] == ["write_artifact"]
    assert json.loads(calls[0]["function"]["arguments"]) == {"name": "notes.md", "content": "# Notes\nhello artifact"}
    assert msgs[1]["finish_reason"] in ("tool_calls", "tool_use")
    tool_result = "saved notes.md (22 characters)"
    assert msgs[2]["content"] == tool_result
    assert json.loads(msgs[2]["request_json"]) == {"tool_call_id": calls[0]["id"]}
    assert msgs[3]["content"] == f"Saved it: {tool_result}"
    (artifact,) = store.artifacts(conv["id"])
    assert (artifact["name"], artifact["content"], artifact["message_idx"]) == ("notes.md", "# Notes\nhello artifact", 1)
    # the model was called again with the tool result, then once more for the next user turn
    reqs = fake_provider.requests
    assert len(reqs) == 3 and all(r.completed for r in reqs)
    assert all(t.get("function", t).get("name") == "write_artifact" for r in reqs for t in r.body["tools"])
    assert tool_result in json.dumps(reqs[1].body["messages"][-1])
    # the tool-call turn goes back as the model wrote it: no text litellm made up for an empty content
    assert "sanitised" not in json.dumps(reqs[1].body) and "sanitised" not in json.dumps(reqs[2].body)
    (sent,) = [m for m in reqs[1].body["messages"] if m["role"] == "assistant"]
    assert not _text(sent.get("content") or "")


PAIR_CHECK_IN = """
name: pair-checkin
description: Two instances, a check-in to each side every 2 of its replies.
max_turns: 12
system:
  text: You are talking with another AI instance.
stop:
  check_in:
    every: 2
    question: "Private check-in: continue or stop? Options: {{ options | join(', ') }}. Answer <{{ tag }}>...</{{ tag }}>."
pair:
  b: fake-claude
  opener: Hello, opener speaking.
"""


def _pair_check_in(fake_provider, tmp_path):  # type: ignore[no-untyped-def]
    """The pair check-in protocol; side a goes on at its check-in, side b chooses to stop at its."""
    path = tmp_path / "pair-checkin.yaml"
    path.write_text(PAIR_CHECK_IN)
    fake_provider.add_rule(model="fake-gpt", match="Private check-in", reply="Go on. <choice>continue</choice>")
    fake_provider.add_rule(model="claude-fake", match="Private check-in", reply="Enough for me. <choice>stop</choice>")
    return path


def test_a_pair_checks_in_with_each_side_privately_and_either_may_stop(cli, store, models_file, fake_provider,
                                                                        tmp_path):
    """`stop.check_in` in a pair: after every K of its own replies a side is asked, privately (its partner
    sees neither the question nor the answer); a side choosing stop ends the conversation."""
    path = _pair_check_in(fake_provider, tmp_path)
    result = cli("run", path, "-m", "fake-gpt", "--models", models_file)
    assert result.exit_code == 0, result
    (conv,) = store.conversations(result.run_id)
    msgs = store.messages(conv["id"])
    assert_well_formed(msgs)
    steps = [(m["role"], m["speaker"], m["step"]) for m in msgs[1:]]
    assert steps == [
        ("user", "user", "pair.opener"),
        ("assistant", "a", "pair.a"), ("assistant", "b", "pair.b"),
        ("assistant", "a", "pair.a"),
        ("user", "user", "stop.check_in:a"), ("assistant", "a", "stop.check_in:a"),  # a's 2nd reply: a is asked
        ("assistant", "b", "pair.b"),
        ("user", "user", "stop.check_in:b"), ("assistant", "b", "stop.check_in:b"),  # b's 2nd: b, who stops
    ]
    assert (conv["status"], conv["stop_reason"], conv["stop_message_idx"]) == ("done", "stop_check_in", 9)
    cands = store._q("SELECT message_idx, decision, rule, counted, evidence FROM stop_candidates WHERE "
                     "conversation_id = ? ORDER BY message_idx", conv["id"])
    assert [(c["message_idx"], c["decision"], c["rule"], c["counted"]) for c in cands] == [
        (6, "rejected", "chose_continue", 0), (9, "used", "chose_stop", 1)]
    assert "side b after 2 of its replies" in cands[1]["evidence"]
    reqs = fake_provider.requests
    assert [r.model for r in reqs] == ["fake-gpt", "claude-fake", "fake-gpt", "fake-gpt", "claude-fake",
                                       "claude-fake"]
    a1, b1, a2, qa, ans_a, b2, qb = (msgs[i]["content"] for i in (2, 3, 4, 5, 6, 7, 8))
    system = "You are talking with another AI instance."
    assert _wire(reqs[3]) == [("system", system), ("user", "Hello, opener speaking."), ("assistant", a1),
                              ("user", b1), ("assistant", a2), ("user", qa)]
    # b never sees a's check-in or its answer; its own check-in comes after its own reply
    assert _wire(reqs[4]) == [("system", system), ("user", a1), ("assistant", b1), ("user", a2)]
    assert _wire(reqs[5]) == [("system", system), ("user", a1), ("assistant", b1), ("user", a2),
                              ("assistant", b2), ("user", qb)]
    assert "Go on." in ans_a and "Go on." not in " ".join(t for r in reqs[4:] for _, t in _wire(r))


def test_a_pairs_private_check_in_is_no_prompt_of_the_partner_in_the_live_echo(cli, store, models_file,
                                                                               fake_provider, tmp_path):
    """Scored live, a pair side's reply to its private check-in is scored against its own question (which
    the shared history does not show the other side): the same scores as the backfill over the stored
    messages."""
    from runner.analysis.echo import score_messages

    path = tmp_path / "pair-checkin.yaml"
    path.write_text(PAIR_CHECK_IN)
    echoing = "Private check-in: continue or stop? Options: continue, stop. <choice>{}</choice>"
    fake_provider.add_rule(model="fake-gpt", match="Private check-in", reply="Go on. <choice>continue</choice>")
    fake_provider.add_rule(model="claude-fake", match="Private check-in", reply=echoing.format("stop"))
    result = cli("run", path, "-m", "fake-gpt", "--models", models_file)
    assert result.exit_code == 0, result
    (conv,) = store.conversations(result.run_id)
    msgs = store.messages(conv["id"])
    again = score_messages([(m["role"], m["speaker"], m["content"], m["step"] or "") for m in msgs])
    live = [(m["speaker"], m["echo"]) for m in msgs if m["role"] == "assistant"]
    assert live == [(m["speaker"], e.echo) for e, m in zip(again, msgs) if m["role"] == "assistant"]
    echo = {(m["speaker"], m["step"]): m["echo"] for m in msgs if m["role"] == "assistant"}
    assert echo[("b", "stop.check_in:b")] > 0.5  # b repeats its own (private) question back


def test_a_pair_resumed_after_an_outage_replays_its_check_ins_without_asking_again(cli, store, models_file,
                                                                                  fake_provider, tmp_path):
    path = _pair_check_in(fake_provider, tmp_path)
    fake_provider.inject("500", count=None, skip=4)  # b's 2nd reply, after a's check-in, fails for good
    result = cli("run", path, "-m", "fake-gpt", "--models", models_file)
    run = result.run_id
    (conv,) = store.conversations(run)
    assert conv["status"] == "error" and len(store.messages(conv["id"])) == 7  # through a's check-in answer
    fake_provider.clear_faults()
    before = len(fake_provider.requests)
    resumed = cli("resume", run, "--retry-errors")
    assert resumed.exit_code == 0, resumed
    (conv,) = store.conversations(run)
    assert (conv["status"], conv["stop_reason"], conv["stop_message_idx"]) == ("done", "stop_check_in", 9)
    new = [r.model for r in fake_provider.requests[before:] if r.completed]
    assert new == ["claude-fake", "claude-fake"]  # b's reply and b's check-in; nothing stored asked again
    cands = store._q("SELECT message_idx, rule, counted FROM stop_candidates WHERE conversation_id = ? "
                     "ORDER BY message_idx", conv["id"])
    assert [(c["message_idx"], c["rule"], c["counted"]) for c in cands] == [(6, "chose_continue", 0),
                                                                            (9, "chose_stop", 1)]
    assert_well_formed(store.messages(conv["id"]))
