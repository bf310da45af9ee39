"""Untrusted text made safe to show: model output is rendered literally, never interpreted.

Every string that comes from a model, a protocol or a person (message content, model
aliases, condition names, code names, notes) reaches the screen through `literal` /
`literal_text`: Rich markup stays text because it only ever goes into `rich.text.Text`
objects (never markup strings), and control characters — the ESC of terminal escape
sequences, BEL, backspace, carriage return… — are shown as the visible text ``\\x1b``, and
so are the invisible format characters that reorder or hide text: bidi controls (U+202E
right-to-left override and its kin, the isolates U+2066-2069, the marks U+200E/F, U+061C),
zero-width characters (U+200B-200D, U+2060-2064, U+FEFF) and the tag characters
(U+E0000-E007F), as ``\\u202e`` / ``\\U000e0041``. Tabs and newlines are kept.

`literal_map` also returns, for each character shown, the offset of the character of the
original text it came from, so a span selected on screen maps back to the stored text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from rich.style import Style
from rich.text import Text

__all__ = ["CONTROL", "literal", "literal_map", "literal_text", "raw_span", "short"]

CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u061c\u115f\u1160\u180e\u200b-\u200f\u202a-\u202e"
                     "\u2060-\u2064\u2066-\u206f\u3164\ufeff\ufff9-\ufffb\U000e0000-\U000e007f]")
"""Characters shown escaped: C0/C1 controls (the set the transcript exports escape), plus the
invisible format characters (bidi controls, zero-width, soft hyphen, tags); emoji variation selectors are kept."""


def _escape(ch: str) -> str:
    n = ord(ch)
    if n < 0x100:
        return f"\\x{n:02x}"
    return f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"


def literal(text: str | None) -> str:
    """``text`` with control characters replaced by their visible escapes (``\\x1b``)."""
    if not text:
        return ""
    return CONTROL.sub(lambda m: _escape(m.group(0)), text)


def literal_text(text: str | None, style: str | Style = "") -> Text:
    """A `Text` showing ``text`` literally."""
    return Text(literal(text), style=style)


def literal_map(text: str) -> tuple[str, list[int]]:
    """``(shown, offsets)``: the literal form of ``text`` and, for each position of ``shown``
    (plus one past the end), the offset in ``text`` it comes from."""
    shown: list[str] = []
    offsets: list[int] = []
    for i, ch in enumerate(text):
        if CONTROL.match(ch):
            esc = _escape(ch)
            shown.append(esc)
            offsets.extend([i] * len(esc))
        else:
            shown.append(ch)
            offsets.append(i)
    offsets.append(len(text))
    return "".join(shown), offsets


def raw_span(offsets: list[int], start: int, end: int) -> tuple[int, int]:
    """Map a ``[start, end)`` span of the shown text back to the original text.

    A span that starts or ends inside an escape (``\\x1b``) takes the whole character.
    """
    start, end = sorted((max(0, start), max(0, end)))
    end = min(end, len(offsets) - 1)
    start = min(start, end)
    raw_start = offsets[start]
    if end == start:
        return raw_start, raw_start
    raw_end = offsets[end - 1] + 1
    return raw_start, raw_end


def shown_span(offsets: list[int], raw_start: int, raw_end: int) -> tuple[int, int]:
    """The span of the shown text covering ``[raw_start, raw_end)`` of the original."""
    start = next((i for i, o in enumerate(offsets) if o >= raw_start), len(offsets) - 1)
    end = next((i for i, o in enumerate(offsets) if o >= raw_end), len(offsets) - 1)
    return start, end


def short(text: str | None, width: int) -> str:
    """The literal text on one line, cut to ``width`` characters with an ellipsis."""
    one = " ".join(literal(text).split())
    return one if len(one) <= width else one[: max(0, width - 1)] + "…"


def highlight(text: Text, pattern: re.Pattern[str] | None, style: str) -> None:
    """Style every match of ``pattern`` in ``text`` (in place)."""
    if pattern is None:
        return
    for m in pattern.finditer(text.plain):
        if m.end() > m.start():
            text.stylize(style, m.start(), m.end())


def join(parts: Iterable[Text], sep: str = "  ") -> Text:
    return Text(sep).join(list(parts))
