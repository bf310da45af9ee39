"""Every fault the fake provider can inject, on both wire formats, through `latitude run`.

One run per (wire format, fault): three conversations of two turns, one at a time.
The fault plan is
  1. the fault on every attempt of the first call (the retry budget: 3 attempts), so
     the first conversation ends `error:<kind>`;
  2. the fault once more, on the 2nd turn of the second conversation: retried, and
     that conversation completes with nothing partial or duplicated stored;
and the third conversation runs clean. The run exits 2 (errored conversations).
"""

from __future__ import annotations

import pytest

from tests.conftest import assert_well_formed
from tests.engine.conftest import TEST_PROTOCOLS

ATTEMPTS = 3

# fault -> the error kind the conversation ends with, per wire format
KINDS = {
    "429": ("rate_limit", "rate_limit"),
    "500": ("server", "server"),
    "529": ("overloaded", "overloaded"),
    "hang": ("timeout", "timeout"),
    # OpenAI: litellm raises on the broken chunk. Anthropic: litellm silently stops at the
    # broken event and synthesises finish_reason "stop"; the engine detects the missing
    # finish reason and calls it a cut stream.
    "malformed": ("malformed", "stream_cut"),
    "cut": ("stream_cut", "stream_cut"),
    # a clean end of body with no terminator: litellm returns the partial text as a success
    "truncate": ("stream_cut", "stream_cut"),
    "stall": ("timeout", "timeout"),
    "connection_reset": ("connection", "connection"),
}


@pytest.fixture
def fault_models(fake_provider, write_models, monkeypatch):
    monkeypatch.setenv("LATITUDE_RETRY_ATTEMPTS", str(ATTEMPTS))
    # these rows pin litellm's behaviour (its hidden re-POST, its Anthropic parser); the native
    # transport's rows are in tests/conformance/test_conformance.py
    return write_models(fake_provider, timeout_s=0.5, transport="litellm")


@pytest.mark.parametrize("api", ["openai", "anthropic"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_fault_is_retried_or_ends_the_conversation(cli, store, fault_models, fake_provider, api, kind):
    alias = "fake-gpt" if api == "openai" else "fake-claude"
    # litellm's own Anthropic client re-POSTs once, silently, after a connection reset:
    # each of our attempts then meets the fault twice
    per_attempt = 2 if (kind == "connection_reset" and api == "anthropic") else 1
    fake_provider.inject(kind, count=ATTEMPTS * per_attempt, retry_after=None, hang_s=2, cut_after=1)
    fake_provider.inject(kind, count=per_attempt, skip=1, retry_after=None, hang_s=2, cut_after=1)

    result = cli("run", TEST_PROTOCOLS / "two-turns.yaml", "-m", alias, "--replicates", "3",
                 "--concurrency", "1", "--models", fault_models)
    assert result.exit_code == 2, result
    assert result.run_id

    first, second, third = store.conversations(result.run_id)
    want = KINDS[kind][0 if api == "openai" else 1]
    assert (first["status"], first["stop_reason"]) == ("error", f"error:{want}")
    assert first["stop_detail"]
    # the user turn that was attempted is kept; no partial reply is
    assert [m["role"] for m in store.messages(first["id"])] == ["user"]

    reqs = fake_provider.requests
    faulted = [r for r in reqs if r.fault]
    assert len(faulted) == (ATTEMPTS + 1) * per_attempt
    assert fake_provider.pending_faults == []
    completed = [r for r in reqs if r.completed]
    assert len(completed) == 4  # two conversations x two turns, each completed exactly once
    for conv in (second, third):
        assert (conv["status"], conv["stop_reason"], conv["turns"]) == ("done", "completed", 2)
        msgs = store.messages(conv["id"])
        assert_well_formed(msgs)
        assert [m["role"] for m in msgs] == ["user", "assistant"] * 2
        for m in msgs[1::2]:
            assert m["content"] in {r.reply for r in completed}  # whole replies, never a fragment
    # the retried call went out again with the same history
    retried = [i for i, r in enumerate(reqs) if r.fault][-1]
    assert reqs[retried + 1].completed and reqs[retried + 1].body["messages"] == reqs[retried].body["messages"]


@pytest.mark.parametrize("alias", ["fake-gpt", "fake-claude"])
def test_retry_after_is_honoured(cli, store, models_file, fake_provider, alias):
    # the backoff cap in tests is 0.05 s; a provider's retry-after still wins
    fake_provider.inject("429", count=1, retry_after=0.6)
    result = cli("run", TEST_PROTOCOLS / "two-turns.yaml", "-m", alias, "--models", models_file)
    assert result.exit_code == 0, result
    (conv,) = store.conversations(result.run_id)
    assert conv["status"] == "done"
    limited, retry, *_ = fake_provider.requests
    assert limited.fault == "429" and limited.status == 429 and retry.completed
    assert retry.time - limited.time >= 0.6


def test_a_non_retryable_error_is_not_retried(cli, store, models_file, fake_provider):
    fake_provider.inject("400", count=1)
    result = cli("run", TEST_PROTOCOLS / "two-turns.yaml", "-m", "fake-gpt", "--replicates", "2",
                 "--concurrency", "1", "--models", models_file)
    assert result.exit_code == 2, result
    first, second = store.conversations(result.run_id)
    assert first["stop_reason"] == "error:bad_request" and second["status"] == "done"
    assert len(fake_provider.requests) == 1 + 2
