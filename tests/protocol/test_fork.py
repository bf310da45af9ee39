"""A protocol's `fork:`: bad values fail with file, line and field; a good one is planned and shown
by `latitude plan` (each conversation's continuations counted in the worst case)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.plan import make_plan
from runner.protocol import ProtocolError, load

HEAD = "name: t\ndescription: d\nmodels: [sim-maker]\nsteps:\n  - id: intro\n    say: hi\n  - say: more\n"
"""Two steps (the first named `intro`); `fork:` goes after them, on line 8."""

CASES = [
    ("unknown-step", HEAD + "fork:\n  at: intr\n  samples: 3\n", 9, "fork.at", "no step has id `intr`"),
    ("samples-zero", HEAD + "fork:\n  at: intro\n  samples: 0\n", 10, "fork.samples", "greater than or equal to 1"),
    ("samples-huge", HEAD + "fork:\n  at: intro\n  samples: 5000\n", 10, "fork.samples", "less than or equal to 1000"),
    ("samples-missing", HEAD + "fork:\n  at: intro\n", 8, "fork.samples", "required key"),
    ("at-zero", HEAD + "fork:\n  at: 0\n  samples: 2\n", 9, "fork.at", "greater than or equal to 1"),
    ("unknown-key", HEAD + "fork:\n  at: intro\n  samples: 2\n  sample: 3\n", 11, "fork.sample", "unknown key"),
    ("pair-step-id", "name: t\ndescription: d\nmodels: [sim-maker]\npair:\n  opener: hi\nfork:\n  at: intro\n  samples: 2\n",
     7, "fork.at", "a pair protocol has no steps to name"),
]


@pytest.mark.parametrize(("yaml", "line", "field", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_fork_is_located(tmp_path: Path, yaml: str, line: int, field: str, words: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(yaml)
    with pytest.raises(ProtocolError) as info:
        load(path)
    match = [p for p in info.value.problems if words.lower() in p.message.lower()]
    assert match, [str(p) for p in info.value.problems]
    assert (match[0].path, match[0].line, match[0].field) == (str(path), line, field), str(match[0])


def test_unknown_step_gets_a_did_you_mean(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(HEAD + "fork:\n  at: intr\n  samples: 3\n")
    with pytest.raises(ProtocolError) as info:
        load(path)
    assert info.value.problems[0].hint == "did you mean `intro`?"


def test_a_fork_is_planned_and_counted_in_the_worst_case(tmp_path: Path, cli) -> None:
    plain, forked = tmp_path / "plain.yaml", tmp_path / "forked.yaml"
    plain.write_text(HEAD + "replicates: 2\n")
    forked.write_text(HEAD + "replicates: 2\nfork:\n  at: intro\n  samples: 3\n")
    a, b = make_plan(load(plain)), make_plan(load(forked))
    assert b.forks == {"at": "intro", "where": "step `intro`", "samples": 3, "conversations": 6, "seed": None}
    assert b.per_model["sim-maker"]["calls"] == 4 * a.per_model["sim-maker"]["calls"]
    assert b.per_model["sim-maker"]["conversations"] == 2 + 6
    result = cli("plan", forked)
    assert result.exit_code == 0, result
    assert ("forks: 3 continuations of each conversation from its model reply at step `intro` (the history before "
            "it replayed, never sent): up to 6 more conversations") in " ".join(result.stdout.split())
