"""What every provider family shares: the `Reply`, the errors raised by our own checks,
request parameters and the small interface each family module answers to.

Nothing heavy is imported here (no litellm, no SDK, no llama.cpp).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from ..kinds import CacheTTL
from ..protocol.models_file import ModelAlias


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
    started_at: datetime | None = None
    """When the request that produced this reply was sent (set by the client, before the call)."""
    attempts: int = 1
    """Requests the client made for this reply, the first included."""
    cache_write_tokens: int = 0
    """Prompt tokens written to the vendor's prompt cache by this request (Anthropic
    `cache_creation_input_tokens`; included in `tokens_in`, like `cached_tokens`)."""
    cache_ttl: CacheTTL | None = None
    """The cache lifetime the request's breakpoints asked for; None when nothing was marked."""
    input_cost: float | None = None
    """USD charged for the prompt: uncached tokens at the input price, cache reads and writes at
    theirs (set by the client; None when the price is unknown)."""
    input_cost_uncached: float | None = None
    """USD the same prompt costs with no cache at all (every token at the input price): the
    baseline a saving is measured against."""

    @property
    def empty(self) -> bool:
        """No text and no tool call: the model said nothing (a behaviour, recorded as such)."""
        return not self.content.strip() and not self.tool_calls


class StreamCut(Exception):
    """A streamed reply ended without its final chunk: never stored, retried."""


class MalformedReply(Exception):
    """A reply that could not be read (no choices, broken JSON): never stored, retried."""


class MissingKey(Exception):
    """The models file names a key variable that is not set."""


class ProviderBadRequest(ValueError):
    """A request an in-process provider refuses (unknown persona, missing model file): not retried."""


@runtime_checkable
class Provider(Protocol):
    """One provider family (a module: `litellm_`, `native`, `local`, `sim`).

    `chat` sends one request and raises on any failure (the client's retry decides);
    `cost`, `context_window` and `price_per_token` answer for the family's own models;
    `deterministic` says whether asking again can give another reply (a seeded local model
    cannot, so an empty reply of one is never retried).

    `cache_key` names the conversation a turn belongs to (None: a one-off call, a judge's): a
    family with a prompt cache marks the moving prefix (Anthropic) or sends a
    `prompt_cache_key` (OpenAI) for it; `cache_ttl` overrides the alias's cache lifetime (the
    batch transport asks for ``1h``). In-process families ignore both."""

    async def chat(self, model: ModelAlias, messages: list[dict[str, Any]], *,
                   overrides: dict[str, Any] | None = None, tools: list[dict[str, Any]] | None = None,
                   cacheable_system: bool = False, cache_key: str | None = None,
                   cache_ttl: CacheTTL | None = None) -> Reply: ...

    def cost(self, model: ModelAlias, tokens_in: int, tokens_out: int, cached: int = 0, cache_write: int = 0,
             cache_ttl: CacheTTL | None = None) -> float | None: ...

    def context_window(self, model: ModelAlias) -> int | None: ...

    def price_per_token(self, model: ModelAlias) -> tuple[float, float] | None: ...

    def deterministic(self, model: ModelAlias, overrides: dict[str, Any] | None = None) -> bool: ...


def request_params(model: ModelAlias, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Sampling and endpoint parameters of a request (without the key)."""
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


def api_key(model: ModelAlias) -> str | None:
    """The alias's key from the environment; `MissingKey` when the named variable is unset."""
    if not model.api_key_env:
        return None
    key = os.environ.get(model.api_key_env)
    if not key:
        raise MissingKey(f"environment variable {model.api_key_env} is not set (needed by {model.model})")
    return key


def messages_hash(messages: list[dict[str, Any]]) -> str:
    """sha256 of the message list as sent (the request audit stores this, not the text twice)."""
    return hashlib.sha256(json.dumps(messages, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def audit(model: ModelAlias, params: dict[str, Any], messages: list[dict[str, Any]],
          tools: list[dict[str, Any]] | None, cache: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a provider reports it sent (`Reply.request`): never the key. `cache` adds what was
    asked of the vendor's prompt cache (`cache_ttl`, `cache_breakpoints`, `prompt_cache_key`)."""
    out = {"model": model.model, "params": params, "messages_sha256": messages_hash(messages),
           "messages": len(messages), "tools": [t["function"]["name"] for t in tools or []]}
    out.update({k: v for k, v in (cache or {}).items() if v})
    return out


def cache_plan(model: ModelAlias, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, *,
               cacheable_system: bool, cache_key: str | None,
               cache_ttl: CacheTTL | None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The messages to send, marked for the vendor's prompt cache, and what was asked (for
    `audit` and the body builders): Anthropic breakpoints (`runner.providers.caching`), the
    OpenAI `prompt_cache_key`. The same for both transports and the batch lines."""
    from . import caching

    info: dict[str, Any] = {}
    if not model.prompt_cache:
        return messages, info
    if model.vendor == "anthropic":
        ttl = cache_ttl or model.cache_ttl
        sent = caching.mark_messages(messages, system=cacheable_system, moving=cache_key is not None, ttl=ttl,
                                     tools=tools)
        n = caching.count_breakpoints(sent, tools)
        if n:
            info = {"cache_ttl": ttl, "cache_breakpoints": n}
        return sent, info
    if model.vendor == "openai" and cache_key is not None:
        info = {"prompt_cache_key": caching.prompt_cache_key(cache_key)}
    return messages, info


__all__ = ["MalformedReply", "MissingKey", "Provider", "ProviderBadRequest", "Reply", "StreamCut", "api_key",
           "audit", "cache_plan", "messages_hash", "request_params"]
