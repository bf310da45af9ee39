"""The stop rule in the protocol language: defaults, shorthands and located errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.protocol import ProtocolError, load

HEAD = "name: t\ndescription: d\nmodels: [sim-maker]\n"


def _load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "p.yaml"
    path.write_text(HEAD + text)
    return load(path).protocol


def test_defaults_are_the_robust_rule(tmp_path: Path) -> None:
    p = _load(tmp_path, "stop:\n  phrases: [Stopping now.]\nsteps:\n  - say: hi\n")
    assert (p.stop.match, p.stop.then, p.stop.exit, p.stop.offered) == ("used", "end", "real", ("phrase",))
    assert p.steps[0].closing is None


def test_shorthands(tmp_path: Path) -> None:
    p = _load(tmp_path, "stop:\n  phrases: [x]\n  confirm: {judge: sim-maker}\n"
                        "  channels: {phrase: {}, tool: {name: bail}, check_in: {turns: 3, hypothetical: true}}\n"
                        "steps:\n  - say: hi\n")
    assert (p.stop.confirm, p.stop.judge) == ("judge", "sim-maker")
    assert p.stop.offered == ("phrase", "tool", "check_in")
    assert (p.stop.tool.name, p.stop.check_in.every) == ("bail", 3)
    assert p.stop.hypothetical("check_in") and not p.stop.hypothetical("tool")
    q = _load(tmp_path, "stop:\n  channels: tool\n  tool: bail\n  check_in: {every: 2, options: [go on, end]}\n"
                        "steps:\n  - say: hi\n")
    assert q.stop.offered == ("tool",) and q.stop.tool.name == "bail"  # channels as written
    assert (q.stop.check_in.continue_option, q.stop.check_in.stop_option) == ("go on", "end")


@pytest.mark.parametrize(("text", "field", "words"), [
    ("stop:\n  channels: [check_in]\n", "stop", "needs `check_in"),
    ("stop:\n  channels: [phrase]\n", "stop", "needs `phrases`"),
    ("stop:\n  phrases: [x]\n  confirm: judge\n", "stop", "needs `judge: ALIAS`"),
    ("stop:\n  phrases: [x]\n  match: loose\n", "stop.match", "used"),
    ("stop:\n  phrases: [x]\n  judge: nosuchmodel\n  confirm: judge\n", "stop.judge", "unknown model alias"),
    ("stop:\n  phrases: [x]\nconditions:\n  - name: a\n    stop_channels: [check_in]\n", "", "offers `check_in`"),
    ("stop:\n  check_in: {every: 0}\n", "stop.check_in.every", "greater than or equal to 1"),
])
def test_located_errors(tmp_path: Path, text: str, field: str, words: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(HEAD + text + "steps:\n  - say: hi\n")
    with pytest.raises(ProtocolError) as info:
        load(path)
    problems = info.value.problems
    assert any(words in str(p) and (not field or field in str(p)) for p in problems), [str(p) for p in problems]
    assert all(":" in str(p).split(" ")[0] for p in problems)  # file:line:column
