"""The litellm provider family: every vendor litellm speaks to, and the resolver for all of
them (model strings, the bundled price map, context windows).

The one place litellm is imported (lazily: it costs seconds of CPU at import). `chat()`
sends one streamed request and returns a `Reply` with real telemetry: latency, time to
first token, tokens, cached tokens, cost. Keys come from the environment only.

HTTP connections are limited deliberately (`connection_limits`): litellm's shared aiohttp
transport otherwise opens at most 500 per host, whatever the run's concurrency.
"""

from __future__ import annotations

import functools
import os
import time
from typing import Any

from ..kinds import CacheTTL
from ..protocol.models_file import ModelAlias
from .base import Reply, StreamCut, api_key, audit, cache_plan, messages_hash, request_params

_ = messages_hash  # re-exported for older callers

_litellm: Any = None


def litellm() -> Any:
    """Import and configure litellm once: bundled price map, no telemetry, embedded providers registered."""
    global _litellm
    if _litellm is None:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        os.environ.setdefault("LITELLM_TELEMETRY", "False")
        total, per_host = connection_limits()  # read by litellm's constants at import
        os.environ.setdefault("AIOHTTP_CONNECTOR_LIMIT", str(total))
        os.environ.setdefault("AIOHTTP_CONNECTOR_LIMIT_PER_HOST", str(per_host))
        import litellm as module

        module.telemetry = False
        module.suppress_debug_info = True
        module.drop_params = True
        module.cache = None  # no response cache ever serves an experiment turn
        from . import _embedded

        _embedded.register(module)
        _litellm = module
    return _litellm


def litellm_version() -> str:
    from importlib.metadata import version

    try:
        return version("litellm")
    except Exception:  # pragma: no cover
        return "unknown"


def with_cache_control(messages: list[dict[str, Any]], model: ModelAlias) -> list[dict[str, Any]]:
    """Mark a system prompt cacheable where the vendor takes `cache_control` (Anthropic)."""
    if model.vendor != "anthropic" or not messages or messages[0]["role"] != "system":
        return messages
    from .caching import mark_messages

    return mark_messages(messages, system=True, moving=False, ttl=model.cache_ttl)


async def chat(
    model: ModelAlias,
    messages: list[dict[str, Any]],
    *,
    overrides: dict[str, Any] | None = None,
    tools: list[dict[str, Any]] | None = None,
    cacheable_system: bool = False,
    cache_key: str | None = None,
    cache_ttl: CacheTTL | None = None,
) -> Reply:
    """One streamed completion. Raises on any failure (the caller's retry decides). The prompt
    cache is asked for as the native transport asks (`base.cache_plan`): litellm passes block-level
    `cache_control` and `prompt_cache_key` through to the vendor."""
    lm = litellm()
    params = request_params(model, overrides)
    key = api_key(model)
    sent, cache = cache_plan(model, messages, tools, cacheable_system=cacheable_system, cache_key=cache_key,
                             cache_ttl=cache_ttl)
    kwargs: dict[str, Any] = dict(params)
    if cache.get("prompt_cache_key"):
        kwargs["prompt_cache_key"] = cache["prompt_cache_key"]
    if key:
        kwargs["api_key"] = key
    if tools:
        kwargs["tools"] = tools
    started = time.perf_counter()
    stream = await lm.acompletion(
        model=model.model,
        messages=sent,
        stream=True,
        stream_options={"include_usage": True},
        timeout=model.timeout_s,
        num_retries=0,
        caching=False,
        **kwargs,
    )
    ttft: float | None = None
    parts: list[str] = []
    reasoning: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    finish: str | None = None
    usage: Any = None
    request_id: str | None = None
    async for chunk in stream:
        request_id = request_id or getattr(chunk, "id", None)
        u = getattr(chunk, "usage", None)
        if u:
            usage = u
        choices = getattr(chunk, "choices", None) or []
        if not choices:
            continue
        choice = choices[0]
        delta = choice.delta
        text = getattr(delta, "content", None)
        if text:
            if ttft is None:
                ttft = (time.perf_counter() - started) * 1000
            parts.append(text)
        thought = getattr(delta, "reasoning_content", None)
        if thought:
            if ttft is None:
                ttft = (time.perf_counter() - started) * 1000
            reasoning.append(thought)
        for tc in getattr(delta, "tool_calls", None) or []:
            slot = calls.setdefault(tc.index or 0, {"id": None, "name": "", "arguments": ""})
            slot["id"] = tc.id or slot["id"]
            fn = tc.function
            if fn is not None:
                slot["name"] += fn.name or ""
                slot["arguments"] += fn.arguments or ""
        if choice.finish_reason:
            finish = choice.finish_reason
    latency = (time.perf_counter() - started) * 1000
    if finish is None or not _provider_finished(stream):
        raise StreamCut(f"stream from {model.model} ended without a finish reason")
    content = "".join(parts)
    tool_calls = [
        {"id": c["id"] or f"call_{i}", "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
        for i, c in sorted(calls.items())
    ]
    # An empty reply is returned as it came (the model's behaviour): the client records it.
    tokens_in = int(getattr(usage, "prompt_tokens", 0) or 0) if usage else 0
    tokens_out = int(getattr(usage, "completion_tokens", 0) or 0) if usage else 0
    cached = _cached_tokens(usage)
    written = int(getattr(usage, "cache_creation_input_tokens", 0) or 0) if usage else 0
    ttl = cache.get("cache_ttl")
    return Reply(
        content=content,
        reasoning="".join(reasoning) or None,
        tool_calls=tool_calls,
        finish_reason=finish,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        cached_tokens=cached,
        cost=cost(model, tokens_in, tokens_out, cached, written, ttl),
        latency_ms=latency,
        ttft_ms=ttft,
        request_id=_provider_request_id(stream) or request_id,
        request=audit(model, params, messages, tools, cache),
        cache_write_tokens=written,
        cache_ttl=ttl,
    )


def _provider_request_id(stream: Any) -> str | None:
    """The request id the provider put in its response headers (OpenAI `x-request-id`,
    Anthropic `request-id`). litellm passes OpenAI's response id through on the chunks
    but replaces Anthropic's with an id of its own, so the header is the one id both
    vendors issue; litellm exposes it in `_hidden_params["additional_headers"]`."""
    hidden = getattr(stream, "_hidden_params", None)
    headers = hidden.get("additional_headers") if isinstance(hidden, dict) else None
    if not isinstance(headers, dict):
        return None
    for name in ("llm_provider-request-id", "llm_provider-x-request-id", "request-id", "x-request-id"):
        value = headers.get(name)
        if value:
            return str(value)
    return None


def _provider_finished(stream: Any) -> bool:
    """Whether the provider itself ended the stream with a finish reason.

    When a stream ends early but cleanly (the body closes with no terminator, or
    Anthropic's parser gives up on a broken event), litellm does not raise: it
    synthesises a last chunk with ``finish_reason="stop"`` and returns the partial
    text as a success. Its stream wrapper records the finish reason the provider
    really sent in ``received_finish_reason`` / ``intermittent_finish_reason``
    (litellm itself reads them the same way); both None means the reply is cut.
    A stream object without these attributes (another wrapper) is trusted.
    """
    if not hasattr(stream, "received_finish_reason"):
        return True
    return (getattr(stream, "received_finish_reason", None) is not None
            or getattr(stream, "intermittent_finish_reason", None) is not None)


def _cached_tokens(usage: Any) -> int:
    if usage is None:
        return 0
    details = getattr(usage, "prompt_tokens_details", None)
    cached = getattr(details, "cached_tokens", None) if details is not None else None
    if not cached:
        cached = getattr(usage, "cache_read_input_tokens", None)
    return int(cached or 0)


def cost(model: ModelAlias, tokens_in: int, tokens_out: int, cached: int = 0, cache_write: int = 0,
         cache_ttl: CacheTTL | None = None) -> float | None:
    """USD cost from litellm's bundled price map; None when unknown. OpenAI and Anthropic models
    are priced as the native transport prices them (`prices.cost`: the same map, cache reads
    and writes at their own prices, the write price by TTL); other vendors by litellm."""
    if model.vendor in ("openai", "anthropic"):
        from . import prices

        return prices.cost(model.model, tokens_in, tokens_out, cached, cache_write, cache_ttl)
    try:
        prompt, completion = litellm().cost_per_token(
            model=model.model, prompt_tokens=tokens_in, completion_tokens=tokens_out,
            cache_read_input_tokens=cached,
        )
        return float(prompt + completion)
    except Exception:
        return None


def context_window(model: ModelAlias) -> int | None:
    """Input context window: the alias override, or litellm's model info."""
    if model.context_window:
        return model.context_window
    return _context_window(model.model)


@functools.lru_cache(maxsize=256)
def _context_window(name: str) -> int | None:
    try:
        info = litellm().get_model_info(name)
        return int(info.get("max_input_tokens") or info.get("max_tokens") or 0) or None
    except Exception:
        return None


def price_per_token(model: ModelAlias) -> tuple[float, float] | None:
    """(input, output) USD per token from the bundled price map, for plan estimates."""
    try:
        info = litellm().get_model_info(model.model)
        return float(info.get("input_cost_per_token") or 0), float(info.get("output_cost_per_token") or 0)
    except Exception:
        return None


def deterministic(model: ModelAlias, overrides: dict[str, Any] | None = None) -> bool:
    """A vendor's reply can differ when asked again (even with a seed: vendors do not promise it)."""
    return False


cost_of = cost
"""The older name of `cost`."""

CONNECTIONS_PER_HOST = 2000
"""Connections litellm's aiohttp transport may open to one host (its own default is 500,
which caps a 2,000-in-flight run at a quarter of its concurrency); override with
LATITUDE_CONNECTIONS_PER_HOST, or litellm's own AIOHTTP_CONNECTOR_LIMIT[_PER_HOST]."""


def connection_limits() -> tuple[int, int]:
    """(total, per host) connection limits given to litellm's shared aiohttp transport
    (through the environment variables its constants read at import)."""
    per_host = int(os.environ.get("LATITUDE_CONNECTIONS_PER_HOST") or CONNECTIONS_PER_HOST)
    return max(per_host, 1) * 4, max(per_host, 1)


__all__ = ["Reply", "chat", "connection_limits", "context_window", "cost", "cost_of", "deterministic",
           "litellm", "litellm_version", "price_per_token", "request_params", "with_cache_control"]
