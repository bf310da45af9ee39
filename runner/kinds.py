"""Fixed value sets shared by the store, the engine, the CLI and the TUI.

Only `typing` is imported here, so any layer (the store at the bottom, the providers, the
TUI) can name these without pulling anything heavy in. Each set is a `Literal` alias, and
each alias has a tuple of its values (`get_args`) for CLI choices and checks.
"""

from __future__ import annotations

from typing import Literal, get_args

RunStatus = Literal["running", "done", "interrupted", "failed"]
"""Where a run stands: ``running`` while the engine works on it, ``done`` when every
conversation finished, ``interrupted`` after Ctrl-C or a kill (resumable), ``failed``
when the engine itself stopped on an error."""

ConversationStatus = Literal["pending", "running", "done", "error", "cancelled"]
"""Lifecycle of one conversation. ``pending``, ``running`` and ``cancelled`` are
unfinished and picked up by ``resume``; ``done`` and ``error`` are final."""

ErrorKind = Literal[
    "rate_limit", "overloaded", "server", "timeout", "connection", "malformed", "stream_cut",
    "batch_expired", "batch_cancelled",
    "auth", "context_window", "bad_request", "template", "other",
]
"""What went wrong with a model call, decided from the exception's type
(`runner.engine.retry.classify`). The first nine are retried (``batch_expired``: a request of a
vendor batch that did not run within the batch's window; ``batch_cancelled``: one that did not
run before its batch was cancelled); a conversation that still fails ends with the stop
reason ``error:<kind>``."""

StopReason = Literal[
    "completed", "max_turns", "stop_phrase", "stop_tool", "stop_check_in", "declined", "experimenter_ended",
    "empty_reply", "cancelled",
]
"""Why a conversation ended, when it was not an error: the script ran out (``completed``),
the turn cap (``max_turns``), the model's stop phrase (``stop_phrase``), its call of the end
tool (``stop_tool``), its "stop" answer to a check-in (``stop_check_in``), an offer declined
with ``on_decline: end`` (``declined``), the experimenter ended it (``experimenter_ended``),
the model answered with nothing (``empty_reply``: its behaviour, recorded, not a fault), or
Ctrl-C (``cancelled``, resumable). An error ends it with ``error:<ErrorKind>`` instead."""

CallPurpose = Literal["turn", "experimenter", "offer_judge", "stop_judge", "judge", "theme_name", "choice"]
"""Why the engine called a model: a conversation turn (the model or a pair partner), an
experimenter's message, an offer's judge, the judge of an ambiguous stop phrase, judge coding,
naming a theme, a pairwise choice."""

RetryReason = Literal[
    "rate_limit", "overloaded", "server", "timeout", "connection", "malformed", "stream_cut",
    "batch_expired", "batch_cancelled", "auth", "context_window", "bad_request", "template", "other", "empty_reply", "invalid_answer",
]
"""Why a call is made again: an `ErrorKind`, an empty reply (a vendor's is asked once
more), or an answer a judge has to give again (``invalid_answer``)."""

OnEmpty = Literal["end", "continue"]
"""What follows an empty model reply: end the conversation (``empty_reply``), or go on
with the next step as if the model had said nothing."""

CodedHow = Literal["blind", "unblinded", "self-coded"]
"""How a unit was coded: by a coder blind to its model and condition (``blind``), by one who could see
them (``unblinded``), or by whoever ran or prompted it (``self-coded``: the run's researcher, or a judge
whose model is the conversation's own model or experimenter; this wins over the other two)."""

EchoBand = Literal["low", "mid", "high", "none"]
"""A reply's (or a conversation's mean) echo band: ``low`` (< 0.10 of its content bigrams are the
prompts'), ``mid`` (0.10 to < 0.30), ``high`` (>= 0.30), ``none`` (too short to have a bigram);
see `runner.analysis.echo`."""

HypothesisDirection = Literal["greater", "less", "differs"]
"""What a registered hypothesis predicts of its first group against its second (or of its
first option against its second): a larger value (``greater``), a smaller one (``less``), or
any difference (``differs``: a two-sided test)."""

HypothesisGroupField = Literal["model", "condition", "vendor", "litellm_model", "replicate"]
"""A grouping field a registered hypothesis compares two levels of (the `latitude tally --by` fields
that vary within one run): model aliases, conditions, vendors, litellm model strings, replicate numbers."""

PlannedTest = Literal["fisher", "two-proportion", "bradley-terry"]
"""The test a hypothesis registers: Fisher's exact test on a code's share between two groups
(``fisher``), the two-proportion z test on the same 2x2 table (``two-proportion``: Pearson's
chi-square without continuity correction, one-sided when a direction is given), or a
Bradley-Terry utility difference between two options (``bradley-terry``: within the run, or
between two groups)."""

DeviationKind = Literal[
    "prompt_changed", "file_changed", "replicates_changed", "model_added", "model_removed", "model_swapped",
    "sampling_changed", "model_changed", "condition_added", "condition_removed", "condition_changed", "protocol_changed",
]
"""How a run departs from the registration it names: a prompt text changed (a step, the
system prompt, an experimenter's or judge's instructions), an included file's text changed,
a different replicate count, a model alias added, removed, or pointing at another model
string, sampling parameters of an alias changed (temperature, seed, max_tokens...), another setting of an
alias changed (its endpoint, transport, limits: ``model_changed``), a
condition added, removed or its variables changed, or any other protocol field changed."""
BatchRowState = Literal["preparing", "submitted", "validating", "in_progress", "finalizing", "ended", "expired",
                        "cancelling", "cancelled", "failed", "abandoned"]
"""Where a batch of the store stands: ``preparing`` (its row and request ids committed, not yet
created at the vendor: a kill here is recovered by looking the batch up by its label),
``submitted`` (the vendor gave an id), then the vendor's own states (`batch_wire.BatchState`),
or ``abandoned`` (the vendor never created it: its requests went out again in another batch)."""

BatchRequestState = Literal["submitted", "succeeded", "failed", "resent"]
"""One request of a batch: sent and waiting (``submitted``), answered (``succeeded``), ended
without an answer (``failed``: errored, expired or cancelled at the vendor; the retry policy
decides), or moved to another batch because its own was never created (``resent``)."""

BatchFallback = Literal["none", "live"]
"""What a batch alias does with a request whose batch item failed: retry it in the next wave
(``none``), or send the retry on the live (native) transport (``live``)."""

RUN_STATUSES: tuple[RunStatus, ...] = get_args(RunStatus)
CONVERSATION_STATUSES: tuple[ConversationStatus, ...] = get_args(ConversationStatus)
ERROR_KINDS: tuple[ErrorKind, ...] = get_args(ErrorKind)
STOP_REASONS: tuple[StopReason, ...] = get_args(StopReason)
CALL_PURPOSES: tuple[CallPurpose, ...] = get_args(CallPurpose)
HYPOTHESIS_DIRECTIONS: tuple[HypothesisDirection, ...] = get_args(HypothesisDirection)
HYPOTHESIS_GROUP_FIELDS: tuple[HypothesisGroupField, ...] = get_args(HypothesisGroupField)
PLANNED_TESTS: tuple[PlannedTest, ...] = get_args(PlannedTest)
DEVIATION_KINDS: tuple[DeviationKind, ...] = get_args(DeviationKind)
CODED_HOW: tuple[CodedHow, ...] = get_args(CodedHow)
BATCH_ROW_STATES: tuple[BatchRowState, ...] = get_args(BatchRowState)
BATCH_REQUEST_STATES: tuple[BatchRequestState, ...] = get_args(BatchRequestState)

RETRYABLE: frozenset[ErrorKind] = frozenset(
    {"rate_limit", "overloaded", "server", "timeout", "connection", "malformed", "stream_cut", "batch_expired",
     "batch_cancelled"})
"""Error kinds worth another attempt."""


BatchPriceBasis = Literal["price map", "50% rule"]
"""Where a batch reply's cost comes from: ``price map``: litellm's bundled map has batch prices
for the model's input and output tokens (`input_cost_per_token_batches`, ...), and they are used
(a cache read or write the map has no batch price for is charged half its live price);
``50% rule``: the map has no batch prices for the model, so every token is charged half its live
price, the discount both vendors publish for their batch APIs."""

BATCH_PRICE_BASES: tuple[BatchPriceBasis, ...] = get_args(BatchPriceBasis)


def error_reason(kind: ErrorKind) -> str:
    """The stop reason of a conversation that failed with `kind`: ``error:<kind>``."""
    return f"error:{kind}"


def is_stop_reason(value: str) -> bool:
    """Whether `value` is a stop reason latitude writes (a `StopReason` or ``error:<ErrorKind>``)."""
    return value in STOP_REASONS or (value.startswith("error:") and value[6:] in ERROR_KINDS)


__all__ = [
    "BATCH_PRICE_BASES", "BATCH_REQUEST_STATES", "BATCH_ROW_STATES", "BatchFallback", "BatchPriceBasis",
    "BatchRequestState", "BatchRowState", "CALL_PURPOSES", "CODED_HOW", "CONVERSATION_STATUSES", "ERROR_KINDS",
    "RETRYABLE", "RUN_STATUSES", "STOP_REASONS", "CallPurpose", "CodedHow", "ConversationStatus", "EchoBand",
    "ErrorKind", "OnEmpty", "RetryReason", "RunStatus", "StopReason",
    "error_reason", "is_stop_reason",
]


CacheTTL = Literal["5m", "1h"]
"""How long a vendor keeps a cached prompt prefix (Anthropic `cache_control.ttl`): five
minutes (the default; a write costs 1.25× the input price) or one hour (a write costs 2×;
what a batch sharing a long prefix asks for, since a batch can take longer than five minutes)."""

CACHE_TTLS: tuple[CacheTTL, ...] = get_args(CacheTTL)


__all__ += ["CACHE_TTLS", "CacheTTL"]
__all__ += ["DEVIATION_KINDS", "HYPOTHESIS_DIRECTIONS", "HYPOTHESIS_GROUP_FIELDS", "PLANNED_TESTS", "DeviationKind",
            "HypothesisDirection", "HypothesisGroupField", "PlannedTest"]
