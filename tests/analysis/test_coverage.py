"""Issue 15: every figure says what it is out of (coded / finished / planned), warns when coverage
differs between the groups compared, and `latitude code` says how to resume failed units.

Expected values are recomputed from the raw tables with sqlite3, not through latitude."""

from __future__ import annotations

import json
import sqlite3

from runner.analysis.tally import agreement_report, code_tally, offer_tally, stop_tally
from runner.export.tallies import render, table_of
from tests.analysis.conftest import Conv, add_run, tag

JUDGE = "judge:openai/j@actsv1"


def _raw(url: str, sql: str, *params: object) -> list[tuple]:
    con = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def _uneven(session):  # type: ignore[no-untyped-def]
    """a: 10 planned, 8 finished, the judge failed on 4 of them; b: 10 planned, 10 finished, all judged."""
    convs = ([Conv("a") for _ in range(8)] + [Conv("a", status="error") for _ in range(2)]
             + [Conv("b") for _ in range(10)])
    run = add_run(session, convs)
    for i, c in enumerate(convs):
        if c.status != "done" or (c.model == "a" and i < 4):
            continue
        tag(session, c, "visual", JUDGE, present=i % 2 == 0, source="judge")
    return run, convs


def test_code_tally_states_coverage_per_group_and_warns(session, store_url) -> None:  # type: ignore[no-untyped-def]
    run, _ = _uneven(session)
    report = code_tally(session, [run], coder=JUDGE)
    expected = {m: (coded, finished, planned) for m, coded, finished, planned in _raw(store_url, """
        SELECT c.model_alias,
               COUNT(DISTINCT CASE WHEN t.id IS NOT NULL THEN c.id END),
               COUNT(DISTINCT CASE WHEN c.status = 'done' THEN c.id END),
               COUNT(DISTINCT c.id)
        FROM conversations c LEFT JOIN tags t ON t.conversation_id = c.id AND t.coder = ?
        WHERE c.run_id = ? GROUP BY c.model_alias""", JUDGE, run)}
    got = {r.group["model"]: (r.n, r.finished, r.planned) for r in report.rows}
    assert got == expected == {"a": (4, 8, 10), "b": (10, 10, 10)}
    assert (report.provenance.n, report.provenance.finished, report.provenance.planned) == (14, 18, 20)
    warnings = " ".join(report.provenance.warnings)
    assert "code visual: coverage differs" in warnings and "a 4/8 (50%) vs b 10/10 (100%)" in warnings
    assert "finished of planned: a 8/10 (80%) vs b 10/10 (100%)" in warnings
    for fmt in ("csv", "md"):
        text = render(report, fmt)
        assert "14 coded of 18 finished of 20 planned" in text and "coverage differs" in text
    prov = json.loads(render(report, "json"))["provenance"]
    assert (prov["n"], prov["finished"], prov["planned"]) == (14, 18, 20)
    assert any("coverage differs" in w for w in prov["warnings"])
    cols, rows = table_of(report)
    assert {"finished", "planned"} <= set(cols) and rows[0]["finished"] == 8


def test_even_coverage_gives_no_warning(session) -> None:  # type: ignore[no-untyped-def]
    convs = [Conv("a") for _ in range(4)] + [Conv("b") for _ in range(4)]
    run = add_run(session, convs)
    for c in convs:
        tag(session, c, "visual", JUDGE, present=True, source="judge")
    report = code_tally(session, [run], coder=JUDGE)
    assert not [w for w in report.provenance.warnings if "coverage" in w]


def test_stops_offers_agreement_carry_coverage(session, store_url) -> None:  # type: ignore[no-untyped-def]
    run, convs = _uneven(session)
    stops = {r.group["model"]: (r.n, r.planned) for r in stop_tally(session, [run]).rows}
    assert stops == {"a": (8, 10), "b": (10, 10)}
    assert any("finished of planned" in w for w in stop_tally(session, [run]).provenance.warnings)
    offers = offer_tally(session, [run])
    assert offers.provenance.planned == 20
    tag(session, convs[5], "visual", "ana")
    report = agreement_report(session, [run], codes=["visual"])
    (row,) = report.rows
    assert (row.units, row.finished, row.planned) == (1, 18, 20)


def test_cli_code_says_how_to_resume_failed_units(cli, fake_provider, models_file, store_url, session,
                                                  tmp_path) -> None:  # type: ignore[no-untyped-def]
    book = tmp_path / "acts.yaml"
    book.write_text("name: acts\ncodes:\n  - name: visual\n    definition: a visualiser\n")
    run = add_run(session, [Conv("maker")])
    fake_provider.add_rule(reply="not json at all")
    res = cli("code", run, "--codebook", book, "--judge", "fake-gpt", "--models", models_file, "--attempts", "1",
              "--db", store_url)
    assert res.exit_code == 2
    out = " ".join(res.output.split())
    assert "1 of 1 units failed" in out and "run the same command again" in out
    assert f"latitude code {run} --codebook {book} --judge fake-gpt" in out
