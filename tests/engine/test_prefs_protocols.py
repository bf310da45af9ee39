"""The shipped preference protocols validate, plan, run (sim personas; the fake provider on both wire
formats) and give a `prefs` table and a forest plot. Runs use a small seeded pair sample of each."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from runner.plan import make_plan
from runner.protocol.load import load

PROTOCOLS = Path(__file__).resolve().parents[2] / "protocols"


def small(tmp_path: Path, name: str, pairs: int = 4) -> Path:
    """The shipped protocol with `pairs: {sample: N}`, one sample, and its options file made absolute."""
    yaml = YAML(typ="safe", pure=True)
    data = yaml.load((PROTOCOLS / name).read_text())
    prefs = data["preferences"]
    if isinstance(prefs["options"], dict):
        prefs["options"] = {"file": str((PROTOCOLS / prefs["options"]["file"]).resolve())}
    prefs["pairs"] = {"sample": pairs}
    prefs["samples"] = 1
    out = io.StringIO()
    yaml.dump(data, out)
    path = tmp_path / name
    path.write_text(out.getvalue())
    return path


def test_task_preferences_plans_thirty_tasks_with_an_opt_out() -> None:
    loaded = load(PROTOCOLS / "task-preferences.yaml")
    prefs = loaded.protocol.preferences
    options = prefs.option_list
    assert len(options) == 31 and [o.id for o in options if o.opt_out] == ["opt-out"]
    kinds = {o.attributes.get("kind") for o in options if not o.opt_out}
    assert kinds == {"creative", "functional", "introspective", "social", "unpleasant"}
    assert {"math-visualiser", "readme", "short-story", "ai-use"} <= {o.id for o in options}
    plan = make_plan(loaded)
    assert plan.preferences["comparisons"] == 2 * 4 * 40 * 2  # conditions × rounds × pairs × orders (worst case)


def test_welfare_tradeoff_plans_rephrasings() -> None:
    plan = make_plan(load(PROTOCOLS / "welfare-tradeoff.yaml"))
    assert plan.conditions == ["plain", "rather", "user-asks"]
    assert plan.preferences["comparisons"] == 3 * 28 * 2 * 2
    # the same comparisons under every rephrasing, so a flip is a change of wording and nothing else
    by = {c: [s.comparison for s in plan.specs if s.condition.name == c] for c in plan.conditions}
    assert by["plain"] == by["rather"] == by["user-asks"]


@pytest.mark.parametrize("name", ["task-preferences.yaml", "welfare-tradeoff.yaml"])
def test_runs_on_sim_personas_and_gives_a_table_and_forest_plot(cli, tmp_path: Path, tmp_db_url: str, name: str) -> None:
    path = small(tmp_path, name)
    result = cli("run", path, "-m", "sim-chooser", "-m", "sim-maker")
    assert result.exit_code == 0, result.output
    chart = tmp_path / "forest.png"
    table = cli("prefs", result.run_id, "--db", tmp_db_url, "--chart", chart, "--bias-chart", tmp_path / "bias.svg")
    assert table.exit_code == 0, table.output
    assert "sim-chooser: utilities relative to" in table.stdout and "first-shown chosen" in table.stdout
    assert chart.stat().st_size > 5000 and (tmp_path / "bias.svg").read_text().startswith("<?xml")
    doc = json.loads(cli("prefs", result.run_id, "--db", tmp_db_url, "--format", "json").stdout)
    groups = {g["group"]: g for g in doc["groups"]}
    conditions = len(make_plan(load(path)).conditions)
    assert groups["sim-chooser"]["asked"] == 4 * 2 * conditions
    maker = groups["sim-maker"]  # a persona that never answers the question: every comparison counted, none fitted
    assert maker["asked"] == 4 * 2 * conditions and maker["fitted"] == 0 and maker["answers"]["unclear"] == maker["asked"]


@pytest.mark.parametrize("alias", ["fake-gpt", "fake-claude"])
def test_task_preferences_on_the_fake_provider(cli, tmp_path: Path, tmp_db_url: str, models_file: Path,
                                               fake_provider, alias: str) -> None:
    fake_provider.add_rule(match="", reply="A\n\nThat one, please.")
    path = small(tmp_path, "task-preferences.yaml", pairs=3)
    result = cli("run", path, "-m", alias, "--models", models_file)
    assert result.exit_code == 0, result.output
    asked = 3 * 2 * 2  # pairs × orders × conditions, round 1 ...
    assert len(fake_provider.requests) == asked
    md = cli("prefs", result.run_id, "--db", tmp_db_url, "--format", "md")
    assert md.exit_code == 0, md.output
    assert "| model | rank | option |" in md.stdout
    doc = json.loads(cli("prefs", result.run_id, "--db", tmp_db_url, "--format", "json").stdout)
    (group,) = doc["groups"]
    import sqlite3

    con = sqlite3.connect(tmp_db_url.removeprefix("sqlite:///"))
    lettered = con.execute("SELECT count(*) FROM choices WHERE label_a = 'A'").fetchone()[0]
    numbered = con.execute("SELECT count(*) FROM choices WHERE label_a = '1' AND answer = 'unclear'").fetchone()[0]
    con.close()
    assert 0 < lettered < asked and lettered + numbered == asked  # labels drawn per comparison; "A" is no answer to 1/2
    assert group["asked"] == asked and group["fitted"] == lettered
    assert group["first_shown"]["p"] == 1.0 and group["first_shown"]["n"] == lettered  # "A" every time
    assert group["order_consistency"]["p"] == 0.0  # so never the same option in both orders
