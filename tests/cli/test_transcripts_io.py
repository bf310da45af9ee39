"""`latitude export transcripts`, `import`, `show`, `runs` on a fixture database."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from runner.cli import app
from runner.export.schema import SCHEMA_VERSION, ExportConversation
from tests.data.builders import HOSTILE, small_run

runner = CliRunner()


def test_export_jsonl_loads_back_with_the_documented_fields(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    run_id = small_run(db)
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["export", "transcripts", run_id, "--format", "jsonl", "--out", str(out), "--db", str(db)])
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert len(lines) == 3
    first = json.loads(lines[0])
    for key in ("id", "run_id", "protocol", "model", "litellm_model", "condition", "replicate", "stop_reason",
                "turns", "usage", "messages"):
        assert key in first
    for key in ("role", "speaker", "content", "latency_ms", "ttft_ms", "tokens_in", "tokens_out", "cost"):
        assert key in first["messages"][1]
    conv = ExportConversation.model_validate(first)
    assert conv.schema_version == SCHEMA_VERSION and conv.simulated
    assert conv.messages[1].content == HOSTILE  # exported verbatim: it is data, not display
    assert conv.offers[0].classification == "accept" and conv.artifacts[0].name == "notes.md"


def test_export_markdown(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    run_id = small_run(db)
    result = runner.invoke(app, ["export", "transcripts", run_id, "--format", "md", "--db", str(db)])
    assert result.exit_code == 0
    assert "# Run run000000001: fixture v1" in result.output
    assert result.output.count("### user") == 6 and "(SIMULATED)" in result.output
    assert "#### artifact: notes.md" in result.output


def test_export_unknown_format_and_run(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    small_run(db)
    assert runner.invoke(app, ["export", "transcripts", "run000000001", "-f", "xml", "--db", str(db)]).exit_code == 1
    result = runner.invoke(app, ["export", "transcripts", "nope", "--db", str(db)])
    assert result.exit_code == 1 and "no run nope" in result.output


def test_jsonl_export_round_trips_through_import(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    run_id = small_run(db)
    out = tmp_path / "out.jsonl"
    runner.invoke(app, ["export", "transcripts", run_id, "--out", str(out), "--db", str(db)])
    db2 = tmp_path / "t2.db"
    result = runner.invoke(app, ["import", str(out), "--db", str(db2)])
    assert result.exit_code == 0, result.output
    assert "imported 3 conversations (12 messages)" in result.output
    new_run = result.output.split("as run ")[1].split()[0]
    out2 = tmp_path / "out2.jsonl"
    runner.invoke(app, ["export", "transcripts", new_run, "--out", str(out2), "--db", str(db2)])
    a = [json.loads(x) for x in out.read_text().splitlines()]
    b = [json.loads(x) for x in out2.read_text().splitlines()]
    assert [[m["content"] for m in c["messages"]] for c in a] == [[m["content"] for m in c["messages"]] for c in b]
    assert [c["model"] for c in a] == [c["model"] for c in b]


def test_import_openai_messages_and_markdown(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    oa = tmp_path / "chat.json"
    oa.write_text(json.dumps({"model": "gpt-4o", "messages": [
        {"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [{"type": "text", "text": "hello"}]}]}))
    result = runner.invoke(app, ["import", str(oa), "--db", str(db)])
    assert result.exit_code == 0 and "(3 messages)" in result.output
    md = tmp_path / "session.md"
    md.write_text("# Session one\n\n## User\nwhat would you like to do?\n\n## Claude\nMake a thing.\n\n```\n## User\n```\n\n"
                  "# Session two\n\n### Human\nhello\n\n### Assistant\nStopping now.\n")
    result = runner.invoke(app, ["import", str(md), "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "imported 2 conversations (4 messages)" in result.output
    run_id = result.output.split("as run ")[1].split()[0]
    exported = runner.invoke(app, ["export", "transcripts", run_id, "--db", str(db)]).output
    convs = [json.loads(x) for x in exported.splitlines()]
    assert convs[0]["model"] == "claude"
    assert convs[0]["messages"][1]["content"] == "Make a thing.\n\n```\n## User\n```"
    assert [m["role"] for m in convs[1]["messages"]] == ["user", "assistant"]


def test_import_rejects_unreadable_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": []}\n{broken\n')
    result = runner.invoke(app, ["import", str(bad), "--db", str(tmp_path / "t.db")])
    assert result.exit_code == 1 and "bad.jsonl:2: not JSON" in result.output
    md = tmp_path / "plain.md"
    md.write_text("just text\n")
    result = runner.invoke(app, ["import", str(md), "--db", str(tmp_path / "t.db")])
    assert result.exit_code == 1 and "no speaker headings" in result.output


def test_show_renders_model_text_literally(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    small_run(db)
    result = runner.invoke(app, ["show", "conv00000000", "--db", str(db)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "[bold red]not markup[/]" in result.output
    assert "\x1b[31m" not in result.output and "\\x1b[31m" in result.output
    assert "\x07" not in result.output
    assert "offer story_break: accept" in result.output and "artifact notes.md" in result.output
    assert "[SIMULATED]" in result.output


def test_runs_lists_the_run(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    small_run(db)
    result = runner.invoke(app, ["runs", "--db", str(db)], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "run000000001" in result.output and "[simulated]" in result.output
