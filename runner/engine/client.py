"""The one model client: every call the engine and the analysis make goes through here.

Conversation turns, pair partners, experimenters, offer judges, judge coding, theme naming
and pairwise choices all call `ModelClient.chat`, which does, in this order and nowhere
else: estimate the tokens → acquire the alias's limits (slots, rpm, tpm) → call the
provider family that serves the alias (`runner.providers`) → retry what is retryable
(`runner.engine.retry`) → report retries as events → fill in the cost → write the request
audit (`Reply.request`, `Reply.started_at`).

An empty reply (no text, no tool call) is the model's behaviour, not a transport fault: it is
returned as it came, flagged (`Reply.empty`), after asking once more when the provider can
answer differently (a vendor); a seeded local model or the simulator is never asked again
(every retry would give the same text).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Sequence

from ..kinds import CacheTTL, CallPurpose
from ..protocol.models_file import ModelAlias
from ..providers import Reply, provider_for
from .events import Emit, Retrying, TurnCompleted, ignore
from .limits import Limits
from .retry import RetryPolicy, call_with_retry

__all__ = ["ModelClient", "embed", "estimate_tokens"]

REPORTED: frozenset[CallPurpose] = frozenset({"turn", "judge"})
"""Purposes whose completed calls are reported as `TurnCompleted` (the live table counts them)."""

EMPTY_RETRIES = 1
"""How many more times a vendor's empty reply is asked for (it can be transient)."""


def estimate_tokens(model: ModelAlias, messages: list[dict[str, Any]]) -> int:
    """Tokens a request may use, for the tpm bucket: ~4 characters a token in, plus the reply cap."""
    chars = 0
    for m in messages:
        content = m.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif content is not None:
            chars += len(str(content))
    return chars // 4 + (model.max_tokens or 1024)


def _now() -> datetime:
    return datetime.now(UTC)


class ModelClient:
    """Limits, retry, events, cost and audit around every model call of a run (or an analysis).

    One client per run: its `Limits` hold the per-alias buckets every caller shares."""

    def __init__(self, *, limits: Limits | None = None, retry: RetryPolicy | None = None, emit: Emit = ignore,
                 batches: Any = None):
        self.limits = limits or Limits()
        """Per-alias slots and buckets, shared by every call made through this client."""
        self.retry = retry or RetryPolicy()
        """How often and how long a failed call is tried again."""
        self.emit = emit
        """Where `Retrying` and `TurnCompleted` events go."""
        self.batches = batches
        """The run's wave collector (`runner.providers.batch.BatchTransport`) for ``transport: batch``
        aliases; one keeping nothing past the process is made when a batch alias is called without."""

    def batch_transport(self) -> Any:
        """The collector batch aliases go through (made on first use when none was given)."""
        if self.batches is None:
            from ..providers.batch import BatchTransport, MemoryLedger

            self.batches = BatchTransport(MemoryLedger())
        return self.batches

    async def chat(
        self,
        model: ModelAlias,
        messages: list[dict[str, Any]],
        *,
        alias: str,
        owner: str = "",
        purpose: CallPurpose = "turn",
        overrides: dict[str, Any] | None = None,
        tools: list[dict[str, Any]] | None = None,
        cacheable_system: bool = False,
        cache_key: str | None = None,
        cache_ttl: CacheTTL | None = None,
    ) -> Reply:
        """One completion of `messages` by `model` (named `alias` in events and limits), on behalf
        of `owner` (a conversation id, a judge unit). Raises the last error once the retry budget
        is spent; an empty reply is returned (see the module docstring).

        `cache_key` (a conversation turn's: the conversation, or its side) asks the family to
        cache the growing prefix for the next turn (`runner.providers.caching`); `cache_ttl`
        overrides the alias's cache lifetime. Neither makes a reply come from a cache."""
        family = provider_for(model)
        est = estimate_tokens(model, messages)
        attempts = 0
        sent_at: list[datetime] = []
        went_live: list[bool] = []  # a batch alias's failed item answered on the live transport

        def on_retry(kind: str, attempt: int, wait: float) -> None:
            self.emit(Retrying(owner, alias, kind, attempt, wait))

        async def once() -> Reply:
            nonlocal attempts
            if family.name == "batch":
                attempts += 1
                sent_at.append(_now())
                if attempts > 1 and model.batch_fallback == "live":  # a failed batch item, retried live
                    live = model.model_copy(update={"transport": "native"})
                    async with self.limits.for_model(alias, live, est):
                        reply = await provider_for(live).chat(live, messages, overrides=overrides, tools=tools,
                                                              cacheable_system=cacheable_system, cache_key=cache_key,
                                                              cache_ttl=cache_ttl)
                    reply.cost = provider_for(live).cost(live, reply.tokens_in, reply.tokens_out, reply.cached_tokens,
                                                         reply.cache_write_tokens, reply.cache_ttl)
                    went_live.append(True)
                    return reply
                from ..providers.batch import Place

                return await family.chat(model, messages, transport=self.batch_transport(), alias=alias,
                                         place=Place(owner, purpose, attempts), overrides=overrides, tools=tools,
                                         cacheable_system=cacheable_system, cache_key=cache_key)
            async with self.limits.for_model(alias, model, est):
                attempts += 1
                sent_at.append(_now())
                return await family.chat(model, messages, overrides=overrides, tools=tools,
                                         cacheable_system=cacheable_system, cache_key=cache_key,
                                         cache_ttl=cache_ttl)

        reply = await call_with_retry(once, self.retry, on_retry)
        if reply.empty and not family.deterministic(model, overrides):
            for _ in range(EMPTY_RETRIES):
                self.emit(Retrying(owner, alias, "empty_reply", attempts, 0.0))
                reply = await call_with_retry(once, self.retry, on_retry)
                if not reply.empty:
                    break
        if reply.cost is None:
            reply.cost = family.cost(model, reply.tokens_in, reply.tokens_out, reply.cached_tokens,
                                     reply.cache_write_tokens, reply.cache_ttl)
        if family.name not in ("sim", "local"):  # in-process models have no prices
            from ..providers.prices import batch_input_cost, input_cost

            # a batch reply's prompt at the batch prices its cost was charged at
            priced = batch_input_cost if family.name == "batch" and not went_live else input_cost
            split = priced(model.model, reply.tokens_in, reply.cached_tokens, reply.cache_write_tokens,
                           reply.cache_ttl)
            if split is not None:
                reply.input_cost, reply.input_cost_uncached = split
        reply.started_at = sent_at[-1] if sent_at else _now()
        reply.attempts = attempts
        if purpose in REPORTED:
            self.emit(TurnCompleted(owner, alias, reply.tokens_in, reply.tokens_out, reply.cost or 0.0,
                                    reply.latency_ms))
        return reply

    def context_window(self, model: ModelAlias) -> int | None:
        """The input context window of `model` (the alias override first), None when unknown."""
        return provider_for(model).context_window(model)



def embed(model: str, texts: Sequence[str], *, api_base: str | None = None, api_key: str | None = None,
          batch: int = 64) -> list[list[float]]:
    """Embedding vectors of `texts` from an embedding model litellm serves (theme suggestion)."""
    from ..providers.litellm_ import litellm

    kwargs: dict[str, Any] = {}
    if api_base:
        kwargs["api_base"] = api_base
    if api_key:
        kwargs["api_key"] = api_key
    vectors: list[list[float]] = []
    for start in range(0, len(texts), batch):
        res = litellm().embedding(model=model, input=list(texts[start:start + batch]), **kwargs)
        vectors += [d["embedding"] for d in res.data]
    return vectors
