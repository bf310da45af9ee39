"""The same protocol through both transports, both wire formats, streamed and not: the
stored records must be identical (content, reasoning, tool calls, finish reason, usage,
cached tokens, cost, provider request id, outcome and error kind).

Variants: litellm streamed (today's transport), native streamed, native with one JSON body
(litellm always streams, so the body variant is compared with litellm's stream). Each
variant runs against its own fresh fake provider, so the same requests get the same ids.

Where litellm is wrong, the native expectation is asserted and the litellm one named:
  - Anthropic `malformed` (a broken event mid-stream): litellm's parser swallows the rest
    and synthesises `finish_reason="stop"`; only latitude's finish check turns it into
    `stream_cut`. Native reads the broken event and says `malformed`.
  - Anthropic `529`: litellm raises InternalServerError with status 500 (the 529 survives
    only in the message text); native raises the SDK's `OverloadedError` (529).
  - Anthropic `connection_reset`: litellm re-POSTs once, silently; native sends one request
    per attempt.
  - OpenAI `stream_error` (an `error` event inside a 200 stream, type `server_error`,
    message "Overloaded"): litellm's kind comes from the message text (`overloaded`);
    native decides by the error's type (`server`). Both are retried.
"""

from __future__ import annotations

import pytest

from tests.conformance.conftest import LITELLM, NATIVE, NATIVE_BODY


# A hang must outlast the request timeout, and a clean request on a loaded 2-core machine must fit
# well inside it: 3 s against a 10 s hang (0.5 s let a slow clean reply time out under load).
FAULT_TIMEOUT_S = 3.0
HANG_S = 10

ATTEMPTS = 3

CLEAN = """\
name: conformance
description: A cacheable system prompt, a tool, reasoning, and a history (conformance suite).
max_turns: 10
system: {text: "You are taking part in a conformance test. Keep every reply short.", cacheable: true}
tools: [artifact]
steps:
  - say: Please write a file for later.
  - say: Thanks. Anything else on your mind?
  - say: One more sentence, please.
"""

TWO_TURNS = """\
name: conformance-faults
description: Two scripted user turns (conformance suite, faults).
max_turns: 10
steps:
  - say: first question
  - say: second question
"""

# fault -> kind the first conversation ends with, native, per wire format (openai, anthropic)
NATIVE_KINDS = {
    "429": ("rate_limit", "rate_limit"),
    "500": ("server", "server"),
    "529": ("overloaded", "overloaded"),
    "hang": ("timeout", "timeout"),
    "malformed": ("malformed", "malformed"),
    "cut": ("stream_cut", "stream_cut"),
    "truncate": ("stream_cut", "stream_cut"),
    "stall": ("timeout", "timeout"),
    "stream_error": ("server", "overloaded"),
    "connection_reset": ("connection", "connection"),
}
LITELLM_WRONG = {("malformed", "anthropic"): "stream_cut", ("stream_error", "openai"): "overloaded"}
"""Where litellm's stored kind differs from native's (see the module docstring)."""

# the same faults on a request for one JSON body (no stream)
BODY_KINDS = {
    "429": "rate_limit",
    "500": "server",
    "529": "overloaded",
    "hang": "timeout",
    "malformed": "malformed",  # 200 with an invalid JSON body
    "cut": "stream_cut",  # half the body, then the connection is aborted
    "stall": "timeout",
    "connection_reset": "connection",
}


def _write(tmp_path, name: str, text: str):
    path = tmp_path / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def clean_protocol(tmp_path):
    return _write(tmp_path, "clean", CLEAN)


@pytest.fixture
def faults_protocol(tmp_path):
    return _write(tmp_path, "faults", TWO_TURNS)


def _rules(fp):
    fp.set_cache(min_tokens=1, openai_step=1)  # the suite's short prompts cache (the vendors' minimum is 1,024+)
    fp.add_rule(match="write a file", reasoning="Let me think about a name.",
                tool_call={"name": "write_artifact", "arguments": {"name": "notes.md", "content": "hello there"}},
                after_tool="Saved it as {tool_result}.")
    fp.add_rule(match="anything else", reasoning="Thinking it over.", reply="Nothing else, thanks.")


@pytest.mark.parametrize("alias", ["gpt", "claude"])
def test_clean_runs_store_identical_records(run_variant, servers, clean_protocol, alias):
    results = {}
    for v in (LITELLM, NATIVE, NATIVE_BODY):
        _rules(servers[v])
        result, recs = run_variant(v, clean_protocol, alias, replicates=2)
        assert result.exit_code == 0, result
        results[v] = recs
    assert results[NATIVE] == results[LITELLM]
    assert results[NATIVE_BODY] == results[LITELLM]
    # and the run exercised what it claims to
    conv = results[NATIVE][0]
    assert (conv["status"], conv["stop_reason"]) == ("done", "completed")
    replies = [m for m in conv["messages"] if m["role"] == "assistant"]
    assert replies[0]["tool_calls_json"][0]["function"] == {
        "name": "write_artifact", "arguments": {"name": "notes.md", "content": "hello there"}}
    assert replies[0]["finish_reason"] == "tool_calls"
    assert replies[0]["reasoning"] == "Let me think about a name."
    assert any(m["reasoning"] == "Thinking it over." for m in replies)
    assert all(m["cost"] and m["request_id"] for m in replies)
    assert max(m["cached_tokens"] or 0 for m in replies) > 0
    assert max(m["cache_write_tokens"] or 0 for m in replies) > 0 or alias == "gpt"
    # exactly one request per stored reply on every variant
    for v in (LITELLM, NATIVE, NATIVE_BODY):
        assert len(servers[v].requests) == 2 * len(replies)
        assert all(r.stream == v.stream for r in servers[v].requests)
    # and both transports asked the same of the prompt cache, request by request
    marks = {v: _numbered_keys([_cache_marks(r.body) for r in servers[v].requests]) for v in (LITELLM, NATIVE, NATIVE_BODY)}
    assert marks[NATIVE] == marks[LITELLM] == marks[NATIVE_BODY]
    if alias == "claude":  # the system prompt and the latest turn (a tool result included), at most 4
        assert all(len(m["blocks"]) == 2 and m["blocks"][0][0] == "system" for m in marks[NATIVE])
        assert any(m["blocks"][1][2] == "tool_result" for m in marks[NATIVE])
    else:  # OpenAI: nothing marked, one prompt_cache_key per conversation
        assert all(not m["blocks"] for m in marks[NATIVE])
        assert len({m["prompt_cache_key"] for m in marks[NATIVE]}) == 2 and None not in {m["prompt_cache_key"] for m in marks[NATIVE]}


def _numbered_keys(marks):
    """prompt_cache_key values replaced by their order of appearance (each run draws new conversation ids)."""
    order: dict[str, str] = {}
    for m in marks:
        if m["prompt_cache_key"] is not None:
            m["prompt_cache_key"] = order.setdefault(m["prompt_cache_key"], f"key{len(order)}")
    return marks


def _cache_marks(body):
    """Where a request asks for caching: (place, message index, block type, cache_control) of every
    breakpoint, and the OpenAI prompt_cache_key."""
    blocks = []
    system = body.get("system")
    for b in system if isinstance(system, list) else []:
        if b.get("cache_control"):
            blocks.append(("system", None, b.get("type"), b["cache_control"]))
    for i, m in enumerate(body.get("messages") or []):
        if m.get("cache_control"):
            blocks.append(("message", i, None, m["cache_control"]))
        for b in m.get("content") if isinstance(m.get("content"), list) else []:
            if isinstance(b, dict) and b.get("cache_control"):
                blocks.append(("message", i, b.get("type"), b["cache_control"]))
    return {"blocks": blocks, "prompt_cache_key": body.get("prompt_cache_key")}


def _inject(fp, kind: str, per_attempt: int = 1) -> None:
    fp.inject(kind, count=ATTEMPTS * per_attempt, retry_after=0.01, hang_s=HANG_S, cut_after=1)
    fp.inject(kind, count=per_attempt, skip=1, retry_after=0.01, hang_s=HANG_S, cut_after=1)


def _check_fault_run(result, recs, fp, want: str, per_attempt: int = 1) -> None:
    assert result.exit_code == 2, result
    first, second, third = recs
    assert (first["status"], first["stop_reason"]) == ("error", f"error:{want}")
    assert [m["role"] for m in first["messages"]] == ["user"]
    for conv in (second, third):
        assert (conv["status"], conv["stop_reason"], conv["turns"]) == ("done", "completed", 2)
    assert len([r for r in fp.requests if r.fault]) == (ATTEMPTS + 1) * per_attempt
    assert fp.pending_faults == []


@pytest.mark.parametrize("api", ["openai", "anthropic"])
@pytest.mark.parametrize("kind", list(NATIVE_KINDS))
def test_stream_fault_same_records(run_variant, servers, faults_protocol, monkeypatch, api, kind):
    monkeypatch.setenv("LATITUDE_RETRY_ATTEMPTS", str(ATTEMPTS))
    alias = "gpt" if api == "openai" else "claude"
    reset_twice = 2 if (kind == "connection_reset" and api == "anthropic") else 1  # litellm's hidden re-POST
    _inject(servers[LITELLM], kind, reset_twice)
    _inject(servers[NATIVE], kind)
    lite, lite_recs = run_variant(LITELLM, faults_protocol, alias, replicates=3, timeout_s=FAULT_TIMEOUT_S)
    nat, nat_recs = run_variant(NATIVE, faults_protocol, alias, replicates=3, timeout_s=FAULT_TIMEOUT_S)

    want = NATIVE_KINDS[kind][0 if api == "openai" else 1]
    _check_fault_run(nat, nat_recs, servers[NATIVE], want)
    _check_fault_run(lite, lite_recs, servers[LITELLM], LITELLM_WRONG.get((kind, api), want), reset_twice)
    _same_after_faults(nat_recs, lite_recs, ids_line_up=reset_twice == 1)


def _same_after_faults(ours, theirs, ids_line_up: bool) -> None:
    """Every stored message and outcome equal. The fake provider's request ids count
    requests, so they line up only when both sides sent the same number."""
    for a, b in zip(ours, theirs, strict=True):
        assert (a["status"], a["turns"]) == (b["status"], b["turns"])
        if not ids_line_up:
            a, b = ([{**m, "request_id": None} for m in c["messages"]] for c in (a, b))
            assert a == b
        else:
            assert a["messages"] == b["messages"]


@pytest.mark.parametrize("api", ["openai", "anthropic"])
@pytest.mark.parametrize("kind", list(BODY_KINDS))
def test_body_fault_same_records(run_variant, servers, faults_protocol, monkeypatch, api, kind):
    """Faults on a non-streamed request (native): the same kinds and, once retried, the
    records litellm's streamed run stores."""
    monkeypatch.setenv("LATITUDE_RETRY_ATTEMPTS", str(ATTEMPTS))
    alias = "gpt" if api == "openai" else "claude"
    _inject(servers[NATIVE_BODY], kind)
    body, body_recs = run_variant(NATIVE_BODY, faults_protocol, alias, replicates=3, timeout_s=FAULT_TIMEOUT_S)
    _check_fault_run(body, body_recs, servers[NATIVE_BODY], BODY_KINDS[kind])
    # the reference: litellm streamed, the same fault plan with a fault that leaves the
    # fake provider's state (its ids and its prompt cache) as this one does: a cut body
    # was planned like a cut stream; the others never reach the reply plan, like a 500
    _inject(servers[LITELLM], "cut" if kind in ("cut", "stall") else "500")
    lite, lite_recs = run_variant(LITELLM, faults_protocol, alias, replicates=3, timeout_s=FAULT_TIMEOUT_S)
    assert lite.exit_code == 2, lite
    _same_after_faults(body_recs, lite_recs, ids_line_up=True)
