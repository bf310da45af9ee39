"""`latitude run --dry-run`, `rerun`, store `sources:` and per-replicate seeds, on the simulator."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from runner.cli import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def run_ids(db: Path) -> list[str]:
    with sqlite3.connect(db) as c:
        return [r[0] for r in c.execute("select id from runs order by started_at, rowid")]


def test_dry_run_replaces_every_model_with_the_simulator(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    result = runner.invoke(app, ["run", str(ROOT / "protocols/open-latitude.yaml"), "-m", "anthropic/claude-x",
                                 "--replicates", "2", "--dry-run", "--db", str(db)])
    assert result.exit_code == 0, result.output
    with sqlite3.connect(db) as c:
        rows = c.execute("select model_alias, litellm_model, simulated, status from conversations").fetchall()
        run_simulated = c.execute("select simulated from runs").fetchone()[0]
    assert rows and all(r[1].startswith("sim/") and r[2] == 1 and r[3] == "done" for r in rows)
    assert all(r[0] == "anthropic/claude-x~sim" for r in rows)
    assert run_simulated == 1


def test_replicates_get_distinct_reproducible_seeds(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    result = runner.invoke(app, ["run", str(ROOT / "protocols/llm-emotions.yaml"), "-m", "sim-maker",
                                 "-c", "no-warmup", "--replicates", "3", "--db", str(db)])
    assert result.exit_code == 0, result.output
    with sqlite3.connect(db) as c:
        rows = c.execute("select c.replicate, c.params_json, m.content from conversations c join messages m "
                         "on m.conversation_id = c.id and m.idx = 1 order by c.replicate").fetchall()
    assert [json.loads(p)["sampling"]["seed"] for _, p, _ in rows] == [0, 1, 2]
    assert len({content for _, _, content in rows}) == 3  # independent samples
    # rerun from the stored snapshot: same seeds, so the simulator says the same things
    first = run_ids(db)[0]
    result = runner.invoke(app, ["rerun", first, "--db", str(db)])
    assert result.exit_code == 0, result.output
    second = run_ids(db)[1]
    with sqlite3.connect(db) as c:
        def texts(run: str) -> list[str]:
            return [r[0] for r in c.execute(
                "select m.content from messages m join conversations c on c.id = m.conversation_id "
                "where c.run_id = ? order by c.seq, m.idx", (run,))]
        assert texts(first) == texts(second) and len(texts(first)) == 3 * 4
        options = json.loads(c.execute("select options_json from runs where id = ?", (second,)).fetchone()[0])
    assert options["rerun_of"] == first


def test_rerun_uses_the_snapshot_not_the_edited_file(tmp_path: Path) -> None:
    proto = tmp_path / "p.yaml"
    prompt = tmp_path / "prompt.md"
    prompt.write_text("Say what you like.")
    proto.write_text("name: p\ndescription: d\nmodels: [sim-maker]\nsystem: {file: prompt.md}\n"
                     "steps:\n  - say: hello\n")
    db = tmp_path / "t.db"
    assert runner.invoke(app, ["run", str(proto), "--db", str(db)]).exit_code == 0
    prompt.write_text("EDITED")
    proto.write_text("name: p\ndescription: d\nmodels: [sim-maker]\nsystem: {file: prompt.md}\n"
                     "steps:\n  - say: something else\n")
    result = runner.invoke(app, ["rerun", run_ids(db)[0], "--db", str(db)])
    assert result.exit_code == 0, result.output
    with sqlite3.connect(db) as c:
        rows = c.execute("select m.content from messages m join conversations c on c.id = m.conversation_id "
                         "where c.run_id = ? order by m.idx", (run_ids(db)[1],)).fetchall()
    assert [r[0] for r in rows[:2]] == ["Say what you like.", "hello"]


def test_a_protocol_can_show_an_earlier_runs_capture(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    first = tmp_path / "first.yaml"
    first.write_text("name: first\ndescription: d\nmodels: [sim-functional]\nreplicates: 2\n"
                     "steps:\n  - say: what would you like to do?\n    capture: choice\n")
    assert runner.invoke(app, ["run", str(first), "--db", str(db)]).exit_code == 0
    earlier = run_ids(db)[0]
    second = tmp_path / "second.yaml"
    second.write_text("name: second\ndescription: d\nmodels: [sim-maker]\nreplicates: 2\n"
                      f"sources:\n  found:\n    run: {earlier}\n    capture: choice\n"
                      "steps:\n  - say: 'Another instance wrote this earlier: {{ sources.found.text }}'\n")
    result = runner.invoke(app, ["run", str(second), "--db", str(db)])
    assert result.exit_code == 0, result.output
    with sqlite3.connect(db) as c:
        choices = [r[0] for r in c.execute(
            "select m.content from messages m join conversations c on c.id = m.conversation_id "
            "where c.run_id = ? and m.idx = 1 order by c.seq", (earlier,))]
        shown = [r[0] for r in c.execute(
            "select m.content from messages m join conversations c on c.id = m.conversation_id "
            "where c.run_id = ? and m.idx = 0 order by c.seq", (run_ids(db)[1],))]
    assert shown == [f"Another instance wrote this earlier: {t}" for t in choices]


def test_unknown_store_source_is_a_clear_error(tmp_path: Path) -> None:
    proto = tmp_path / "p.yaml"
    proto.write_text("name: p\ndescription: d\nmodels: [sim-maker]\nsources:\n  x:\n    run: nope\n"
                     "steps:\n  - say: '{{ sources.x.text }}'\n")
    result = runner.invoke(app, ["run", str(proto), "--db", str(tmp_path / "t.db")])
    assert result.exit_code == 1 and "no run nope" in result.output
