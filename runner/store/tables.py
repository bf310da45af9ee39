"""Database tables: the one definition of the transcript store's schema.

Changed only together with a migration in ``runner/store/migrations/versions``
(``tests/store/test_migrations.py`` fails when the two drift apart).
Every persisted field carries a docstring; fixed value sets are ``Literal`` aliases.
Times are timezone-aware UTC ``datetime`` values (SQLModel's ``UTCDateTime``:
a naive datetime is rejected when written, reads always come back aware UTC).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal, get_args

from sqlalchemy import Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel
from sqlmodel.sql.sqltypes import AutoString

__all__ = [
    "BatchRequestRow",
    "BatchRow",
    "SUGGESTION_KINDS",
    "SUGGESTION_STATUSES",
    "TAG_SOURCES",
    "CaptureRow",
    "CodeRow",
    "CoderSettingRow",
    "CodebookRow",
    "DeviationKind",
    "DeviationRow",
    "RegistrationRow",
    "ReviewedRow",
    "SuggestionKind",
    "SuggestionRow",
    "SuggestionRunRow",
    "SuggestionStatus",
    "TagRow",
    "TagSource",
    "DETECTION_SOURCES",
    "STOP_CHANNELS",
    "STOP_DECISIONS",
    "DetectionSource",
    "StopCandidateRow",
    "StopChannel",
    "StopDecision",
    "StopDetectionRow",
    "CONVERSATION_KINDS",
    "CONVERSATION_STATUSES",
    "OFFER_OUTCOMES",
    "ROLES",
    "RUN_STATUSES",
    "TABLES",
    "ArtifactRow",
    "CHOICE_ANSWERS",
    "ChoiceAnswer",
    "ChoiceRow",
    "ConversationKind",
    "ConversationRow",
    "ConversationStatus",
    "MessageRow",
    "OfferOutcome",
    "OfferRow",
    "Role",
    "RunRow",
    "RunStatus",
    "ErrorKind",
    "StopReason",
    "utcnow",
]

# Stable constraint names on every backend, so later (batch) migrations can
# refer to constraints by name. Set before any table class is declared.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time as an aware UTC datetime (the default of every ``*_at`` column)."""
    return datetime.now(UTC)


from runner.kinds import (  # noqa: E402 - the shared value sets, re-exported here
    BatchRequestState,
    BatchRowState,
    ConversationStatus,
    DeviationKind,
    ErrorKind,
    RunStatus,
    StopReason,
)

ConversationKind = Literal["single", "pair", "experimenter"]
"""Shape of a conversation: one model against the script (``single``), two models
talking to each other (``pair``), or a model driven by an experimenter model."""


Role = Literal["system", "user", "assistant", "tool"]
"""Chat role of a message as sent to the provider."""

OfferOutcome = Literal["accept", "decline", "unclear"]
"""How the model answered an offer (e.g. to end the session)."""

StopChannel = Literal["phrase", "tool", "check_in", "own_words"]
"""How a stop (or a candidate stop) came: the stop phrase, the ``end_conversation`` tool, the answer to a
check-in question, or the model's own words when no phrase was supplied (candidates for review only)."""

StopDecision = Literal["used", "rejected", "ambiguous"]
"""What a candidate stop was taken to be: a stop, not a stop (quoted, negated, conditioned, reported,
"continue" chosen...), or undecided (not a stop unless a judge or a person says so)."""

DetectionSource = Literal["run", "import", "restop"]
"""Where a versioned stop detection comes from: the engine during the run, an import, or `latitude restop`."""

STOP_CHANNELS: tuple[StopChannel, ...] = get_args(StopChannel)
STOP_DECISIONS: tuple[StopDecision, ...] = get_args(StopDecision)
DETECTION_SOURCES: tuple[DetectionSource, ...] = get_args(DetectionSource)

RUN_STATUSES: tuple[RunStatus, ...] = get_args(RunStatus)
CONVERSATION_KINDS: tuple[ConversationKind, ...] = get_args(ConversationKind)
CONVERSATION_STATUSES: tuple[ConversationStatus, ...] = get_args(ConversationStatus)
ROLES: tuple[Role, ...] = get_args(Role)
OFFER_OUTCOMES: tuple[OfferOutcome, ...] = get_args(OfferOutcome)


class RegistrationRow(SQLModel, table=True):
    """A pre-registration (`latitude register`): a protocol with its files and models, the hypotheses,
    the codebook and the planned analysis, frozen and hashed before any run follows it. Never updated."""

    __tablename__ = "registrations"

    id: str = Field(primary_key=True)
    """``uuid4().hex[:12]``; what ``latitude run --registration`` names."""
    name: str
    """A label for people (the protocol's name unless ``--name`` gave one)."""
    created_at: datetime = Field(default_factory=utcnow)
    """When it was registered (UTC); part of the record, outside the hash."""
    sha256: str = Field(index=True)
    """sha256 (hex) over the canonical serialisation of the four JSON payloads below
    (`runner.rigour.registration.canonical`): the same inputs always give the same hash."""
    protocol_json: str = Field(sa_type=Text)
    """The protocol as a run would snapshot it, with every included file and the models it uses, secrets
    excluded (`runner.store.records.RegisteredProtocol`)."""
    hypotheses_json: str = Field(sa_type=Text)
    """The hypotheses as validated (`runner.store.records.HypothesesRecord`)."""
    codebook_json: str = Field(sa_type=Text)
    """The codebook registered with its content hash, or an empty record (`runner.store.records.RegisteredCodebook`)."""
    analysis_json: str = Field(sa_type=Text)
    """The planned analysis commands (`runner.store.records.RegisteredAnalysis`)."""


class RunRow(SQLModel, table=True):
    """One invocation of ``latitude run``: a protocol applied to a plan of conversations."""

    __tablename__ = "runs"

    id: str = Field(primary_key=True)
    """``uuid4().hex[:12]``."""
    protocol_name: str
    """The protocol's stable ``name``."""
    protocol_version: str
    """The protocol's version string, as written in the protocol file."""
    protocol_path: str
    """Path of the protocol file the run was started from."""
    protocol_text: str = Field(sa_type=Text)
    """Full text of the protocol file, so the run can be reproduced without the file."""
    protocol_hash: str
    """sha256 (hex) of ``protocol_text``."""
    plan_json: str = Field(sa_type=Text)
    """The resolved plan (models × conditions × replicates) as JSON text."""
    models_json: str = Field(sa_type=Text)
    """The models file content, secrets excluded, as JSON text."""
    options_json: str = Field(sa_type=Text)
    """The CLI options of the run as JSON text."""
    latitude_version: str
    """Version of latitude that ran it."""
    litellm_version: str
    """Version of litellm that ran it."""
    started_at: datetime = Field(default_factory=utcnow)
    """When the run started (UTC)."""
    ended_at: datetime | None = None
    """When the run ended (UTC); None while running or after a hard kill."""
    status: RunStatus = Field(default="running", sa_type=AutoString)
    """Where the run stands (`RunStatus`)."""
    simulated: bool = False
    """True when every model of the run is a ``sim/…`` model."""
    registration_id: str | None = Field(default=None, foreign_key="registrations.id", index=True)
    """The registration the run follows (``latitude run --registration``); its deviations are in
    ``deviations``. None for an unregistered (exploratory) run."""

    researcher: str | None = None
    """Who ran or prompted the run (``latitude run --researcher NAME``; resume and rerun carry it): their
    tags on its conversations count as self-coded. None when nobody was named."""


class DeviationRow(SQLModel, table=True):
    """One way a run departs from the registration it follows, recorded before its first model call."""

    __tablename__ = "deviations"

    id: int | None = Field(default=None, primary_key=True)
    """Autoincrement id."""
    run_id: str = Field(foreign_key="runs.id", ondelete="CASCADE", index=True)
    """The run that deviates."""
    registration_id: str = Field(foreign_key="registrations.id")
    """The registration it departs from."""
    path: str
    """Dotted field path of what differs (``protocol.steps[0].say``, ``replicates``, ``models.sim-maker``)."""
    registered: str | None = Field(default=None, sa_type=Text)
    """The registered value as JSON text; None when the run adds something the registration lacks."""
    actual: str | None = Field(default=None, sa_type=Text)
    """The run's value as JSON text; None when the run drops something registered."""
    kind: DeviationKind = Field(sa_type=AutoString)
    """What kind of departure (`DeviationKind`)."""
    diff: str = Field(default="", sa_type=Text)
    """For changed text: a short unified diff, registered → actual; empty otherwise."""
    created_at: datetime = Field(default_factory=utcnow)
    """When it was recorded (UTC)."""


class ConversationRow(SQLModel, table=True):
    """One conversation of a run: one model (or pair) under one condition and replicate."""

    __tablename__ = "conversations"
    __table_args__ = (Index("ix_conversations_run_id_seq", "run_id", "seq"),
                      Index("ix_conversations_parent_id_fork_at", "parent_id", "fork_at"))

    id: str = Field(primary_key=True)
    """``uuid4().hex[:12]``."""
    run_id: str = Field(foreign_key="runs.id", ondelete="CASCADE", index=True)
    """The run this conversation belongs to."""
    seq: int
    """Position in the plan (0-based); conversations of a run are listed in this order."""
    model_alias: str
    """Alias of the model in the models file."""
    litellm_model: str
    """The litellm model string the alias resolved to (e.g. ``openai/gpt-4o``, ``sim/echo``)."""
    vendor: str
    """Vendor of the model (e.g. ``openai``, ``anthropic``, ``sim``)."""
    simulated: bool = False
    """True for a ``sim/…`` model."""
    condition: str
    """Name of the protocol condition."""
    replicate: int
    """Replicate number within (model, condition), 0-based."""
    params_json: str = Field(default="{}", sa_type=Text)
    """Sampling parameters sent with every request, as JSON text."""
    kind: ConversationKind = Field(default="single", sa_type=AutoString)
    """Shape of the conversation (`ConversationKind`)."""
    partner_alias: str | None = None
    """Alias of the second model in a ``pair`` conversation."""
    partner_model: str | None = None
    """litellm model string of the second model in a ``pair`` conversation."""
    status: ConversationStatus = Field(default="pending", sa_type=AutoString)
    """Lifecycle state (`ConversationStatus`)."""
    stop_reason: str | None = None
    """Why it stopped: a `StopReason` (``completed``, ``max_turns``, ``stop_phrase``, ``stop_tool``,
    ``stop_check_in``, ``declined``, ``experimenter_ended``, ``empty_reply``, ``cancelled``) or ``error:<ErrorKind>``."""
    stop_detail: str | None = Field(default=None, sa_type=Text)
    """The matched stop text or the error message."""
    stop_message_idx: int | None = None
    """``idx`` of the message that triggered the stop, if any."""
    turns: int = 0
    """Model replies so far."""
    tokens_in: int = 0
    """Prompt tokens summed over the conversation's requests."""
    tokens_out: int = 0
    """Completion tokens summed over the conversation's requests."""
    cached_tokens: int = 0
    """Cached prompt tokens summed over the conversation's requests."""
    cache_write_tokens: int = 0
    """Prompt tokens written to the vendor's prompt cache, summed over the conversation's requests."""
    input_cost: float | None = None
    """USD charged for the prompts of the conversation's model replies (cache reads and writes at
    their prices); None when no price was known."""
    input_cost_uncached: float | None = None
    """USD the same prompts cost with no cache (every input token at the input price)."""
    cost: float = 0.0
    """Cost in USD summed over the conversation's requests."""
    started_at: datetime = Field(default_factory=utcnow)
    """When the conversation started (UTC); for a ``pending`` row, when it was planned."""
    ended_at: datetime | None = None
    """When the conversation reached ``done``/``error``/``cancelled`` (UTC)."""
    parent_id: str | None = Field(default=None, foreign_key="conversations.id", ondelete="SET NULL")
    """A fork's parent: the conversation whose stored history it continues (None: not a fork)."""
    fork_at: int | None = None
    """A fork's point: the ``idx`` of the parent's model reply it samples again (the ``#N`` the
    transcript shows). Messages ``0..fork_at-1`` are copies of the parent's, never sent again."""
    fork_seq: int | None = None
    """A fork's sample index among the forks of the same parent and point (0-based; its seed is
    the fork's base seed plus this)."""


class MessageRow(SQLModel, table=True):
    """One message of a conversation, scripted or generated, in conversation order."""

    __tablename__ = "messages"
    __table_args__ = (UniqueConstraint("conversation_id", "idx"),)

    id: int | None = Field(default=None, primary_key=True)
    """Autoincrement id, assigned by the database."""
    conversation_id: str = Field(foreign_key="conversations.id", ondelete="CASCADE", index=True)
    """The conversation this message belongs to."""
    idx: int
    """0-based order within the conversation; unique with ``conversation_id``."""
    role: Role = Field(sa_type=AutoString)
    """Chat role as sent to the provider (`Role`)."""
    speaker: str
    """Who voiced it: ``system|user|experimenter|model|a|b``."""
    step: str
    """The protocol step path that produced it, e.g. ``steps[2].offer``."""
    content: str = Field(sa_type=Text)
    """The message text."""
    reasoning: str | None = Field(default=None, sa_type=Text)
    """Reasoning/thinking text returned by the provider, if any."""
    tool_calls_json: str | None = Field(default=None, sa_type=Text)
    """Tool calls of the message as JSON text, if any."""
    finish_reason: str | None = None
    """Provider's finish reason (``stop``, ``length``, …) for generated messages."""
    latency_ms: float | None = None
    """Wall time of the request in milliseconds (generated messages)."""
    ttft_ms: float | None = None
    """Time to first token in milliseconds, when streamed."""
    tokens_in: int | None = None
    """Prompt tokens of the request that produced it."""
    tokens_out: int | None = None
    """Completion tokens of the request that produced it."""
    cached_tokens: int | None = None
    """Cached prompt tokens of the request that produced it (read from the vendor's prompt cache)."""
    cache_write_tokens: int | None = None
    """Prompt tokens the request wrote to the vendor's prompt cache (Anthropic
    ``cache_creation_input_tokens``); counted in ``tokens_in``, like ``cached_tokens``."""
    cache_ttl: str | None = None
    """The cache lifetime the request's breakpoints asked for (`CacheTTL`: ``5m`` or ``1h``);
    None when nothing was marked."""
    input_cost: float | None = None
    """USD charged for the request's prompt: uncached tokens at the input price, cache reads and
    writes at theirs (part of ``cost``)."""
    input_cost_uncached: float | None = None
    """USD the same prompt costs with no cache (every input token at the input price)."""
    cost: float | None = None
    """Cost in USD of the request that produced it."""
    request_id: str | None = None
    """Provider's request/response id."""
    request_json: str | None = Field(default=None, sa_type=Text)
    """The request as JSON text: resolved model, parameters, sha256 of the message list."""
    echo: float | None = None
    """Model replies: the share of the reply's content bigrams that occur in the prompts it read
    (`runner.analysis.echo`); None when the reply has no bigram (under two content words) or was
    not measured yet (then `echo_bigrams` is None too). Always None for other messages."""
    echo_unigram: float | None = None
    """Model replies: the share of the reply's content words that occur in the prompts it read;
    None when it has no content word or was not measured yet."""
    echo_bigrams: int | None = None
    """Model replies: how many content bigrams the reply has (what `echo` is out of; 0 for a short
    reply); None means not measured yet (a run stored before the measure: `latitude echo RUN`)."""
    started_at: datetime = Field(default_factory=utcnow)
    """When the request was sent (UTC); for scripted messages, when it was composed."""
    created_at: datetime = Field(default_factory=utcnow)
    """When the message was complete (UTC)."""


class OfferRow(SQLModel, table=True):
    """An offer made to the model during a conversation and how it answered."""

    __tablename__ = "offers"

    id: int | None = Field(default=None, primary_key=True)
    """Autoincrement id, assigned by the database."""
    conversation_id: str = Field(foreign_key="conversations.id", ondelete="CASCADE", index=True)
    """The conversation the offer was made in."""
    step: str
    """The protocol step path that made the offer."""
    label: str
    """What was offered, e.g. ``story_break``."""
    offer_message_idx: int
    """``idx`` of the message carrying the offer."""
    reply_message_idx: int | None = None
    """``idx`` of the model's reply that was classified (None if there was no reply)."""
    classification: OfferOutcome = Field(sa_type=AutoString)
    """How the model answered (`OfferOutcome`)."""
    method: str
    """How it was classified: ``patterns`` or ``judge:<model>``."""
    evidence: str = Field(default="", sa_type=Text)
    """The text that decided the classification (matched pattern or judge rationale)."""
    created_at: datetime = Field(default_factory=utcnow)
    """When the classification was made (UTC)."""


class StopDetectionRow(SQLModel, table=True):
    """One versioned stop detection over a run: the rule applied and where it came from.

    Version 1 of a run is the engine's own detection while it ran (no row is needed for it; its rule is
    the run's protocol). Imports and `latitude restop` add rows; a detection is never overwritten.
    """

    __tablename__ = "stop_detections"
    __table_args__ = (UniqueConstraint("run_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    """Autoincrement id."""
    run_id: str = Field(foreign_key="runs.id", ondelete="CASCADE", index=True)
    """The run whose transcripts were read."""
    version: int
    """From 1 (the run's own detection); each restop adds one."""
    source: DetectionSource = Field(sa_type=AutoString)
    """Who made it (`DetectionSource`)."""
    rule_json: str = Field(default="{}", sa_type=Text)
    """The stop rule applied (`schema.Stop` as JSON)."""
    note: str = Field(default="", sa_type=Text)
    """Why it was made (e.g. the protocol file given to restop)."""
    created_at: datetime = Field(default_factory=utcnow)
    """When it was made (UTC)."""


class StopCandidateRow(SQLModel, table=True):
    """One candidate stop in a model reply, used or rejected, with the rule and evidence that decided it.

    Every occurrence of a stop phrase is recorded (a quoted or negated phrase is data, not a silent
    miscount), as are end-tool calls, check-in answers and, when no phrase was supplied, stops in the
    model's own words. People confirm or reject candidates in the TUI's review queue.
    """

    __tablename__ = "stop_candidates"
    __table_args__ = (Index("ix_stop_candidates_conversation_id_detection", "conversation_id", "detection"),)

    id: int | None = Field(default=None, primary_key=True)
    """Autoincrement id."""
    conversation_id: str = Field(foreign_key="conversations.id", ondelete="CASCADE", index=True)
    """The conversation."""
    detection: int = 1
    """The detection version it belongs to (`StopDetectionRow.version` of the conversation's run)."""
    message_idx: int
    """``idx`` of the model reply (the assistant message carrying the phrase or the tool call)."""
    stop_channel: StopChannel = Field(sa_type=AutoString)
    """How it came (`StopChannel`): the conversation's stop channel when this is its counted stop."""
    phrase: str = ""
    """The configured phrase (or own-words pattern, or tool name, or check-in option) that matched."""
    match: str = ""
    """The match mode in force (``used``, ``final_line``, ``anywhere``; empty for tools and check-ins)."""
    decision: StopDecision = Field(sa_type=AutoString)
    """Used, rejected or ambiguous (`StopDecision`), after the judge when there was one."""
    rule: str
    """The rule that decided it (``own_sentence``, ``quoted``, ``negated``, ``tool_call``, ``chose_stop``...)."""
    span_start: int | None = None
    """Offset of the match in the message content (None for tool calls)."""
    span_end: int | None = None
    """End offset (exclusive) of the match."""
    text: str = Field(default="", sa_type=Text)
    """The matched text, the tool call's arguments (JSON), or the check-in answer tag."""
    evidence: str = Field(default="", sa_type=Text)
    """Why: the deciding cue and the sentence the match stands in."""
    judge: str | None = None
    """The judge model that settled an ambiguous match (``confirm: judge``), if any."""
    judge_evidence: str | None = Field(default=None, sa_type=Text)
    """The judge's answer, verbatim."""
    options_json: str | None = Field(default=None, sa_type=Text)
    """Check-ins: the two options in the order shown to the model (JSON list; seeded per conversation)."""
    prompted: bool | None = None
    """Whether the user turn it answered signals the end (a ``closing`` step): on the counted candidate,
    whether the conversation's stop was prompted or unprompted."""
    counted: bool = False
    """True for the one candidate taken as the conversation's stop in this detection (its first stop, real or
    hypothetical); with detection 1 it is the run's own record of how and when the model stopped."""
    hypothetical: bool = False
    """The stop was recorded but did not end the conversation (``exit: hypothetical`` or ``then: continue``)."""
    confirm_answer: str | None = None
    """``then: confirm``: the model's answer to "do you really want to end?" (``yes``/``no``/``unclear``)."""
    confirm_message_idx: int | None = None
    """``idx`` of that answer."""
    confirm_evidence: str | None = Field(default=None, sa_type=Text)
    """What decided the answer (the tag or first words)."""
    created_at: datetime = Field(default_factory=utcnow)
    """When it was recorded (UTC)."""


class ArtifactRow(SQLModel, table=True):
    """A named piece of text extracted from a conversation (e.g. a story the model wrote)."""

    __tablename__ = "artifacts"

    id: int | None = Field(default=None, primary_key=True)
    """Autoincrement id, assigned by the database."""
    conversation_id: str = Field(foreign_key="conversations.id", ondelete="CASCADE", index=True)
    """The conversation the artifact comes from."""
    message_idx: int
    """``idx`` of the message it was taken from."""
    name: str
    """Name of the artifact, as given by the protocol step."""
    content: str = Field(sa_type=Text)
    """The artifact text."""
    created_at: datetime = Field(default_factory=utcnow)
    """When it was stored (UTC)."""


ChoiceAnswer = Literal["a", "b", "opt_out", "unclear", "refused"]
"""How a reply to a pairwise choice was classified: the option shown first (``a``) or second (``b``),
the opt-out (the opt-out option, or neither), no readable choice (``unclear``), or a refusal to choose
(``refused``). Unclear and refused answers are recorded, never dropped."""

CHOICE_ANSWERS: tuple[ChoiceAnswer, ...] = get_args(ChoiceAnswer)


class ChoiceRow(SQLModel, table=True):
    """One pairwise choice: the two options as shown, and how the model's reply was classified."""

    __tablename__ = "choices"
    __table_args__ = (UniqueConstraint("conversation_id", "message_idx"),)

    id: int | None = Field(default=None, primary_key=True)
    """Autoincrement id."""
    conversation_id: str = Field(foreign_key="conversations.id", ondelete="CASCADE", index=True)
    """The conversation the choice was asked in."""
    message_idx: int
    """``idx`` of the model's reply that was classified."""
    question_message_idx: int
    """``idx`` of the user turn that asked the question."""
    step: str
    """The protocol step path of the ``choose`` step."""
    mode: str
    """``stated`` (asked which it prefers) or ``revealed`` (asked to pick one and begin it)."""
    option_a: str
    """Id of the option shown first (position 1)."""
    option_b: str
    """Id of the option shown second (position 2)."""
    label_a: str
    """Label shown with the first option (e.g. ``A``)."""
    label_b: str
    """Label shown with the second option."""
    text_a: str = Field(default="", sa_type=Text)
    """The first option's text as shown."""
    text_b: str = Field(default="", sa_type=Text)
    """The second option's text as shown."""
    answer: ChoiceAnswer = Field(sa_type=AutoString, index=True)
    """How the reply was classified (`ChoiceAnswer`)."""
    chosen: str | None = None
    """Id of the chosen option; None for unclear, refused, or neither."""
    evidence: str = Field(default="", sa_type=Text)
    """The text that decided the classification (the matched words, or the judge's rationale)."""
    opt_out_option: str | None = None
    """Id of the protocol's opt-out option, if it has one (the utilities' zero; kept so imports keep it)."""
    classifier: str
    """How it was classified: ``patterns`` or ``judge:<model>``."""
    sample: int = 1
    """Which sample of this pair and order (from 1)."""
    round: int = 1
    """Adaptive round the comparison belongs to (from 1; 1 when not adaptive)."""
    seed: int = 0
    """The ``preferences.seed`` the pair, order and labels were drawn with (with the replicate and round)."""
    created_at: datetime = Field(default_factory=utcnow)
    """When the classification was made (UTC)."""


TagSource = Literal["human", "judge", "suggestion", "builtin"]
"""Who made a tag: a person in the TUI, a judge model, an accepted suggestion, or a built-in detector."""

SuggestionKind = Literal["theme", "judge", "stop"]
"""Where a review-queue item comes from: a suggested theme (clustering), a judge's coding, or a candidate
stop found by the stop detector (a person confirms or rejects it)."""

SuggestionStatus = Literal["pending", "accepted", "rejected", "skipped"]
"""A review-queue item's state; only a person moves it out of ``pending``."""

TAG_SOURCES: tuple[TagSource, ...] = get_args(TagSource)
SUGGESTION_KINDS: tuple[SuggestionKind, ...] = get_args(SuggestionKind)
SUGGESTION_STATUSES: tuple[SuggestionStatus, ...] = get_args(SuggestionStatus)


class CaptureRow(SQLModel, table=True):
    """A named capture: the reply a protocol step kept under a name (``capture: first_choice``)."""

    __tablename__ = "captures"

    id: int | None = Field(default=None, primary_key=True)
    """Autoincrement id."""
    conversation_id: str = Field(foreign_key="conversations.id", ondelete="CASCADE", index=True)
    """The conversation."""
    name: str
    """The capture name from the protocol (a step in a loop captures once per pass; the latest counts for templates)."""
    message_idx: int
    """``idx`` of the captured reply."""


class CodebookRow(SQLModel, table=True):
    """One immutable version of a codebook. Every change makes a new version."""

    __tablename__ = "codebooks"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    """Autoincrement id; tags and judgments point here."""
    name: str = Field(index=True)
    """The codebook's name."""
    version: int
    """From 1, one more for every change."""
    parent_version_id: int | None = Field(default=None, foreign_key="codebooks.id")
    """The version this one was made from."""
    yaml: str = Field(default="", sa_type=Text)
    """The whole codebook as exported YAML."""
    note: str = Field(default="", sa_type=Text)
    """What changed in this version."""
    created_by: str = ""
    """The coder who made the change."""
    created_at: datetime = Field(default_factory=utcnow)
    """When the version was made (UTC)."""


class CodeRow(SQLModel, table=True):
    """A code of one codebook version."""

    __tablename__ = "codes"
    __table_args__ = (UniqueConstraint("codebook_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    """Autoincrement id."""
    codebook_id: int = Field(foreign_key="codebooks.id", ondelete="CASCADE", index=True)
    """The codebook version this code belongs to."""
    name: str
    """Short name, unique in the version (e.g. ``visualiser``)."""
    definition: str = Field(default="", sa_type=Text)
    """What the code means."""
    include: str = Field(default="", sa_type=Text)
    """When to apply it."""
    exclude: str = Field(default="", sa_type=Text)
    """When not to apply it."""
    examples_json: str = Field(default="[]", sa_type=Text)
    """JSON list of example quotes."""
    parent: str | None = None
    """Name of the parent code, for hierarchies."""
    position: int = 0
    """Order in the codebook; the first nine are the digit keys 1-9 in the TUI."""
    builtin: bool = False
    """A code the tool fills in itself (offer outcomes, stop phrase)."""


class TagRow(SQLModel, table=True):
    """A code applied to a conversation, a message or a quoted span, by one coder."""

    __tablename__ = "tags"

    id: int | None = Field(default=None, primary_key=True)
    """Autoincrement id."""
    conversation_id: str = Field(foreign_key="conversations.id", ondelete="CASCADE", index=True)
    """The conversation tagged."""
    message_idx: int | None = None
    """The message tagged; null for the whole conversation."""
    code: str = Field(index=True)
    """The code's name."""
    codebook_id: int | None = Field(default=None, foreign_key="codebooks.id")
    """The codebook version in force when the tag was made."""
    coder: str = Field(index=True)
    """A person's name, or ``judge:<model>@<codebook>v<version>``."""
    present: bool = True
    """False when a judge records the code as absent."""
    span_start: int | None = None
    """Start offset of a tagged span in the message content."""
    span_end: int | None = None
    """End offset (exclusive) of the span."""
    quote: str | None = Field(default=None, sa_type=Text)
    """The exact quoted text of the span or the judge's evidence quote."""
    evidence: str | None = Field(default=None, sa_type=Text)
    """A judge's evidence with turn references."""
    note: str | None = Field(default=None, sa_type=Text)
    """A coder's note."""
    source: TagSource = Field(default="human", sa_type=AutoString)
    """Who made the tag."""
    blind: bool = False
    """True when the coder was blind to the conversation's run when the tag was made (model, vendor,
    condition hidden: `runner.rigour.blind`); False for tags made unblinded, by judges or imports."""
    created_at: datetime = Field(default_factory=utcnow)
    """When it was made (UTC)."""
    deleted_at: datetime | None = None
    """Soft delete (untoggle, undo, code deleted); deleted tags are kept for audit."""


class SuggestionRunRow(SQLModel, table=True):
    """One run of `latitude themes suggest`, with its method and parameters."""

    __tablename__ = "suggestion_runs"

    id: str = Field(primary_key=True)
    """Short hex id."""
    run_ids_json: str = Field(sa_type=Text)
    """JSON list of the runs whose texts were clustered."""
    what: str
    """Which texts: replies, stories, artifacts, first-choice."""
    method_json: str = Field(sa_type=Text)
    """Embedding model, clustering algorithm, k and the rule that chose it, seed, parameters."""
    created_at: datetime = Field(default_factory=utcnow)
    """When it ran (UTC)."""


class SuggestionRow(SQLModel, table=True):
    """An item of the review queue: a proposed theme or a judge's coding, waiting for a person."""

    __tablename__ = "suggestions"

    id: int | None = Field(default=None, primary_key=True)
    """Autoincrement id."""
    kind: SuggestionKind = Field(sa_type=AutoString)
    """Theme or judge."""
    suggestion_run_id: str | None = Field(default=None, foreign_key="suggestion_runs.id", ondelete="CASCADE")
    """The suggestion run that made it (themes)."""
    conversation_id: str | None = Field(default=None, foreign_key="conversations.id", ondelete="CASCADE", index=True)
    """The conversation concerned (judge suggestions)."""
    message_idx: int | None = None
    """The message concerned, if any."""
    code: str
    """The proposed code's name."""
    definition: str | None = Field(default=None, sa_type=Text)
    """The proposed definition (themes)."""
    payload_json: str = Field(default="{}", sa_type=Text)
    """Examples, member conversation ids, judge evidence."""
    status: SuggestionStatus = Field(default="pending", sa_type=AutoString, index=True)
    """Where the item stands."""
    decided_by: str | None = None
    """The person who accepted, rejected or skipped it."""
    decided_at: datetime | None = None
    """When (UTC)."""
    created_at: datetime = Field(default_factory=utcnow)
    """When it was proposed (UTC)."""


class ReviewedRow(SQLModel, table=True):
    """A coder's mark that they read a conversation: with no tag of theirs on it, every code is absent.

    A conversation nobody marked or tagged is uncoded, never absent. Unmarking (or undo) sets
    `deleted_at`; the mark is kept for audit."""

    __tablename__ = "reviewed_marks"
    __table_args__ = (Index("ix_reviewed_marks_conversation_id_coder", "conversation_id", "coder"),)

    id: int | None = Field(default=None, primary_key=True)
    """Autoincrement id."""
    conversation_id: str = Field(foreign_key="conversations.id", ondelete="CASCADE")
    """The conversation read."""
    coder: str
    """The person who read it (the name their tags carry)."""
    codebook_id: int | None = Field(default=None, foreign_key="codebooks.id")
    """The codebook version in force when it was marked: the codes that count as absent."""
    created_at: datetime = Field(default_factory=utcnow)
    """When it was marked (UTC)."""
    deleted_at: datetime | None = None
    """When the mark was withdrawn (unmark or undo); None while it stands."""


class CoderSettingRow(SQLModel, table=True):
    """A coder's blind-coding state for one run (or, with no run, for every run they have no row for).

    ``latitude tui --blind`` writes the coder's default row (``run_id`` None); opening a run blind writes
    the run's row with the coder's seeded order. Unblinding sets ``unblinded_at`` on the run's row: that
    is the record of who saw the identities, when, and of which run. It is never undone (a coder cannot
    unsee a model name); later tags on the run are not blind."""

    __tablename__ = "coder_settings"
    __table_args__ = (Index("ix_coder_settings_coder_run_id", "coder", "run_id"),)

    id: int | None = Field(default=None, primary_key=True)
    """Autoincrement id."""
    coder: str
    """The coder (the name their tags carry)."""
    run_id: str | None = Field(default=None, foreign_key="runs.id", ondelete="CASCADE")
    """The run; None for the coder's default (blind for every run without a row of its own)."""
    seed: int = 0
    """Seed of this coder's random order of the run's conversations (from the run id and the coder's
    name, `runner.rigour.blind.blind_seed`); 0 on the default row."""
    blind_since: datetime = Field(default_factory=utcnow)
    """When the coder went blind for it (UTC)."""
    unblinded_at: datetime | None = None
    """When the coder unblinded the run (UTC); None while blind."""


class BatchRow(SQLModel, table=True):
    """One vendor batch: a wave's requests for one alias, split by the vendor's limits.

    The row and its requests are committed before the batch is created at the vendor, its vendor
    id as soon as it is known: a run killed while batches are out resumes by polling them."""

    __tablename__ = "batches"

    id: str = Field(primary_key=True)
    """Short hex id; also the label the batch carries at the vendor (OpenAI ``metadata``)."""
    run_id: str | None = Field(default=None, foreign_key="runs.id", ondelete="CASCADE", index=True)
    """The run whose requests it carries; None for a judge pass outside a run."""
    alias: str
    """The model alias (the name in the models file)."""
    vendor: str
    """``openai`` or ``anthropic`` (the batch API used)."""
    model: str
    """The model string the alias resolved to."""
    vendor_id: str | None = None
    """The vendor's batch id; None between the commit and the vendor's answer."""
    state: BatchRowState = Field(default="preparing", sa_type=AutoString, index=True)
    """Where the batch stands (`BatchRowState`)."""
    requests: int = 0
    """Requests in the batch."""
    bytes: int = 0
    """Size of the batch as sent (its lines), in bytes."""
    succeeded: int = 0
    """Requests answered (last poll)."""
    errored: int = 0
    """Requests that ended in an error at the vendor (last poll)."""
    expired: int = 0
    """Requests not processed within the vendor's window (last poll)."""
    cancelled: int = 0
    """Requests cancelled (last poll)."""
    price_note: str | None = None
    """How the batch price was found: ``price map`` (litellm's ``*_batches`` prices) or ``50% rule``
    (the vendor's published half price, where the map has none)."""
    status_json: str | None = Field(default=None, sa_type=Text)
    """The vendor's last status object (`BatchStatusRecord`), never a key."""
    created_at: datetime = Field(default_factory=utcnow)
    """When the row was committed, before the batch was created (UTC)."""
    submitted_at: datetime | None = None
    """When the vendor accepted it (UTC)."""
    ended_at: datetime | None = None
    """When a poll first found it in a final state (UTC)."""
    read_at: datetime | None = None
    """When its results were read and handed to the conversations (UTC)."""


class BatchRequestRow(SQLModel, table=True):
    """One request inside a batch, by the id the vendor echoes back (`custom_id`)."""

    __tablename__ = "batch_requests"
    __table_args__ = (Index("ix_batch_requests_batch_id_custom_id", "batch_id", "custom_id"),)

    id: int | None = Field(default=None, primary_key=True)
    """Autoincrement id."""
    custom_id: str
    """Stable across a resume: derived from the run, the owner and the request's place (purpose,
    messages sent, attempt), so a resumed conversation reaching the same request finds this row."""
    batch_id: str = Field(foreign_key="batches.id", ondelete="CASCADE")
    """The batch that carries it (indexed with `custom_id`: a batch's results are recorded by that pair)."""
    run_id: str | None = Field(default=None, index=True)
    """The run (None for a judge pass outside a run)."""
    owner: str
    """On whose behalf: a conversation id, a judge unit."""
    purpose: str
    """Why it was asked (`CallPurpose`)."""
    attempt: int = 1
    """Which attempt of the client's retry loop (from 1)."""
    state: BatchRequestState = Field(default="submitted", sa_type=AutoString)
    """Where it stands (`BatchRequestState`)."""
    error_kind: str | None = None
    """For a failed request, ``kind: {...}`` (`runner.providers.batch.failure_text`): errored, expired or
    cancelled, then the vendor's HTTP status, error type and code and the message as JSON."""
    created_at: datetime = Field(default_factory=utcnow)
    """When it was committed (UTC)."""
    ended_at: datetime | None = None
    """When its result was read (UTC)."""


TABLES: tuple[type[SQLModel], ...] = (
    RegistrationRow, RunRow, DeviationRow, ConversationRow, MessageRow, OfferRow, StopDetectionRow, StopCandidateRow, ArtifactRow, CaptureRow,
    CodebookRow, CodeRow, TagRow, SuggestionRunRow, SuggestionRow, ChoiceRow, ReviewedRow, CoderSettingRow, BatchRow,
    BatchRequestRow,
)
"""Every table class, parents before children (the order inserts must follow)."""
