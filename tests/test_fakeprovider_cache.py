"""The fake provider's prompt-cache accounting, spoken to over HTTP as a vendor is (no litellm):
Anthropic breakpoints, lookback, minimum lengths and TTLs; OpenAI's 1,024 + 128·k prefixes per
`prompt_cache_key`. The fake tokenizer counts words."""

from __future__ import annotations

import httpx
import pytest

from tests.fakeprovider import FakeProvider

CC = {"type": "ephemeral"}


def words(n: int, tag: str = "w") -> str:
    return " ".join(f"{tag}{i}" for i in range(n))


def anthropic(fp: FakeProvider, body: dict) -> httpx.Response:
    body = {"max_tokens": 10, **body}
    return httpx.post(fp.url + "/v1/messages", json=body, headers={"x-api-key": "k"}, timeout=30)


def usage(fp: FakeProvider, body: dict) -> tuple[int, int, int]:
    r = anthropic(fp, body)
    assert r.status_code == 200, r.text
    u = r.json()["usage"]
    return u["input_tokens"], u["cache_read_input_tokens"], u["cache_creation_input_tokens"]


def turn(system: str, *texts: str, mark_last: bool = True, ttl: str | None = None) -> dict:
    """A conversation body: system (marked), alternating user/assistant texts, the last one marked."""
    cc = {**CC, "ttl": ttl} if ttl else CC
    messages = []
    for i, t in enumerate(texts):
        block = {"type": "text", "text": t}
        if mark_last and i == len(texts) - 1:
            block["cache_control"] = cc
        messages.append({"role": "user" if i % 2 == 0 else "assistant", "content": [block]})
    return {"model": "claude-sonnet-4-5", "system": [{"type": "text", "text": system, "cache_control": cc}],
            "messages": messages}


def test_anthropic_moving_prefix_reads_the_previous_turn(fake_provider: FakeProvider):
    system = words(1100, "s")
    # turn 1: the system prompt and the first user turn are written
    assert usage(fake_provider, turn(system, words(50, "u"))) == (0, 0, 1150)
    # turn 2: everything up to the first user turn is read; the reply and the new turn are written
    assert usage(fake_provider, turn(system, words(50, "u"), words(30, "a"), words(20, "v"))) == (0, 1150, 50)
    # a replicate with the same system prompt but another first turn reads the system prompt only
    assert usage(fake_provider, turn(system, words(50, "x"))) == (0, 1100, 50)


def test_anthropic_nothing_cached_below_the_models_minimum(fake_provider: FakeProvider):
    body = turn(words(900, "s"), words(100, "u"))  # 1,000 tokens at the last breakpoint, under 1,024
    assert usage(fake_provider, body) == (1000, 0, 0)  # no write, nothing charged extra
    assert usage(fake_provider, body) == (1000, 0, 0)  # and nothing was kept


def test_anthropic_minimum_is_per_model(fake_provider: FakeProvider):
    body = turn(words(1000, "s"), words(100, "u"))  # 1,100 tokens at the last breakpoint
    assert usage(fake_provider, body) == (0, 0, 1100)  # Sonnet 4.5: 1,024
    assert usage(fake_provider, body) == (0, 1100, 0)
    haiku = {**body, "model": "claude-haiku-4-5"}  # Haiku 4.5: 4,096
    assert usage(fake_provider, haiku) == (1100, 0, 0)
    assert usage(fake_provider, haiku) == (1100, 0, 0)


def test_anthropic_ttl_expires_and_reads_refresh(fake_provider: FakeProvider):
    body = turn(words(1100, "s"), words(10, "u"))
    assert usage(fake_provider, body)[2] == 1110
    fake_provider.advance_clock(200)
    assert usage(fake_provider, body)[1] == 1110  # read, and the 5 minutes start again
    fake_provider.advance_clock(200)
    assert usage(fake_provider, body)[1] == 1110  # 400 s after the write, 200 after the read
    fake_provider.advance_clock(301)
    assert usage(fake_provider, body) == (0, 0, 1110)  # expired: written again
    hour = turn(words(1100, "t"), words(10, "u"), ttl="1h")
    hour["system"][0]["cache_control"] = {**CC, "ttl": "1h"}
    assert usage(fake_provider, hour)[2] == 1110
    fake_provider.advance_clock(3000)
    assert usage(fake_provider, hour)[1] == 1110


def test_anthropic_more_than_four_breakpoints_is_refused(fake_provider: FakeProvider):
    body = turn(words(10, "s"), *[words(5, f"m{i}") for i in range(5)])
    for m in body["messages"]:
        m["content"][0]["cache_control"] = CC
    r = anthropic(fake_provider, body)
    assert r.status_code == 400 and "maximum of 4" in r.json()["error"]["message"]


def test_anthropic_unmarked_request_caches_nothing(fake_provider: FakeProvider):
    body = turn(words(1100, "s"), words(10, "u"), mark_last=False)
    body["system"] = body["system"][0]["text"]
    assert usage(fake_provider, body) == (1110, 0, 0)
    assert usage(fake_provider, body) == (1110, 0, 0)


def openai_cached(fp: FakeProvider, messages: list[dict], key: str | None = "k1") -> int:
    body = {"model": "gpt-4.1", "messages": messages, **({"prompt_cache_key": key} if key else {})}
    r = httpx.post(fp.openai_base + "/chat/completions", json=body, headers={"authorization": "Bearer k"}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["usage"]["prompt_tokens_details"]["cached_tokens"]


def test_openai_caches_prefixes_from_1024_in_128_steps_per_key(fake_provider: FakeProvider):
    system = {"role": "system", "content": words(1100, "s")}
    first = [system, {"role": "user", "content": words(300, "u")}]  # 1,400 tokens
    assert openai_cached(fake_provider, first) == 0
    second = [*first, {"role": "assistant", "content": words(50, "a")}, {"role": "user", "content": "more"}]
    assert openai_cached(fake_provider, second) == 1024 + 2 * 128  # the longest step within 1,400 seen
    assert openai_cached(fake_provider, second, key="k2") == 0  # another conversation's key: not shared
    short = [{"role": "user", "content": words(1000, "z")}]
    assert openai_cached(fake_provider, short) == 0
    assert openai_cached(fake_provider, short) == 0  # under 1,024: never cached


@pytest.mark.parametrize("step", [1, 128])
def test_openai_role_split_matters(fake_provider: FakeProvider, step: int):
    fake_provider.set_cache(min_tokens=4, openai_step=step)
    assert openai_cached(fake_provider, [{"role": "user", "content": words(20, "q")}]) == 0
    assert openai_cached(fake_provider, [{"role": "system", "content": words(20, "q")}]) == 0
