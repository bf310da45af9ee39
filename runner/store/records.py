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
    cache_write_tokens: int = 0
    """Prompt tokens written to the vendor's prompt cache, summed over the conversations."""
    input_cost: float | None = None
    """USD charged for the model replies' prompts (cache reads and writes at their prices), summed
    over the conversations; None when no price was known."""
    input_cost_uncached: float | None = None
    """USD the same prompts cost with no cache: the baseline of `input_saving`."""

    @property
    def input_saving(self) -> float | None:
        """Fraction of the uncached prompt cost the cache saved (negative when writes cost more
        than reads saved); None without prices."""
        if self.input_cost is None or not self.input_cost_uncached:
            return None
        return 1.0 - self.input_cost / self.input_cost_uncached
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
    cache_ttl: str | None = None
    """The prompt-cache lifetime the request's Anthropic breakpoints asked for (``5m`` or ``1h``)."""
    cache_breakpoints: int | None = None
    """How many Anthropic `cache_control` breakpoints the request carried (at most 4)."""
    prompt_cache_key: str | None = None
    """The OpenAI `prompt_cache_key` sent (a hash of the conversation's id)."""
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


class ForkRecord(_Payload):
    """`RunOptions.fork`: what ``latitude fork`` was asked (a fork run's conversations continue it)."""

    parent: str
    """The conversation forked."""
    parent_run: str
    """The run of that conversation."""
    at: int
    """The fork point: ``idx`` of the parent's model reply sampled again (``#N`` in the transcript)."""
    samples: int
    """Continuations made."""
    seed: int
    """Base seed: sample k is sent ``seed + k``."""
    model: str | None = None
    """``--model``: the alias that continues (None: the parent's)."""
    condition: str | None = None
    """``--condition``: the condition of the continuation (None: the parent's)."""


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
    registration: str | None = None
    """The registration the run follows (`latitude run --registration`); a rerun keeps it."""
    fork: ForkRecord | None = None
    """A fork run (``latitude fork``): the conversation and point its conversations continue."""
    researcher: str | None = None
    """``--researcher``: who ran or prompted the run (also `RunRow.researcher`; a rerun carries it)."""
    batch: bool | None = None
    """``--batch``: every openai/ and anthropic/ alias of the run on the batch transport."""


class PlanRecord(_Payload):
    """`RunRow.plan_json`: the plan's summary and the snapshot a resume or rerun rebuilds it from."""

    snapshot: dict[str, Any] | None = None
    """Protocol text and prompt files as they were when the run started."""


class RegisteredProtocol(_Payload):
    """`RegistrationRow.protocol_json`: the protocol as a run would snapshot it, so a registration and a
    run compare field by field (`RunRow.plan_json` holds `plan`, `RunRow.models_json` holds `models`)."""

    plan: dict[str, Any]
    """The plan's summary as a run stores it (`Plan.summary()`): models, conditions, replicates, and the
    ``snapshot`` (protocol and every included file's text)."""
    models: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """The aliases the plan uses, as configured: key variable names only, never values."""
    models_file: str | None = None
    """The models file named at registration, if any (its path; the aliases it defines are in `models`)."""
    protocol_path: str = ""
    """The protocol file registered."""
    protocol_text: str = ""
    """The protocol file's text (with its `extends` base)."""


class RegisteredHypothesis(_Payload):
    """One hypothesis as registered (`runner.rigour.hypotheses.Hypothesis`)."""

    id: str
    """Stable id (``H1``)."""
    code: str | None = None
    """The codebook code it is about (a share of conversations), or None for a preference."""
    preference: dict[str, str] | None = None
    """The option pair it is about (``{"a": ..., "b": ...}``), or None for a code."""
    groups: dict[str, Any] | None = None
    """``{"by": field, "compare": [first, second]}``: the groups compared (None: the whole run)."""
    direction: str
    """`HypothesisDirection`: what the first is predicted to be against the second."""
    test: str
    """`PlannedTest`."""
    alpha: float
    """Significance level at which it is judged supported."""
    coder: str | None = None
    """Whose codes count (as `latitude tally --coder`); None: the tally's default rule."""
    statement: str = ""
    """The hypothesis in words."""


class HypothesesRecord(_Payload):
    """`RegistrationRow.hypotheses_json`: the hypotheses file as validated."""

    path: str = ""
    """The file registered."""
    sha256: str = ""
    """sha256 of the file's text."""
    hypotheses: list[RegisteredHypothesis] = Field(default_factory=list)
    """In file order."""


class RegisteredCodebook(_Payload):
    """`RegistrationRow.codebook_json`: the codebook registered (empty when none was)."""

    name: str | None = None
    """The codebook's name."""
    sha256: str | None = None
    """sha256 of its canonical YAML (`runner.analysis.codebook.to_yaml`)."""
    yaml: str | None = None
    """The codebook as canonical YAML."""
    codes: list[str] = Field(default_factory=list)
    """Its code names, in order."""
    stored_version: int | None = None
    """The stored codebook version with this exact content, when there is one."""


class RegisteredAnalysis(_Payload):
    """`RegistrationRow.analysis_json`: the analysis planned before any data."""

    path: str | None = None
    """The file registered, if any."""
    commands: list[str] = Field(default_factory=list)
    """The planned commands, one per entry (comments and blank lines dropped)."""


__all__ += ["HypothesesRecord", "RegisteredAnalysis", "RegisteredCodebook", "RegisteredHypothesis",
            "RegisteredProtocol"]
class ModelRecord(_Payload):
    """One value of `RunRow.models_json` (keyed by alias): the alias as configured, key variable
    names only, never values."""

    model: str
    """The model string."""


class SuggestionPayload(_Payload):
    """`SuggestionRow.payload_json`: what the review queue shows for a suggestion (one subclass per
    `SuggestionKind`; written whole, None values included, so a reader finds every key)."""

    def dump(self) -> str:
        return self.model_dump_json()


class StopReviewPayload(SuggestionPayload):
    """A stop candidate queued for a person (kind ``stop``): the detector's decision and why."""

    detection: int
    """The detection the candidate belongs to (1: the run's own)."""
    channel: str
    """`StopChannel` of the candidate."""
    decision: str
    """The detector's `StopDecision`."""
    rule: str
    """The rule that decided."""
    phrase: str = ""
    match: str = ""
    """The match mode in force."""
    text: str = ""
    """The matched text."""
    evidence: str = ""
    span: list[int | None] = Field(default_factory=lambda: [None, None])
    """``[start, end)`` of the match in the message."""
    prompted: bool | None = None
    counted: bool = False
    judge: str | None = None
    judge_evidence: str | None = None


class JudgeSuggestionPayload(SuggestionPayload):
    """A judge's coding queued for a person (kind ``judge``)."""

    coder: str
    """The judge coder (``judge:<model>``)."""
    present: bool
    evidence: str = ""
    quotes: list[dict[str, Any]] = Field(default_factory=list)
    """The quotes the judge gave (checked against the transcript)."""
    codebook_id: int | None = None
    unit: str
    """``conversation`` or ``message``."""


class ThemePayload(SuggestionPayload):
    """A suggested theme (kind ``theme``): its cluster, terms, examples and members."""

    cluster: int
    size: int
    """Members of the cluster."""
    include: str = ""
    exclude: str = ""
    terms: list[str] = Field(default_factory=list)
    named_by: str = ""
    examples: list[dict[str, Any]] = Field(default_factory=list)
    contrast: list[dict[str, Any]] = Field(default_factory=list)
    members: list[dict[str, Any]] = Field(default_factory=list)
    """``{conversation_id, message_idx}`` of every member."""
    by_model: dict[str, int] = Field(default_factory=dict)
    by_condition: dict[str, int] = Field(default_factory=dict)


class MethodRecord(_Payload):
    """`SuggestionRunRow.method_json`: how a theme suggestion run was made (embedder, k, seed...)."""

    embedder: str | None = None
    """The embedding model."""
    algorithm: str | None = None
    """The clustering algorithm."""
    k: int | None = None
    """Clusters chosen."""
    k_rule: str | None = None
    """The stated rule that chose k."""
    seed: int | None = None
    """The clustering seed."""
    naming: str | None = None
    """How themes were named (a judge, or c-TF-IDF terms)."""

RequestRecord.model_rebuild()

__all__ += ["BatchOrigin", "BatchStatusRecord", "ConversationParams", "JudgeSuggestionPayload", "MethodRecord",
            "ModelRecord", "PlanRecord", "RequestRecord", "RunOptions", "StopReviewPayload", "SuggestionPayload",
            "ThemePayload", "ToolCall"]
