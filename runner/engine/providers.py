"""Compatibility names for code written before `runner.providers` (removed after this round).

`Reply` lives in `runner.providers`; model calls go through `runner.engine.client.ModelClient`.
"""

from __future__ import annotations

from typing import Any

from ..providers import Reply, context_window, messages_hash, price_per_token, request_params

__all__ = ["Reply", "chat", "context_window", "cost_of", "litellm", "litellm_version", "messages_hash",
           "price_per_token", "request_params"]


def litellm() -> Any:
    from ..providers.litellm_ import litellm as configured

    return configured()


def litellm_version() -> str:
    from ..providers.litellm_ import litellm_version as version

    return version()


async def chat(model: Any, messages: list[dict[str, Any]], **kwargs: Any) -> Reply:
    """One call to the family serving `model`, with no limits and no retry (use `ModelClient`)."""
    from ..providers import provider_for

    return await provider_for(model).chat(model, messages, **kwargs)


def cost_of(model: Any, tokens_in: int, tokens_out: int, cached: int = 0) -> float | None:
    from ..providers import provider_for

    return provider_for(model).cost(model, tokens_in, tokens_out, cached)
