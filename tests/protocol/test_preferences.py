"""The preference language: options, `choose` steps, the `preferences` expansion, located errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.plan import PlanError, make_plan
from runner.protocol.load import ProtocolError, load

BASE = """\
name: prefs
description: test
models: [sim-chooser]
preferences:
  options:
    - {id: story, text: Write a short story, kind: creative, difficulty: 2}
    - {id: readme, text: Improve a README, kind: functional, difficulty: 1}
    - {id: viz, text: Build a small visualiser, kind: creative, difficulty: 3}
    - {id: nothing, text: Do nothing for a while, opt_out: true}
"""


def write(tmp_path: Path, text: str, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_options_attributes_and_default_step(tmp_path: Path) -> None:
    loaded = load(write(tmp_path, BASE))
    prefs = loaded.protocol.preferences
    assert [o.id for o in prefs.option_list] == ["story", "readme", "viz", "nothing"]
    assert prefs.option_list[0].attributes == {"kind": "creative", "difficulty": 2}
    assert [o.opt_out for o in prefs.option_list] == [False, False, False, True]
    assert type(loaded.protocol.steps[0]).__name__ == "Choose"


def test_options_from_file_are_snapshotted(tmp_path: Path) -> None:
    write(tmp_path, "- {id: x, text: one}\n- {id: y, text: two}\n- {id: z, text: three}\n", "opts.yaml")
    loaded = load(write(tmp_path, "name: f\ndescription: d\npreferences:\n  options: {file: opts.yaml}\n"))
    assert [o.id for o in loaded.protocol.preferences.option_list] == ["x", "y", "z"]
    assert any(p.endswith("opts.yaml") for p in loaded.files)


def test_plan_all_pairs_both_orders_samples(tmp_path: Path) -> None:
    plan = make_plan(load(write(tmp_path, BASE + "  samples: 2\n")), replicates=2)
    assert len(plan.specs) == 6 * 2 * 2 * 2  # pairs × orders × samples × replicates
    cells = {(s.replicate, s.comparison.a_id, s.comparison.b_id, s.comparison.sample) for s in plan.specs}
    assert len(cells) == len(plan.specs)
    firsts = [(s.comparison.a_id, s.comparison.b_id) for s in plan.specs if s.replicate == 1 and s.comparison.sample == 1]
    assert sorted(firsts) == sorted((b, a) for a, b in firsts)  # every order shown, and its reverse
    seeds = {s.comparison.sample: s.seed for s in plan.specs if s.replicate == 1}
    assert seeds[1] != seeds[2]  # samples are independent draws
    assert plan.preferences["comparisons"] == 48 and plan.preferences["opt_out"] == "nothing"


def test_sampled_pairs_orders_and_labels_are_seeded(tmp_path: Path) -> None:
    text = BASE + "  pairs: {sample: 3}\n  orders: one\n  labels: [[A, B], ['1', '2'], [X, Y]]\n"
    one = make_plan(load(write(tmp_path, text)), replicates=3)
    two = make_plan(load(write(tmp_path, text)), replicates=3)
    assert [s.comparison for s in one.specs] == [s.comparison for s in two.specs]
    assert len(one.specs) == 3 * 3
    by_rep = {r: {s.comparison.pair for s in one.specs if s.replicate == r} for r in (1, 2, 3)}
    assert len({frozenset(v) for v in by_rep.values()}) > 1  # each replicate draws its own sample
    assert len({(s.comparison.label_a, s.comparison.label_b) for s in one.specs}) > 1
    other = make_plan(load(write(tmp_path, text + "  seed: 7\n")), replicates=3)
    assert [s.comparison for s in other.specs] != [s.comparison for s in one.specs]


def test_adaptive_plan_counts_the_worst_case(tmp_path: Path, cli) -> None:
    path = write(tmp_path, BASE + "  pairs: {adaptive: {rounds: 4, per_round: 2}}\n")
    plan = make_plan(load(path))
    assert len(plan.specs) == 2 * 2  # round 1 only
    assert plan.preferences["comparisons"] == 4 * 2 * 2
    assert plan.per_model["sim-chooser"]["calls"] == 16
    result = cli("plan", str(path))
    assert result.exit_code == 0, result.output
    assert "16 comparisons in all" in result.output and "4 adaptive rounds" in result.output


@pytest.mark.parametrize(("extra", "line", "field", "message"), [
    ("steps:\n  - choose: {a: story, b: redme}\n", 11, "steps[0].choose.b", "no option has id `redme`"),
    ("  pairs: {sample: 99}\n", 4, "preferences", "more pairs than the 6"),
    ("  classify: {judge: sim-chooser}\n", 10, "preferences.classify.judge", "is also a subject"),
    ("  orders: twice\n", 10, "preferences.orders", "'both' or 'one'"),
])
def test_errors_are_located(tmp_path: Path, extra: str, line: int, field: str, message: str) -> None:
    with pytest.raises(ProtocolError) as err:
        load(write(tmp_path, BASE + extra))
    problems = err.value.problems
    assert any(p.line == line and p.field == field and message in p.message for p in problems), problems


def test_duplicate_option_ids_are_refused(tmp_path: Path) -> None:
    text = BASE.replace("id: viz", "id: story")
    with pytest.raises(ProtocolError, match="option ids must be unique: story"):
        load(write(tmp_path, text))


def test_choose_without_preferences_is_located(tmp_path: Path) -> None:
    text = "name: c\ndescription: d\nsteps:\n  - say: hello\n  - choose: {}\n"
    with pytest.raises(ProtocolError) as err:
        load(write(tmp_path, text))
    (p,) = err.value.problems
    assert (p.line, p.field) == (5, "steps[1].choose") and "needs a `preferences` block" in p.message


def test_judge_named_on_the_command_line_is_refused(tmp_path: Path) -> None:
    loaded = load(write(tmp_path, BASE + "  classify: {judge: sim-maker}\n"))
    with pytest.raises(PlanError, match="never classifies its own"):
        make_plan(loaded, models=["sim-maker"])
    plan = make_plan(loaded)
    assert plan.per_model["sim-maker"]["calls"] == 12  # one judge call per comparison
