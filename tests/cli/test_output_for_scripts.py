"""Output a script (or a log) can read: whole ids when piped, `--format json|tsv` on listings, and a
failed conversation's error text named by `show` and `export`."""

from __future__ import annotations

import io
import json
from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner

from runner.cli import app
from runner.display import RunDisplay
from runner.engine.events import RunStarted
from runner.store import StoreWriter
from runner.store.tables import ConversationRow, MessageRow, RunRow
from tests.data.builders import small_run

runner = CliRunner()

LONG_ID = "run-" + "0123456789abcdef" * 4  # longer than any 80-column table would leave it
ERROR_TEXT = "AuthenticationError: Incorrect API key provided (status 401) after 5 attempts"


def failed_run(db: Path) -> str:
    """A run with a long id: one conversation done, one failed with its error text stored."""
    url = f"sqlite:///{db}"
    small_run(db, run_id=LONG_ID, conversations=1)
    with StoreWriter(url) as w:
        w.add_sync(ConversationRow(
            id="convfailed01", run_id=LONG_ID, seq=1, model_alias="gpt", litellm_model="openai/gpt-x", vendor="openai",
            simulated=False, condition="default", replicate=2, params_json="{}", kind="single", status="error",
            stop_reason="error:auth", stop_detail=ERROR_TEXT, turns=0, tokens_in=0, tokens_out=0, cost=0.0))
        w.add_sync(MessageRow(conversation_id="convfailed01", idx=0, role="user", speaker="user", step="steps[0]",
                              content="hello?"))
    return LONG_ID


def test_runs_piped_keeps_every_id_whole(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    failed_run(db)
    result = runner.invoke(app, ["runs", "--db", str(db)])  # CliRunner: not a terminal, 80 columns
    assert result.exit_code == 0, result.output
    assert LONG_ID in result.output
    assert "…" not in result.output


def test_runs_as_json_and_tsv(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    failed_run(db)
    as_json = runner.invoke(app, ["runs", "--db", str(db), "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    runs = {r["run"]: r for r in json.loads(as_json.stdout)}
    assert set(runs) == {LONG_ID}
    assert (runs[LONG_ID]["conversations"], runs[LONG_ID]["done"], runs[LONG_ID]["error"]) == (2, 1, 1)
    assert runs[LONG_ID]["simulated"] is True and runs[LONG_ID]["tokens_in"] == 30

    as_tsv = runner.invoke(app, ["runs", "--db", str(db), "-f", "tsv"])
    assert as_tsv.exit_code == 0, as_tsv.output
    header, *lines = as_tsv.stdout.splitlines()
    assert header.split("\t")[:3] == ["run", "protocol", "version"]
    assert [line.split("\t")[0] for line in lines] == [LONG_ID]
    assert all(len(line.split("\t")) == len(header.split("\t")) for line in lines)


def test_unknown_format_is_refused(tmp_path: Path) -> None:
    result = runner.invoke(app, ["runs", "--db", str(tmp_path / "t.db"), "--format", "yaml"])
    assert result.exit_code == 1
    assert "unknown format 'yaml'" in result.output


def test_models_as_json_and_tsv(tmp_path: Path) -> None:
    models = tmp_path / "models.yaml"
    models.write_text("models:\n  claude:\n    model: anthropic/claude-x\n    api_key_env: LAT_TEST_KEY\n    rpm: 50\n")
    secret = "sk-ant-made-up-value-0123456789"
    as_json = runner.invoke(app, ["models", "--models", str(models), "--format", "json"],
                            env={"LAT_TEST_KEY": secret})
    assert as_json.exit_code == 0, as_json.output
    assert secret not in as_json.output
    rows = {r["alias"]: r for r in json.loads(as_json.stdout)}
    assert rows["claude"] == {"alias": "claude", "model": "anthropic/claude-x", "vendor": "anthropic",
                              "simulated": False, "key_variable": "LAT_TEST_KEY", "key_set": True, "rpm": 50,
                              "tpm": None, "max_concurrency": None}
    assert rows["sim-maker"]["simulated"] is True
    as_tsv = runner.invoke(app, ["models", "--models", str(models), "--format", "tsv"], env={"LAT_TEST_KEY": ""})
    claude = next(line for line in as_tsv.stdout.splitlines() if line.startswith("claude\t"))
    assert claude.split("\t")[:6] == ["claude", "anthropic/claude-x", "anthropic", "false", "LAT_TEST_KEY", "false"]


def test_show_names_the_error_of_a_failed_conversation(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    failed_run(db)
    result = runner.invoke(app, ["show", "convfailed01", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert f"error: {ERROR_TEXT}" in result.output
    done = runner.invoke(app, ["show", "conv00000000", "--db", str(db)])
    assert "error:" not in done.output


def test_export_names_the_error_of_a_failed_conversation(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    run_id = failed_run(db)
    jsonl = runner.invoke(app, ["export", "transcripts", run_id, "--db", str(db)])
    assert jsonl.exit_code == 0, jsonl.output
    convs = {c["id"]: c for c in map(json.loads, jsonl.stdout.splitlines())}
    assert convs["convfailed01"]["error"] == ERROR_TEXT
    assert convs["conv00000000"]["error"] is None
    md = runner.invoke(app, ["export", "transcripts", run_id, "--db", str(db), "--format", "md"])
    assert md.exit_code == 0, md.output
    assert f"**error:** {ERROR_TEXT}" in md.stdout
    assert md.stdout.count("**error:**") == 1


def test_run_display_piped_prints_whole_values() -> None:
    buffer = io.StringIO()
    out = Console(file=buffer, width=80, force_terminal=False)
    display = RunDisplay(out)
    alias = "a-model-alias-that-is-rather-long-for-a-table"
    display(RunStarted(run_id=LONG_ID, totals={alias: 4}, already_done={}))
    with display:
        pass
    text = buffer.getvalue()
    assert f"run {LONG_ID}" in text
    row = next(line for line in text.splitlines() if line.startswith(alias))
    assert row.split("\t")[1:3] == ["0", "4"]
    assert "…" not in text
