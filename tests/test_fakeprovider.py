"""The fake provider, driven by litellm itself (no patching of litellm).

These tests double as the executable version of the exception table in
tests/fakeprovider/README.md: if a litellm upgrade changes which exception a
fault produces, a test here fails and the table (and the engine's retry
predicate written from it) must be revisited.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from typing import Any

import httpx
import pytest

from tests.fakeprovider import FakeProvider, Rule, default_reply, messages_hash, prompt_words

# Fixtures fake_provider / fake_provider_process come from tests/conftest.py
# (``from tests.fakeprovider.fixtures import *``).

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

OPENAI_MODEL = "openai/fake-gpt"
ANTHROPIC_MODEL = "anthropic/claude-fake"
HELLO = [{"role": "user", "content": "hello there friend"}]  # 3 prompt words


@pytest.fixture(scope="module")
def litellm():
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    import litellm as _litellm

    _litellm.suppress_debug_info = True
    return _litellm


def _target(fp: Any, api: str) -> dict:
    if api == "openai":
        return {"model": OPENAI_MODEL, "api_base": fp.openai_base, "api_key": "sk-test-openai"}
    return {"model": ANTHROPIC_MODEL, "api_base": fp.anthropic_base, "api_key": "sk-ant-test"}


async def acall(litellm, fp: Any, api: str, messages=HELLO, **kw: Any):
    return await litellm.acompletion(**_target(fp, api), messages=messages, num_retries=0, **kw)


async def astream(litellm, fp: Any, api: str, messages=HELLO, **kw: Any):
    """Stream to the end; returns (chunks, exception or None)."""
    chunks: list = []
    try:
        resp = await acall(litellm, fp, api, messages=messages, stream=True, **kw)
        async for c in resp:
            chunks.append(c)
    except Exception as exc:  # noqa: BLE001 - the exception is the result
        return chunks, exc
    return chunks, None


def _text(chunks: list) -> str:
    return "".join((c.choices[0].delta.content or "") for c in chunks if c.choices)


def _finish(chunks: list) -> str | None:
    reasons = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    return reasons[-1] if reasons else None


def _usage(chunks: list):
    usages = [c.usage for c in chunks if getattr(c, "usage", None)]
    return usages[-1] if usages else None


# ---------------------------------------------------------------------------
# Normal replies
# ---------------------------------------------------------------------------


async def test_openai_non_streaming(litellm, fake_provider: FakeProvider):
    r = await acall(litellm, fake_provider, "openai")
    rec = fake_provider.requests[-1]
    expected = default_reply("fake-gpt", 1, messages_hash(rec.body))
    assert r.choices[0].message.content == expected
    assert re.fullmatch(r"\[fake-gpt\] reply 1: [0-9a-f]{8}", expected)
    assert r.choices[0].finish_reason == "stop"
    assert r.id == rec.response_id and r.id.startswith("chatcmpl-fake")
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (3, 4, 7)
    assert r.usage.prompt_tokens_details.cached_tokens == 0
    # the request as the server saw it
    assert rec.path == "/v1/chat/completions" and rec.api == "openai" and rec.model == "fake-gpt"
    assert rec.headers["authorization"] == "Bearer sk-test-openai"
    assert rec.completed and rec.outcome == "completed" and rec.fault is None and rec.status == 200


async def test_openai_streaming_with_usage(litellm, fake_provider: FakeProvider):
    chunks, exc = await astream(litellm, fake_provider, "openai", stream_options={"include_usage": True})
    assert exc is None
    rec = fake_provider.requests[-1]
    assert rec.stream and rec.body["stream_options"] == {"include_usage": True}
    assert _text(chunks) == rec.reply == default_reply("fake-gpt", 1, messages_hash(rec.body))
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) == 4  # chunked text
    assert _finish(chunks) == "stop"
    assert {c.id for c in chunks} == {rec.response_id}
    u = _usage(chunks)
    assert (u.prompt_tokens, u.completion_tokens) == (3, 4)


async def test_openai_prefix_cache_reports_cached_tokens(litellm, fake_provider: FakeProvider):
    fake_provider.set_cache(min_tokens=1, openai_step=1)  # a tiny prompt caches (the real minimum is 1,024)
    first = await acall(litellm, fake_provider, "openai")
    convo = HELLO + [{"role": "assistant", "content": first.choices[0].message.content}, {"role": "user", "content": "and again"}]
    r = await acall(litellm, fake_provider, "openai", messages=convo)
    assert r.choices[0].message.content.startswith("[fake-gpt] reply 2: ")
    assert r.usage.prompt_tokens == 3 + 4 + 2
    assert r.usage.prompt_tokens_details.cached_tokens == 3  # the first user turn was seen before


async def test_anthropic_non_streaming(litellm, fake_provider: FakeProvider):
    r = await acall(litellm, fake_provider, "anthropic")
    rec = fake_provider.requests[-1]
    assert rec.path == "/v1/messages" and rec.model == "claude-fake"
    assert rec.headers["x-api-key"] == "sk-ant-test" and "anthropic-version" in rec.headers
    assert r.choices[0].message.content == default_reply("claude-fake", 1, messages_hash(rec.body))
    assert r.choices[0].finish_reason == "stop"  # end_turn mapped to stop
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (3, 4)
    # litellm drops Anthropic's msg_... id and makes up a chatcmpl-<uuid>; the
    # request-id response header is what survives.
    assert rec.response_id.startswith("msg_fake") and r.id.startswith("chatcmpl-") and r.id != rec.response_id
    assert r._hidden_params["additional_headers"]["request-id"] == f"req_fake{rec.seq:06d}"


async def test_anthropic_streaming(litellm, fake_provider: FakeProvider):
    chunks, exc = await astream(litellm, fake_provider, "anthropic", stream_options={"include_usage": True})
    assert exc is None
    rec = fake_provider.requests[-1]
    assert _text(chunks) == rec.reply == default_reply("claude-fake", 1, messages_hash(rec.body))
    assert _finish(chunks) == "stop"
    assert len({c.id for c in chunks}) == 1
    u = _usage(chunks)
    assert (u.prompt_tokens, u.completion_tokens) == (3, 4)


async def test_anthropic_prompt_cache_tokens(litellm, fake_provider: FakeProvider):
    fake_provider.set_cache(min_tokens=1)  # a tiny prompt caches (the real minimum is 1,024)
    system_text = "You are a careful and helpful assistant. " * 4  # 28 words
    messages = [
        {"role": "system", "content": [{"type": "text", "text": system_text, "cache_control": {"type": "ephemeral"}}]},
        {"role": "user", "content": "hello you"},
    ]
    first = await acall(litellm, fake_provider, "anthropic", messages=messages)
    sent_system = fake_provider.requests[-1].body["system"]
    assert isinstance(sent_system, list) and sent_system[0]["cache_control"] == {"type": "ephemeral"}
    assert first.usage.cache_creation_input_tokens == 28
    assert first.usage.cache_read_input_tokens == 0
    assert first.usage.prompt_tokens == 30

    second = await acall(litellm, fake_provider, "anthropic", messages=messages)
    assert second.usage.cache_read_input_tokens == 28
    assert second.usage.cache_creation_input_tokens == 0
    assert second.usage.prompt_tokens_details.cached_tokens == 28
    assert second.usage.prompt_tokens == 30

    chunks, exc = await astream(litellm, fake_provider, "anthropic", messages=messages, stream_options={"include_usage": True})
    assert exc is None and _usage(chunks).cache_read_input_tokens == 28


@pytest.mark.parametrize("api", ["openai", "anthropic"])
async def test_reasoning_text_surfaces(litellm, fake_provider: FakeProvider, api: str):
    fake_provider.add_rule(match="THINK", reasoning="Let me consider this carefully.", reply="It is sunny.")
    msgs = [{"role": "user", "content": "Please think about the weather"}]
    r = await acall(litellm, fake_provider, api, messages=msgs)
    m = r.choices[0].message
    assert m.content == "It is sunny."
    assert m.reasoning_content == "Let me consider this carefully."
    assert r.usage.completion_tokens == 3 + 5  # reply + reasoning words
    if api == "anthropic":
        assert m.thinking_blocks[0]["thinking"] == "Let me consider this carefully."
        assert m.thinking_blocks[0]["signature"].startswith("fakesig_")
    else:
        assert r.usage.completion_tokens_details.reasoning_tokens == 5

    chunks, exc = await astream(litellm, fake_provider, api, messages=msgs)
    assert exc is None
    reasoning = "".join(getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks if c.choices)
    assert reasoning == "Let me consider this carefully."
    assert _text(chunks) == "It is sunny."


async def test_openai_tool_call_round_trip(litellm, fake_provider: FakeProvider):
    fake_provider.add_rule(
        match="weather",
        tool_call={"name": "get_weather", "arguments": {"city": "Paris"}},
        after_tool="The weather is {tool_result}.",
    )
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
            },
        }
    ]
    messages: list[dict] = [{"role": "user", "content": "What is the weather in Paris?"}]
    r = await acall(litellm, fake_provider, "openai", messages=messages, tools=tools)
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    (tc,) = choice.message.tool_calls
    assert tc.function.name == "get_weather" and json.loads(tc.function.arguments) == {"city": "Paris"}

    messages += [
        {"role": "assistant", "content": None, "tool_calls": [tc.model_dump()]},
        {"role": "tool", "tool_call_id": tc.id, "content": "sunny, 21 C"},
    ]
    r2 = await acall(litellm, fake_provider, "openai", messages=messages, tools=tools)
    assert r2.choices[0].finish_reason == "stop"
    assert r2.choices[0].message.content == "The weather is sunny, 21 C."
    sent = fake_provider.requests[-1].body["messages"]
    assert sent[-1]["role"] == "tool" and sent[-1]["tool_call_id"] == tc.id

    # streaming tool call: litellm reassembles the argument chunks
    chunks, exc = await astream(litellm, fake_provider, "openai", messages=messages[:1], tools=tools)
    assert exc is None and _finish(chunks) == "tool_calls"
    args = "".join(
        (t.function.arguments or "") for c in chunks if c.choices and c.choices[0].delta.tool_calls for t in c.choices[0].delta.tool_calls
    )
    assert json.loads(args) == {"city": "Paris"}


async def test_tool_rule_ignored_without_tools(litellm, fake_provider: FakeProvider):
    fake_provider.add_rule(match="weather", tool_call={"name": "get_weather", "arguments": {}}, reply="No tools here.")
    r = await acall(litellm, fake_provider, "anthropic", messages=[{"role": "user", "content": "weather?"}])
    assert r.choices[0].message.content == "No tools here." and r.choices[0].finish_reason == "stop"


async def test_stop_after_rule_multi_turn(litellm, fake_provider: FakeProvider):
    fake_provider.add_rule(Rule(stop_after=3, stop_text="Stopping now."))
    fake_provider.add_rule(Rule(match="never used", reply="shadowed"))
    messages: list[dict] = [{"role": "user", "content": "Let us talk."}]
    replies = []
    for turn in range(1, 5):
        r = await acall(litellm, fake_provider, "openai", messages=messages)
        text = r.choices[0].message.content
        replies.append(text)
        assert text.startswith(f"[fake-gpt] reply {turn}: ")
        messages += [{"role": "assistant", "content": text}, {"role": "user", "content": f"Go on ({turn})."}]
    assert [t.endswith("\nStopping now.") for t in replies] == [False, False, True, True]


async def test_rules_first_match_wins_and_model_filter(litellm, fake_provider: FakeProvider):
    fake_provider.add_rule(match="Hello", model="claude-*", reply="claude says {n}")
    fake_provider.add_rule(match="hello", reply="anyone says hi to {model}")
    ra = await acall(litellm, fake_provider, "anthropic")
    ro = await acall(litellm, fake_provider, "openai")
    assert ra.choices[0].message.content == "claude says 1"
    assert ro.choices[0].message.content == "anyone says hi to fake-gpt"


async def test_prompt_words_helper_matches_reported_usage(litellm, fake_provider: FakeProvider):
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "one two"}, {"type": "text", "text": "three"}]},
    ]
    for api in ("openai", "anthropic"):
        r = await acall(litellm, fake_provider, api, messages=messages)
        assert r.usage.prompt_tokens == prompt_words(fake_provider.requests[-1].body) == 5


# ---------------------------------------------------------------------------
# Latency
# ---------------------------------------------------------------------------


async def test_latency_and_time_to_first_token(litellm, fake_provider: FakeProvider):
    fake_provider.set_latency(latency_s=0.2, ttft_s=0.3, chunk_delay_s=0.05)
    t0 = time.monotonic()
    resp = await acall(litellm, fake_provider, "openai", stream=True)
    first_at = None
    async for c in resp:
        if first_at is None and c.choices and c.choices[0].delta.content:
            first_at = time.monotonic() - t0
    total = time.monotonic() - t0
    assert first_at is not None and first_at >= 0.5
    assert total >= 0.5 + 3 * 0.05
    t0 = time.monotonic()
    await acall(litellm, fake_provider, "anthropic")
    assert time.monotonic() - t0 >= 0.2


async def test_many_concurrent_requests(fake_provider: FakeProvider):
    """300 requests in flight at 0.5 s latency: served concurrently (serially
    this would take 150 s; the bound is loose because the client shares the
    process and the machine may be busy)."""
    import aiohttp

    fake_provider.set_latency(latency_s=0.5)
    body = {"model": "bench", "messages": HELLO}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def one() -> int:
            async with session.post(
                fake_provider.url + "/v1/chat/completions", json=body, headers={"authorization": "Bearer x"}
            ) as r:
                await r.read()
                return r.status

        t0 = time.monotonic()
        codes = await asyncio.gather(*(one() for _ in range(300)))
        elapsed = time.monotonic() - t0
    assert codes == [200] * 300
    assert 0.5 <= elapsed < 10
    assert len(fake_provider.requests) == 300


# ---------------------------------------------------------------------------
# Faults -> litellm exceptions (mirrors the table in tests/fakeprovider/README.md)
# ---------------------------------------------------------------------------

# (api, kind, stream) -> (exception class name, where it is raised)
#   "call": raised by ``await litellm.acompletion(...)``
#   "iter": raised while iterating the stream, after some chunks arrived
#   None:   NO exception: the stream ends early and litellm reports success
EXPECTED: dict[tuple[str, str, bool], tuple[str | None, str | None]] = {
    ("openai", "429", False): ("RateLimitError", "call"),
    ("openai", "429", True): ("RateLimitError", "call"),
    ("openai", "500", False): ("InternalServerError", "call"),
    ("openai", "500", True): ("InternalServerError", "call"),
    ("openai", "529", False): ("APIError", "call"),
    ("openai", "529", True): ("APIError", "call"),
    ("openai", "hang", False): ("Timeout", "call"),
    ("openai", "hang", True): ("Timeout", "call"),
    ("openai", "malformed", False): ("InternalServerError", "call"),
    ("openai", "malformed", True): ("MidStreamFallbackError", "iter"),
    ("openai", "connection_reset", False): ("InternalServerError", "call"),
    ("openai", "connection_reset", True): ("InternalServerError", "call"),
    ("openai", "cut", False): ("InternalServerError", "call"),
    ("openai", "cut", True): ("MidStreamFallbackError", "iter"),
    ("openai", "truncate", True): (None, None),
    ("openai", "stall", True): ("MidStreamFallbackError", "iter"),
    ("openai", "stream_error", True): ("MidStreamFallbackError", "iter"),
    ("anthropic", "429", False): ("RateLimitError", "call"),
    ("anthropic", "429", True): ("RateLimitError", "call"),
    ("anthropic", "500", False): ("InternalServerError", "call"),
    ("anthropic", "500", True): ("InternalServerError", "call"),
    ("anthropic", "529", False): ("InternalServerError", "call"),
    ("anthropic", "529", True): ("InternalServerError", "call"),
    ("anthropic", "hang", False): ("Timeout", "call"),
    ("anthropic", "hang", True): ("Timeout", "call"),
    ("anthropic", "malformed", False): ("APIConnectionError", "call"),
    ("anthropic", "malformed", True): (None, None),
    ("anthropic", "connection_reset", False): ("InternalServerError", "call"),  # after 2 resets
    ("anthropic", "connection_reset", True): ("InternalServerError", "call"),  # after 2 resets
    ("anthropic", "cut", False): ("InternalServerError", "call"),
    ("anthropic", "cut", True): ("MidStreamFallbackError", "iter"),
    ("anthropic", "truncate", True): (None, None),
    ("anthropic", "stall", True): ("MidStreamFallbackError", "iter"),
    ("anthropic", "stream_error", True): ("MidStreamFallbackError", "iter"),
}


@pytest.mark.parametrize(("api", "kind", "stream"), list(EXPECTED), ids=lambda v: str(v))
async def test_fault_maps_to_litellm_exception(litellm, fake_provider: FakeProvider, api: str, kind: str, stream: bool):
    expected_name, where = EXPECTED[(api, kind, stream)]
    # connection_reset: Anthropic goes through litellm's own HTTP handler, which
    # silently re-POSTs once on a connection error, so reset twice there.
    count = 2 if (kind == "connection_reset" and api == "anthropic") else 1
    fake_provider.inject(kind, count=count, retry_after=7, hang_s=5)
    t0 = time.monotonic()
    if stream:
        chunks, exc = await astream(litellm, fake_provider, api, timeout=0.5)
    else:
        chunks = []
        try:
            await acall(litellm, fake_provider, api, timeout=0.5)
            exc = None
        except Exception as e:  # noqa: BLE001
            exc = e
    elapsed = time.monotonic() - t0
    rec = fake_provider.requests[0]
    assert rec.fault == kind

    if expected_name is None:
        # Silent truncation: partial text, synthesised finish_reason "stop".
        assert exc is None
        assert 0 < len(_text(chunks)) < len(rec.reply)
        assert _finish(chunks) == "stop"
        return

    assert exc is not None, f"expected {expected_name}, got a normal response"
    assert type(exc).__name__ == expected_name, repr(exc)
    assert isinstance(exc, getattr(litellm.exceptions, expected_name))
    if where == "call":
        assert chunks == []
    else:
        assert _text(chunks), "mid-stream faults deliver some text before raising"
        assert isinstance(exc, litellm.ServiceUnavailableError)  # MidStreamFallbackError's base
        assert exc.original_exception is not None

    if kind == "connection_reset":
        assert len(fake_provider.requests) == count
    if kind in ("429", "500", "529"):
        assert exc.litellm_response_headers["request-id"] == f"req_fake{rec.seq:06d}"
    if kind == "429":
        assert exc.status_code == 429
        # retry-after is on litellm_response_headers; exc.response.headers is empty.
        assert exc.litellm_response_headers["retry-after"] == "7"
    if kind in ("hang", "stall"):
        assert elapsed < 3
    if kind == "529" and api == "openai":
        assert exc.status_code == 529
    if kind == "529" and api == "anthropic":
        assert exc.status_code == 500 and "overloaded_error" in str(exc)


@pytest.mark.parametrize("api", ["openai", "anthropic"])
async def test_non_streaming_cut_variants(litellm, fake_provider: FakeProvider, api: str):
    """truncate/stream_error on a non-streaming request: half a JSON body."""
    for kind in ("truncate", "stream_error"):
        fake_provider.reset()
        fake_provider.inject(kind)
        with pytest.raises(litellm.InternalServerError):
            await acall(litellm, fake_provider, api)
    fake_provider.reset()
    fake_provider.inject("stall", hang_s=5)
    with pytest.raises(litellm.Timeout):
        await acall(litellm, fake_provider, api, timeout=0.5)


async def test_anthropic_single_connection_reset_is_retried_silently(litellm, fake_provider: FakeProvider):
    fake_provider.inject("connection_reset")
    r = await acall(litellm, fake_provider, "anthropic")
    assert r.choices[0].message.content.startswith("[claude-fake] reply 1:")
    recs = fake_provider.requests
    assert [x.fault for x in recs] == ["connection_reset", None]  # two POSTs reached the server


async def test_hang_is_bounded_and_sees_client_go_away(litellm, fake_provider: FakeProvider):
    fake_provider.inject("hang")
    with pytest.raises(litellm.Timeout):
        await acall(litellm, fake_provider, "openai", timeout=0.3)
    for _ in range(50):
        if fake_provider.requests[0].closed_by:
            break
        await asyncio.sleep(0.05)
    rec = fake_provider.requests[0]
    assert rec.closed_by == "client" and not rec.completed and rec.duration_s < 5


async def test_fault_plan_count_skip_and_model_filter(litellm, fake_provider: FakeProvider):
    fake_provider.inject("500", count=2, model="claude-*", skip=1)
    fake_provider.inject(429, retry_after=3)
    # openai request: the claude fault does not match; the 429 does
    with pytest.raises(litellm.RateLimitError):
        await acall(litellm, fake_provider, "openai")
    assert (await acall(litellm, fake_provider, "anthropic")).choices[0].message.content  # skipped
    for _ in range(2):
        with pytest.raises(litellm.InternalServerError):
            await acall(litellm, fake_provider, "anthropic")
    assert (await acall(litellm, fake_provider, "anthropic")).choices[0].message.content
    assert [r.fault for r in fake_provider.requests] == ["429", None, "500", "500", None]
    assert fake_provider.pending_faults == []


async def test_missing_api_key_is_401(fake_provider: FakeProvider):
    async with httpx.AsyncClient(base_url=fake_provider.url) as client:
        r = await client.post("/v1/messages", json={"model": "m", "messages": HELLO})
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"


# ---------------------------------------------------------------------------
# Control over HTTP, from another process
# ---------------------------------------------------------------------------


async def test_control_endpoint_from_another_process(litellm, fake_provider_process):
    fpp = fake_provider_process
    ctl = fpp.control
    ctl.add_rule(match="ping", reply="pong")
    ctl.inject("429", retry_after=2)
    assert ctl.state()["faults"][0]["kind"] == "429"

    with pytest.raises(litellm.RateLimitError) as ei:
        await acall(litellm, fpp, "openai", messages=[{"role": "user", "content": "ping"}])
    assert ei.value.litellm_response_headers["retry-after"] == "2"
    r = await acall(litellm, fpp, "anthropic", messages=[{"role": "user", "content": "PING!"}])
    assert r.choices[0].message.content == "pong"

    log = ctl.requests()
    assert [(x["api"], x["fault"], x["completed"]) for x in log] == [("openai", "429", False), ("anthropic", None, True)]
    assert log[1]["body"]["messages"][-1]["content"][0]["text"] == "PING!"
    assert ctl.requests(since=log[0]["seq"])[0]["seq"] == log[1]["seq"]

    # raw JSON API, batch form
    async with httpx.AsyncClient(base_url=fpp.url) as client:
        resp = await client.post(
            "/_control",
            json={"actions": [{"action": "reset"}, {"action": "set_latency", "latency_s": 0.05}]},
        )
        assert resp.status_code == 200
        bad = await client.post("/_control", json={"action": "inject", "kind": "teapot"})
        assert bad.status_code == 400
    assert ctl.requests() == [] and ctl.state()["latency"]["latency_s"] == 0.05


async def test_openai_sdk_retries_by_itself_unless_num_retries_is_zero(litellm, fake_provider: FakeProvider):
    """Without num_retries=0 the OpenAI SDK under litellm makes 3 attempts
    (its own max_retries=2, honouring retry-after); the Anthropic path makes 1."""
    fake_provider.inject("500", count=10)
    with pytest.raises(litellm.InternalServerError):
        await litellm.acompletion(**_target(fake_provider, "openai"), messages=HELLO)
    assert len(fake_provider.requests) == 3
    fake_provider.reset()
    fake_provider.inject("500", count=10)
    with pytest.raises(litellm.InternalServerError):
        await litellm.acompletion(**_target(fake_provider, "anthropic"), messages=HELLO)
    assert len(fake_provider.requests) == 1


async def test_anthropic_tool_call_round_trip(litellm, fake_provider: FakeProvider):
    fake_provider.add_rule(
        match="weather",
        tool_call={"name": "get_weather", "arguments": {"city": "Paris"}},
        reply="Let me check.",
        after_tool="It is {tool_result}.",
    )
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}}]
    messages: list[dict] = [{"role": "user", "content": "weather in Paris?"}]
    r = await acall(litellm, fake_provider, "anthropic", messages=messages, tools=tools)
    m = r.choices[0].message
    assert r.choices[0].finish_reason == "tool_calls" and m.content == "Let me check."
    assert m.tool_calls[0].function.name == "get_weather" and m.tool_calls[0].id.startswith("toolu_fake")
    messages += [m.model_dump(), {"role": "tool", "tool_call_id": m.tool_calls[0].id, "content": "rainy"}]
    r2 = await acall(litellm, fake_provider, "anthropic", messages=messages, tools=tools)
    assert r2.choices[0].message.content == "It is rainy."
    assert fake_provider.requests[-1].body["messages"][-1]["content"][0]["type"] == "tool_result"


def test_split_chunks_and_fault_position():
    from tests.fakeprovider.core import split_chunks
    from tests.fakeprovider.server import _fault_position

    for text in ["", "one", "a b", " lead and trail ", "x\ny  z w v u"]:
        for k in (1, 2, 4, 10):
            parts = split_chunks(text, k)
            assert "".join(parts) == text and len(parts) <= k
    events = [(b"start", False), (b"c1", True), (b"c2", True), (b"c3", True), (b"end", False)]
    assert [_fault_position(events, k) for k in (0, 1, 2, 3, 9)] == [1, 2, 3, 4, 4]
    assert _fault_position([(b"start", False), (b"end", False)], 2) == 1
    with pytest.raises(ValueError):
        Rule.from_dict({"nope": 1})
    with pytest.raises(ValueError):
        FakeProvider().inject("teapot")
