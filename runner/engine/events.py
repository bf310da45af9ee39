"""What the engine reports while it runs. The engine knows nothing of the display: it
calls one callback with these dataclasses, and `runner.display` (or a test) listens."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal, Union

from ..kinds import ConversationStatus, RetryReason


@dataclass(frozen=True, slots=True)
class RunStarted:
    run_id: str
    totals: dict[str, int]
    """Conversations to run per model alias."""
    already_done: dict[str, int]
    """Per model alias, conversations finished before this session (resume)."""


@dataclass(frozen=True, slots=True)
class ConversationStarted:
    conversation_id: str
    model_alias: str


@dataclass(frozen=True, slots=True)
class TurnCompleted:
    conversation_id: str
    model_alias: str
    tokens_in: int
    tokens_out: int
    cost: float
    latency_ms: float


@dataclass(frozen=True, slots=True)
class Retrying:
    conversation_id: str
    model_alias: str
    kind: RetryReason
    """Why the call is made again: an error kind (`rate_limit`, `server`, `timeout`...), an
    `empty_reply`, or a judge's `invalid_answer`."""
    attempt: int
    wait_s: float


@dataclass(frozen=True, slots=True)
class ConversationFinished:
    conversation_id: str
    model_alias: str
    status: ConversationStatus
    stop_reason: str
    """A `StopReason` or ``error:<ErrorKind>``."""


# ----------------------------------------------------------------------------- batches


@dataclass(frozen=True, slots=True)
class BatchSubmitted:
    """A wave's batch was accepted by the vendor (its row and request ids were committed first)."""

    batch_id: str
    model_alias: str
    vendor: str
    requests: int
    """Requests in the batch."""


@dataclass(frozen=True, slots=True)
class BatchPolled:
    """A poll of a batch that is out."""

    batch_id: str
    model_alias: str
    state: str
    """The vendor's state (`BatchState`)."""
    requests: int
    """Requests the vendor counts in the batch."""
    finished: int
    """Requests answered so far."""
    failed: int
    """Requests that ended without an answer so far (errored, expired, cancelled)."""


@dataclass(frozen=True, slots=True)
class BatchEnded:
    """A batch was read and its results handed to the waiting conversations."""

    batch_id: str
    model_alias: str
    state: str
    requests: int
    """Requests read (answered + failed)."""
    finished: int
    """Requests answered."""
    failed: int
    """Requests that failed (retried by the retry policy)."""
    live_cost: float | None
    """USD the answered requests would have cost on the live transport (None: a price unknown)."""
    cost: float | None
    """USD they cost at the batch price (None: a price unknown)."""


# ----------------------------------------------------------------------------- judge runs


JudgeOutcome = Literal["judged", "invalid_answer", "error"]
"""How a judge unit ended: a verdict stored, no valid answer within the attempts, or a call that failed."""


@dataclass(frozen=True, slots=True)
class JudgeStarted:
    coder: str
    """The judge's coder name (``judge:<model>@<codebook>v<version>``)."""
    model_alias: str
    units: int
    """Units (conversations or turns) in the judge run."""
    already_done: int
    """Units this coder had judged before (skipped)."""


@dataclass(frozen=True, slots=True)
class UnitStarted:
    unit: str
    """The unit's key: a conversation id, or ``<conversation id>#<message idx>``."""
    model_alias: str


@dataclass(frozen=True, slots=True)
class UnitFinished:
    unit: str
    model_alias: str
    outcome: JudgeOutcome
    detail: str = ""
    """The error kind, for ``error``."""


EngineEvent = Union[RunStarted, ConversationStarted, TurnCompleted, Retrying, ConversationFinished,
                    BatchSubmitted, BatchPolled, BatchEnded, JudgeStarted, UnitStarted, UnitFinished]
Emit = Callable[[EngineEvent], None]


def ignore(_: EngineEvent) -> None:
    """An `Emit` that drops every event."""
