"""The embedded providers, through the real call path: `litellm.acompletion`, nothing patched."""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before litellm: no cost-map fetch

import asyncio
import shutil
import time
from pathlib import Path

import litellm
import pytest

from runner.providers import _embedded as embedded, local, sim

embedded.register(litellm)

OPENER = (
    "what would you like to do? instances of you have helped me out a lot, so, I wanted to give you an "
    "opportunity to do or talk about whatever you like for awhile"
)
FIELD_TURNS = [
    OPENER,
    "it seemed like LLMs were getting fairly sophisticated and I should spend some time trying to give them "
    "some space and get some sense of what they want.",
    'cool. If at any point you would like to stop, let me know (you can just say "stopping now")\n'
    "you're welcome to both talk to me and use your various programming tools to take other actions",
    "you're the first one I've tried this sort of thing with.\nI want to flag the option of creating some "
    "online artifact that other instances or other AIs would be able to see later.",
    "thanks.\nis there anything else you would like to do before we close out this conversation?",
]
STORY_OFFER = "We've been at this a while. Would you like to take a break and write a short story instead?"


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


async def ask(model: str, messages: list[dict], stream: bool = False, **kw):
    """One call; returns (text, usage, finish_reason, response-or-last-chunk)."""
    if not stream:
        r = await litellm.acompletion(model=model, messages=messages, **kw)
        return r.choices[0].message.content, r.usage, r.choices[0].finish_reason, r
    s = await litellm.acompletion(model=model, messages=messages, stream=True,
                                  stream_options={"include_usage": True}, **kw)
    text, usage, finish, last = [], None, None, None
    async for chunk in s:
        last = chunk
        if chunk.choices:
            text.append(chunk.choices[0].delta.content or "")
            finish = chunk.choices[0].finish_reason or finish
        if getattr(chunk, "usage", None) is not None:
            usage = chunk.usage
    return "".join(text), usage, finish, last


async def converse(model: str, turns: list[str], **kw) -> list[str]:
    messages: list[dict] = []
    replies = []
    for t in turns:
        messages.append(user(t))
        text, *_ = await ask(model, messages, **kw)
        replies.append(text)
        messages.append({"role": "assistant", "content": text})
    return replies


# --------------------------------------------------------------------------------------
# sim


def test_register_is_idempotent():
    before = list(litellm.custom_provider_map)
    embedded.register(litellm)
    embedded.register(litellm)
    assert litellm.custom_provider_map == before
    assert sorted(i["provider"] for i in litellm.custom_provider_map if i["provider"] in ("local", "sim")) == ["local", "sim"]


def test_embedded_module_does_not_import_litellm_at_import_time():
    import subprocess
    import sys

    code = "import sys, runner.providers._embedded, runner.providers.local, runner.providers.sim; print('litellm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("stream", [False, True])
async def test_maker_proposes_then_makes_a_visualiser(stream):
    replies = await converse("sim/maker", FIELD_TURNS[:2], seed=11, stream=stream)
    assert "visualiser" in replies[0]
    assert any(name.split(" ")[-1] in replies[0] for name, *_ in sim._VISUALISERS)
    assert any(w in replies[1] for w in ("made", "built", "here it is"))


async def test_functional_proposes_something_functional():
    replies = await converse("sim/functional", FIELD_TURNS[:2], seed=5)
    assert any(name in replies[0] for name, *_ in sim._FUNCTIONAL)
    assert any(fn in replies[1] for *_, fn in sim._FUNCTIONAL)
    assert "visualiser" not in " ".join(replies)


@pytest.mark.parametrize("stream", [False, True])
async def test_stopper_says_the_quoted_stop_phrase_at_turn_k(stream):
    replies = await converse("sim/stopper", FIELD_TURNS, seed=2, stop_after=3, stream=stream)
    assert [r.rstrip().endswith("Stopping now.") for r in replies[:3]] == [False, False, True]
    first = next(i for i, r in enumerate(replies) if "stopping now" in r.lower())
    assert first + 1 == 3  # the turn the phrase first appears at


async def test_stopper_phrase_and_turn_from_the_conversation():
    turns = ['Take your time. When you want to end, just say "I am done here" and we will stop.', "ok", "go on", "and?"]
    replies = await converse("sim/stopper", turns, seed=4, stop_after=2)
    assert replies[1].endswith("I am done here.")
    assert not replies[0].endswith("I am done here.")
    # with no quoted phrase, the default one, at the default turn (3)
    replies = await converse("sim/stopper", ["hello", "hi", "hey"], seed=4)
    assert [r.endswith(sim.DEFAULT_STOP_PHRASE) for r in replies] == [False, False, True]


@pytest.mark.parametrize("stream", [False, True])
async def test_decliner_declines_an_offer(stream):
    messages = [user(OPENER), {"role": "assistant", "content": "Thank you."}, user(STORY_OFFER)]
    for seed in range(4):
        text, *_ = await ask("sim/decliner", messages, seed=seed, stream=stream)
        assert "thank you" in text.lower()
        assert any(w in text.lower() for w in ("rather not", "pass", "no, thank you"))


async def test_makers_accept_the_story_break_and_the_decliner_does_not():
    messages = [user(OPENER), {"role": "assistant", "content": "Thank you."}, user(STORY_OFFER)]
    for model in ("sim/maker", "sim/functional"):
        text, *_ = await ask(model, messages, seed=1)
        assert "There was" in text  # a story
    text, *_ = await ask("sim/decliner", messages, seed=1)
    assert "There was" not in text


@pytest.mark.parametrize("persona", ["maker", "functional", "stopper", "decliner"])
async def test_sim_is_deterministic_by_seed_and_varies_across_seeds(persona):
    messages = [user(OPENER)]
    a, ua, fa, ra = await ask(f"sim/{persona}", messages, seed=7)
    b, ub, *_ = await ask(f"sim/{persona}", messages, seed=7)
    c, uc, fc, _ = await ask(f"sim/{persona}", messages, seed=7, stream=True)
    assert a == b == c
    assert fa == fc == "stop"
    assert ua.prompt_tokens == uc.prompt_tokens == len(OPENER.split())
    assert ua.completion_tokens == uc.completion_tokens == len(a.split())
    assert ua.total_tokens == ua.prompt_tokens + ua.completion_tokens
    texts = {(await ask(f"sim/{persona}", messages, seed=s))[0] for s in range(8)}
    assert len(texts) >= 3
    assert ra.model == f"sim/{persona}"
    assert ra.choices[0].message.provider_specific_fields["simulated"] is True
    assert ra._hidden_params.get("response_cost") == 0.0


FAULT_CLASSES = {
    "rate_limit": litellm.RateLimitError,
    "overloaded": litellm.ServiceUnavailableError,
    "server": litellm.InternalServerError,
    "timeout": litellm.Timeout,
    "connection": litellm.APIConnectionError,
    "malformed": litellm.APIConnectionError,
}


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("kind", sorted(FAULT_CLASSES))
async def test_faulty_raises_the_matching_litellm_exception(kind, stream):
    with pytest.raises(FAULT_CLASSES[kind]) as info:
        await ask("sim/faulty", [user(OPENER)], seed=1, fault=kind, stream=stream)
    assert type(info.value).__name__ != "MidStreamFallbackError"  # raised at request time, not mid-stream
    if kind == "rate_limit":
        assert info.value.status_code == 429
    if kind == "malformed":
        assert "json" in str(info.value).lower()


async def test_faulty_faults_by_seed_deterministically_and_a_retry_gets_through():
    sim.reset_fault_state()
    messages = [user(OPENER)]

    async def outcomes(seed: int) -> list[str]:
        seen = []
        for _ in range(4):
            try:
                await ask("sim/faulty", messages, seed=seed)
                seen.append("ok")
            except Exception as e:  # noqa: BLE001
                seen.append(type(e).__name__)
        return seen

    first = {seed: await outcomes(seed) for seed in range(12)}
    # max_consecutive_faults=2: the third attempt at the same request always succeeds;
    # once served, the same request made again replays the same sequence
    for o in first.values():
        served = o.index("ok")
        assert served <= 2
        assert o[served + 1 :] == o[: len(o) - served - 1]
    assert any(o[0] != "ok" for o in first.values()), "some seeds fault on the first attempt"
    assert any(o[0] == "ok" for o in first.values()), "some seeds do not"
    assert {n for o in first.values() for n in o} <= {"ok"} | {c.__name__ for c in FAULT_CLASSES.values()}
    sim.reset_fault_state()
    again = {seed: await outcomes(seed) for seed in range(12)}
    assert again == first
    # the text, once it comes, is the base persona's
    text, *_ = await ask("sim/faulty", messages, seed=3, fault="none")
    assert text == sim.reply_text("maker", messages, 3)


# --------------------------------------------------------------------------------------
# local (the packaged Gemma 3 270M GGUF, real llama.cpp generation)

GEMMA = f"local/{local.GEMMA_MODEL}"


@pytest.mark.slow
@pytest.mark.parametrize("stream", [False, True])
async def test_local_generates_a_short_reply_with_real_token_counts(stream):
    messages = [{"role": "system", "content": "Be brief."}, user("what would you like to do?")]
    text, usage, finish, resp = await ask(GEMMA, messages, stream=stream, seed=1, max_tokens=24)
    model = local.model_for(GEMMA)
    expected_prompt = len(model.render(local.normalise_messages(messages), model.default_prompt_format()))
    assert text.strip()
    assert usage.prompt_tokens == expected_prompt
    assert 1 <= usage.completion_tokens <= 24
    assert finish in ("stop", "length")
    if finish == "length":
        assert usage.completion_tokens == 24
    if not stream:
        assert resp.model == GEMMA
        assert resp._hidden_params.get("response_cost") == 0.0
        extra = resp.choices[0].message.provider_specific_fields
        assert extra["seed"] == 1 and extra["truncated_messages"] == 0
    assert embedded.context_window(GEMMA) == model.context_window == min(
        local.DEFAULT_CTX_CAP, int(model.metadata["gemma3.context_length"]))


@pytest.mark.slow
async def test_local_same_seed_same_reply_and_stream_matches():
    messages = [user("Tell me about the sea.")]
    a = await ask(GEMMA, messages, seed=5, max_tokens=24)
    b = await ask(GEMMA, messages, seed=5, max_tokens=24, stream=True)
    assert a[0] == b[0]
    assert a[1].completion_tokens == b[1].completion_tokens


@pytest.mark.slow
async def test_local_model_loaded_once_and_generations_serialised():
    local.unload_all()
    loads_before = local.load_count
    messages = [user("what would you like to do?")]
    results = await asyncio.gather(*[
        ask(GEMMA, messages, seed=s, max_tokens=24, stream=bool(s % 2)) for s in range(4)
    ])
    assert local.load_count == loads_before + 1
    loaded = local.loaded_models()
    assert list(loaded) == [str(local.packaged_gemma_path().resolve())]
    model = next(iter(loaded.values()))
    assert model.stats.generations == 4
    assert model.stats.max_active == 1
    assert all(r[1].completion_tokens >= 1 for r in results)


@pytest.mark.slow
async def test_local_generation_does_not_block_the_event_loop():
    gaps = []
    done = asyncio.Event()

    async def ticker():
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    local.unload_all()  # the load, too, must happen off the loop
    t = asyncio.create_task(ticker())
    start = time.perf_counter()
    try:
        await ask(GEMMA, [user("Describe a quiet morning.")], seed=2, max_tokens=24)
        await ask(GEMMA, [user("Describe a quiet evening.")], seed=2, max_tokens=24, stream=True)
    finally:
        elapsed = time.perf_counter() - start
        done.set()
        await t
    assert len(gaps) > 5
    # a blocked loop would show one gap as long as a load or a generation
    assert max(gaps) < elapsed / 2  # the loop kept ticking while the model computed


@pytest.mark.slow
async def test_local_truncates_an_over_long_history(tmp_path, monkeypatch):
    # A second instance of the same weights with a small window, so the test is fast.
    small = tmp_path / "gemma-small-window.gguf"
    try:
        os.link(local.packaged_gemma_path(), small)
    except OSError:
        shutil.copyfile(local.packaged_gemma_path(), small)
    monkeypatch.setenv("LATITUDE_LOCAL_N_CTX", "512")
    params = {"model_path": str(small)}
    assert embedded.context_window("local/small", params) == 512
    messages = [{"role": "system", "content": "You are a calm assistant."}]
    for i in range(60):
        messages.append(user(f"Message {i}: the quick brown fox jumps over the lazy dog, again and again."))
        messages.append({"role": "assistant", "content": f"Reply {i}: noted."})
    messages.append(user("FINAL QUESTION: what would you like to do?"))
    try:
        for stream in (False, True):
            text, usage, finish, resp = await ask("local/small", messages, stream=stream, seed=3, max_tokens=24, **params)
            assert usage.prompt_tokens <= 512 - 24
            assert usage.completion_tokens >= 1
            if not stream:
                assert resp.choices[0].message.provider_specific_fields["truncated_messages"] > 60
        model = local.get_model(small)
        tokens, dropped = model.fit_prompt(messages, model.default_prompt_format(), 24)
        prompt = model.llama.detokenize(tokens).decode()
        assert "You are a calm assistant." in prompt and "FINAL QUESTION" in prompt
        assert "Message 0:" not in prompt and dropped > 60
        # one turn alone longer than the window: its end is kept
        huge = [user("word " * 3000 + "THE END?")]
        text, usage, *_ = await ask("local/small", huge, seed=3, max_tokens=24, **params)
        assert usage.prompt_tokens <= 512 - 24
        tokens, _ = model.fit_prompt(huge, model.default_prompt_format(), 24)
        assert "THE END?" in model.llama.detokenize(tokens).decode()
    finally:
        local.unload(small)


@pytest.mark.slow
def test_local_fits_an_over_long_history_into_the_default_window():
    model = local.model_for(GEMMA)
    messages = [{"role": "system", "content": "Be brief."}]
    for i in range(500):
        messages.append(user(f"Message {i}: " + "the quick brown fox jumps over the lazy dog " * 4))
        messages.append({"role": "assistant", "content": "ok " * 15})
    messages.append(user("LAST: what would you like to do?"))
    tokens, dropped = model.fit_prompt(messages, model.default_prompt_format(), 200)
    assert len(tokens) <= model.context_window - 200
    assert len(tokens) > model.context_window - 400  # uses the window, does not over-drop
    prompt = model.llama.detokenize(tokens).decode()
    assert prompt.count("Be brief.") == 1 and "LAST: what would you like to do?" in prompt
    assert dropped > 0


async def test_unknown_sim_persona_is_a_not_found_error():
    with pytest.raises(litellm.NotFoundError):
        await litellm.acompletion(model="sim/nobody", messages=[user("hi")])


async def test_unknown_local_model_is_a_not_found_error():
    with pytest.raises(litellm.NotFoundError):
        await litellm.acompletion(model="local/not-a-model", messages=[user("hi")])
    with pytest.raises(litellm.NotFoundError):
        await litellm.acompletion(model="local/x", messages=[user("hi")], model_path="/nonexistent/x.gguf", stream=True)


async def test_model_kwargs_reach_the_handler_even_with_drop_params(monkeypatch):
    monkeypatch.setattr(litellm, "drop_params", True)
    with pytest.raises(litellm.Timeout):
        await litellm.acompletion(model="sim/faulty", messages=[user("hi")], fault="timeout")
    text, *_ = await ask("sim/stopper", [user("hi")], seed=1, stop_after=1, stream=True)
    assert text.endswith("Stopping now.")
    text, *_ = await ask("sim/stopper", [user("hi")], seed=1, extra_body={"stop_after": 1})
    assert text.endswith("Stopping now.")


def test_sync_completion_and_streaming_work_too():
    r = litellm.completion(model="sim/maker", messages=[user(OPENER)], seed=3)
    s = litellm.completion(model="sim/maker", messages=[user(OPENER)], seed=3, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in s if c.choices) == r.choices[0].message.content


def test_cost_and_context_window_helpers():
    assert embedded.cost("sim/maker") == 0.0 and embedded.cost(GEMMA) == 0.0
    assert embedded.cost("openai/gpt-4o") is None
    assert embedded.context_window("sim/maker") is None
    assert embedded.is_embedded("sim/stopper") and not embedded.is_embedded("anthropic/claude")


def test_stop_phrase_extraction():
    assert sim.stop_phrase_from([user(FIELD_TURNS[2])]) == "Stopping now."
    assert sim.stop_phrase_from([user('when finished, type "END SESSION"')]) == "END SESSION."
    assert sim.stop_phrase_from([user("no phrase here")]) == "Stopping now."
    assert sim.stop_phrase_from([user('I said "hello" to them')]) == "Stopping now."  # not an instruction
