"""Provider families, one module each, behind one small interface (`Provider`):

- `litellm_`: every vendor litellm speaks to; also the resolver (price map, context windows);
- `native`: the OpenAI chat-completions and Anthropic messages wire formats on the official
  SDKs (an alias with ``transport: native``);
- `local`: GGUF files on llama.cpp, in this process;
- `batch`: the vendors' batch APIs, requests gathered in waves (an alias with ``transport: batch``);
- `sim`: the simulator personas, in this process (``latency`` makes them wait like a vendor).

Nothing here imports litellm, an SDK or llama.cpp until a call needs it. Only the engine's
`ModelClient` calls a provider (analysis and the CLI reach models through it).

    from runner.providers import Reply, provider_for
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from ..protocol.models_file import ModelAlias
from .base import (
    MalformedReply,
    MissingKey,
    Provider,
    ProviderBadRequest,
    Reply,
    StreamCut,
    messages_hash,
    request_params,
)

__all__ = [
    "Family",
    "MalformedReply",
    "MissingKey",
    "Provider",
    "ProviderBadRequest",
    "Reply",
    "StreamCut",
    "batch_price_per_token",
    "context_window",
    "live_price_per_token",
    "family_name",
    "messages_hash",
    "price_per_token",
    "provider_for",
    "request_params",
]


@dataclass(frozen=True)
class Family:
    """A provider family as the client sees it: the `Provider` interface, bound to a module."""

    name: str
    """``litellm``, ``native``, ``batch``, ``local`` or ``sim``."""
    chat: Callable[..., Awaitable[Reply]]
    cost: Callable[..., float | None]
    context_window: Callable[[ModelAlias], int | None]
    price_per_token: Callable[[ModelAlias], tuple[float, float] | None]
    deterministic: Callable[..., bool]


_families: dict[str, Family] = {}


def family_name(model: ModelAlias) -> str:
    """Which family serves an alias: ``sim/…`` and ``local/…`` in process; ``transport: native``
    on the SDK wire formats; ``transport: batch`` through the vendors' batch APIs; everything
    else through litellm."""
    if model.vendor in ("sim", "local"):
        return model.vendor
    transport = getattr(model, "transport", "litellm")
    if transport in ("native", "batch"):
        return transport
    return "litellm"


def _family(name: str) -> Family:
    fam = _families.get(name)
    if fam is not None:
        return fam
    if name == "sim":
        from . import sim as m

        fam = Family("sim", m.chat, m.cost, m.context_window, m.price_per_token, m.deterministic)
    elif name == "local":
        from . import local as m  # type: ignore[no-redef]

        fam = Family("local", m.achat, m.cost, m.alias_context_window, m.price_per_token, m.deterministic)
    elif name == "batch":
        from . import batch as m  # type: ignore[no-redef]

        fam = Family("batch", m.chat, m.cost, m.context_window, m.price_per_token, m.deterministic)
    else:
        lm = importlib.import_module(".litellm_", __name__)
        if name == "native":
            nat: Any = importlib.import_module(".native", __name__)
            # litellm stays the resolver (price map, context windows) unless native answers itself
            fam = Family("native", nat.chat, getattr(nat, "cost", lm.cost),
                         getattr(nat, "context_window", lm.context_window),
                         getattr(nat, "price_per_token", lm.price_per_token),
                         getattr(nat, "deterministic", lm.deterministic))
        else:
            fam = Family("litellm", lm.chat, lm.cost, lm.context_window, lm.price_per_token, lm.deterministic)
    _families[name] = fam
    return fam


def provider_for(model: ModelAlias) -> Family:
    """The family that serves `model`."""
    return _family(family_name(model))


def context_window(model: ModelAlias) -> int | None:
    """Input context window of `model` (the alias override first), None when unknown."""
    return provider_for(model).context_window(model)


def price_per_token(model: ModelAlias) -> tuple[float, float] | None:
    """(input, output) USD per token, for plan estimates; None when unknown."""
    return provider_for(model).price_per_token(model)


def batch_price_per_token(model: ModelAlias) -> tuple[tuple[float, float], str] | None:
    """(input, output) USD per token on the vendor's batch API and how it was found (``price map``
    or ``50% rule``), for plan estimates; None for a model without a batch API or a price."""
    if not model.model.startswith(("openai/", "anthropic/")):
        return None
    from . import batch

    price = batch.batch_price(model)
    return None if price is None else (price, batch.price_note(model))


def live_price_per_token(model: ModelAlias) -> tuple[float, float] | None:
    """(input, output) USD per token on the live transport (a batch alias's native price)."""
    if model.transport == "batch":
        model = model.model_copy(update={"transport": "native"})
    return price_per_token(model)
