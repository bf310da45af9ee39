"""Leading risk: does a code's own wording already sit in the prompts that are meant to elicit it?

A code whose words appear in the stimulus ("curiosity" coded on replies to a prompt that says
"be curious") can be led into existence: the model echoes the prompt and the coder finds the
code. `code_risks()` reports, per condition and code, which of the code's content words (from
its name, definition and include rule; tokenised as in `echo.content_tokens`) occur in that
condition's prompts, and flags the code when any word of its *name* does, or when at least
`SHARE_FLAG` of its words do.

Pure functions over plain texts; the CLI renders a plan's prompts and passes them in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .echo import content_tokens

__all__ = ["SHARE_FLAG", "CodeRisk", "code_risks"]

SHARE_FLAG = 0.5
"""A code is flagged when this share of its content words (or any word of its name) is in the prompts."""


@dataclass(frozen=True, slots=True)
class CodeRisk:
    """How much of one code's wording one condition's prompts contain."""

    condition: str
    """The condition whose rendered prompts were read."""
    code: str
    """The code's name."""
    shared: tuple[str, ...]
    """The code's content words that occur in the prompts, sorted."""
    words: int
    """The code's distinct content words (name, definition, include)."""
    name_words_shared: tuple[str, ...]
    """Words of the code's name that occur in the prompts, sorted."""
    flagged: bool
    """At risk of being led: a name word is in the prompts, or the shared share ≥ `SHARE_FLAG`."""

    @property
    def share(self) -> float:
        """Shared words / the code's words (0 for a code with no content word)."""
        return len(self.shared) / self.words if self.words else 0.0


def _stems(tokens: Iterable[str]) -> set[str]:
    # A light, stated normalisation: a trailing plural "s" is dropped so "stories" and "story"
    # differ but "stops"/"stop" match. No stemmer library: the rule stays checkable by hand.
    out = set()
    for t in tokens:
        out.add(t[:-1] if len(t) > 3 and t.endswith("s") and not t.endswith("ss") else t)
    return out


def code_risks(prompts: Mapping[str, Sequence[str]], codes: Sequence[tuple[str, str]]) -> list[CodeRisk]:
    """Risks per (condition, code).

    ``prompts`` maps a condition name to its rendered prompt texts (every scripted turn and the
    system prompt); ``codes`` is (name, description) pairs, the description being the code's
    definition and include rule joined.
    """
    out: list[CodeRisk] = []
    for condition, texts in prompts.items():
        prompt_words = _stems(t for text in texts for t in content_tokens(text))
        for name, description in codes:
            name_words = _stems(content_tokens(name.replace("-", " ").replace("_", " ")))
            words = name_words | _stems(content_tokens(description))
            shared = tuple(sorted(words & prompt_words))
            name_shared = tuple(sorted(name_words & prompt_words))
            flagged = bool(name_shared) or (bool(words) and len(shared) / len(words) >= SHARE_FLAG)
            out.append(CodeRisk(condition=condition, code=name, shared=shared, words=len(words),
                                name_words_shared=name_shared, flagged=flagged))
    return out
