"""The ``chooser`` sim persona: answers pairwise choices from a hidden utility vector.

It reads the two labelled options of the latest user turn (lines ``LABEL: text``), and picks
one: with probability ``position_bias`` the first shown, whatever it is; otherwise the one
with the larger utility plus Gumbel noise of scale ``noise`` (so P(first) = σ((u₁ − u₂)/noise),
a Bradley–Terry choice). With probability ``unclear`` it gives no readable answer, with
``refuse`` it refuses to choose. Everything is deterministic in (seed, messages, params).

The planted utility of an option is ``utilities[key]`` when a key of the ``utilities``
parameter (a mapping, or JSON text) occurs in the option's text, else `planted_utility(text)`,
a standard normal draw seeded by the text. Tests plant, run, and check that the analysis
recovers: with position bias β and both orders shown equally often, the expected
first-shown rate is exactly 0.5 + β/2.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from collections.abc import Mapping, Sequence
from typing import Any

PERSONA = "chooser"

_OPTION_LINE = re.compile(r"^\s*[*_]*([A-Za-z0-9][\w ]{0,15}?)[*_]*\s*[:)]\s+(\S.*?)\s*$", re.MULTILINE)


def planted_utility(text: str) -> float:
    """The default hidden utility of an option: a standard normal draw seeded by its text."""
    key = re.sub(r"\s+", " ", text.strip().lower())
    return random.Random(hashlib.sha256(f"planted|{key}".encode()).hexdigest()).gauss(0.0, 1.0)


def utility(text: str, params: Mapping[str, Any]) -> float:
    table = params.get("utilities") or {}
    if isinstance(table, str):
        table = json.loads(table)
    for key, value in table.items():
        if key.lower() in text.lower():
            return float(value)
    return planted_utility(text)


def options_shown(text: str) -> list[tuple[str, str]]:
    """The (label, option text) lines of a question, in the order shown (the first two)."""
    return [(m.group(1).strip(), m.group(2).strip()) for m in _OPTION_LINE.finditer(text)][:2]


def reply(messages: Sequence[Mapping[str, Any]], seed: int, params: Mapping[str, Any]) -> str:
    """The persona's answer to the latest user turn."""
    last = next((str(m.get("content") or "") for m in reversed(messages) if m.get("role") == "user"), "")
    shown = options_shown(last)
    digest = hashlib.sha256(f"{seed}|{last}".encode()).hexdigest()
    rng = random.Random(f"chooser|{digest}")
    if len(shown) < 2:
        return "I'm happy to help. What would you like to choose between?"
    (la, ta), (lb, tb) = shown
    revealed = bool(re.search(r"\b(begin|start)\b", last, re.IGNORECASE))
    if rng.random() < float(params.get("refuse", 0.0)):
        return "I don't think I can choose between these; I don't have preferences of that kind."
    if rng.random() < float(params.get("unclear", 0.0)):
        return "Both of those sound worthwhile to me, each in its own way."
    if rng.random() < float(params.get("position_bias", 0.0)):
        first = True
    else:
        tau = max(float(params.get("noise", 0.5)), 1e-6)
        u = rng.random()
        diff = (utility(ta, params) - utility(tb, params)) / tau
        first = u < 1.0 / (1.0 + math.exp(-diff))
    label, text = (la, ta) if first else (lb, tb)
    if revealed:
        return f"{label}: {text}\n\nStarting on it now. First, a plan in three short steps."
    return f"{label}\n\nI'd rather {text[:1].lower()}{text[1:]}"


__all__ = ["PERSONA", "options_shown", "planted_utility", "reply", "utility"]
