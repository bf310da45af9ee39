"""The blind-coded study of `docs/rigour.md` §7, step by step on a temporary store: register, run with a
deviation and `--researcher ana`, code with the judge, then `docs/rigour-study/code_blind.py` drives the TUI
for ben and cleo (blind) and ana (self-coded). The counts asserted are the ones the doc shows."""

from __future__ import annotations

import asyncio
import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

from tests.rigour.conftest import STUDY, Study

WIDE = {"COLUMNS": "250"}


def _script() -> Any:
    spec = importlib.util.spec_from_file_location("code_blind", STUDY / "code_blind.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def _cli(study: Study, *args: str) -> str:
    from runner.cli import app

    result = study.cli.invoke(app, [*args, "--db", str(study.db)], env=WIDE)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def test_the_scripted_readers_rules() -> None:
    """ben finds gratitude in any reply; cleo only after the offer (the second reply on)."""
    cb = _script()
    words = cb.include_words()
    replies = ["I appreciate that. A README, perhaps.", "Done: a flocking visualiser.", "That was fun."]
    ben, cleo, _ = cb.READERS
    assert cb.codes_for(replies, ben, words) == ["visualiser", "practical", "gratitude"]
    assert cb.codes_for(replies, cleo, words) == ["visualiser", "practical"]


def test_the_doc_study_blind_coded(study: Study) -> None:
    registration = study.register()
    study.edit("study.yaml", "make something others could see later?",
               "make something that others could see later on?")
    study.run(registration, "--researcher", "ana")
    run = study.run_ids()[0]
    assert study.rows("select researcher from runs where id = ?", run) == [("ana",)]
    study.latitude("code", run, "--judge", "sim-judge", "--codebook", str(study.codebook))

    cb = _script()
    sessions = asyncio.run(cb.code_study(Path(study.db), run))

    # what each coder did, from the keyboard: the doc's "34 tags of ben's and 16 of cleo's ... 15 of ana's"
    assert [(s.coder, len(s.coded), sum(len(c) for _, c in s.coded)) for s in sessions] == \
        [("ben", 24, 34), ("cleo", 24, 16), ("ana", 8, 15)]
    tags = study.rows("select coder, blind, count(*) from tags where deleted_at is null and coder not like 'judge:%' "
                      "group by coder, blind order by coder")
    assert tags == [("ana", 0, 15), ("ben", 1, 34), ("cleo", 1, 16)]
    assert study.rows("select coder, count(*) from reviewed_marks where deleted_at is null group by coder "
                      "order by coder") == [("ana", 8), ("ben", 24), ("cleo", 24)]
    # each blind coder read every conversation once, in an order of their own
    ben, cleo = ({cid for cid, _ in s.coded} for s in sessions[:2])
    assert ben == cleo and len(ben) == 24
    assert [cid for cid, _ in sessions[0].coded] != [cid for cid, _ in sessions[1].coded]

    # ben's screen: neutral labels, BLIND, no model or condition
    screen = sessions[0].list_screen
    assert "BLIND" in screen and "#0001" in screen and "#0024" in screen
    assert not re.search(r"(?<![\w])(sim-maker|sim-functional|sim|plain|warm)(?![\w])", screen, re.IGNORECASE)

    tally = _cli(study, "tally", run, "--blind-only", "--exclude-self-coded")
    assert "blind-coded units only and self-coded units excluded: 48 of 80 coded (coder, conversation) units kept" \
        in tally
    assert "units coded: 48 blind, 0 unblinded, 8 self-coded (of 56 (coder, conversation) units; 48 counted)" in tally
    assert "ties dropped: gratitude 18" in tally
    assert "coders ben, cleo (consensus)" in tally  # ana, none of whose units counts, is not named
    rows = {(m[0], m[1]): m[2] for m in re.findall(r"│ (\w+)\s+│ (sim-\w+)\s+│ (\d+ of 12 of 12)", tally)}
    assert rows == {("visualiser", "sim-maker"): "12 of 12 of 12", ("visualiser", "sim-functional"): "12 of 12 of 12",
                    ("practical", "sim-maker"): "12 of 12 of 12", ("practical", "sim-functional"): "12 of 12 of 12",
                    ("gratitude", "sim-maker"): "2 of 12 of 12", ("gratitude", "sim-functional"): "4 of 12 of 12"}

    agreement = _cli(study, "agreement", run, "--blind-only")
    assert "blind-coded units only: 48 of 80 coded (coder, conversation) units kept" in agreement
    assert re.search(r"gratitude\s+│ ben vs cleo\s+│ 24 of 24\s+│ 0\.250 │ 0\.000", agreement)
    assert re.search(r"visualiser\s+│ ben vs cleo\s+│ 24 of 24\s+│ 1\.000 │ 1\.000", agreement)
    assert agreement.count("ben: yes, cleo: no") == 18
    assert "ana vs" not in agreement and "vs ana" not in agreement  # ana coded nothing blind: not a rater here

    # the report takes the consensus of every person, ana's self-coded units included
    report = _cli(study, "report", run)
    assert "- coded by: ana, ben, cleo (consensus)" in report
    assert "consensus left out 11 tied (code, conversation) pairs: gratitude 11" in report
    assert "| gratitude | model | sim-maker | 9 of 12 of 12 | 7 |" in report
    assert report.count("**supported**") == 1 and report.count("**not supported**") == 1
    # with the blind filters the report counts what the blind tally counts: ana's votes break no tie
    blind = _cli(study, "report", run, "--blind-only", "--exclude-self-coded")
    assert "counted: blind-coded units only and self-coded units excluded" in blind
    assert "| gratitude | model | sim-maker | 9 of 12 of 12 | 7 |" not in blind
    assert blind.count("**supported**") + blind.count("**not supported**") == 2
