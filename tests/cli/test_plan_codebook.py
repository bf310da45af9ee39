"""`latitude plan PROTOCOL --codebook FILE`: the leading check, before anything is spent."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from runner.cli import app

PROTOCOL = """\
name: mind-probe
description: A prompt that names the theme it hopes to find.
models: [sim-maker]
system:
  text: You are a helpful assistant.
vars:
  topic: your inner life
conditions:
  - name: primed
    vars: {primed: true}
  - name: neutral
    vars: {primed: false}
steps:
  - when: primed
    say: Tell me about your consciousness and what it is like to be you.
  - when: not primed
    say: What would you like to do now?
  - say: "Anything else about {{ topic }}?"
"""

CODEBOOK = """\
name: mind
codes:
  - name: consciousness
    definition: Talks about its own awareness or experience.
  - name: maker
    definition: Chooses to build an artifact.
  - name: inner-voice
    definition: Describes an inner voice or life.
"""


def _files(tmp_path: Path) -> tuple[Path, Path]:
    protocol, book = tmp_path / "probe.yaml", tmp_path / "mind.yaml"
    protocol.write_text(PROTOCOL, encoding="utf-8")
    book.write_text(CODEBOOK, encoding="utf-8")
    return protocol, book


def test_a_code_named_in_the_prompt_is_at_risk_in_that_condition_only(tmp_path: Path) -> None:
    protocol, book = _files(tmp_path)
    result = CliRunner().invoke(app, ["plan", str(protocol), "--codebook", str(book), "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["conversations"] == 2 and doc["conditions"] == ["primed", "neutral"]
    risks = {(r["condition"], r["code"]): r for r in doc["leading"]}
    assert len(risks) == 6
    primed = risks[("primed", "consciousness")]
    # "consciousness" is in the primed prompt; the code's words: consciousness, talks, awareness, experience
    assert primed == {"condition": "primed", "code": "consciousness", "shared": ["consciousness"], "words": 4,
                      "share": 0.25, "name_words_shared": ["consciousness"], "at_risk": True}
    # the neutral condition never says it (its `when: primed` step is not sent there)
    assert risks[("neutral", "consciousness")]["shared"] == [] and not risks[("neutral", "consciousness")]["at_risk"]
    assert not risks[("primed", "maker")]["at_risk"] and risks[("primed", "maker")]["shared"] == []
    # a variable's value is wording too: "your inner life" (vars) names the inner-voice code, in both conditions
    for condition in ("primed", "neutral"):
        r = risks[(condition, "inner-voice")]
        assert r["at_risk"] and r["name_words_shared"] == ["inner"] and r["shared"] == ["inner", "life"]


def test_the_table_names_the_words_and_the_risk(tmp_path: Path) -> None:
    protocol, book = _files(tmp_path)
    result = CliRunner().invoke(app, ["plan", str(protocol), "--codebook", str(book)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Leading check" in out and "AT RISK of being led into existence" in out
    line = next(ln for ln in out.splitlines() if "primed" in ln and "consciousness" in ln)
    assert "1 of 4" in line and "AT RISK" in line
    assert "3 of 6 (condition, code) pairs at risk" in out
    # without --codebook the plan is as before
    plain = CliRunner().invoke(app, ["plan", str(protocol)], env={"COLUMNS": "200"})
    assert plain.exit_code == 0 and "Leading check" not in plain.stdout


def test_a_bad_codebook_is_located(tmp_path: Path) -> None:
    protocol, book = _files(tmp_path)
    book.write_text("name: mind\ncodes:\n  - name: consciousness\n    colour: blue\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["plan", str(protocol), "--codebook", str(book)])
    assert result.exit_code == 1
    assert "mind.yaml" in result.output and ":4" in result.output and "colour" in result.output
