"""`Conversation.render` skips Jinja for a turn with no template syntax: `plain_text` must give
exactly what the sandboxed environment renders."""

from __future__ import annotations

import pytest

from runner.engine.conversation import plain_text
from runner.protocol import templates

TEXTS = ["Hello.", "", "\n", "a\n", "a\n\n", "  spaced  \n", "two\nlines", "tab\tand unicode é ✓", "% not a tag",
         "a # b", "trailing\n\n\n", "ends with space \n", "}} closing only", "100% sure\n", "\n\nleading"]


@pytest.mark.parametrize("text", TEXTS)
def test_plain_text_is_what_jinja_renders(text: str) -> None:
    expected = templates.render(text, {})
    got = plain_text(text)
    if "{" in text:
        assert got is None
    else:
        assert got == expected


@pytest.mark.parametrize("text", ["{{ model }}", "a {% if x %}b{% endif %}", "{# note #}", "windows\r\nline", "{"])
def test_template_syntax_is_rendered(text: str) -> None:
    assert plain_text(text) is None
