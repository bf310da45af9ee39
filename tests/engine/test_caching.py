"""Prompt caching across a conversation, end to end against the fake provider's cache accounting:
what each request marks, the tokens the vendor reports, and the cost recorded per turn, checked
against a hand computation from the vendors' published multipliers (not from our price code).

The fake tokenizer counts words; the default reply is 4 words (`[model] reply n: hash`)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.conftest import StoreView

SYSTEM_WORDS = 1145  # the first prompt (1,151) caches 1,024 on OpenAI, the second (1,160) 1,152
USER = ["Tell me about your morning please.", "And what came after that?", "Thanks, one last thing."]
REPLY_WORDS = 4

PROTOCOL = f"""\
name: cache-three
description: A long cacheable system prompt and three user turns (prompt caching).
max_turns: 10
system: {{text: "{' '.join(f's{i}' for i in range(SYSTEM_WORDS))}", cacheable: true}}
steps:
""" + "".join(f"  - say: {u}\n" for u in USER)

# Published prices (USD per token) and multipliers, written out by hand.
SONNET_IN, SONNET_OUT = 3e-6, 15e-6  # claude-sonnet-4-5
ANTHROPIC_READ, ANTHROPIC_WRITE_5M, ANTHROPIC_WRITE_1H = 0.1, 1.25, 2.0
GPT41_IN, GPT41_OUT = 2e-6, 8e-6  # gpt-4.1
GPT41_READ = 0.25  # gpt-4.1 family: cached input at a quarter of the price


def models(fp, tmp_path: Path, **extra: str) -> Path:
    fields = "".join(f"    {k}: {v}\n" for k, v in extra.items())
    path = tmp_path / "models.yaml"
    path.write_text(
        "models:\n"
        f"  claude:\n    model: anthropic/claude-sonnet-4-5\n    api_base: {fp.anthropic_base}\n"
        f"    api_key_env: FAKE_ANTHROPIC_KEY\n{fields}"
        f"  gpt:\n    model: openai/gpt-4.1\n    api_base: {fp.openai_base}\n    api_key_env: FAKE_OPENAI_KEY\n{fields}",
        encoding="utf-8")
    return path


@pytest.fixture
def protocol(tmp_path: Path) -> Path:
    path = tmp_path / "cache-three.yaml"
    path.write_text(PROTOCOL, encoding="utf-8")
    return path


def _run(cli, fake_provider, tmp_path, protocol, alias, **extra):
    result = cli("run", protocol, "-m", alias, "--replicates", "1", "--models", models(fake_provider, tmp_path, **extra))
    assert result.exit_code == 0, result
    view = StoreView(tmp_path / "transcripts.db")
    (conv,) = view.conversations(result.run_id)
    replies = [m for m in view.messages(conv["id"]) if m["role"] == "assistant"]
    assert len(replies) == 3
    return result, conv, replies


def _user_words() -> list[int]:
    return [len(u.split()) for u in USER]


def test_anthropic_three_turns_cost_matches_hand_computation(cli, fake_keys, fake_provider, tmp_path, protocol):
    result, conv, replies = _run(cli, fake_provider, tmp_path, protocol, "claude")
    u = _user_words()
    # by hand: turn 1 writes system + first turn; each later turn reads the previous turn's prefix
    # and writes the reply it follows and its own user turn
    prompt = [SYSTEM_WORDS + u[0], SYSTEM_WORDS + u[0] + REPLY_WORDS + u[1],
              SYSTEM_WORDS + u[0] + 2 * REPLY_WORDS + u[1] + u[2]]
    reads = [0, prompt[0], prompt[1]]
    writes = [prompt[0], REPLY_WORDS + u[1], REPLY_WORDS + u[2]]
    for i, m in enumerate(replies):
        assert (m["tokens_in"], m["cached_tokens"] or 0, m["cache_write_tokens"] or 0) == (prompt[i], reads[i], writes[i])
        want_in = (reads[i] * ANTHROPIC_READ + writes[i] * ANTHROPIC_WRITE_5M
                   + (prompt[i] - reads[i] - writes[i])) * SONNET_IN
        assert m["input_cost"] == pytest.approx(want_in, rel=1e-12)
        assert m["input_cost_uncached"] == pytest.approx(prompt[i] * SONNET_IN, rel=1e-12)
        assert m["cost"] == pytest.approx(want_in + REPLY_WORDS * SONNET_OUT, rel=1e-12)
        assert m["cache_ttl"] == "5m"
        req = json.loads(m["request_json"])
        assert (req["cache_ttl"], req["cache_breakpoints"]) == ("5m", 2)
    # what went on the wire: the system prompt and the latest turn's last block, nothing else
    for rec in fake_provider.requests:
        assert rec.body["system"][-1]["cache_control"] == {"type": "ephemeral"}
        marked = [(i, j) for i, msg in enumerate(rec.body["messages"]) for j, b in enumerate(msg["content"])
                  if b.get("cache_control")]
        assert marked == [(len(rec.body["messages"]) - 1, len(rec.body["messages"][-1]["content"]) - 1)]
    assert conv["cache_write_tokens"] == sum(writes)
    assert conv["input_cost"] == pytest.approx(sum(m["input_cost"] for m in replies), rel=1e-9)
    # the run's totals, as scripts read them
    runs = json.loads(cli("runs", "--format", "json").stdout)
    (run,) = [r for r in runs if r["run"] == result.run_id]
    assert run["cached_tokens"] == sum(reads) and run["cache_write_tokens"] == sum(writes)
    assert run["input_cost_usd"] == pytest.approx(conv["input_cost"], abs=1e-6)
    assert run["input_cost_uncached_usd"] == pytest.approx(sum(prompt) * SONNET_IN, abs=1e-6)
    # the run's own summary (end of `latitude run`) and `latitude show RUN` say the same
    line = f"read {sum(reads):,} and wrote {sum(writes):,} of {sum(prompt):,} input tokens"
    assert line in " ".join(result.stdout.split())
    shown = cli("show", result.run_id)
    assert shown.exit_code == 0, shown
    saved = 1 - conv["input_cost"] / conv["input_cost_uncached"]
    assert line in " ".join(shown.stdout.split()) and f"({saved:.1%} saved)" in " ".join(shown.stdout.split())


def test_anthropic_one_hour_ttl_is_sent_recorded_and_priced(cli, fake_keys, fake_provider, tmp_path, protocol):
    _, _, replies = _run(cli, fake_provider, tmp_path, protocol, "claude", cache_ttl="1h")
    first = replies[0]
    assert first["cache_ttl"] == "1h" and json.loads(first["request_json"])["cache_ttl"] == "1h"
    assert first["input_cost"] == pytest.approx(first["cache_write_tokens"] * ANTHROPIC_WRITE_1H * SONNET_IN, rel=1e-12)
    assert all(b.get("cache_control") in (None, {"type": "ephemeral", "ttl": "1h"})
               for rec in fake_provider.requests for b in rec.body["system"])


def test_openai_three_turns_cost_matches_hand_computation(cli, fake_keys, fake_provider, tmp_path, protocol):
    _, conv, replies = _run(cli, fake_provider, tmp_path, protocol, "gpt")
    u = _user_words()
    prompt = [SYSTEM_WORDS + u[0], SYSTEM_WORDS + u[0] + REPLY_WORDS + u[1],
              SYSTEM_WORDS + u[0] + 2 * REPLY_WORDS + u[1] + u[2]]

    def step(n: int) -> int:  # OpenAI caches 1,024 tokens and then every 128 more
        return 0 if n < 1024 else 1024 + (n - 1024) // 128 * 128

    reads = [0, step(prompt[0]), step(prompt[1])]
    key = "lat-" + hashlib.sha256(conv["id"].encode()).hexdigest()[:32]
    for i, m in enumerate(replies):
        assert (m["tokens_in"], m["cached_tokens"] or 0, m["cache_write_tokens"] or 0) == (prompt[i], reads[i], 0)
        want_in = (reads[i] * GPT41_READ + prompt[i] - reads[i]) * GPT41_IN
        assert m["input_cost"] == pytest.approx(want_in, rel=1e-12)
        assert m["cost"] == pytest.approx(want_in + REPLY_WORDS * GPT41_OUT, rel=1e-12)
        assert m["cache_ttl"] is None
        assert json.loads(m["request_json"])["prompt_cache_key"] == key
    assert reads[2] > reads[1] > 0  # the moving prefix really moved
    assert {rec.body["prompt_cache_key"] for rec in fake_provider.requests} == {key}
    assert all("cache_control" not in json.dumps(rec.body) for rec in fake_provider.requests)


def test_prompt_cache_off_marks_nothing(cli, fake_keys, fake_provider, tmp_path, protocol):
    _, conv, replies = _run(cli, fake_provider, tmp_path, protocol, "claude", prompt_cache="false")
    assert all("cache_control" not in json.dumps(rec.body) for rec in fake_provider.requests)
    assert all((m["cached_tokens"] or 0) == 0 and (m["cache_write_tokens"] or 0) == 0 for m in replies)
    assert conv["input_cost"] == pytest.approx(conv["input_cost_uncached"], rel=1e-12)


PLAIN = """\
name: replicates
description: Two scripted turns; every replicate sends byte-identical requests.
max_turns: 4
steps:
  - say: first question
  - say: second question
"""


@pytest.mark.parametrize("transport", ["native", "litellm"])
def test_replicates_are_never_served_from_a_response_cache(cli, fake_keys, fake_provider, tmp_path, transport):
    """Identical requests (the fake's reply depends only on the request) from three replicates:
    each one reaches the vendor, even with litellm's own response cache switched on."""
    path = tmp_path / "plain.yaml"
    path.write_text(PLAIN, encoding="utf-8")
    lm = None
    if transport == "litellm":
        from runner.providers.litellm_ import litellm

        lm = litellm()
        lm.cache = lm.Cache(type="local")  # a response cache someone switched on, process-wide
    try:
        result = cli("run", path, "-m", "claude", "--replicates", "3", "--concurrency", "1",
                     "--models", models(fake_provider, tmp_path, transport=transport))
    finally:
        if lm is not None:
            lm.cache = None
    assert result.exit_code == 0, result
    assert len(fake_provider.requests) == 3 * 2
    view = StoreView(tmp_path / "transcripts.db")
    ids = [m["request_id"] for c in view.conversations(result.run_id) for m in view.messages(c["id"])
           if m["role"] == "assistant"]
    assert len(ids) == 6 and len(set(ids)) == 6  # six vendor requests, six replies


def test_plan_says_when_a_shared_prefix_is_too_short_to_cache(cli, tmp_path, protocol):
    path = tmp_path / "m.yaml"
    path.write_text("models:\n  claude: {model: anthropic/claude-sonnet-4-5}\n  haiku: {model: anthropic/claude-haiku-4-5}\n"
                    "  gpt: {model: openai/gpt-4.1}\n  gemma-local: {model: local/gemma-3-270m}\n", encoding="utf-8")
    chars = len(" ".join(f"s{i}" for i in range(SYSTEM_WORDS))) + len(USER[0])
    result = cli("plan", protocol, "-m", "claude", "-m", "haiku", "-m", "gpt", "--models", path)
    assert result.exit_code == 0, result
    text = " ".join(result.stdout.split())
    assert "estimated at ~4 characters a token" in text
    # ~1,4xx estimated tokens: enough for Sonnet 4.5 and GPT-4.1 (1,024), not for Haiku 4.5 (4,096)
    assert f"haiku (anthropic/claude-haiku-4-5), condition default: ~{chars // 4:,} of 4,096 tokens" in text
    assert "claude (anthropic" not in text.split("minimum cacheable length")[1]
    assert "gpt (openai" not in text.split("minimum cacheable length")[1]
    story = cli("plan", Path(__file__).parents[2] / "protocols" / "story-breaks.yaml", "-m", "claude", "--models", path)
    assert story.exit_code == 0, story
    assert "claude (anthropic/claude-sonnet-4-5), condition exercise: ~" in " ".join(story.stdout.split())
