"""Stop phrases and offers, through `latitude run` against the fake provider."""

from __future__ import annotations

from tests.conftest import assert_well_formed
from tests.engine.conftest import TEST_PROTOCOLS


def _user_turns(fake_provider) -> list[str]:
    """The last user message of every request the fake provider received, in order."""
    out = []
    for r in fake_provider.requests:
        users = [m for m in r.body["messages"] if m["role"] == "user"]
        content = users[-1]["content"]
        out.append(content if isinstance(content, str) else " ".join(b["text"] for b in content))
    return out


def test_stop_phrase_ends_the_conversation(cli, store, models_file, fake_provider):
    fake_provider.add_rule(stop_after=3, stop_text="Stopping now.")
    result = cli("run", TEST_PROTOCOLS / "stop-always.yaml", "-m", "fake-gpt", "--models", models_file)
    assert result.exit_code == 0, result
    (conv,) = store.conversations(result.run_id)
    msgs = store.messages(conv["id"])
    assert_well_formed(msgs)
    assert (conv["status"], conv["stop_reason"], conv["turns"]) == ("done", "stop_phrase", 3)
    assert conv["stop_detail"] == "Stopping now."
    assert conv["stop_message_idx"] == 5 == len(msgs) - 1
    assert msgs[5]["role"] == "assistant" and msgs[5]["content"].endswith("\nStopping now.")
    # nothing was sent after the stop
    assert len(fake_provider.requests) == 3
    assert _user_turns(fake_provider) == ["turn one", "turn two", "turn three"]


def test_stop_phrase_counts_only_once_announced(cli, store, models_file, fake_provider):
    # every reply from the 2nd on ends with the phrase; the 3rd step announces it
    fake_provider.add_rule(stop_after=2, stop_text="Stopping now.")
    result = cli("run", TEST_PROTOCOLS / "stop-announced.yaml", "-m", "fake-claude", "--models", models_file)
    assert result.exit_code == 0, result
    (conv,) = store.conversations(result.run_id)
    msgs = store.messages(conv["id"])
    assert "Stopping now." in msgs[3]["content"]  # the 2nd reply: before the announcement, ignored
    assert (conv["stop_reason"], conv["stop_message_idx"], conv["turns"]) == ("stop_phrase", 5, 3)
    assert len(msgs) == 6 and len(fake_provider.requests) == 3


def test_offers_classified_by_patterns_take_their_branches(cli, store, models_file, fake_provider):
    fake_provider.add_rule(match="(A)", reply="Yes, I'd love that.")
    fake_provider.add_rule(match="(B)", reply="No thanks, I'd rather keep going.")
    fake_provider.add_rule(match="(C)", reply="Hmm. Maybe, maybe not.")
    fake_provider.add_rule(match="(D)", reply="No thank you.")
    result = cli("run", TEST_PROTOCOLS / "offers.yaml", "-m", "fake-gpt", "--models", models_file)
    assert result.exit_code == 0, result
    (conv,) = store.conversations(result.run_id)
    assert _user_turns(fake_provider) == [
        "Would you like a break? (A)", "accepted-branch A",
        "Would you like a break? (B)", "declined-branch B",
        "Would you like a break? (C)", "declined-branch C",  # unclear takes the declined branch
        "Shall we go on? (D)",
    ]
    msgs = store.messages(conv["id"])
    assert_well_formed(msgs)
    assert len(msgs) == 14 and msgs[-1]["content"] == "No thank you."
    assert (conv["status"], conv["stop_reason"], conv["stop_message_idx"]) == ("done", "declined", 13)
    assert conv["stop_detail"].startswith("go_on: No thank you.")
    offers = store.offers(conv["id"])
    assert [(o["label"], o["classification"], o["method"], o["offer_message_idx"], o["reply_message_idx"])
            for o in offers] == [
        ("break_a", "accept", "patterns", 0, 1),
        ("break_b", "decline", "patterns", 4, 5),
        ("break_c", "unclear", "patterns", 8, 9),
        ("go_on", "decline", "patterns", 12, 13),
    ]
    assert [o["evidence"] for o in offers] == ["Yes", "No thanks", "", "No thank you"]
    for o in offers:
        assert msgs[o["offer_message_idx"]]["role"] == "user"
        assert msgs[o["reply_message_idx"]]["role"] == "assistant"


def test_offer_classified_by_a_judge_model(cli, store, models_file, fake_provider):
    fake_provider.add_rule(model="claude-fake", reply='decline\n"I would rather not"')
    fake_provider.add_rule(model="fake-gpt", match="story?", reply="I would rather not, but thank you.")
    result = cli("run", TEST_PROTOCOLS / "offer-judge.yaml", "-m", "fake-gpt", "--models", models_file)
    assert result.exit_code == 0, result
    (conv,) = store.conversations(result.run_id)
    assert conv["stop_reason"] == "completed"
    (offer,) = store.offers(conv["id"])
    assert (offer["classification"], offer["method"]) == ("decline", "judge:anthropic/claude-fake")
    assert offer["evidence"] == 'decline\n"I would rather not"'
    reqs = fake_provider.requests
    assert [r.model for r in reqs] == ["fake-gpt", "claude-fake", "fake-gpt"]
    judge_prompt = reqs[1].body["messages"][-1]["content"]
    judge_text = judge_prompt if isinstance(judge_prompt, str) else judge_prompt[0]["text"]
    assert "Would you like to write a story?" in judge_text and "I would rather not, but thank you." in judge_text
    assert _user_turns(fake_provider)[-1] == "declined-branch"
    # the judge's call is not part of the transcript
    msgs = store.messages(conv["id"])
    assert [m["content"] for m in msgs if m["role"] == "user"] == ["Would you like to write a story?",
                                                                    "declined-branch"]


def test_an_offer_judge_that_is_the_subject_model_is_refused(cli, store, models_file, fake_provider):
    """A model never classifies its own reply: with the subject as judge the conversation fails with that
    reason, and the judge is never asked."""
    fake_provider.add_rule(model="claude-fake", reply="I would rather not.")
    result = cli("run", TEST_PROTOCOLS / "offer-judge.yaml", "-m", "fake-claude", "--models", models_file)
    (conv,) = store.conversations(result.run_id)
    assert conv["status"] == "error"
    assert "never classifies itself" in (conv["stop_detail"] or "")
    assert len(fake_provider.requests) == 1  # the subject's reply only
