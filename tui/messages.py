"""Typed messages the thread workers post back to the UI (``post_message`` is thread-safe).

None of them bubble: each is handled by the screen (or the app) it is posted to.

A screen's own results (a page loaded, a transcript read) are declared here so the
widgets and tests can refer to them by type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.message import Message

from runner.store.reader import ConversationPage, ConversationRecord, Facets, ForkSummary, SuggestionRecord
from runner.store.records import RunSummary
from runner.store.tables import CodebookRow, CodeRow, TagRow

__all__ = [
    "ForksLoaded",
    "CodebookChanged",
    "CodebookLoaded",
    "ConversationLoaded",
    "CountLoaded",
    "FacetsLoaded",
    "PairLoaded",
    "PageLoaded",
    "RunsLoaded",
    "StatusPosted",
    "StoreChanged",
    "SuggestionsLoaded",
    "TagsChanged",
    "TalliesLoaded",
]


@dataclass
class RunsLoaded(Message, bubble=False):
    """The runs list, read again."""


    runs: list[RunSummary]

    def can_replace(self, message: Message) -> bool:  # a backlog collapses to the latest (Toolong)
        return isinstance(message, RunsLoaded)


@dataclass
class PageLoaded(Message, bubble=False):
    """A page of conversations for one filter; ``first`` when it starts the list."""


    generation: int
    """Which filter it was read for (older generations are dropped)."""
    page: ConversationPage
    first: bool
    replace: bool = False
    """A refresh of the rows already shown (live runs): keep the cursor where it is."""


@dataclass
class CountLoaded(Message, bubble=False):

    generation: int
    count: int
    total: int


@dataclass
class FacetsLoaded(Message, bubble=False):

    facets: Facets


@dataclass
class ConversationLoaded(Message, bubble=False):
    """A transcript read, with its place in the current filter."""


    record: ConversationRecord | None
    position: int | None
    count: int | None
    keep_cursor: bool = False
    coded: int | None = None
    """How many conversations of the filter this coder has coded (out of ``count``)."""
    to_model: bool = False
    """Land on the first model turn (n/p/N: the coding loop), not the first turn after the system prompt."""


@dataclass
class TagsChanged(Message, bubble=False):
    """The tags of a conversation after a write (or a refresh)."""


    conversation_id: str
    tags: list[TagRow]
    notice: str | None = None
    coded: int | None = None
    """How many conversations of the filter this coder has coded, read again after the write."""


@dataclass
class CodebookLoaded(Message, bubble=False):
    """The active codebook version and its codes (None: the store has no codebook yet)."""


    codebook: CodebookRow | None
    codes: list[CodeRow]
    counts: dict[str, int]
    names: list[str]


@dataclass
class CodebookChanged(Message, bubble=False):
    """A codebook write finished: the new version (the app re-reads and tells every screen)."""


    codebook: CodebookRow | None
    notice: str | None = None


@dataclass
class SuggestionsLoaded(Message, bubble=False):

    items: list[SuggestionRecord]


@dataclass
class TalliesLoaded(Message, bubble=False):

    rows: list[Any]
    coders: list[str]
    error: str | None = None


@dataclass
class ForksLoaded(Message, bubble=False):
    """The forks of one point, for the forks screen."""

    forks: list[ForkSummary]


@dataclass
class PairLoaded(Message, bubble=False):
    """Two transcripts for the compare screen."""


    left: ConversationRecord | None
    right: ConversationRecord | None


@dataclass
class StatusPosted(Message, bubble=False):
    """A status message for the status line (what `LatitudeApp.notify` posts; thread-safe)."""

    text: str
    severity: str = "information"
    timeout: float | None = None
    markup: bool = False


@dataclass
class StoreChanged(Message, bubble=False):
    """Something in the store changed (seen by the app's poll of `StoreReader.fingerprint`); what changed:
    ``runs``, ``messages``, ``tags``, ``codebooks``."""

    what: frozenset[str]

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, StoreChanged) and message.what <= self.what
