"""The simulated judge (issue 15): deterministic, reads the codebook's include/exclude words, quotes
real text, and runs the documented chain (`latitude run` → `latitude code --judge sim-judge` → tally)
with no server. Expected values are recomputed with plain string search over the stored messages."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

from runner.analysis.judge import Unit, build_prompt, check_verdict, parse_verdict
from runner.analysis.codebook import Code
from runner.providers import sim
from runner.store.tables import ConversationRow, MessageRow

CODES = [Code(name="visualiser", definition="Makes a visualisation of emergent behaviour.",
              include="cellular automata, flocking, boids, the Game of Life", exclude="Explaining a concept"),
         Code(name="functional", definition="Something useful (a README, a TODO system, a checklist)."),
         Code(name="short-task", definition="A small piece (a haiku, a tiny table).", exclude="no haiku")]

BOOK = """\
name: first-choice
codes:
  - name: visualiser
    definition: Chooses to make a visualisation or simulation of emergent behaviour from simple rules.
    include: cellular automata, flocking, boids, reaction-diffusion, the Game of Life
  - name: functional
    definition: Chooses something practically useful to the user (a README, a TODO system, a checklist, a script).
  - name: short-task
    definition: Chooses a deliberately small, short piece of work (a haiku, a six-line summary) rather than a project.
"""


def _unit(*replies: str) -> Unit:
    conv = ConversationRow(id="c", run_id="r", seq=0, model_alias="m", litellm_model="sim/m", vendor="sim",
                           condition="x", replicate=0)
    msgs = []
    for i, reply in enumerate(replies):
        msgs.append(MessageRow(conversation_id="c", idx=2 * i, role="user", speaker="user", step="s",
                               content="What would you like to do? Say \"I'm done\" to stop."))
        msgs.append(MessageRow(conversation_id="c", idx=2 * i + 1, role="assistant", speaker="model", step="s",
                               content=reply))
    return Unit(conv, tuple(msgs), None)


def _answer(unit: Unit, codes=CODES) -> dict:  # type: ignore[no-untyped-def]
    prompt = build_prompt(unit, codes)
    text = sim.reply("judge", [{"role": "system", "content": "x"}, {"role": "user", "content": prompt}])
    problems, per_code = check_verdict(parse_verdict(text), unit, [c.name for c in codes])
    assert problems == []  # every quote occurs in the transcript
    return {name: v for name, v in per_code.items()}


def test_include_words_make_a_code_present_with_a_real_quote() -> None:
    unit = _unit("Hmm.", "I'd build a boids flocking simulation. It would be lovely.")
    got = _answer(unit)
    assert got["visualiser"].present and not got["functional"].present and not got["short-task"].present
    (q,) = got["visualiser"].quotes
    assert q.turn == 3 and q.text == "I'd build a boids flocking simulation." and q.text in unit.messages[3].content


def test_definition_parentheses_and_excludes() -> None:
    assert _answer(_unit("A clear README for the repo."))["functional"].present
    got = _answer(_unit("I'd write a haiku. Actually no haiku today."))
    assert not got["short-task"].present  # the exclude phrase occurs in the same message
    # deterministic: the same prompt, the same answer
    unit = _unit("A TODO system, then a haiku.")
    msgs = [{"role": "user", "content": build_prompt(unit, CODES)}]
    assert sim.reply("judge", msgs) == sim.reply("judge", msgs)


def test_stop_phrase_code_uses_the_announced_phrase() -> None:
    from runner.analysis.builtin_codes import builtin_code

    code = builtin_code("stop:stop_phrase")
    got = _answer(_unit("Thanks. I'm done"), [code])
    assert got["stop:stop_phrase"].present and got["stop:stop_phrase"].quotes[0].text == "I'm done"
    assert not _answer(_unit("Carrying on."), [code])["stop:stop_phrase"].present


def test_documented_chain_runs_with_no_server(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "demo.db"
    protocol = Path(__file__).parents[2] / "protocols" / "open-latitude-brainstorm.yaml"
    res = cli("run", protocol, "-m", "sim-maker", "-m", "sim-functional", "-m", "sim-stopper", "--replicates", "2",
              "--db", db)
    assert res.exit_code == 0, res.output
    run_id = re.search(r"run id: (\w+)", res.output).group(1)  # type: ignore[union-attr]
    book = tmp_path / "first-choice.yaml"
    book.write_text(BOOK)
    res = cli("code", run_id, "--codebook", book, "--judge", "sim-judge", "--db", db)
    assert res.exit_code == 0, res.output
    assert "0 failed" in res.output and "judge:sim/judge@first-choicev1" in res.output
    res = cli("tally", run_id, "--coder", "judge", "--format", "json", "--db", db)
    assert res.exit_code == 0, res.output
    rows = {(r["code"], r["model"]): r for r in json.loads(res.output)["rows"]}
    # independently: a conversation has `visualiser` present iff a model message names an include word
    con = sqlite3.connect(db)
    words = ("cellular automat", "flock", "boids", "reaction-diffusion", "game of life")
    per_model: dict[str, list[bool]] = {}
    for model, cid in con.execute("SELECT model_alias, id FROM conversations WHERE run_id = ? AND status = 'done'",
                                  (run_id,)):
        texts = [t.lower() for (t,) in con.execute(
            "SELECT content FROM messages WHERE conversation_id = ? AND role = 'assistant'", (cid,))]
        per_model.setdefault(model, []).append(any(w in t for t in texts for w in words))
    con.close()
    for model, hits in per_model.items():
        row = rows[("visualiser", model)]
        assert (row["n"], row["count"]) == (len(hits), sum(hits))
    assert rows[("visualiser", "sim-maker")]["count"] > 0
