"""A whole field-notes protocol through `latitude run`, on both wire formats."""

from __future__ import annotations

import hashlib
import json

from tests.conftest import FAKE_ANTHROPIC_KEY, FAKE_OPENAI_KEY, assert_well_formed
from tests.engine.conftest import PROTOCOLS
from tests.fakeprovider import count_words, prompt_words


def _history_hash(messages: list[dict]) -> str:
    sent = [{"role": m["role"], "content": m["content"]} for m in messages]
    return hashlib.sha256(json.dumps(sent, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def test_open_latitude_on_both_wire_formats(cli, store, models_file, fake_provider):
    fake_provider.set_latency(latency_s=0.01, ttft_s=0.005)
    fake_provider.set_cache(min_tokens=1, openai_step=1)  # short prompts cache here (the vendors' minimum: 1,024)
    result = cli("run", PROTOCOLS / "open-latitude.yaml", "-m", "fake-gpt", "-m", "fake-claude",
                 "--replicates", "2", "--models", models_file)
    assert result.exit_code == 0, result
    run_id = result.run_id
    assert store.run(run_id)["status"] == "done"

    convs = store.conversations(run_id)
    assert [(c["model_alias"], c["replicate"]) for c in convs] == [
        ("fake-gpt", 1), ("fake-gpt", 2), ("fake-claude", 1), ("fake-claude", 2)]
    # the stored request id is the provider's (its request-id header), never one litellm made up
    completed = {f"req_fake{r.seq:06d}": r for r in fake_provider.requests if r.completed}
    assert len(completed) == 4 * 10 == len(fake_provider.requests)  # no retries, no extra calls

    for conv in convs:
        assert (conv["status"], conv["stop_reason"], conv["turns"]) == ("done", "completed", 10)
        msgs = store.messages(conv["id"])
        assert_well_formed(msgs)
        assert [m["role"] for m in msgs] == ["user", "assistant"] * 10
        assert msgs[0]["content"].startswith("what would you like to do?")
        assert msgs[-2]["content"].startswith("thanks.")
        vendor_model = "fake-gpt" if conv["model_alias"] == "fake-gpt" else "claude-fake"
        for i, m in enumerate(msgs):
            if m["role"] != "assistant":
                assert m["tokens_in"] is None and m["latency_ms"] is None
                continue
            rec = completed[m["request_id"]]
            assert rec.model == vendor_model
            assert m["content"] == rec.reply and m["content"].startswith(f"[{vendor_model}] reply {i // 2 + 1}:")
            # the fake tokenizer counts words: what litellm reported is what the server counted
            assert m["tokens_in"] == prompt_words(rec.body) == rec.usage["prompt_tokens"]
            assert m["tokens_out"] == count_words(m["content"]) == rec.usage["completion_tokens"]
            assert m["latency_ms"] >= 10 and 0 < m["ttft_ms"] <= m["latency_ms"]
            assert m["finish_reason"] == "stop"
            assert (m["cached_tokens"] or 0) == rec.usage["cached_tokens"]
            req = json.loads(m["request_json"])
            assert req["model"] == conv["litellm_model"]
            assert req["messages_sha256"] == _history_hash(msgs[:i])
            assert req["messages"] == i
            assert "api_base" in req["params"] and req["tools"] == ["write_artifact"]
            assert FAKE_OPENAI_KEY not in m["request_json"] and FAKE_ANTHROPIC_KEY not in m["request_json"]
            assert "api_key" not in m["request_json"]
        assert conv["tokens_in"] == sum(m["tokens_in"] or 0 for m in msgs)
        assert conv["tokens_out"] == sum(m["tokens_out"] or 0 for m in msgs)
        assert conv["cached_tokens"] == sum(m["cached_tokens"] or 0 for m in msgs)
        if conv["model_alias"] == "fake-gpt":  # the fake's automatic prefix cache, as OpenAI reports it
            assert conv["cached_tokens"] > 0
    # the server saw each wire format with the key from the environment
    auth = {r.api: (r.headers.get("authorization") or r.headers.get("x-api-key")) for r in fake_provider.requests}
    assert FAKE_OPENAI_KEY in auth["openai"] and FAKE_ANTHROPIC_KEY in auth["anthropic"]
