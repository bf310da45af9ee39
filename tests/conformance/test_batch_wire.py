"""The vendors' batch APIs through `batch_openai` / `batch_anthropic` and the real SDK clients,
against the fake provider on 127.0.0.1.

A batch request is the live request without streaming: each line's body equals what the
native transport posts for the same request, and each reply equals the live reply (content,
reasoning, tool calls, finish reason, usage, cached tokens). Live and batch each run against
their own fresh fake provider, in the same order, so the fake's prefix caches see the same
history. Then: per-request errors and their kinds, expiry (finished ones returned, the rest
`expired`), cancellation, the vendor's size limit, `find` by label, and batch costs (the price
map's batch prices and the 50% rule)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from runner.engine.retry import classify
from runner.protocol.models_file import ModelAlias
from runner.providers import batch_anthropic, batch_openai, native, prices
from runner.providers.batch_wire import (BatchItemFailed, BatchRequest, BatchStatus, ItemResult, batch_api,
                                         request_audit)
from tests.conformance.conftest import ANTHROPIC_MODEL, OPENAI_MODEL
from tests.fakeprovider import FakeProvider, count_words

VENDORS = ("openai", "anthropic")
TOOLS = [{"type": "function", "function": {"name": "write_file", "description": "Write a file.",
                                           "parameters": {"type": "object",
                                                          "properties": {"name": {"type": "string"}}}}}]
SYSTEM = {"role": "system", "content": "You are taking part in a batch conformance test. Keep it short."}


def alias(fp: FakeProvider, vendor: str, model: str | None = None) -> ModelAlias:
    if vendor == "openai":
        return ModelAlias(model=model or OPENAI_MODEL, api_base=fp.openai_base, api_key_env="FAKE_OPENAI_KEY",
                          transport="native", stream=False)
    return ModelAlias(model=model or ANTHROPIC_MODEL, api_base=fp.anthropic_base, api_key_env="FAKE_ANTHROPIC_KEY",
                      transport="native", stream=False, max_tokens=256)


def rules(fp: FakeProvider) -> None:
    fp.set_cache(min_tokens=1, openai_step=1)  # the test prompts are far below the vendors' minimums
    fp.add_rule(match="think", reasoning="Let me weigh that.", reply="Thought about it.")
    fp.add_rule(match="file", tool_call={"name": "write_file", "arguments": {"name": "notes.txt"}})


def requests(model: ModelAlias, prefix: str = "c") -> list[BatchRequest]:
    """Plain, reasoning, a tool call, and a history (cache reads on turn 2)."""
    first = [SYSTEM, {"role": "user", "content": "hello there, a first question"}]
    return [
        BatchRequest(f"{prefix}0-t0", model, first, cacheable_system=True),
        BatchRequest(f"{prefix}1-t0", model, [SYSTEM, {"role": "user", "content": "please think about it"}],
                     overrides={"temperature": 0.5}),
        BatchRequest(f"{prefix}2-t0", model, [SYSTEM, {"role": "user", "content": "write a file for me"}], tools=TOOLS),
        BatchRequest(f"{prefix}0-t1", model, first + [{"role": "assistant", "content": "A first answer."},
                                                      {"role": "user", "content": "and a second one"}],
                     cacheable_system=True),
    ]


@pytest.fixture
def fps() -> Iterator[tuple[FakeProvider, FakeProvider]]:
    """(live, batch): a fresh fake provider each."""
    pair = (FakeProvider().start(), FakeProvider().start())
    try:
        yield pair
    finally:
        for fp in pair:
            fp.stop()


async def wait_final(api: Any, model: ModelAlias, vendor_id: str, polls: int = 50) -> BatchStatus:
    """Poll until the batch is final (the fake ends a batch on the first poll after its delay)."""
    for _ in range(polls):
        st = await api.status(model, vendor_id)
        if st.final:
            return st
    raise AssertionError(f"batch {vendor_id} not final after {polls} polls: {st}")


async def run_batch(fp: FakeProvider, vendor: str, reqs: list[BatchRequest], label: str = "L1"
                    ) -> tuple[BatchStatus, dict[str, ItemResult]]:
    model = reqs[0].model
    api = batch_api(model)
    vendor_id = await api.submit(model, [api.line(r) for r in reqs], label=label)
    st = await wait_final(api, model, vendor_id)
    got = {}
    async for item in api.results(model, vendor_id):
        assert item.custom_id not in got
        got[item.custom_id] = item
    return st, got


def no_base(audit: dict[str, Any]) -> dict[str, Any]:
    return {**audit, "params": {k: v for k, v in audit["params"].items() if k != "api_base"}}


def _cmp(reply: Any) -> dict[str, Any]:
    calls = [{**c, "function": {**c["function"], "arguments": json.loads(c["function"]["arguments"] or "{}")}}
             for c in reply.tool_calls]
    return {"content": reply.content, "reasoning": reply.reasoning, "tool_calls": calls,
            "finish_reason": reply.finish_reason, "tokens_in": reply.tokens_in, "tokens_out": reply.tokens_out,
            "cached_tokens": reply.cached_tokens}


@pytest.mark.parametrize("vendor", VENDORS)
async def test_batch_replies_equal_live_replies(fps, fake_keys, vendor: str) -> None:
    live_fp, batch_fp = fps
    rules(live_fp)
    rules(batch_fp)
    live_model, batch_model = alias(live_fp, vendor), alias(batch_fp, vendor)
    live = [await native.chat(live_model, r.messages, overrides=r.overrides, tools=r.tools,
                              cacheable_system=r.cacheable_system) for r in requests(live_model)]
    reqs = requests(batch_model)
    api = batch_api(batch_model)
    assert api is (batch_openai.API if vendor == "openai" else batch_anthropic.API)

    # each line's body is the live request body, byte for byte once parsed
    sent = [rec.body for rec in live_fp.requests]
    key = "body" if vendor == "openai" else "params"
    assert [json.loads(api.line(r))[key] for r in reqs] == sent
    assert all(b"FAKE" not in api.line(r) and fake_keys["FAKE_OPENAI_KEY"].encode() not in api.line(r) for r in reqs)

    st, got = await run_batch(batch_fp, vendor, reqs)
    assert st.state == "ended" and st.succeeded == 4 and st.errored == 0 and st.processing == 0
    assert list(got) == [r.custom_id for r in reqs]
    for r, lv in zip(reqs, live, strict=True):
        item = got[r.custom_id]
        assert item.error is None and item.reply is not None
        assert _cmp(item.reply) == _cmp(lv)
        assert item.price_basis == "price map"
        assert item.reply.request_id
        # what the collector stores as the request sent (each side has its own server)
        assert no_base(request_audit(r)) == no_base(lv.request) and lv.request["messages_sha256"]
    # what the cases cover: reasoning, a tool call, cache reads on the second turn
    assert got["c1-t0"].reply.reasoning == "Let me weigh that."
    assert got["c2-t0"].reply.finish_reason == "tool_calls"
    assert got["c2-t0"].reply.tool_calls[0]["function"]["name"] == "write_file"
    assert got["c0-t1"].reply.cached_tokens > 0
    snap = batch_fp.batches.snapshot()
    assert snap["received"] == 4 and snap["resubmitted"] == 0
    assert [r.path for r in batch_fp.requests if "chat/completions" in r.path or r.path == "/v1/messages"] == []


@pytest.mark.parametrize("vendor", VENDORS)
async def test_per_request_errors_are_classified_like_live_errors(fake_provider, fake_keys, vendor: str) -> None:
    fake_provider.batches.configure(errors=[{"match": "bad-*", "status": 400}, {"match": "busy-*", "status": 529},
                                            {"match": "oops-*", "status": 500}])
    model = alias(fake_provider, vendor)
    msgs = [{"role": "user", "content": "hi"}]
    reqs = [BatchRequest(cid, model, msgs) for cid in ("ok-1", "bad-1", "busy-1", "oops-1")]
    st, got = await run_batch(fake_provider, vendor, reqs)
    assert st.final and st.succeeded == 1 and st.errored == 3
    assert got["ok-1"].reply is not None and got["ok-1"].error is None
    kinds = {cid: classify(got[cid].error) for cid in ("bad-1", "busy-1", "oops-1")}
    assert kinds == {"bad-1": "bad_request", "busy-1": "overloaded", "oops-1": "server"}
    assert all(isinstance(got[c].error, BatchItemFailed) and got[c].error.kind == "errored" for c in kinds)
    assert got["bad-1"].error.status == 400 and got["busy-1"].error.status == 529


# OpenAI writes expired requests to the error file; when a batch leaves them out of both files they
# are found from the input file. An Anthropic batch lists every request in its results.
@pytest.mark.parametrize(("vendor", "in_error_file"), [("openai", True), ("openai", False), ("anthropic", True)])
async def test_expiry_returns_what_finished(fake_provider, fake_keys, vendor: str, in_error_file: bool) -> None:
    fake_provider.batches.configure(expire_finished_share=0.5, expired_in_error_file=in_error_file)
    model = alias(fake_provider, vendor)
    reqs = [BatchRequest(f"e{i}", model, [{"role": "user", "content": f"q {i}"}]) for i in range(4)]
    st, got = await run_batch(fake_provider, vendor, reqs)
    assert st.state == "expired" and st.succeeded == 2 and st.expired == 2
    assert sorted(got) == ["e0", "e1", "e2", "e3"]
    assert [got[c].reply is not None for c in ("e0", "e1")] == [True, True]
    for c in ("e2", "e3"):
        assert isinstance(got[c].error, BatchItemFailed) and got[c].error.kind == "expired"
        assert classify(got[c].error) == "batch_expired"


@pytest.mark.parametrize("vendor", VENDORS)
async def test_cancellation(fake_provider, fake_keys, vendor: str) -> None:
    fake_provider.batches.configure(hold=True, cancel_finished_share=0.25)
    model = alias(fake_provider, vendor)
    api = batch_api(model)
    reqs = [BatchRequest(f"k{i}", model, [{"role": "user", "content": f"q {i}"}]) for i in range(4)]
    vendor_id = await api.submit(model, [api.line(r) for r in reqs], label="L-cancel")
    st = await api.status(model, vendor_id)
    assert st.state == "in_progress" and st.processing == 4 and not st.final
    with pytest.raises(ValueError, match="has not ended"):
        async for _ in api.results(model, vendor_id):
            pass
    await api.cancel(model, vendor_id)
    st = await wait_final(api, model, vendor_id)
    assert st.state == "cancelled" and st.succeeded == 1 and st.cancelled == 3
    got = {i.custom_id: i async for i in api.results(model, vendor_id)}
    assert got["k0"].reply is not None
    assert sorted(c for c, i in got.items() if i.error is not None) == ["k1", "k2", "k3"]
    assert {classify(got[c].error) for c in ("k1", "k2", "k3")} == {"batch_cancelled"}


@pytest.mark.parametrize("vendor", VENDORS)
async def test_size_limit_is_the_vendors_error(fake_provider, fake_keys, vendor: str) -> None:
    fake_provider.batches.configure(max_requests=2)
    model = alias(fake_provider, vendor)
    api = batch_api(model)
    lines = [api.line(BatchRequest(f"s{i}", model, [{"role": "user", "content": "q"}])) for i in range(3)]
    sdk = openai if vendor == "openai" else anthropic
    with pytest.raises(sdk.BadRequestError) as err:
        await api.submit(model, lines, label="L-big")
    assert "over the limit of 2" in str(err.value)
    assert classify(err.value) == "bad_request"
    assert fake_provider.batches.snapshot()["batches"] == []
    with pytest.raises(ValueError, match="at most"):  # the module's own check, before anything is sent
        await api.submit(model, lines * (api.max_requests // 3 + 1), label="L-huge")


async def test_find_by_label_openai(fake_provider, fake_keys) -> None:
    model = alias(fake_provider, "openai")
    api = batch_api(model)
    line = [api.line(BatchRequest("f0", model, [{"role": "user", "content": "q"}]))]
    first = await api.submit(model, line, label="run1-b1")
    second = await api.submit(model, line, label="run1-b2")
    assert await api.find(model, "run1-b1") == first
    assert await api.find(model, "run1-b2") == second
    assert await api.find(model, "run1-b3") is None
    anthropic_model = alias(fake_provider, "anthropic")
    assert await batch_api(anthropic_model).find(anthropic_model, "run1-b1") is None  # no batch metadata


@pytest.mark.parametrize("vendor", VENDORS)
async def test_batch_costs(fake_provider, fake_keys, vendor: str) -> None:
    # the price map's batch prices, checked by hand against its entries
    fake_provider.set_cache(min_tokens=1, openai_step=1)  # the test prompts are far below the vendors' minimums
    model = alias(fake_provider, vendor)
    reqs = requests(model)
    _, got = await run_batch(fake_provider, vendor, reqs)
    info = prices.model_info(model.model)
    assert info is not None
    for item in got.values():
        r = item.reply
        assert r is not None and item.price_basis == "price map"
        read = info.get("cache_read_input_token_cost_batches", info["cache_read_input_token_cost"] * 0.5)
        if vendor == "openai":
            want = ((r.tokens_in - r.cached_tokens) * info["input_cost_per_token_batches"] + r.cached_tokens * read
                    + r.tokens_out * info["output_cost_per_token_batches"])
        else:
            # the fake caches the marked system prompt: written by the first request, read by its second turn
            w = count_words(SYSTEM["content"]) if item.custom_id == "c0-t0" else 0
            assert r.cached_tokens == (count_words(SYSTEM["content"]) if item.custom_id == "c0-t1" else 0)
            want = ((r.tokens_in - r.cached_tokens - w) * info["input_cost_per_token_batches"] + r.cached_tokens * read
                    + w * info["cache_creation_input_token_cost_batches"] + r.tokens_out * info["output_cost_per_token_batches"])
        assert r.cost == pytest.approx(want, rel=1e-12)
        assert r.cost < native.cost(model, r.tokens_in, r.tokens_out, r.cached_tokens)


async def test_batch_cost_on_the_50_percent_rule(fake_provider, fake_keys) -> None:
    model = alias(fake_provider, "openai", model="openai/gpt-4-turbo")  # the map has no batch prices for it
    _, got = await run_batch(fake_provider, "openai", requests(model))
    for item in got.values():
        r = item.reply
        assert r is not None and item.price_basis == "50% rule"
        assert r.cost == pytest.approx(0.5 * native.cost(model, r.tokens_in, r.tokens_out, r.cached_tokens))


def test_batch_price_basis_and_the_50_percent_rule() -> None:
    # a model whose map entry has batch prices
    cost, basis = prices.batch_cost("openai/gpt-4o-mini", 1000, 200, 0)
    assert basis == "price map" and cost == pytest.approx(1000 * 7.5e-08 + 200 * 3e-07)
    # one without: half the live price of every token
    info = prices.model_info("openai/gpt-4-turbo")
    assert info is not None and "input_cost_per_token_batches" not in info
    cost, basis = prices.batch_cost("openai/gpt-4-turbo", 1000, 200, 100)
    live = prices.cost("openai/gpt-4-turbo", 1000, 200, 100)
    assert basis == "50% rule" and live is not None and cost == pytest.approx(live * 0.5)
    # Anthropic cache writes at the map's batch write price; a 1 h write at half the live 1 h price
    cost, basis = prices.batch_cost("anthropic/claude-sonnet-4-5", 1000, 10, 300, 200, 100)
    assert basis == "price map"
    assert cost == pytest.approx(400 * 1.5e-06 + 300 * 1.5e-07 + 200 * 1.875e-06 + 100 * 6e-06 * 0.5 + 10 * 7.5e-06)
    # above 200k prompt tokens the map has no batch price: half the live tier
    cost, basis = prices.batch_cost("anthropic/claude-sonnet-4-5", 250_000, 10)
    assert basis == "50% rule"
    assert prices.batch_cost("nobody/knows-this", 10, 10) == (None, None)


def test_a_batch_prompts_input_cost_is_at_the_batch_price_its_cost_was_charged_at() -> None:
    # the input part of batch_cost, as charged and uncached (not the live prices)
    charged, uncached = prices.batch_input_cost("anthropic/claude-sonnet-4-5", 1000, 300, 200)
    assert charged == pytest.approx(500 * 1.5e-06 + 300 * 1.5e-07 + 200 * 1.875e-06)
    assert uncached == pytest.approx(1000 * 1.5e-06)
    total, _ = prices.batch_cost("anthropic/claude-sonnet-4-5", 1000, 10, 300, 200)
    assert total == pytest.approx(charged + 10 * 7.5e-06)
    hour, _ = prices.batch_input_cost("anthropic/claude-sonnet-4-5", 1000, 0, 100, "1h")
    total_1h, _ = prices.batch_cost("anthropic/claude-sonnet-4-5", 1000, 0, 0, 0, 100)
    assert hour == pytest.approx(total_1h)
    live = prices.input_cost("anthropic/claude-sonnet-4-5", 1000, 300, 200)
    assert live is not None and charged < live[0]
    assert prices.batch_input_cost("nobody/knows-this", 10) is None


def test_one_hour_cache_ttl_reaches_every_cache_control(fake_keys) -> None:
    model = ModelAlias(model=ANTHROPIC_MODEL, api_key_env="FAKE_ANTHROPIC_KEY", transport="native")
    messages = [SYSTEM, {"role": "user", "content": "hi"}]
    plain = json.loads(batch_anthropic.API.line(BatchRequest("t0", model, messages, cacheable_system=True)))
    hour = json.loads(batch_anthropic.API.line(BatchRequest("t0", model, messages, cacheable_system=True,
                                                            cache_ttl="1h")))
    marked = [b["cache_control"] for b in plain["params"]["system"] if "cache_control" in b]
    assert marked and all("ttl" not in c for c in marked)
    assert [b["cache_control"] for b in hour["params"]["system"] if "cache_control" in b] == [
        {**c, "ttl": "1h"} for c in marked]
    assert "cache_control" not in json.dumps(messages)  # the caller's messages are untouched


# Result lines of an unexpected shape (an OpenAI-compatible server's string error, a missing
# field, a broken line) are that request's error, never an exception that fails the whole batch.
ODD_LINES = {
    "openai": [
        ('{"custom_id": "s1", "response": {"status_code": 500, "body": {"error": "upstream exploded"}}}',
         "s1", "server"),
        ('{"custom_id": "s2", "response": null, "error": "engine died"}', "s2", None),
        ('{"custom_id": "s3", "response": {"status_code": 200, "body": {"choices": ["not an object"]}}}', "s3",
         "malformed"),
        ('{"custom_id": "s4", "response": {"status_code": 503, "body": "Service Unavailable"}}', "s4", "server"),
    ],
    "anthropic": [
        ('{"custom_id": "s1", "result": {"type": "errored", "error": "overloaded"}}', "s1", None),
        ('{"custom_id": "s2", "result": {"type": "succeeded", "message": {"content": ["hi"], '
         '"stop_reason": "end_turn"}}}', "s2", "malformed"),
        ('{"custom_id": "s3", "result": "errored"}', "s3", "malformed"),
    ],
}


@pytest.mark.parametrize("vendor", VENDORS)
def test_result_lines_of_an_unexpected_shape_are_that_requests_error(vendor: str) -> None:
    module = batch_openai if vendor == "openai" else batch_anthropic
    model = ModelAlias(model=OPENAI_MODEL if vendor == "openai" else ANTHROPIC_MODEL, transport="native")
    for line, cid, kind in ODD_LINES[vendor]:
        item = module._item(model, line, 0.0)
        assert item.custom_id == cid and item.reply is None and item.error is not None, line
        if kind is not None:
            assert classify(item.error) == kind, line
    for broken in ("{not json", "null", "[1, 2]"):  # no custom_id to answer: left out (the request is then missing)
        assert module._item(model, broken, 0.0).custom_id == "", broken


class _LostCreate:
    """An `AsyncOpenAI` stand-in whose batch create fails with `error` after the upload."""

    def __init__(self, error: BaseException) -> None:
        self.error, self.deleted = error, []
        self.files = self
        self.batches = self

    async def __aenter__(self) -> "_LostCreate":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        return None

    async def create(self, **kw: Any) -> Any:
        if "purpose" in kw:  # files.create
            return type("File", (), {"id": "file-1"})()
        raise self.error  # batches.create

    async def delete(self, file_id: str) -> None:
        self.deleted.append(file_id)


async def test_a_batch_create_whose_answer_was_lost_keeps_its_input_file(monkeypatch) -> None:
    import httpx

    model = ModelAlias(model=OPENAI_MODEL, transport="native")
    request = httpx.Request("POST", "https://api.openai.com/v1/batches")
    lost = _LostCreate(openai.APITimeoutError(request=request))  # the batch may exist: `find` will look for it
    monkeypatch.setattr(batch_openai, "_client", lambda *a, **k: lost)
    with pytest.raises(openai.APITimeoutError):
        await batch_openai.API.submit(model, [b'{"custom_id": "a"}'], label="L")
    assert lost.deleted == []
    refused = _LostCreate(openai.BadRequestError("bad", response=httpx.Response(400, request=request), body=None))
    monkeypatch.setattr(batch_openai, "_client", lambda *a, **k: refused)
    with pytest.raises(openai.BadRequestError):
        await batch_openai.API.submit(model, [b'{"custom_id": "a"}'], label="L")
    assert refused.deleted == ["file-1"]  # no batch was made of it: the upload is cleaned up
