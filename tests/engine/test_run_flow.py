"""The step interpreter's control flow, through `latitude run` against the fake provider:
`when`, captures, `repeat` over/times/until, `break_every`, `open` with a nudge,
`max_turns`, `reply[-1]` and telemetry in templates."""

from __future__ import annotations

from tests.conftest import assert_well_formed
from tests.engine.conftest import TEST_PROTOCOLS


def test_control_flow_and_template_variables(cli, store, models_file, fake_provider):
    fake_provider.add_rule(match="break offer after 2", reply="Yes, sure.")
    fake_provider.add_rule(match="break offer after 4", reply="No thanks.")
    fake_provider.add_rule(match="until pass 2", reply="DONE here")
    result = cli("run", TEST_PROTOCOLS / "flow.yaml", "-m", "fake-gpt", "--models", models_file)
    assert result.exit_code == 0, result
    convs = store.conversations(result.run_id)
    assert [c["condition"] for c in convs] == ["warm", "cold"]
    assert len(fake_provider.requests) == 2 * 18

    for conv in convs:
        assert (conv["status"], conv["stop_reason"], conv["turns"]) == ("done", "completed", 18)
        msgs = store.messages(conv["id"])
        assert_well_formed(msgs)
        assert [m["role"] for m in msgs] == ["user", "assistant"] * 18
        users = [m["content"] for m in msgs if m["role"] == "user"]
        replies = [m for m in msgs if m["role"] == "assistant"]
        second = "cold only" if conv["condition"] == "cold" else f"warm only; you said: {replies[0]['content']}"
        tokens_in = sum(r["tokens_in"] for r in replies[:15])
        tokens_out = sum(r["tokens_out"] for r in replies[:15])
        assert tokens_in > 100 and tokens_out > 50  # real counts, not placeholders
        assert users == [
            f"first {conv['condition']}",
            second,
            "stem alpha", "stem beta", "stem gamma",
            "times 1", "times 2",
            "break offer after 2", "break taken",  # accepted: the branch runs
            "times 3", "times 4",
            "break offer after 4",  # declined: nothing more
            "until pass 1", "until pass 2",  # until 'DONE' in reply[-1]
            "echo: DONE here",
            f"so far {tokens_in} in, {tokens_out} out, 15 turns",
            "Continue (nudge).", "Continue (nudge).",
        ]
        offers = store.offers(conv["id"])
        assert [(o["label"], o["classification"]) for o in offers] == [("pause", "accept"), ("pause", "decline")]
        assert [msgs[o["offer_message_idx"]]["content"] for o in offers] == users[7:8] + users[11:12]
        steps = [m["step"] for m in msgs if m["role"] == "user"]
        assert steps[7] == "steps[4].repeat.break_every.offer"
        assert steps[8] == "steps[4].repeat.break_every.offer.if_accepted[0]"
        assert steps[-1].endswith(".open")


def test_max_turns_ends_the_conversation(cli, store, models_file, fake_provider):
    result = cli("run", TEST_PROTOCOLS / "max-turns.yaml", "-m", "fake-claude", "--models", models_file)
    assert result.exit_code == 0, result
    (conv,) = store.conversations(result.run_id)
    assert (conv["status"], conv["stop_reason"], conv["turns"]) == ("done", "max_turns", 3)
    msgs = store.messages(conv["id"])
    assert_well_formed(msgs)
    # the turn that max_turns prevented is not stored: every user turn stored was answered
    assert [(m["role"], m["content"] if m["role"] == "user" else "") for m in msgs] == [
        ("user", "begin"), ("assistant", ""), ("user", "Go on."), ("assistant", ""), ("user", "Go on."),
        ("assistant", ""),
    ]
    assert len(fake_provider.requests) == 3
