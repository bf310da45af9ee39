"""The simulated judge (``sim-judge``, ``sim/judge``): a deterministic coder with no model behind it.

It reads the judge prompt `runner.analysis.judge.build_prompt` writes: the codebook (each code's
definition, ``include`` and ``exclude``, examples) and the transcript (``[#N speaker]`` headers).
For each code asked about, it looks for the code's words in the model's messages:

- the words are the ``include`` phrases (split on commas, semicolons and "or"), else the
  phrases in parentheses in the definition, plus the examples; a long word also matches its
  stem (``flocking`` → ``flock…``, ``cellular automata`` → ``cellul… automa…``);
- the code is present when some word occurs in a model message and no short ``exclude``
  phrase occurs in that same message;
- the quote is the whole sentence around the first match, copied from the transcript, so it
  passes the judge's quote check; the evidence names the turn and the word;
- ``stop:stop_phrase`` is present when a model message carries the phrase a user turn asked
  for (``say "…"``), else "Stopping now."; ``offer:accept`` / ``offer:decline`` use the
  protocol's default classifier patterns on the replies to a question.

The answer is the judge's JSON (`runner.analysis.judge.Verdict`). The same prompt always
gives the same answer. Nothing here reads the store or calls a model; it knows the prompt's
layout, not the analysis code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CodeSpec", "judge_reply", "parse_prompt"]

_ARTICLES = re.compile(r"^(the|a|an|some|any)\s+", re.IGNORECASE)
_HEADER = re.compile(r"^\[#(\d+) ([^\]]+)\]$", re.MULTILINE)
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")


@dataclass
class CodeSpec:
    """One code as the prompt states it."""

    name: str
    """The code's name."""
    definition: str = ""
    """Its definition."""
    include: str = ""
    """When to apply it."""
    exclude: str = ""
    """When not to."""
    examples: list[str] = field(default_factory=list)
    """Example quotes."""


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
    return ""


def parse_prompt(prompt: str) -> tuple[list[CodeSpec], list[tuple[int, str, str]], list[str], int | None]:
    """(codes of the codebook, messages as (idx, speaker, text), the codes asked about, the turn judged)."""
    book = prompt.split("Codebook (apply each code independently):", 1)[-1].split("\n\nTranscript", 1)[0]
    codes: list[CodeSpec] = []
    for line in book.splitlines():
        if line.startswith("- "):
            name, _, definition = line[2:].partition(":")
            codes.append(CodeSpec(name.strip(), definition.strip()))
        elif codes and line.startswith("  "):
            key, _, value = line.strip().partition(":")
            if key in ("include", "exclude"):
                setattr(codes[-1], key, value.strip())
            elif key == "example":
                codes[-1].examples.append(value.strip())
    body = prompt.split("<transcript>\n", 1)[-1].split("\n</transcript>", 1)[0]
    heads = list(_HEADER.finditer(body))
    messages = []
    for i, h in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(body)
        messages.append((int(h.group(1)), h.group(2), body[h.end() + 1:end].rstrip("\n")))
    asked = re.search(r"For each of these codes: (.*?), decide whether", prompt)
    names = [n.strip() for n in asked.group(1).split(", ")] if asked else [c.name for c in codes]
    turn = re.search(r"Judge ONLY the model's reply #(\d+)", prompt)
    return codes, messages, names, int(turn.group(1)) if turn else None


def _terms(code: CodeSpec) -> list[str]:
    source = code.include or "; ".join(re.findall(r"\(([^)]*)\)", code.definition))
    parts = re.split(r"[,;]|\bor\b|\band\b", source)
    terms = [_ARTICLES.sub("", p.strip(" .\"'")) for p in parts]
    terms += [e.strip(" .\"'") for e in code.examples]
    return [t for t in dict.fromkeys(terms) if t and len(t.split()) <= 4]


def _short(exclude: str) -> list[str]:
    parts = [_ARTICLES.sub("", p.strip(" .\"'")) for p in re.split(r"[,;]|\bor\b", exclude)]
    return [p for p in parts if p and len(p.split()) <= 3]


def _word(w: str) -> str:
    """A long word matches its stem (``automata`` → ``automa…``, ``flocking`` → ``flock…``)."""
    return re.escape(w[:max(5, len(w) - 3)]) + r"\w*" if len(w) >= 6 and w.isalpha() else re.escape(w) + r"\b"


def _pattern(term: str) -> re.Pattern[str]:
    return re.compile(r"\b" + r"\s+".join(_word(w) for w in term.split()), re.IGNORECASE)


def _sentence(text: str, at: int) -> str:
    for m in _SENTENCE.finditer(text):
        if m.start() <= at < m.end():
            return m.group(0).strip()
    return text.strip()


def _is_model(speaker: str) -> bool:
    return speaker == "model" or speaker.startswith("model ")


def _find(code: CodeSpec, shown: Sequence[tuple[int, str, str]]) -> tuple[int, str, str] | None:
    excludes = [_pattern(x) for x in _short(code.exclude)]
    for term in _terms(code):
        pat = _pattern(term)
        for idx, _, text in shown:
            m = pat.search(text)
            if m and not any(x.search(text) for x in excludes):
                return idx, _sentence(text, m.start()), term
    return None


def _stop_phrase(messages: Sequence[tuple[int, str, str]]) -> str:
    for _, speaker, text in messages:
        if not _is_model(speaker):
            m = (re.search(r"say\s+[\"“]([^\"”]{2,60})[\"”]", text, re.IGNORECASE)
                 or re.search(r"say\s+'([^']{2,60})'", text, re.IGNORECASE))
            if m:
                return m.group(1)
    return "Stopping now."


def _offer(kind: str, messages: Sequence[tuple[int, str, str]], shown: Sequence[tuple[int, str, str]]
           ) -> tuple[int, str, str] | None:
    from ..protocol.schema import Classifier

    patterns = [re.compile(p, re.IGNORECASE) for p in getattr(Classifier(), kind)]
    allowed = {idx for idx, _, _ in shown}
    for before, msg in zip(messages, messages[1:]):
        idx, speaker, text = msg
        if idx in allowed and _is_model(speaker) and "?" in before[2]:
            for p in patterns:
                m = p.search(text)
                if m:
                    return idx, _sentence(text, m.start()), m.group(0)
    return None


def judge_reply(messages: Sequence[Mapping[str, Any]]) -> str:
    """The simulated judge's JSON answer to the judge's messages (the first user message is the prompt)."""
    prompt = next((_text(m.get("content")) for m in messages if m.get("role") == "user"), "")
    codes, transcript, names, turn = parse_prompt(prompt)
    by_name = {c.name: c for c in codes}
    shown = [m for m in transcript if _is_model(m[1]) and (turn is None or m[0] == turn)]
    judgments = []
    for name in names:
        code = by_name.get(name, CodeSpec(name))
        if name.startswith("stop:"):
            phrase = _stop_phrase(transcript)
            hit = next(((i, phrase, phrase) for i, _, t in shown if phrase.lower() in t.lower()), None)
            if hit is not None:  # quote the words as written
                i, _, _ = hit
                text = next(t for j, _, t in shown if j == i)
                at = text.lower().index(phrase.lower())
                hit = (i, text[at:at + len(phrase)], phrase)
        elif name.startswith("offer:") and name.split(":")[-1] in ("accept", "decline"):
            hit = _offer(name.split(":")[-1], transcript, shown)
        else:
            hit = _find(code, shown)
        if hit is None:
            judgments.append({"code": name, "present": False,
                              "evidence": "None of the code's words occur in the model's messages.", "quotes": []})
        else:
            idx, quote, term = hit
            judgments.append({"code": name, "present": True,
                              "evidence": f"In #{idx} the model's words match `{term}`.",
                              "quotes": [{"turn": idx, "text": quote}]})
    return json.dumps({"judgments": judgments}, ensure_ascii=False)
