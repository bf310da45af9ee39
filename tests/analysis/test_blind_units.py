"""`--exclude-self-coded` and `--blind-only`: counts checked against an independent count over the raw rows."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from runner.analysis.tally import TallyError, UnitFilter, agreement_report, code_tally
from runner.cli import app
from runner.store.tables import CoderSettingRow, ReviewedRow, RunRow, TagRow, utcnow
from tests.analysis.conftest import Conv, add_codebook, add_run

ROOT = Path(__file__).resolve().parents[2]
JUDGE_SELF = "judge:sim/m1@actsv1"
"""A judge whose model is the model of half the conversations (self-coded on those)."""
JUDGE_OTHER = "judge:sim/other@actsv1"

# (conversation index, coder, present, blind)
TAGS = [
    (0, "ben", True, True), (1, "ben", False, True), (2, "ben", True, True), (3, "ben", True, False),
    (4, "ben", True, False), (5, "ben", False, True),
    (0, "cat", True, True), (1, "cat", True, True), (2, "cat", True, True), (3, "cat", False, True),
    (5, "cat", False, False),
    (0, "ana", True, False), (1, "ana", True, False), (2, "ana", True, False), (6, "ana", True, False),
]
"""ben and cat code partly blind; ana is the run's researcher (every unit of hers is self-coded)."""


@pytest.fixture
def coded(session):  # type: ignore[no-untyped-def]
    book = add_codebook(session, "acts", ["visual"])
    convs = [Conv("m1" if i % 2 == 0 else "m2", litellm_model="sim/m1" if i % 2 == 0 else "sim/m2") for i in range(8)]
    run = add_run(session, convs)
    row = session.get(RunRow, run)
    row.researcher = "ana"
    session.add(row)
    for i, coder, present, blind in TAGS:
        session.add(TagRow(conversation_id=convs[i].id, code="visual", codebook_id=book.id, coder=coder,
                           present=present, blind=blind))
    for i, c in enumerate(convs):
        for judge in (JUDGE_SELF, JUDGE_OTHER):
            session.add(TagRow(conversation_id=c.id, code="visual", codebook_id=book.id, coder=judge,
                               present=i % 3 == 0, source="judge"))
    # cat read conversation 7 blind without tagging it (reviewed: every code absent), and ben read it after
    # unblinding the run
    since = utcnow() - timedelta(hours=2)
    session.add(CoderSettingRow(coder="cat", run_id=run, seed=1, blind_since=since))
    session.add(CoderSettingRow(coder="ben", run_id=run, seed=2, blind_since=since,
                                unblinded_at=since + timedelta(minutes=30)))
    session.add(ReviewedRow(conversation_id=convs[7].id, coder="cat", codebook_id=book.id))
    session.add(ReviewedRow(conversation_id=convs[7].id, coder="ben", codebook_id=book.id))
    session.commit()
    return run, convs


def _independent(coder: str, *, blind_only: bool) -> tuple[int, int]:
    """(n, count) of one person's units, from `TAGS` and the two reviewed marks, by hand."""
    units: dict[int, bool] = {}
    flags: dict[int, list[bool]] = {}
    for i, who, present, blind in TAGS:
        if who == coder:
            units[i] = units.get(i, False) or present
            flags.setdefault(i, []).append(blind)
    marked_blind = {"cat": True, "ben": False}
    if coder in marked_blind:
        units.setdefault(7, False)
        flags.setdefault(7, []).append(marked_blind[coder])
    kept = [i for i in units if not blind_only or all(flags[i])]
    return len(kept), sum(units[i] for i in kept)


@pytest.mark.parametrize("coder", ["ben", "cat"])
def test_blind_only_counts_only_units_coded_blind(coded, session, coder) -> None:  # type: ignore[no-untyped-def]
    run, _ = coded
    everything = code_tally(session, [run], by=("protocol",), coder=coder, with_tests=False).rows[0]
    blind = code_tally(session, [run], by=("protocol",), coder=coder, with_tests=False,
                       units=UnitFilter(blind_only=True))
    assert (everything.n, everything.count) == _independent(coder, blind_only=False)
    assert (blind.rows[0].n, blind.rows[0].count) == _independent(coder, blind_only=True)
    assert blind.rows[0].n < everything.n
    assert any("blind-coded units only" in m for m in blind.provenance.methods)
    assert {u.coded_how for u in blind.units} == {"blind", "unblinded"}


def test_exclude_self_coded_drops_the_researcher_and_self_judging(coded, session, convs=None) -> None:  # type: ignore[no-untyped-def]
    run, convs = coded
    units = UnitFilter(exclude_self_coded=True)
    with pytest.raises(TallyError, match="no units of 'ana' are left"):
        code_tally(session, [run], by=("protocol",), coder="ana", with_tests=False, units=units)
    # consensus of ana, ben, cat → of ben and cat alone: computed by hand
    cons = code_tally(session, [run], by=("protocol",), coder="consensus", with_tests=False, units=units).rows[0]
    votes: dict[int, list[bool]] = {}
    for i, who, present, _ in TAGS:
        if who != "ana":
            votes.setdefault(i, []).append(present)
    votes.setdefault(7, []).extend([False, False])  # both marked it reviewed, no tag: absent
    decided = {i: sum(v) * 2 > len(v) for i, v in votes.items() if len(v) >= 2 and sum(v) * 2 != len(v)}
    assert (cons.n, cons.count) == (len(decided), sum(decided.values()))
    # the judge of model m1 codes only the m2 conversations once its own are left out
    judged = code_tally(session, [run], by=("model",), coder=JUDGE_SELF, with_tests=False, units=units)
    by_model = {r.group["model"]: r.n for r in judged.rows}
    assert by_model.get("m1", 0) == 0 and by_model["m2"] == 4
    other = code_tally(session, [run], by=("model",), coder=JUDGE_OTHER, with_tests=False, units=units)
    assert {r.group["model"]: r.n for r in other.rows} == {"m1": 4, "m2": 4}
    how = {(u.coder, u.conversation_id): u.coded_how for u in judged.units}
    assert how[(JUDGE_SELF, convs[0].id)] == "self-coded" and how[(JUDGE_SELF, convs[1].id)] == "unblinded"


def test_a_coder_whose_every_unit_is_left_out_is_not_named(coded, session) -> None:  # type: ignore[no-untyped-def]
    """ana (the researcher) also marked a conversation reviewed without tagging it: with
    --exclude-self-coded that unit goes too, so the consensus is ben's and cat's alone."""
    run, convs = coded
    book_id = session.exec(select(TagRow.codebook_id)).first()
    session.add(ReviewedRow(conversation_id=convs[4].id, coder="ana", codebook_id=book_id))
    session.commit()
    everything = code_tally(session, [run], by=("protocol",), coder="consensus", with_tests=False)
    assert "ana" in everything.provenance.coders
    kept = code_tally(session, [run], by=("protocol",), coder="consensus", with_tests=False,
                      units=UnitFilter(exclude_self_coded=True))
    assert "ana" not in kept.provenance.coders and set(kept.provenance.coders) == {"ben", "cat"}
    assert any(u.coder == "ana" and not u.counted for u in kept.units)


def test_agreement_blind_only(coded, session) -> None:  # type: ignore[no-untyped-def]
    run, _ = coded
    report = agreement_report(session, [run], coders=["ben", "cat"], units=UnitFilter(blind_only=True))
    row = next(r for r in report.rows if r.coders == ("ben", "cat"))
    ben = {i for i, who, _, blind in TAGS if who == "ben" and blind}
    cat = {i for i, who, _, blind in TAGS if who == "cat" and blind} | {7}
    assert row.units == len(ben & cat)
    everything = agreement_report(session, [run], coders=["ben", "cat"])
    assert next(r for r in everything.rows if r.coders == ("ben", "cat")).units > row.units


def test_cli_flags_and_the_export_says_how_each_unit_was_coded(coded, store_url, tmp_path) -> None:  # type: ignore[no-untyped-def]
    run, convs = coded
    cli = CliRunner()
    out = tmp_path / "t.json"
    res = cli.invoke(app, ["tally", run, "--coder", "cat", "--blind-only", "--format", "json", "--out", str(out),
                           "--db", store_url])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    units = {(u["coder"], u["conversation_id"]): (u["coded_how"], u["counted"]) for u in data["detail"]["units"]}
    assert units[("cat", convs[7].id)] == ("blind", True)
    assert units[("cat", convs[5].id)] == ("unblinded", False)
    assert sum(r["n"] for r in data["rows"]) == _independent("cat", blind_only=True)[0]  # by model: m1 + m2
    res = cli.invoke(app, ["tally", run, "--coder", "consensus", "--exclude-self-coded", "--db", store_url],
                     env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    assert "self-coded units excluded" in res.output
    res = cli.invoke(app, ["agreement", run, "--coder", "ben", "--coder", "cat", "--blind-only", "--db", store_url],
                     env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    assert "blind-coded units only" in res.output
    res = cli.invoke(app, ["tally", run, "--what", "stops", "--blind-only", "--db", store_url])
    assert res.exit_code == 1


def test_run_researcher_is_stored_and_carried_by_rerun(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    cli = CliRunner()
    res = cli.invoke(app, ["run", str(ROOT / "protocols/open-latitude.yaml"), "-m", "anthropic/claude-x",
                           "--replicates", "1", "--dry-run", "--researcher", "ana", "--db", str(db)])
    assert res.exit_code == 0, res.output
    with sqlite3.connect(db) as c:
        first = c.execute("select id, researcher from runs").fetchone()
    assert first[1] == "ana"
    res = cli.invoke(app, ["rerun", first[0], "--db", str(db)])
    assert res.exit_code == 0, res.output
    with sqlite3.connect(db) as c:
        assert [r[0] for r in c.execute("select researcher from runs order by started_at, rowid")] == ["ana", "ana"]
