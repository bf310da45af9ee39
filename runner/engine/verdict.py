"""Asking a judge model for a one-word verdict on a reply: the one shape every in-run judge uses.

Offer judges (accept / decline / unclear), choice judges (A / B / NEITHER / REFUSED / UNCLEAR)
and stop judges (stop / mention / unclear) all ask the same way and read the answer the same
way, here:

- the prompt ends with `instruction(words)`: one word on the first line, then the quoted
  words that decided it;
- `read()` takes the first word of the first line (markdown emphasis, quotes and trailing
  punctuation stripped, case ignored) and maps it onto the allowed words; anything else is
  the `default` (``unclear``), never a guess;
- the whole answer is kept as evidence (cut at `EVIDENCE_CHARS`);
- the judge is resolved from the run's models file, and a judge that is the conversation's own
  subject model is reported (`Judge.is_subject`) so each caller applies its rule (a choice
  judge refuses; a stop judge leaves the candidate ambiguous).

The call itself goes through the conversation's client (`Conversation._call`: limits, retry,
events, cost, audit), never around it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Sequence

from ..kinds import CallPurpose
from ..protocol.models_file import ModelAlias

if TYPE_CHECKING:
    from .conversation import Conversation

__all__ = ["EVIDENCE_CHARS", "Judge", "Verdict", "ask", "instruction", "read", "resolve"]

EVIDENCE_CHARS = 2000
"""How much of a judge's answer is stored as its evidence."""

_STRIP = "*_`\"'.:,;!()[]"


@dataclass(frozen=True)
class Judge:
    """A judge alias resolved against the run's models."""

    alias: str
    model: ModelAlias
    is_subject: bool
    """The judge is the conversation's own model (same model string): a model never judges itself."""

    @property
    def method(self) -> str:
        """How a verdict is recorded (`judge:<model>`)."""
        return f"judge:{self.model.model}"


@dataclass(frozen=True)
class Verdict:
    """What a judge said: the word it chose (mapped), and its whole answer as evidence."""

    word: str
    evidence: str


def resolve(conv: Conversation, alias: str, what: str = "judge") -> Judge:
    """The judge named `alias` in the run's models; ValueError naming `what` when it is unknown."""
    from ..protocol.models_file import resolve_model

    model = resolve_model(alias, conv.ctx.models)
    if model is None:
        raise ValueError(f"unknown {what} model alias {alias!r}")
    return Judge(alias, model, alias == conv.spec.model_alias or model.model == conv.spec.model.model)


def instruction(words: Sequence[str]) -> str:
    """The prompt's last line: one of `words` on the first line, then the deciding words quoted."""
    listed = ", ".join(words[:-1]) + f" or {words[-1]}" if len(words) > 1 else words[0]
    return f"Answer with one word on the first line: {listed}. Then quote the words that decided it."


def read(answer: str, words: Mapping[str, str], default: str = "unclear", prefix: bool = True) -> str:
    """The verdict in `answer`: its first word, mapped through `words` (lower-case word → verdict).
    With `prefix`, a first word that starts with an allowed word counts (``accepted`` → accept);
    without it (single-letter labels like ``A``), only the exact word does."""
    first = (answer.strip().splitlines() or [""])[0].strip().strip(_STRIP).strip()
    word = first.split()[0].strip(_STRIP).lower() if first else ""
    if word in words:
        return words[word]
    if prefix and word:
        for w, verdict in words.items():
            if len(w) > 1 and word.startswith(w):
                return verdict
    return default


async def ask(conv: Conversation, judge: Judge, prompt: str, words: Mapping[str, str], *, purpose: CallPurpose,
              default: str = "unclear", prefix: bool = True) -> Verdict:
    """Ask `judge` (through the conversation's client) and read its one-word verdict."""
    result = await conv._call(judge.model, judge.alias, [{"role": "user", "content": prompt}], purpose=purpose)
    return Verdict(read(result.content, words, default, prefix), result.content.strip()[:EVIDENCE_CHARS])
