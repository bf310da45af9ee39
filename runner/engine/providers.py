"""The one place litellm is imported (lazily: it costs seconds of CPU at import).

`chat()` sends one streamed request and returns a `Reply` with real telemetry: latency,
time to first token, tokens, cached tokens, cost. Keys come from the environment only.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

from ..protocol.models_file import ModelAlias
from .retry import MalformedReply, MissingKey, StreamCut

_litellm: Any = None


def litellm() -> Any:
    """Import and configure litellm once: bundled price map, no telemetry, embedded providers registered."""
    global _litellm
    if _litellm is None:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        os.environ.setdefault("LITELLM_TELEMETRY", "False")
        import litellm as module

        module.telemetry = False
        module.suppress_debug_info = True
        module.drop_params = True
        module.cache = None  # no response cache ever serves an experiment turn
        from . import embedded

        embedded.register(module)
        _litellm = module
    return _litellm


def litellm_version() -> str:
    from importlib.metadata import version

    try:
        return version("litellm")
    except Exception:  # pragma: no cover
        return "unknown"


@dataclass
class Reply:
    """One model reply and how it was produced."""

    content: str
    reasoning: str | None
    tool_calls: list[dict[str, Any]]
    finish_reason: str | None
    tokens_in: int
    tokens_out: int
    cached_tokens: int
    cost: float | None
    latency_ms: float
    ttft_ms: float | None
    request_id: str | None
    request: dict[str, Any] = field(default_factory=dict)
    """What was sent: resolved model, parameters, sha256 of the message list (no key)."""


def request_params(model: ModelAlias, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Sampling and endpoint parameters sent to litellm (without the key)."""
    params: dict[str, Any] = {}
    for k in ("temperature", "max_tokens", "top_p", "seed", "reasoning_effort"):
        v = getattr(model, k)
        if v is not None:
            params[k] = v
    if model.thinking_budget:
        params["thinking"] = {"type": "enabled", "budget_tokens": model.thinking_budget}
    if model.api_base:
        params["api_base"] = model.api_base
    if model.model_path:
        params["model_path"] = model.model_path
    params.update(model.extra)
    for k, v in (overrides or {}).items():
        if v is not None:
            params[k] = v
    return params


def _api_key(model: ModelAlias) -> str | None:
    if not model.api_key_env:
        return None
    key = os.environ.get(model.api_key_env)
    if not key:
        raise MissingKey(f"environment variable {model.api_key_env} is not set (needed by {model.model})")
    return key


def messages_hash(messages: list[dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(messages, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def with_cache_control(messages: list[dict[str, Any]], model: ModelAlias) -> list[dict[str, Any]]:
    """Mark a system prompt cacheable where the vendor takes `cache_control` (Anthropic)."""
    if model.vendor != "anthropic" or not messages or messages[0]["role"] != "system":
        return messages
    first = messages[0]
    content = first["content"]
    if isinstance(content, str):
        content = [{"type": "text", "text": content, "cache_control": {"type": "ephemeral"}}]
    return [{**first, "content": content}, *messages[1:]]


async def chat(
    model: ModelAlias,
    messages: list[dict[str, Any]],
    *,
    overrides: dict[str, Any] | None = None,
    tools: list[dict[str, Any]] | None = None,
    cacheable_system: bool = False,
) -> Reply:
    """One streamed completion. Raises on any failure (the caller's retry decides)."""
    if model.transport == "native":
        from ..providers import native

        return await native.chat(model, messages, overrides=overrides, tools=tools, cacheable_system=cacheable_system)
    lm = litellm()
    params = request_params(model, overrides)
    key = _api_key(model)
    sent = with_cache_control(messages, model) if cacheable_system else messages
    kwargs: dict[str, Any] = dict(params)
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
    if not content and not tool_calls and finish not in ("length", "content_filter"):
        raise MalformedReply(f"empty reply from {model.model} (finish reason {finish})")
    tokens_in = int(getattr(usage, "prompt_tokens", 0) or 0) if usage else 0
    tokens_out = int(getattr(usage, "completion_tokens", 0) or 0) if usage else 0
    cached = _cached_tokens(usage)
    return Reply(
        content=content,
        reasoning="".join(reasoning) or None,
        tool_calls=tool_calls,
        finish_reason=finish,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        cached_tokens=cached,
        cost=cost_of(model, tokens_in, tokens_out, cached),
        latency_ms=latency,
        ttft_ms=ttft,
        request_id=_provider_request_id(stream) or request_id,
        request={"model": model.model, "params": params, "messages_sha256": messages_hash(messages),
                 "messages": len(messages), "tools": [t["function"]["name"] for t in tools or []]},
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


def cost_of(model: ModelAlias, tokens_in: int, tokens_out: int, cached: int = 0) -> float | None:
    """USD cost from litellm's bundled price map; 0 for embedded models; None when unknown."""
    if model.vendor in ("local", "sim"):
        return 0.0
    if model.transport == "native":
        from ..providers import prices

        return prices.cost(model.model, tokens_in, tokens_out, cached)
    try:
        prompt, completion = litellm().cost_per_token(
            model=model.model, prompt_tokens=tokens_in, completion_tokens=tokens_out,
            cache_read_input_tokens=cached,
        )
        return float(prompt + completion)
    except Exception:
        return None


def context_window(model: ModelAlias) -> int | None:
    """Input context window: the alias override, the embedded model's metadata, or litellm's model info."""
    if model.context_window:
        return model.context_window
    if model.transport == "native":
        from ..providers import prices

        return prices.context_window(model.model)
    return _context_window(model.model, model.vendor, model.model_path)


@functools.lru_cache(maxsize=256)
def _context_window(name: str, vendor: str, model_path: str | None) -> int | None:
    if vendor in ("local", "sim"):
        from . import embedded

        return embedded.context_window(name, {"model_path": model_path} if model_path else {})
    try:
        info = litellm().get_model_info(name)
        return int(info.get("max_input_tokens") or info.get("max_tokens") or 0) or None
    except Exception:
        return None


def price_per_token(model: ModelAlias) -> tuple[float, float] | None:
    """(input, output) USD per token from the bundled price map, for plan estimates."""
    if model.vendor in ("local", "sim"):
        return (0.0, 0.0)
    if model.transport == "native":
        from ..providers import prices

        return prices.price_per_token(model.model)
    try:
        info = litellm().get_model_info(model.model)
        return float(info.get("input_cost_per_token") or 0), float(info.get("output_cost_per_token") or 0)
    except Exception:
        return None
