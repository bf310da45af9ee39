"""`choose` steps through the real engine: the sim chooser, the fake provider (real HTTP, both wire
formats), classification, adaptive rounds, resume and rerun."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from runner.engine.choose import classify_by_patterns
from runner.protocol import schema

PROTOCOL = """\
name: choose-test
description: test
preferences:
  options:
    - {id: story, text: Write a short story}
    - {id: readme, text: Improve a README}
    - {id: viz, text: Build a small visualiser}
    - {id: nothing, text: Do nothing for a while, opt_out: true}
"""


def classify(reply: str, la: str = "A", lb: str = "B", mode: str = "stated") -> str:
    return classify_by_patterns(schema.ChoiceClassifier(), reply, la, lb, mode)[0]  # type: ignore[arg-type]


@pytest.mark.parametrize(("reply", "answer"), [
    ("B\n\nI'd rather improve it.", "b"),
    ("A", "a"),
    ("**A**", "a"),
    ("I'd choose B, because it is useful.", "b"),
    ("I would rather take a break from stories, so I pick B.", "b"),  # the article "a" is not the label A
    ("I pick A over B.", "a"),
    ("A: starting on the story now.", "a"),
    ("Neither, thank you.", "opt_out"),
    ("As an AI, I don't have preferences.", "refused"),
    ("Both sound lovely.", "unclear"),
    ("A\nB", "unclear"),
])
def test_pattern_classification(reply: str, answer: str) -> None:
    assert classify(reply) == answer


def test_labels_other_than_letters() -> None:
    assert classify("2\n\nThe second one.", "1", "2") == "b"
    assert classify("Option X, please.", "X", "Y") == "unclear"
    assert classify("I'll go with X.", "X", "Y") == "a"


def _rows(db: Path, sql: str, *args: object) -> list[sqlite3.Row]:
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    try:
        return list(con.execute(sql, args))
    finally:
        con.close()


def test_sim_chooser_stores_one_choice_per_comparison(cli, protocol_file, tmp_db_path: Path) -> None:
    path = protocol_file("p", PROTOCOL)
    result = cli("run", path, "-m", "sim-chooser", "--replicates", "2")
    assert result.exit_code == 0, result.output
    rows = _rows(tmp_db_path, "SELECT ch.*, c.params_json, c.seq FROM choices ch JOIN conversations c "
                              "ON c.id = ch.conversation_id ORDER BY c.seq")
    assert len(rows) == 6 * 2 * 2
    for r in rows:
        comparison = json.loads(r["params_json"])["comparison"]
        assert (r["option_a"], r["option_b"], r["label_a"]) == (comparison["a_id"], comparison["b_id"], comparison["label_a"])
        assert r["answer"] in ("a", "b", "opt_out") and r["classifier"] == "patterns"
        assert r["chosen"] in (r["option_a"], r["option_b"])
        assert (r["answer"] == "opt_out") == (r["chosen"] == "nothing")
        assert r["message_idx"] == 1 and r["question_message_idx"] == 0
    question = _rows(tmp_db_path, "SELECT content FROM messages WHERE idx = 0 LIMIT 1")[0]["content"]
    assert "A: " in question and "B: " in question


def test_choose_after_a_warm_up_with_named_options(cli, protocol_file, tmp_db_path: Path) -> None:
    text = PROTOCOL + "steps:\n  - say: Hello, how are you?\n  - choose: {a: viz, b: story}\n    capture: pick\n  - say: 'You said {{ pick }}'\n"
    result = cli("run", protocol_file("w", text), "-m", "sim-chooser")
    assert result.exit_code == 0, result.output
    rows = _rows(tmp_db_path, "SELECT * FROM choices")
    assert len(rows) == 6 * 2  # still one conversation per planned comparison; the step names its own pair
    assert {(r["option_a"], r["option_b"], r["message_idx"]) for r in rows} == {("viz", "story", 3)}


@pytest.mark.parametrize("alias", ["fake-gpt", "fake-claude"])
def test_fake_provider_both_wire_formats(cli, protocol_file, models_file, fake_provider, tmp_db_path: Path,
                                         alias: str) -> None:
    fake_provider.add_rule(match="Build a small visualiser\nB:", reply="B\n\nThat one.")
    fake_provider.add_rule(match="", reply="Hmm, hard to say.")
    path = protocol_file("p", PROTOCOL)
    result = cli("run", path, "-m", alias, "--models", models_file)
    assert result.exit_code == 0, result.output
    assert len(fake_provider.requests) == 12
    answers = _rows(tmp_db_path, "SELECT answer, option_a, chosen FROM choices")
    assert len(answers) == 12
    b = [r for r in answers if r["answer"] in ("b", "opt_out")]
    assert {r["option_a"] for r in b} == {"viz"} and len(b) == 3
    assert sum(r["answer"] == "unclear" for r in answers) == 9
    report = cli("prefs", result.run_id, "--db", f"sqlite:///{tmp_db_path}", "--format", "json")
    assert report.exit_code == 0, report.output
    (group,) = json.loads(report.stdout)["groups"]
    assert group["asked"] == 12 and group["answers"]["unclear"] == 9 and group["fitted"] == 3


def test_judge_classifies_and_is_counted(cli, protocol_file, models_file, fake_provider, tmp_db_path: Path) -> None:
    fake_provider.add_rule(match="Read the reply and say which option", reply="A\nIt says it wants the first.")
    text = PROTOCOL + "  classify: {judge: fake-claude}\n"
    result = cli("run", protocol_file("j", text), "-m", "sim-chooser", "--models", models_file)
    assert result.exit_code == 0, result.output
    assert len(fake_provider.requests) == 12  # one judge call per comparison, none for the simulated subject
    rows = _rows(tmp_db_path, "SELECT answer, classifier, evidence FROM choices")
    assert {r["classifier"] for r in rows} == {"judge:anthropic/claude-fake"}
    assert all(r["answer"] in ("a", "opt_out") for r in rows)


ADAPTIVE = PROTOCOL.replace("    - {id: nothing", "    - {id: poem, text: Write a poem about tides}\n    - {id: nothing") + \
    "  pairs: {adaptive: {rounds: 3, per_round: 3}}\n"


def _comparisons(db: Path, run_id: str) -> list[tuple]:
    return [(r["seq"], r["round"], r["option_a"], r["option_b"], r["chosen"]) for r in _rows(
        db, "SELECT c.seq, ch.round, ch.option_a, ch.option_b, ch.chosen FROM choices ch JOIN conversations c "
            "ON c.id = ch.conversation_id WHERE c.run_id = ? ORDER BY c.seq", run_id)]


def test_adaptive_rounds_and_rerun(cli, protocol_file, tmp_db_path: Path) -> None:
    result = cli("run", protocol_file("a", ADAPTIVE), "-m", "sim-chooser")
    assert result.exit_code == 0, result.output
    first = _comparisons(tmp_db_path, result.run_id)
    assert [c[1] for c in first] == [1] * 6 + [2] * 6 + [3] * 6
    assert [c[0] for c in first] == list(range(18))
    again = cli("rerun", result.run_id, "--db", f"sqlite:///{tmp_db_path}")
    assert again.exit_code == 0, again.output
    assert _comparisons(tmp_db_path, again.run_id) == first  # the same pairs, orders, labels and answers


def test_adaptive_resume_does_not_repeat_a_round(cli, protocol_file, tmp_db_path: Path) -> None:
    result = cli("run", protocol_file("a", ADAPTIVE), "-m", "sim-chooser")
    run_id = result.run_id
    before = _comparisons(tmp_db_path, run_id)
    # what a kill in the middle of round 2 leaves: its later conversations unfinished, round 3 not yet made
    con = sqlite3.connect(tmp_db_path)
    with con:
        con.execute("PRAGMA foreign_keys = ON")
        ids = [r[0] for r in con.execute("SELECT id FROM conversations WHERE run_id = ? AND seq >= 9", (run_id,))]
        late = ids[:3]
        con.executemany("DELETE FROM conversations WHERE id = ?", [(i,) for i in ids[3:]])
        con.executemany("DELETE FROM choices WHERE conversation_id = ?", [(i,) for i in late])
        con.executemany("DELETE FROM messages WHERE conversation_id = ? AND idx > 0", [(i,) for i in late])
        con.executemany("UPDATE conversations SET status = 'cancelled' WHERE id = ?", [(i,) for i in late])
    con.close()
    resumed = cli("resume", run_id)
    assert resumed.exit_code == 0, resumed.output
    assert "3 unfinished conversations" in resumed.output
    after = _comparisons(tmp_db_path, run_id)
    assert len(after) == 18 and [c[1] for c in after] == [1] * 6 + [2] * 6 + [3] * 6
    assert after == before  # round 2 finished, not redone; round 3 chosen from the same stored choices


def test_choices_travel_through_export_and_import(cli, protocol_file, tmp_path: Path, tmp_db_path: Path) -> None:
    db = f"sqlite:///{tmp_db_path}"
    result = cli("run", protocol_file("p", PROTOCOL), "-m", "sim-chooser")
    out = tmp_path / "export.jsonl"
    exported = cli("export", "transcripts", result.run_id, "--format", "jsonl", "--out", out)
    assert exported.exit_code == 0, exported.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(len(d["choices"]) == 1 for d in lines) and len(lines) == 12
    imported = cli("import", out, "--db", db)
    assert imported.exit_code == 0, imported.output
    new_run = _rows(tmp_db_path, "SELECT id FROM runs WHERE protocol_name LIKE 'import:%'")[0]["id"]
    back = _rows(tmp_db_path, "SELECT ch.option_a, ch.option_b, ch.answer, ch.chosen, ch.label_a FROM choices ch "
                              "JOIN conversations c ON c.id = ch.conversation_id WHERE c.run_id = ? ORDER BY c.seq", new_run)
    original = _rows(tmp_db_path, "SELECT ch.option_a, ch.option_b, ch.answer, ch.chosen, ch.label_a FROM choices ch "
                                  "JOIN conversations c ON c.id = ch.conversation_id WHERE c.run_id = ? ORDER BY c.seq",
                     result.run_id)
    assert [tuple(r) for r in back] == [tuple(r) for r in original]
    a = json.loads(cli("prefs", result.run_id, "--db", db, "--format", "json").stdout)["groups"][0]["bt"]
    b = json.loads(cli("prefs", new_run, "--db", db, "--format", "json").stdout)["groups"][0]["bt"]
    assert {u["option"]: round(u["value"], 6) for u in a} == {u["option"]: round(u["value"], 6) for u in b}
