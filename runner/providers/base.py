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
    cannot, so an empty reply of one is never retried)."""

    async def chat(self, model: ModelAlias, messages: list[dict[str, Any]], *,
                   overrides: dict[str, Any] | None = None, tools: list[dict[str, Any]] | None = None,
                   cacheable_system: bool = False) -> Reply: ...

    def cost(self, model: ModelAlias, tokens_in: int, tokens_out: int, cached: int = 0) -> float | None: ...

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
          tools: list[dict[str, Any]] | None) -> dict[str, Any]:
    """What a provider reports it sent (`Reply.request`): never the key."""
    return {"model": model.model, "params": params, "messages_sha256": messages_hash(messages),
            "messages": len(messages), "tools": [t["function"]["name"] for t in tools or []]}


__all__ = ["MalformedReply", "MissingKey", "Provider", "ProviderBadRequest", "Reply", "StreamCut", "api_key",
           "audit", "messages_hash", "request_params"]
