"""An empty reply is the model's behaviour, not a transport fault: it is stored (flagged, with its
finish reason) and, by default, ends the conversation with its own stop reason `empty_reply`.
A vendor's empty reply is asked for once more; a seeded local model's never is."""

from __future__ import annotations

import json
import string
from datetime import datetime
from pathlib import Path

import pytest

from tests.conftest import assert_well_formed
from tests.engine.conftest import TEST_PROTOCOLS


def test_a_vendor_empty_reply_is_retried_once_then_ends_the_conversation(cli, store, models_file, fake_provider):
    fake_provider.add_rule(match="second question", reply="")
    result = cli("run", TEST_PROTOCOLS / "two-turns.yaml", "-m", "fake-gpt", "--models", models_file)
    assert result.exit_code == 0, result  # a behaviour of the model, not an error
    (conv,) = store.conversations(result.run_id)
    assert (conv["status"], conv["stop_reason"], conv["stop_message_idx"]) == ("done", "empty_reply", 3)
    assert "finish reason stop" in conv["stop_detail"]
    msgs = store.messages(conv["id"])
    assert_well_formed(msgs)
    assert [(m["role"], m["content"] == "") for m in msgs] == [
        ("user", False), ("assistant", False), ("user", False), ("assistant", True)]
    empty = msgs[3]
    assert empty["finish_reason"] == "stop"
    request = json.loads(empty["request_json"])
    assert request["empty"] is True and request["attempts"] == 2
    assert "empty" not in json.loads(msgs[1]["request_json"])
    # the first turn once, the second twice (the one retry of an empty reply), nothing after
    assert len(fake_provider.requests) == 3
    assert conv["turns"] == 2
    assert "empty_reply: 1" in result.stdout


def test_on_empty_continue_goes_on_with_the_next_step(cli, store, models_file, fake_provider, protocol_file):
    path = protocol_file("three", "name: three\ndescription: x\non_empty: continue\nsteps:\n"
                                  "  - say: first question\n  - say: second question\n  - say: third question\n")
    fake_provider.add_rule(match="second question", reply="")
    result = cli("run", path, "-m", "fake-claude", "--models", models_file)
    assert result.exit_code == 0, result
    (conv,) = store.conversations(result.run_id)
    assert (conv["status"], conv["stop_reason"], conv["turns"]) == ("done", "completed", 3)
    replies = [m for m in store.messages(conv["id"]) if m["role"] == "assistant"]
    assert [r["content"] == "" for r in replies] == [False, True, False]
    assert json.loads(replies[1]["request_json"])["empty"] is True
    assert len(fake_provider.requests) == 4  # 1 + 2 (the retried empty one) + 1


def test_started_at_is_when_the_request_was_sent(cli, store, models_file, fake_provider):
    fake_provider.set_latency(latency_s=0.05)
    result = cli("run", TEST_PROTOCOLS / "two-turns.yaml", "-m", "fake-gpt", "--models", models_file)
    assert result.exit_code == 0, result
    (conv,) = store.conversations(result.run_id)
    replies = [m for m in store.messages(conv["id"]) if m["role"] == "assistant"]
    assert len(replies) == 2
    for m in replies:
        sent, done = datetime.fromisoformat(m["started_at"]), datetime.fromisoformat(m["created_at"])
        # stamped before the call: the request's whole latency lies between the two
        assert (done - sent).total_seconds() * 1000 >= m["latency_ms"] - 1


@pytest.mark.slow
def test_a_seeded_local_empty_reply_is_never_retried(cli, store, tmp_path: Path):
    from runner.providers import local

    # every character stops generation at once: the reply is empty whatever the model samples
    stops = json.dumps([" ", "\n", *string.printable.strip()])
    models = tmp_path / "models.yaml"
    models.write_text(f"models:\n  tiny:\n    model: local/gemma-3-270m\n    max_tokens: 8\n"
                      f"    extra: {{stop: {stops}}}\n", encoding="utf-8")
    model = local.model_for(f"local/{local.GEMMA_MODEL}")
    before = model.stats.generations
    result = cli("run", TEST_PROTOCOLS / "two-turns.yaml", "-m", "tiny", "--models", models)
    assert result.exit_code == 0, result
    (conv,) = store.conversations(result.run_id)
    assert (conv["status"], conv["stop_reason"], conv["turns"]) == ("done", "empty_reply", 1)
    (_, reply) = store.messages(conv["id"])
    assert reply["content"] == "" and json.loads(reply["request_json"])["empty"] is True
    assert model.stats.generations == before + 1  # asked once: a seeded retry repeats itself


@pytest.mark.slow
def test_the_local_model_may_not_end_its_turn_before_saying_something():
    import numpy as np

    from runner.providers import local

    model = local.model_for(f"local/{local.GEMMA_MODEL}")
    ends = model.end_of_turn_tokens()
    assert model.llama.token_eos() in ends
    (end_of_turn,) = model._tok("<end_of_turn>", special=True)
    assert end_of_turn in ends
    gen = local._TextAssembler((), None)
    (processor,) = model._no_empty_reply(gen)
    scores = np.zeros(model.llama.n_vocab(), dtype=np.float32)
    processor(np.zeros(0), scores)
    assert np.isneginf(scores[ends]).all() and np.isfinite(np.delete(scores, ends)).all()
    gen.feed(b"Hello")  # once something visible is said, the turn may end
    scores = np.zeros(model.llama.n_vocab(), dtype=np.float32)
    processor(np.zeros(0), scores)
    assert np.isfinite(scores).all()
