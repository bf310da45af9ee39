"""The contract between the batch transport's wave collector (`batch.py`) and each vendor's
batch API (`batch_openai.py`: files + batches through the `openai` SDK; `batch_anthropic.py`:
`messages.batches` through the `anthropic` SDK).

The collector gathers the waiting requests of a wave, encodes each as the vendor's batch line
(`BatchAPI.line`), splits them by the vendor's limits, commits the batch and its request ids to
the store, then `submit`s; it polls `status` and reads `results` once the batch has ended. A
vendor module knows nothing of the store, the waves or the retry policy: it speaks the wire.

Nothing heavy is imported here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Literal, Protocol

from ..kinds import BatchPriceBasis
from ..protocol.models_file import ModelAlias
from .base import Reply

BatchState = Literal["validating", "in_progress", "finalizing", "ended", "expired", "cancelling", "cancelled",
                     "failed"]
"""A vendor batch's state, both vendors' words mapped onto one set. `ended`, `expired`,
`cancelled` and `failed` are final: the results of whatever finished can be read."""

FINAL_STATES: frozenset[BatchState] = frozenset({"ended", "expired", "cancelled", "failed"})
"""States after which a batch changes no more."""


@dataclass
class BatchRequest:
    """One request of a wave: what `ModelClient.chat` was asked, under an id unique in the run."""

    custom_id: str
    """Unique in the run and stable across a resume (the collector derives it from the owner and
    the request's place in the conversation), at most 64 characters of ``[A-Za-z0-9_-]``."""
    model: ModelAlias
    messages: list[dict[str, Any]]
    overrides: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    cacheable_system: bool = False
    cache_ttl: Literal["5m", "1h"] | None = None
    """Anthropic cache lifetime asked for (a batch sharing a long prefix uses ``1h``)."""


@dataclass
class BatchStatus:
    """What a poll of one vendor batch says."""

    vendor_id: str
    state: BatchState
    succeeded: int = 0
    errored: int = 0
    expired: int = 0
    cancelled: int = 0
    processing: int = 0
    raw: dict[str, Any] = field(default_factory=dict)
    """The vendor's own status object, as JSON (for the store and debugging; never a key)."""

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


@dataclass
class ItemResult:
    """One request's outcome inside an ended batch: a reply, or the error to classify and retry."""

    custom_id: str
    reply: Reply | None = None
    error: BaseException | None = None
    price_basis: BatchPriceBasis | None = None
    """Where `reply.cost` comes from: the price map's batch prices or the vendor's 50% rule
    (`runner.kinds.BatchPriceBasis`); None without a reply or a price."""


class BatchItemFailed(Exception):
    """A request inside a batch did not succeed (`kind`: errored, expired, cancelled); the
    retry policy decides (`runner.engine.retry.classify`)."""

    def __init__(self, kind: Literal["errored", "expired", "cancelled"], message: str, status: int | None = None,
                 *, error_type: str | None = None, code: str | None = None):
        super().__init__(f"batch request {kind}: {message}")
        self.kind = kind
        self.status = status
        """The HTTP status the vendor gave the request (errored only; None when it gave none)."""
        self.error_type = error_type
        """The vendor's error type (`invalid_request_error`, `overloaded_error`, `server_error`, ...)."""
        self.code = code
        """The vendor's error code where it gives one (OpenAI: `context_length_exceeded`, `batch_expired`, ...)."""


class BatchAPI(Protocol):
    """One vendor's batch API (a module), as the collector uses it."""

    name: str
    """``openai`` or ``anthropic``."""
    max_requests: int
    """Requests per batch the vendor accepts (50,000 OpenAI; 100,000 Anthropic)."""
    max_bytes: int
    """Bytes per batch the vendor accepts (200 MB OpenAI; 256 MB Anthropic)."""

    def line(self, request: BatchRequest) -> bytes:
        """The request encoded as the vendor's batch item (a JSONL line for OpenAI; a
        `{custom_id, params}` object for Anthropic), never with a key."""
        ...

    async def submit(self, model: ModelAlias, lines: list[bytes], *, label: str) -> str:
        """Create a batch of `lines`; returns the vendor's batch id. `label` (the store's own
        batch id) is attached where the vendor allows (OpenAI `metadata`) so `find` can recover
        a batch created just before a crash."""
        ...

    async def find(self, model: ModelAlias, label: str) -> str | None:
        """The vendor id of a batch created with `label`, when the vendor can tell; else None."""
        ...

    async def status(self, model: ModelAlias, vendor_id: str) -> BatchStatus: ...

    def results(self, model: ModelAlias, vendor_id: str) -> AsyncIterator[ItemResult]:
        """Every finished request of an ended batch (streamed, not all held in memory)."""
        ...

    async def cancel(self, model: ModelAlias, vendor_id: str) -> None: ...


def request_audit(request: BatchRequest) -> dict[str, Any]:
    """What was sent for `request` (`Reply.request`), as the live transports report it: a batch
    result carries only its custom_id, so the collector fills each reply's `request` from this."""
    from .base import audit, request_params

    model = request.model
    params = request_params(model, request.overrides)
    return audit(model, params, request.messages, request.tools)


def reply_cost(model: ModelAlias, tokens_in: int, tokens_out: int, cached: int = 0, cache_write: int = 0,
               cache_write_1h: int = 0) -> tuple[float | None, BatchPriceBasis | None]:
    """USD cost of one batch reply and its price basis: the one place both vendor modules price
    a reply (`prices.batch_cost`), so another cost function (cache accounting) is swapped in here.
    `tokens_in` includes cache reads (`cached`) and writes (`cache_write`: 5-minute lifetime,
    `cache_write_1h`: one hour), as `Reply.tokens_in` does."""
    from . import prices

    return prices.batch_cost(model.model, tokens_in, tokens_out, cached, cache_write, cache_write_1h)


def batch_api(model: ModelAlias) -> BatchAPI:
    """The batch API serving `model` (by its wire format); ValueError for a vendor without one."""
    from .native import wire_format

    wire = wire_format(model)
    if wire == "openai":
        from . import batch_openai as m
    elif wire == "anthropic":
        from . import batch_anthropic as m  # type: ignore[no-redef]
    else:  # pragma: no cover - wire_format knows two
        raise ValueError(f"{model.model}: no batch API for this vendor")
    return m.API  # type: ignore[attr-defined,return-value]


__all__ = ["FINAL_STATES", "BatchAPI", "BatchItemFailed", "BatchRequest", "BatchState", "BatchStatus", "ItemResult",
           "batch_api", "reply_cost", "request_audit"]
