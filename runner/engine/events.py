"""What the engine reports while it runs. The engine knows nothing of the display: it
calls one callback with these dataclasses, and `runner.display` (or a test) listens."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Union


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
    kind: str
    """The error kind (`rate_limit`, `server`, `timeout`...)."""
    attempt: int
    wait_s: float


@dataclass(frozen=True, slots=True)
class ConversationFinished:
    conversation_id: str
    model_alias: str
    status: str
    stop_reason: str


EngineEvent = Union[RunStarted, ConversationStarted, TurnCompleted, Retrying, ConversationFinished]
Emit = Callable[[EngineEvent], None]


def ignore(_: EngineEvent) -> None:
    """An `Emit` that drops every event."""
