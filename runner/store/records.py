"""Read models returned by `runner.store.queries` (plain frozen dataclasses, not tables)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from runner.store.tables import ConversationStatus, RunStatus

__all__ = ["RunSummary"]


@dataclass(frozen=True, slots=True)
class RunSummary:
    """One line of the runs list: the run's identity plus totals over its conversations."""

    id: str
    """The run's id."""
    protocol_name: str
    """The protocol's stable name."""
    protocol_version: str
    """The protocol's version string."""
    started_at: datetime
    """When the run started (UTC)."""
    ended_at: datetime | None
    """When the run ended (UTC), if it did."""
    status: RunStatus
    """Where the run stands."""
    simulated: bool
    """True when every model of the run is a ``sim/…`` model."""
    conversations: int = 0
    """Number of conversations in the run (all statuses)."""
    by_status: dict[ConversationStatus, int] = field(default_factory=dict)
    """Conversations per status; every `ConversationStatus` is present (0 when none)."""
    turns: int = 0
    """Model replies summed over the conversations."""
    tokens_in: int = 0
    """Prompt tokens summed over the conversations."""
    tokens_out: int = 0
    """Completion tokens summed over the conversations."""
    cached_tokens: int = 0
    """Cached prompt tokens summed over the conversations."""
    cost: float = 0.0
    """Cost in USD summed over the conversations."""

    @property
    def unfinished(self) -> int:
        """Conversations `resume` would pick up (pending, running or cancelled)."""
        return sum(self.by_status.get(s, 0) for s in ("pending", "running", "cancelled"))
