"""Read models returned by `runner.store.queries` (plain frozen dataclasses, not tables), and the
pydantic models of every ``*_json`` column's payload."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

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
    batches_out: int = 0
    """Vendor batches of the run not yet ended (committed, submitted or in progress)."""

    @property
    def shown_status(self) -> str:
        """The status as listed: ``waiting: N batches out`` while an unfinished run has batches out."""
        if self.batches_out and self.status != "done":
            return f"waiting: {self.batches_out} batch{'es' if self.batches_out != 1 else ''} out"
        return self.status

    @property
    def unfinished(self) -> int:
        """Conversations `resume` would pick up (pending, running or cancelled)."""
        return sum(self.by_status.get(s, 0) for s in ("pending", "running", "cancelled"))


# ----------------------------------------------------------------------------- JSON payloads
#
# Every ``*_json`` column holds one of these models, written with `dump` and read back with
# `model_validate_json`. Unknown keys are kept (``extra="allow"``): a newer latitude may
# write more, and an older row may lack what a newer one has.

from pydantic import BaseModel, ConfigDict, Field  # noqa: E402


class _Payload(BaseModel):
    model_config = ConfigDict(extra="allow")

    def dump(self) -> str:
        """The JSON text stored (fields left at None are left out)."""
        return self.model_dump_json(exclude_none=True)


class RequestRecord(_Payload):
    """`MessageRow.request_json`: what was sent for a generated message (never a key), or, for a
    tool result, the call it answers."""

    model: str | None = None
    """The model string the alias resolved to."""
    params: dict[str, Any] | None = None
    """Sampling and endpoint parameters sent (no key)."""
    messages_sha256: str | None = None
    """sha256 of the message list as sent."""
    messages: int | None = None
    """How many messages were sent."""
    tools: list[str] | None = None
    """Names of the tools offered."""
    context_window: int | None = None
    """The model's input context window when the call was made, if known."""
    planned: str | None = None
    """An experimenter's message: the planned text it was asked to voice."""
    tool_call_id: str | None = None
    """A tool result: the id of the call it answers."""
    empty: bool | None = None
    """True when the model's reply was empty (no text, no tool call): its behaviour, recorded."""
    attempts: int | None = None
    """Requests made for this message (retries included), when more than one."""
    batch: "BatchOrigin | None" = None
    """The reply came from a vendor batch: which one, at what price."""


class BatchOrigin(BaseModel):
    """`RequestRecord.batch`: the batch a reply came from."""

    model_config = ConfigDict(extra="allow")
    batch_id: str
    """The store's batch id (`BatchRow.id`)."""
    vendor_id: str | None = None
    """The vendor's batch id."""
    custom_id: str
    """The request's id inside the batch."""
    price: str = "50% rule"
    """How its cost was priced: ``price map`` (the map's batch prices) or ``50% rule``."""


class BatchStatusRecord(_Payload):
    """`BatchRow.status_json`: the vendor's last status object of a batch, as it came (no key)."""


class ToolCall(BaseModel):
    """One entry of `MessageRow.tool_calls_json` (OpenAI's shape)."""

    model_config = ConfigDict(extra="allow")
    id: str
    """The call id, answered by a tool message's `RequestRecord.tool_call_id`."""
    type: str = "function"
    """Always ``function``."""
    function: dict[str, Any]
    """``{"name": ..., "arguments": <JSON text>}``."""


class ShownComparison(_Payload):
    """The comparison a preference conversation shows (`runner.comparisons.Comparison`)."""

    a_id: str
    """Option shown first."""
    b_id: str
    """Option shown second."""
    label_a: str
    """Label shown with the first option."""
    label_b: str
    """Label shown with the second option."""
    sample: int = 1
    """Which sample of this pair and order (from 1)."""
    round: int = 1
    """Adaptive round (from 1)."""


class ConversationParams(_Payload):
    """`ConversationRow.params_json`: what every request of the conversation was sent with."""

    sampling: dict[str, Any] = Field(default_factory=dict)
    """The alias's sampling parameters, with the replicate's ``seed``."""
    vars: dict[str, Any] = Field(default_factory=dict)
    """The condition's template variables."""
    comparison: ShownComparison | None = None
    """Preference protocols: the two options shown, their order and labels (seeded; resume and
    adaptive rounds rebuild the conversation from it)."""


class RunOptions(_Payload):
    """`RunRow.options_json`: the options a run was started with (what `rerun` repeats)."""

    models: list[str] | None = None
    """``--model`` values (None: the protocol's)."""
    conditions: list[str] | None = None
    """``--condition`` values (None: all)."""
    replicates: int | None = None
    """``--replicates`` (None: the protocol's)."""
    concurrency: int | None = None
    """Most conversations in flight."""
    dry_run: bool | None = None
    """Every model replaced by the simulator."""
    models_file: str | None = None
    """The models file named, if any."""
    rerun_of: str | None = None
    """The run this one repeats."""
    batch: bool | None = None
    """``--batch``: every openai/ and anthropic/ alias of the run on the batch transport."""


class PlanRecord(_Payload):
    """`RunRow.plan_json`: the plan's summary and the snapshot a resume or rerun rebuilds it from."""

    snapshot: dict[str, Any] | None = None
    """Protocol text and prompt files as they were when the run started."""


class ModelRecord(_Payload):
    """One value of `RunRow.models_json` (keyed by alias): the alias as configured, key variable
    names only, never values."""

    model: str
    """The model string."""


class SuggestionPayload(_Payload):
    """`SuggestionRow.payload_json`: what the review queue shows for a suggestion."""


class MethodRecord(_Payload):
    """`SuggestionRunRow.method_json`: how a theme suggestion run was made (embedder, k, seed...)."""


RequestRecord.model_rebuild()

__all__ += ["BatchOrigin", "BatchStatusRecord", "ConversationParams", "MethodRecord", "ModelRecord", "PlanRecord", "RequestRecord", "RunOptions",
            "SuggestionPayload", "ToolCall"]
