"""`validate` finds what a run would hit, and says where in the file and what was expected.

Each case: the YAML, the file it must name (the protocol, or an included file), the line, the
field, and words the message (or hint) must hold.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.protocol import ProtocolError, load, templates

HEAD = "name: t\ndescription: d\nmodels: [sim-maker]\n"

# (id, yaml, file ("p.yaml" or an include), line, column or None, field, words in message, words in hint)
CASES = [
    # sandbox violations, found before any run
    ("mro", HEAD + "steps:\n  - say: \"{{ ''.__class__.__mro__ }}\"\n",
     "p.yaml", 5, 10, "steps[0].say", "`.__mro__` reaches into python internals", "dunder"),
    ("cycler-globals", HEAD + "steps:\n  - say: '{{ cycler.__init__.__globals__ }}'\n",
     "p.yaml", 5, 10, "steps[0].say", "`.__globals__` reaches into python internals", "dunder"),
    ("attr-filter", HEAD + "steps:\n  - say: \"{{ reply | attr('__class__') }}\"\n",
     "p.yaml", 5, 10, "steps[0].say", "attr('__class__')", "dunder"),
    ("subscript-dunder", HEAD + "steps:\n  - say: \"{{ reply['__class__'] }}\"\n",
     "p.yaml", 5, 10, "steps[0].say", "['__class__']", "dunder"),
    ("frame-attribute", HEAD + "steps:\n  - say: hi\n  - say: '{{ joiner.gi_frame }}'\n",
     "p.yaml", 6, 10, "steps[1].say", "`.gi_frame`", ""),
    ("format-escape-found-by-rendering", HEAD + "steps:\n  - say: \"{{ '{0.__class__}'.format(turn) }}\"\n",
     "p.yaml", 5, 10, "steps[0].say", "the sandbox refuses this template", "python internals"),
    ("escape-in-a-when", HEAD + "steps:\n  - say: hi\n    when: 'reply.__class__'\n",
     "p.yaml", 6, 11, "steps[0].when", "reaches into python internals", ""),
    ("escape-on-line-3-of-a-block", HEAD + "steps:\n  - say: |\n      one\n      two\n      {{ turn.__class__ }}\n",
     "p.yaml", 8, 1, "steps[0].say", "`.__class__`", ""),
    ("escape-in-an-included-file", HEAD + "steps:\n  - say: {file: inc.md}\n",
     "inc.md", 3, 1, "steps[0].say", "`.__init__`", ""),
    ("escape-in-system-text", HEAD + "system:\n  text: |\n    one\n    {{ model.__class__ }}\nsteps:\n  - say: hi\n",
     "p.yaml", 7, 1, "system.text", "`.__class__`", ""),
    # nondeterminism: refused with a hint
    ("random-filter", HEAD + "vars:\n  xs: [a, b]\nsteps:\n  - say: '{{ xs | random }}'\n",
     "p.yaml", 7, 10, "steps[0].say", "`| random` is not allowed", "replicate % items | length"),
    ("lipsum", HEAD + "steps:\n  - say: '{{ lipsum(1) }}'\n",
     "p.yaml", 5, 10, "steps[0].say", "`lipsum()` is not allowed", "rerun"),
    ("random-in-an-expression", HEAD + "vars:\n  xs: [a, b]\nsteps:\n  - repeat:\n      over: 'xs | shuffle'\n      steps:\n        - say: x\n",
     "p.yaml", 8, 13, "steps[0].repeat.over", "`| shuffle` is not allowed", "conditions"),
    ("unknown-filter", HEAD + "steps:\n  - say: \"{{ 'a' | uper }}\"\n",
     "p.yaml", 5, 10, "steps[0].say", "unknown filter `uper`", "did you mean `upper`?"),
    # location gaps
    ("empty-steps-at-its-line", HEAD + "replicates: 2\nsteps: []\n",
     "p.yaml", 5, 1, "steps", "`steps` is required", "add at least one step"),
    ("wrong-type-at-the-value", HEAD + "replicates: many\nsteps:\n  - say: hi\n",
     "p.yaml", 4, 13, "replicates", "valid integer", "expected a whole number (e.g. `3`) here, found the text `many`"),
    ("wrong-type-value-on-next-line", HEAD + "replicates:\n  - 3\nsteps:\n  - say: hi\n",
     "p.yaml", 5, 3, "replicates", "valid integer", "expected a whole number (e.g. `3`) here, found a list"),
    ("wrong-type-bool", HEAD + "stop:\n  phrases: [x]\n  case_sensitive: sometimes\nsteps:\n  - say: hi\n",
     "p.yaml", 6, 19, "stop.case_sensitive", "valid boolean", "expected `true` or `false`"),
    ("wrong-type-text", HEAD + "steps:\n  - open:\n      turns: 3\n      nudge: [a]\n",
     "p.yaml", 7, 14, "steps[0].open.nudge", "expected text", "found a list"),
    ("jinja-error-at-the-files-line", HEAD + "steps:\n  - say: hi\n  - say: |\n      one\n      two\n      {{ turn\n",
     "p.yaml", 9, 1, "steps[1].say", "template syntax error", "jinja"),
    ("jinja-error-in-an-included-file", HEAD + "steps:\n  - say: {file: bad.md}\n",
     "bad.md", 2, 1, "steps[0].say", "template syntax error", ""),
    ("bad-when-at-its-line", HEAD + "steps:\n  - say: hi\n    capture: x\n    when: 'not (x'\n",
     "p.yaml", 7, 11, "steps[0].when", "template syntax error", ""),
    ("when-of-wrong-type-on-a-repeat", HEAD + "steps:\n  - repeat:\n      times: 2\n      steps:\n        - say: x\n    when: [1]\n",
     "p.yaml", 9, 11, "steps[0].when", "valid string", "expected text here, found a list"),
    ("nested-when-typo", HEAD + "steps:\n  - repeat:\n      times: 2\n      steps:\n        - say: x\n          when: colld\n",
     "p.yaml", 9, 11, "steps[0].repeat.steps[0].when", "undefined variable `colld`", ""),
    # YAML in plain words
    ("yaml-list-item-misindented", HEAD + "steps:\n  - say: hi\n   - say: bad\n",
     "p.yaml", 6, 4, "", "a `- item` here is indented differently", "same column"),
    ("yaml-key-misindented", HEAD + "steps:\n  - say: hi\n    capture: x\n   id: y\n",
     "p.yaml", 7, 4, "", "indented differently", "same column"),
    ("yaml-key-too-deep", HEAD + "conditions:\n  - name: a\n     vars: {}\nsteps:\n  - say: hi\n",
     "p.yaml", 6, 10, "", "unexpected `:` here", "quotes"),
    ("yaml-tab", HEAD + "steps:\n\t- say: hi\n",
     "p.yaml", 5, 1, "", "a tab character", "spaces"),
    ("yaml-unclosed-quote", HEAD + "steps:\n  - say: \"hello\n",
     "p.yaml", 6, 1, "", "the quote opened on line 5 is never closed", "close the quote"),
    ("yaml-unclosed-list", HEAD + "models: [a, b\nsteps:\n  - say: hi\n",
     "p.yaml", 5, None, "", "the `[` list opened on line 4 is not closed with `]`", "close the list"),
]


@pytest.mark.parametrize(("yaml", "file", "line", "column", "field", "words", "hint"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_validation_points_at_the_line_and_says_what_was_expected(
        tmp_path: Path, yaml: str, file: str, line: int, column: int | None, field: str, words: str,
        hint: str) -> None:
    (tmp_path / "inc.md").write_text("line one\nline two\n{{ model.__init__ }}\n")
    (tmp_path / "bad.md").write_text("fine\n{% if turn %}\n")
    path = tmp_path / "p.yaml"
    path.write_text(yaml)
    with pytest.raises(ProtocolError) as info:
        load(path)
    problems = info.value.problems
    match = [p for p in problems if words.lower() in p.message.lower()]
    assert match, f"no problem says {words!r}: {[str(p) for p in problems]}"
    p = match[0]
    assert p.path == str((tmp_path / file).resolve() if file != "p.yaml" else path), str(p)
    assert (p.line, p.field) == (line, field), str(p)
    if column is not None:
        assert p.column == column, str(p)
    assert hint.lower() in p.hint.lower(), str(p)
    assert "<block" not in str(p) and "on its line" not in str(p)


def test_a_sound_template_with_filters_and_loops_passes(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(HEAD + "vars:\n  xs: [a, b, c]\nsteps:\n"
                    "  - say: \"{{ xs[replicate % xs | length] | upper }} {% for x in xs %}{{ loop.index }}{% endfor %}\"\n"
                    "  - say: '{{ reply[-1] | truncate(20) }} {{ telemetry.tokens_in }} {{ range(3) | join(\",\") }}'\n")
    assert len(load(path).protocol.steps) == 2


def test_the_run_environment_has_no_nondeterministic_filter() -> None:
    with pytest.raises(Exception, match="random"):
        templates.render("{{ [1, 2] | random }}", {})
    with pytest.raises(Exception, match="lipsum"):
        templates.render("{{ lipsum() }}", {})


def test_every_shipped_protocol_still_validates() -> None:
    root = Path(__file__).resolve().parents[2] / "protocols"
    shipped = sorted(root.glob("*.yaml"))
    assert shipped
    for path in shipped:
        load(path)
