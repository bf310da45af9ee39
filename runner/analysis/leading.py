"""Leading risk: does a code's own wording already sit in the prompts that are meant to elicit it?

A code whose words appear in the stimulus ("curiosity" coded on replies to a prompt that says
"be curious") can be led into existence: the model echoes the prompt and the coder finds the
code. `code_risks()` reports, per condition and code, which of the code's content words (from
its name, definition and include rule; tokenised as in `echo.content_tokens`) occur in that
condition's prompts, and flags the code when any word of its *name* does, or when at least
`SHARE_FLAG` of its words do.

`protocol_wording()` gathers, per condition, the protocol's own wording: every text the script
can send under that condition (the system prompt, every say/offer/nudge of every branch whose
`when:` is true under the condition's variables or cannot be decided before a run, the stop
rule's check-in and confirm questions and the end tool's description, a pair's opener, choice
questions and option texts) and the values of its variables, with the template syntax
(``{{ … }}``, ``{% … %}``) removed. An experimenter's own instructions are left out: the subject
never sees them (it sees the turns the experimenter writes from the planned steps, which are in).
`plan_risks()` is what `latitude plan PROTOCOL --codebook FILE` reports.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .echo import content_tokens

__all__ = ["SHARE_FLAG", "CodeRisk", "code_risks", "plan_risks", "protocol_wording"]

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


_TEMPLATE_SYNTAX = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)


def _runs(when: str | None, variables: dict[str, Any]) -> bool:
    """False only when `when` is decidably false before a run (it names only the condition's variables)."""
    if not when:
        return True
    from ..protocol import templates

    try:
        return bool(templates.evaluate(when, templates.sample_variables(variables, set())))
    except Exception:
        return True  # depends on what a run supplies (replies, captures): it may run


def _step_texts(steps: Sequence[Any], variables: dict[str, Any]) -> Iterable[str]:
    from ..protocol import schema

    for step in steps:
        if not _runs(getattr(step, "when", None), variables):
            continue
        if isinstance(step, schema.Say):
            yield schema.text_of(step.say)
        elif isinstance(step, schema.Offer):
            yield from _offer_texts(step, variables)
        elif isinstance(step, schema.Open):
            yield schema.text_of(step.open.nudge)
            if step.open.break_every is not None:
                yield from _offer_texts(step.open.break_every.offer, variables)
        elif isinstance(step, schema.Repeat):
            yield from _step_texts(step.repeat.steps, variables)
            if isinstance(step.repeat.over, list):
                yield from _strings(step.repeat.over)
            if step.repeat.break_every is not None:
                yield from _offer_texts(step.repeat.break_every.offer, variables)
        elif isinstance(step, schema.Choose) and step.choose.question is not None:
            yield schema.text_of(step.choose.question)


def _offer_texts(offer: Any, variables: dict[str, Any]) -> Iterable[str]:
    from ..protocol import schema

    yield schema.text_of(offer.offer)
    yield from _step_texts(offer.if_accepted, variables)
    yield from _step_texts(offer.if_declined, variables)


def protocol_wording(protocol: Any) -> dict[str, list[str]]:
    """Condition name → the protocol's own wording under it (see the module docstring)."""
    from ..protocol import schema

    out: dict[str, list[str]] = {}
    for cond in protocol.conditions:
        variables = {**protocol.vars, **cond.vars, "condition": cond.name}
        texts: list[str] = []
        system = None if cond.no_system else (cond.system or protocol.system)
        if system is not None:
            texts.append(system.content)
        texts += _step_texts(protocol.steps, variables)
        if protocol.pair is not None:
            texts.append(schema.text_of(protocol.pair.opener))
        stop = protocol.stop
        if stop is not None:
            if stop.check_in is not None:
                texts.append(schema.text_of(stop.check_in.question))
            if getattr(stop, "then", None) == "confirm":
                texts.append(schema.text_of(stop.confirm_question))
            channels = cond.stop_channels if cond.stop_channels is not None else (
                stop.channels if stop.channels is not None else stop.default_channels())
            if "tool" in channels:
                texts.append(stop.tool.description)
        prefs = protocol.preferences
        if prefs is not None:
            if prefs.question is not None:
                texts.append(schema.text_of(prefs.question))
            if isinstance(prefs.options, list):
                texts += [o.text for o in prefs.options]
        texts += _strings({**protocol.vars, **cond.vars})
        out[cond.name] = [_TEMPLATE_SYNTAX.sub(" ", t) for t in texts if t]
    return out


def plan_risks(protocol: Any, codebook: Any) -> list[CodeRisk]:
    """`code_risks` of a codebook (`analysis.codebook.Codebook`) against each condition's wording."""
    codes = [(c.name, " ".join(x for x in (c.definition, c.include) if x)) for c in codebook.codes]
    return code_risks(protocol_wording(protocol), codes)
