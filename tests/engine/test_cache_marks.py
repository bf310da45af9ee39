"""What a request marks for the vendor's prompt cache (`runner.providers.caching`, `base.cache_plan`,
the native body builders): pure functions, no server."""

from __future__ import annotations

import json

from runner.protocol.models_file import ModelAlias
from runner.providers import caching, native
from runner.providers.base import cache_plan

CLAUDE = ModelAlias(model="anthropic/claude-sonnet-4-5")
GPT = ModelAlias(model="openai/gpt-4.1")
HISTORY = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "one"},
           {"role": "assistant", "content": "two"}, {"role": "user", "content": "three"}]


def _marks(body: dict) -> list[str]:
    out = [f"system:{b['cache_control']}" for b in body.get("system", []) if b.get("cache_control")]
    for i, m in enumerate(body["messages"]):
        out += [f"{i}:{b['type']}:{b['cache_control']}" for b in m["content"] if b.get("cache_control")]
    return out


def test_anthropic_body_marks_the_system_prompt_and_the_latest_turn():
    body = native._anthropic_body(CLAUDE, {}, HISTORY, None, False, cacheable_system=True, cache_key="conv1")
    assert _marks(body) == ["system:{'type': 'ephemeral'}", "2:text:{'type': 'ephemeral'}"]
    assert native.body_cache_audit(body) == {"cache_ttl": "5m", "cache_breakpoints": 2}
    hour = native._anthropic_body(CLAUDE, {}, HISTORY, None, False, cache_key="conv1", cache_ttl="1h")
    assert _marks(hour) == ["2:text:{'type': 'ephemeral', 'ttl': '1h'}"]  # system not cacheable: one mark
    one_off = native._anthropic_body(CLAUDE, {}, HISTORY, None, False, cacheable_system=True)
    assert _marks(one_off) == ["system:{'type': 'ephemeral'}"]  # a judge's call: no moving prefix
    assert HISTORY[1]["content"] == "one"  # the caller's messages are left as they were


def test_marking_twice_is_marking_once_and_never_more_than_four():
    once = caching.mark_messages(HISTORY, system=True, moving=True, ttl="5m")
    assert caching.mark_messages(once, system=True, moving=True, ttl="5m") == once
    # a history that already carries marks (older turns, made elsewhere): the oldest are dropped
    marked = [{**m, "content": [{"type": "text", "text": m["content"], "cache_control": {"type": "ephemeral"}}]}
              for m in HISTORY] * 2
    out = caching.mark_messages(marked, system=True, moving=True, ttl="5m")
    assert caching.count_breakpoints(out) == caching.MAX_BREAKPOINTS
    assert out[0]["content"][0]["cache_control"] and out[-1]["content"][-1]["cache_control"]


def test_a_tool_result_carries_the_moving_breakpoint_on_both_transports():
    msgs = [*HISTORY[:3], {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "done"}]
    sent, info = cache_plan(CLAUDE, msgs, None, cacheable_system=False, cache_key="c", cache_ttl=None)
    assert sent[-1]["cache_control"] == {"type": "ephemeral"} and info == {"cache_ttl": "5m", "cache_breakpoints": 1}
    body = native._anthropic_body(CLAUDE, {}, msgs, None, False, cache_key="c")
    assert body["messages"][-1]["content"][-1] == {"type": "tool_result", "tool_use_id": "c1", "content": "done",
                                                   "cache_control": {"type": "ephemeral"}}


def test_openai_gets_a_stable_key_per_conversation_and_no_marks():
    a = native._openai_body(GPT, {}, HISTORY, None, False, cacheable_system=True, cache_key="conv1")
    b = native._openai_body(GPT, {}, HISTORY, None, False, cache_key="conv1")
    c = native._openai_body(GPT, {}, HISTORY, None, False, cache_key="conv2")
    assert a["prompt_cache_key"] == b["prompt_cache_key"] != c["prompt_cache_key"]
    assert a["prompt_cache_key"].startswith("lat-") and "conv1" not in a["prompt_cache_key"]
    assert "cache_control" not in json.dumps(a)
    assert "prompt_cache_key" not in native._openai_body(GPT, {}, HISTORY, None, False)  # a one-off call
    off = ModelAlias(model="openai/gpt-4.1", prompt_cache=False)
    assert "prompt_cache_key" not in native._openai_body(off, {}, HISTORY, None, False, cache_key="conv1")


def test_minimum_cacheable_lengths_by_model():
    table = {m: caching.min_cacheable_tokens(m, v) for m, v in [
        ("anthropic/claude-sonnet-4-5", "anthropic"), ("anthropic/claude-opus-4-1", "anthropic"),
        ("anthropic/claude-haiku-4-5", "anthropic"), ("anthropic/claude-opus-4-5", "anthropic"),
        ("anthropic/claude-3-5-haiku-20241022", "anthropic"), ("anthropic/claude-sonnet-4-6", "anthropic"),
        ("openai/gpt-4.1", "openai"), ("local/gemma-3-270m", "local")]}
    assert table == {"anthropic/claude-sonnet-4-5": 1024, "anthropic/claude-opus-4-1": 1024,
                     "anthropic/claude-haiku-4-5": 4096, "anthropic/claude-opus-4-5": 4096,
                     "anthropic/claude-3-5-haiku-20241022": 2048, "anthropic/claude-sonnet-4-6": 2048,
                     "openai/gpt-4.1": 1024, "local/gemma-3-270m": None}


def test_cache_prices_prefer_the_price_map_then_the_published_multipliers():
    from runner.providers import prices

    assert prices.input_prices("anthropic/claude-sonnet-4-5", cache_ttl="5m") == (3e-6, 3e-7, 3.75e-6)
    assert prices.input_prices("anthropic/claude-sonnet-4-5", cache_ttl="1h") == (3e-6, 3e-7, 6e-6)
    inp, read, write = prices.input_prices("openai/gpt-4.1")
    assert (read / inp, write) == (0.25, inp)  # OpenAI writes cost nothing extra
    assert caching.read_multiplier("openai/gpt-4o", "openai") == 0.5
    assert caching.read_multiplier("openai/gpt-5-mini", "openai") == 0.1
    assert caching.write_multiplier("anthropic", "1h") == 2.0 and caching.write_multiplier("anthropic", "5m") == 1.25
