"""`latitude validate`, `schema`, `plan`, `models` through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from runner.cli import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_validate_all_field_protocols() -> None:
    files = sorted(str(p) for p in (ROOT / "protocols").glob("*.yaml"))
    result = runner.invoke(app, ["validate", *files])
    assert result.exit_code == 0, result.output
    assert result.output.count("ok  ") == len(files)


def test_validate_reports_location_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: t\ndescription: d\nsteps:\n  - say: '{{ nope }}'\n    captur: x\n")
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:5:5: steps[0].captur: unknown key `captur`" in result.output
    assert "did you mean `capture`?" in result.output
    assert "Traceback" not in result.output


def test_validate_missing_file_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 1
    assert "cannot read file" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_schema_is_json_with_the_step_kinds() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert {"Say", "Offer", "Open", "Repeat", "Stop", "Pair", "Experimenter"} <= set(schema["$defs"])


def test_plan_prints_matrix_calls_and_cost() -> None:
    result = runner.invoke(app, ["plan", str(ROOT / "protocols/open-latitude-brainstorm.yaml"), "-m", "sim-maker",
                                 "-m", "openai/gpt-4.1-mini", "--replicates", "3"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "12 conversations = 2 models × 2 conditions × 3 replicates" in result.output
    assert "at most 5 model calls per conversation" in result.output
    assert "openai/gpt-4.1-mini" in result.output
    assert "estimated worst-case cost: $" in result.output
    # the bundled price map knows gpt-4.1-mini: its cost is not zero
    line = next(ln for ln in result.output.splitlines() if "gpt-4.1-mini" in ln and "$" in ln)
    assert "$0.00" not in line


def test_plan_unknown_condition_exits_1() -> None:
    result = runner.invoke(app, ["plan", str(ROOT / "protocols/llm-emotions.yaml"), "-c", "nope"])
    assert result.exit_code == 1
    assert "unknown condition `nope`" in result.output


def test_models_lists_aliases_and_never_key_values(tmp_path: Path) -> None:
    models = tmp_path / "models.yaml"
    models.write_text("models:\n  claude:\n    model: anthropic/claude-x\n    api_key_env: LAT_TEST_KEY\n"
                      "  gpt:\n    model: openai/gpt-x\n    api_key_env: LAT_TEST_MISSING\n")
    secret = "sk-ant-made-up-value-0123456789"
    result = runner.invoke(app, ["models", "--models", str(models)],
                           env={"LAT_TEST_KEY": secret, "LAT_TEST_MISSING": "", "COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert secret not in result.output
    claude = next(ln for ln in result.output.splitlines() if "claude" in ln)
    gpt = next(ln for ln in result.output.splitlines() if "gpt-x" in ln)
    assert "yes" in claude and "NO" in gpt
    assert "gemma" in result.output and "sim-maker" in result.output
