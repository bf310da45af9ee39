"""Malformed protocols: each must fail with the right file, line and field, never a traceback."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from runner.protocol import ProtocolError, load

OK_HEAD = "name: t\ndescription: d\nmodels: [sim-maker]\n"

# (id, yaml, expected line, expected field (dotted path, or "" for document-level), words in the message)
CASES = [
    ("unknown-top-key", OK_HEAD + "stpes:\n  - say: hi\n", 4, "stpes", "unknown key"),
    ("unknown-step-key", OK_HEAD + "steps:\n  - say: hi\n    captur: x\n", 6, "steps[0].captur", "unknown key"),
    ("step-without-kind", OK_HEAD + "steps:\n  - sya: hi\n", 5, "steps[0]", "needs one of the keys"),
    ("missing-name", "description: d\nsteps:\n  - say: hi\n", 1, "name", "required key `name`"),
    ("missing-description", "name: t\nsteps:\n  - say: hi\n", 1, "description", "required key"),
    ("bad-name-pattern", "name: Bad Name\ndescription: d\nsteps:\n  - say: hi\n", 1, "name", "pattern"),
    ("replicates-zero", OK_HEAD + "replicates: 0\nsteps:\n  - say: hi\n", 4, "replicates", "greater than or equal to 1"),
    ("replicates-text", OK_HEAD + "replicates: many\nsteps:\n  - say: hi\n", 4, "replicates", "valid integer"),
    ("max-turns-huge", OK_HEAD + "max_turns: 5000\nsteps:\n  - say: hi\n", 4, "max_turns", "less than or equal"),
    ("no-steps", OK_HEAD + "replicates: 2\n", 1, "", "`steps` is required"),
    ("empty-steps-in-repeat", OK_HEAD + "steps:\n  - repeat:\n      times: 2\n      steps: []\n", 7, "steps[0].repeat.steps", "at least 1"),
    ("repeat-two-bounds", OK_HEAD + "steps:\n  - repeat:\n      times: 2\n      until: 'true'\n      steps:\n        - say: x\n", 5, "steps[0].repeat", "exactly one of"),
    ("repeat-no-bound", OK_HEAD + "steps:\n  - repeat:\n      steps:\n        - say: x\n", 5, "steps[0].repeat", "exactly one of"),
    ("open-without-turns", OK_HEAD + "steps:\n  - open:\n      nudge: go on\n", 5, "steps[0].open.turns", "required key"),
    ("open-nudge-number", OK_HEAD + "steps:\n  - open:\n      turns: 3\n      nudge: 5\n", 7, "steps[0].open.nudge", "expected text"),
    ("offer-bad-branch-step", OK_HEAD + "steps:\n  - offer: break?\n    if_accepted:\n      - tell: x\n", 7, "steps[0].if_accepted[0]", "needs one of"),
    ("offer-bad-unclear", OK_HEAD + "steps:\n  - offer: break?\n    if_unclear: maybe\n", 6, "steps[0].if_unclear", "accepted"),
    ("offer-bad-regex", OK_HEAD + "steps:\n  - offer: break?\n    classify:\n      accept: ['(unclosed']\n", 7, "steps[0].classify.accept", "bad regular expression"),
    ("stop-no-phrases", OK_HEAD + "stop:\n  phrases: []\nsteps:\n  - say: hi\n", 5, "stop.phrases", "at least 1"),
    ("stop-bad-match", OK_HEAD + "stop:\n  phrases: [x]\n  match: start\nsteps:\n  - say: hi\n", 6, "stop.match", "anywhere"),
    ("stop-announced-by-missing", OK_HEAD + "stop:\n  phrases: [x]\n  announced_by: intro\nsteps:\n  - id: intr\n    say: hi\n", 6, "stop.announced_by", "no step has id `intro`"),
    ("duplicate-condition", OK_HEAD + "conditions:\n  - name: a\n  - name: a\nsteps:\n  - say: hi\n", 1, "", "condition names must be unique"),
    ("duplicate-step-id", OK_HEAD + "steps:\n  - id: x\n    say: a\n  - id: x\n    say: b\n", 1, "", "step ids must be unique"),
    ("condition-no-name", OK_HEAD + "conditions:\n  - vars: {a: 1}\nsteps:\n  - say: hi\n", 5, "conditions[0].name", "required"),
    ("unknown-model-alias", "name: t\ndescription: d\nmodels: [sim-makr]\nsteps:\n  - say: hi\n", 3, "models[0]", "unknown model alias `sim-makr`"),
    ("undefined-variable", OK_HEAD + "steps:\n  - say: 'hello {{ nmae }}'\n", 5, "steps[0].say", "undefined variable `nmae`"),
    ("variable-missing-in-condition", OK_HEAD + "conditions:\n  - name: a\n    vars: {x: 1}\n  - name: b\nsteps:\n  - say: '{{ x }}'\n", 9, "steps[0].say", "not set in condition(s) b"),
    ("template-syntax", OK_HEAD + "steps:\n  - say: 'hello {{ name '\n", 5, "steps[0].say", "template syntax error"),
    ("until-syntax", OK_HEAD + "steps:\n  - repeat:\n      until: 'reply[-1] =='\n      steps:\n        - say: x\n", 6, "steps[0].repeat.until", "template syntax error"),
    ("missing-system-file", OK_HEAD + "system:\n  file: nowhere.md\nsteps:\n  - say: hi\n", 4, "system", "file not found"),
    ("system-two-sources", OK_HEAD + "system:\n  text: a\n  file: b.md\nsteps:\n  - say: hi\n", 4, "system", "exactly one of"),
    ("missing-say-file", OK_HEAD + "steps:\n  - say: {file: gone.md}\n", 5, "steps[0].say", "file not found"),
    ("pair-and-experimenter", OK_HEAD + "pair:\n  opener: hi\nexperimenter:\n  model: sim-maker\n  instructions: x\n", 1, "", "either `pair` or `experimenter`"),
    ("pair-bad-first", OK_HEAD + "pair:\n  opener: hi\n  first: c\n", 6, "pair.first", "'a' or 'b'"),
    ("experimenter-unknown-model", OK_HEAD + "experimenter:\n  model: nobody\n  instructions: x\nsteps:\n  - say: hi\n", 5, "experimenter.model", "unknown model alias"),
    ("unknown-tool", OK_HEAD + "tools: [shell]\nsteps:\n  - say: hi\n", 4, "tools", "unknown tool"),
    ("break-every-zero", OK_HEAD + "steps:\n  - repeat:\n      times: 4\n      steps:\n        - say: x\n      break_every:\n        turns: 0\n        offer:\n          offer: story?\n", 10, "steps[0].repeat.break_every.turns", "greater than or equal to 1"),
    ("yaml-syntax", OK_HEAD + "steps:\n  - say: [unclosed\n", 6, "", "YAML syntax"),
    ("yaml-duplicate-key", OK_HEAD + "name: again\nsteps:\n  - say: hi\n", 4, "", "duplicate"),
    ("yaml-object-tag", OK_HEAD + "steps:\n  - say: !!python/object:os.system x\n", 5, "", "tag"),
    ("not-a-mapping", "- just\n- a list\n", 1, "", "a protocol is a YAML mapping"),
    ("temperature-range", OK_HEAD + "params:\n  temperature: 3\nsteps:\n  - say: hi\n", 5, "params.temperature", "less than or equal to 2"),
    ("source-two-origins", OK_HEAD + "sources:\n  earlier:\n    run: abc\n    conversation: def\nsteps:\n  - say: hi\n", 5, "sources.earlier", "exactly one of"),
]


@pytest.mark.parametrize(("yaml", "line", "field", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_protocol_is_located(tmp_path: Path, yaml: str, line: int, field: str, words: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(yaml)
    with pytest.raises(ProtocolError) as info:
        load(path)
    problems = info.value.problems
    assert problems, "a ProtocolError must carry problems"
    match = [p for p in problems if words.lower() in p.message.lower()]
    assert match, f"no problem mentions {words!r}: {[str(p) for p in problems]}"
    p = match[0]
    assert p.path == str(path)
    assert p.line == line, str(p)
    assert p.field == field, str(p)


def test_did_you_mean_for_unknown_keys(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(OK_HEAD + "steps:\n  - say: hi\n    captur: x\n")
    with pytest.raises(ProtocolError) as info:
        load(path)
    assert info.value.problems[0].hint == "did you mean `capture`?"


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(OK_HEAD + "replicates: 0\nmax_turns: 0\nsteps:\n  - say: hi\n    bogus: 1\n")
    with pytest.raises(ProtocolError) as info:
        load(path)
    fields = sorted(p.field for p in info.value.problems)
    assert fields == ["max_turns", "replicates", "steps[0].bogus"]


def test_yaml_bomb_is_refused(tmp_path: Path) -> None:
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
    for i, name in enumerate("bcdefgh"):
        prev = "abcdefgh"[i]
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 10) + "]")
    path = tmp_path / "bomb.yaml"
    path.write_text(OK_HEAD + "vars:\n" + textwrap.indent("\n".join(lines), "  ") + "\nsteps:\n  - say: hi\n")
    with pytest.raises(ProtocolError) as info:
        load(path)
    assert "alias" in info.value.problems[0].message


def test_huge_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(OK_HEAD + "steps:\n" + "  - say: " + "x" * (3 * 1024 * 1024) + "\n")
    with pytest.raises(ProtocolError) as info:
        load(path)
    assert "limit" in info.value.problems[0].message
    assert info.value.problems[0].line == 1


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ProtocolError) as info:
        load(tmp_path / "none.yaml")
    assert "cannot read" in info.value.problems[0].message


def test_extends_error_points_into_the_base_file(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(OK_HEAD + "steps:\n  - say: hi\n    bogus: 1\n")
    (tmp_path / "child.yaml").write_text("extends: base.yaml\nname: child\ndescription: d\n")
    with pytest.raises(ProtocolError) as info:
        load(tmp_path / "child.yaml")
    p = info.value.problems[0]
    assert p.path == str(tmp_path / "base.yaml") and p.line == 6 and p.field == "steps[0].bogus"


def test_extends_cycle(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n" + OK_HEAD)
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n" + OK_HEAD)
    with pytest.raises(ProtocolError) as info:
        load(tmp_path / "a.yaml")
    assert "cycle" in info.value.problems[0].message


def test_models_file_errors_are_located(tmp_path: Path) -> None:
    from runner.protocol import load_models

    path = tmp_path / "models.yaml"
    path.write_text("models:\n  claude:\n    model: anthropic/claude-x\n    temprature: 0.5\n")
    with pytest.raises(ProtocolError) as info:
        load_models(path)
    p = info.value.problems[0]
    assert (p.line, p.field, p.hint) == (4, "models.claude.temprature", "did you mean `temperature`?")
