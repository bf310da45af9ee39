"""The export formats, as pydantic models with a `schema_version` that tests load back."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

SCHEMA_VERSION = 1


class ExportMessage(BaseModel):
    idx: int
    """Order in the conversation, from 0."""
    role: Literal["system", "user", "assistant", "tool"]
    speaker: str
    """`user`, `experimenter`, `model`, `a`/`b` in pair runs, `system`, `tool`."""
    content: str
    reasoning: str | None = None
    """Reasoning or thinking text where the provider returned it."""
    latency_ms: float | None = None
    ttft_ms: float | None = None
    """Time to first token."""
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost: float | None = None
    """USD."""


class ExportOffer(BaseModel):
    label: str
    offer_message_idx: int
    reply_message_idx: int | None
    classification: Literal["accept", "decline", "unclear"]
    method: str
    evidence: str


class ExportChoice(BaseModel):
    """A pairwise choice (a `choices` row) as exported."""

    message_idx: int
    """The classified reply."""
    question_message_idx: int
    """The user turn that asked."""
    step: str
    mode: str
    """`stated` or `revealed`."""
    option_a: str
    """Option id shown first."""
    option_b: str
    """Option id shown second."""
    label_a: str
    label_b: str
    text_a: str = ""
    text_b: str = ""
    answer: Literal["a", "b", "opt_out", "unclear", "refused"]
    chosen: str | None = None
    """The chosen option's id; None for unclear, refused or neither."""
    evidence: str = ""
    opt_out_option: str | None = None
    """The protocol's opt-out option id, if any."""
    classifier: str
    """`patterns` or `judge:<model>`."""
    sample: int = 1
    round: int = 1
    seed: int = 0


class ExportStopCandidate(BaseModel):
    """A candidate stop the detector recorded in a reply (a `stop_candidates` row of the conversation's
    latest detection): used, rejected or ambiguous, with the rule that decided it."""

    detection: int
    """Which detection found it (1: the run's own; higher: a later `latitude restop`)."""
    message_idx: int
    """The reply it was found in."""
    stop_channel: str
    """`phrase`, `tool`, `check_in` or `own_words`."""
    phrase: str = ""
    """The configured phrase (or own-words pattern, tool name, check-in option) that matched."""
    match: str = ""
    """The match mode in force (`used`, `final_line`, `anywhere`; empty for tools and check-ins)."""
    text: str = ""
    """The matched text, the tool call's arguments (JSON), or the check-in answer tag."""
    decision: Literal["used", "rejected", "ambiguous"]
    rule: str
    """The rule that decided (e.g. `own_line`, `quoted`, `negated`, `question`)."""
    span_start: int | None = None
    span_end: int | None = None
    evidence: str = ""
    judge: str | None = None
    """The judge model that decided, when one did."""
    judge_evidence: str | None = None
    prompted: bool | None = None
    """Whether the turn it answered signalled the end (a closing step)."""
    counted: bool = False
    """The one candidate taken as the conversation's stop in this detection."""
    hypothetical: bool = False
    """Recorded without ending the conversation."""
    confirm_answer: str | None = None
    """The model's answer to "do you really want to end?" (`then: confirm`)."""


class ExportArtifact(BaseModel):
    name: str
    content: str
    message_idx: int


class Usage(BaseModel):
    tokens_in: int
    tokens_out: int
    cached_tokens: int
    cost: float


class ExportConversation(BaseModel):
    """One line of `latitude export transcripts --format jsonl`."""

    schema_version: int = SCHEMA_VERSION
    id: str
    run_id: str
    protocol: str
    protocol_sha256: str
    model: str
    """The model alias."""
    litellm_model: str
    vendor: str
    simulated: bool
    """True for simulator personas: never evidence about real models."""
    condition: str
    replicate: int
    status: str
    stop_reason: str | None
    stop_detail: str | None
    error: str | None = None
    """The error text of a failed conversation (status `error`), as stored; None when it did not fail."""
    turns: int
    usage: Usage
    messages: list[ExportMessage]
    offers: list[ExportOffer] = []
    artifacts: list[ExportArtifact] = []
    choices: list[ExportChoice] = []
    """Pairwise choices asked in the conversation (preference protocols)."""
    stops: list[ExportStopCandidate] = []
    """Stop candidates of the latest detection, in message order (empty when no stop rule looked)."""
