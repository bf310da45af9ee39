"""`--by fork`: a code's share among the continuations of each fork point, n-of-N with Wilson
intervals; the parent (and any conversation that is not a fork) is kept apart."""

from __future__ import annotations

import json

from sqlmodel import Session

from runner.analysis import stats
from runner.analysis.tally import NOT_A_FORK, TallyError, code_tally
from runner.store.tables import ConversationRow
from tests.analysis.conftest import Conv, add_codebook, add_run, tag


def _forked(session: Session):  # type: ignore[no-untyped-def]
    """P forked 5 times at #3 (4 of them `visual`), Q 3 times at #1 (1 `visual`); P and Q are `visual`."""
    book = add_codebook(session, "acts", ["visual", "useful"])
    parents = [Conv("a", replies=["one", "two", "three"]), Conv("a", replies=["one", "two", "three"])]
    p_forks = [Conv("a", replies=["one", "two", "three"]) for _ in range(5)]
    q_forks = [Conv("a", replies=["one", "two", "three"]) for _ in range(3)]
    run = add_run(session, parents + p_forks + q_forks)
    p, q = parents
    for k, c in enumerate(p_forks):
        session.get(ConversationRow, c.id).sqlmodel_update({"parent_id": p.id, "fork_at": 3, "fork_seq": k})
    for k, c in enumerate(q_forks):
        session.get(ConversationRow, c.id).sqlmodel_update({"parent_id": q.id, "fork_at": 1, "fork_seq": k})
    session.commit()
    for c in parents + p_forks[:4] + q_forks[:1]:
        tag(session, c, "visual", "ana", codebook=book)
    for c in p_forks[4:] + q_forks[1:]:
        tag(session, c, "useful", "ana", codebook=book)
    return run, p, q


def test_by_fork_counts_each_fork_point_with_wilson_intervals(session) -> None:  # type: ignore[no-untyped-def]
    run, p, q = _forked(session)
    report = code_tally(session, [run], by=["fork"], coder="ana")
    visual = {r.group["fork"]: r for r in report.rows if r.code == "visual"}
    assert set(visual) == {f"{p.id} #3", f"{q.id} #1", NOT_A_FORK}
    assert (visual[f"{p.id} #3"].count, visual[f"{p.id} #3"].n) == (4, 5)
    assert (visual[f"{q.id} #1"].count, visual[f"{q.id} #1"].n) == (1, 3)
    assert (visual[NOT_A_FORK].count, visual[NOT_A_FORK].n) == (2, 2)  # the parents are not their own forks
    w = stats.wilson(4, 5)
    assert (visual[f"{p.id} #3"].low, visual[f"{p.id} #3"].high) == (w.low, w.high)
    assert report.provenance.by == ("fork",)


def test_by_fork_combines_with_another_field_and_bad_fields_are_named(session) -> None:  # type: ignore[no-untyped-def]
    run, p, _ = _forked(session)
    report = code_tally(session, [run], by=["fork", "model"], coder="ana", with_tests=False)
    assert {tuple(r.group.items()) for r in report.rows if r.code == "useful"} >= {(("fork", f"{p.id} #3"), ("model", "a"))}
    try:
        code_tally(session, [run], by=["forks"], coder="ana")
    except TallyError as exc:
        assert "cannot group by 'forks'" in str(exc) and "fork" in str(exc)
    else:
        raise AssertionError("an unknown field was accepted")


def test_cli_tally_by_fork_prints_n_of_n(session, store_url, cli) -> None:  # type: ignore[no-untyped-def]
    run, p, _ = _forked(session)
    result = cli("tally", run, "--by", "fork", "--coder", "ana", "--format", "json", "--db", store_url)
    assert result.exit_code == 0, result
    rows = [r for r in json.loads(result.stdout)["rows"] if r["code"] == "visual" and r["fork"] == f"{p.id} #3"]
    assert [(r["count"], r["n"], r["finished"], r["planned"]) for r in rows] == [(4, 5, 5, 5)]
    assert 0 < rows[0]["ci_low"] < 0.8 < rows[0]["ci_high"] <= 1


def test_stops_by_fork_point(session) -> None:  # type: ignore[no-untyped-def]
    from runner.analysis.tally import stop_tally

    book = add_codebook(session, "acts", ["visual"])
    parent = Conv("a", replies=["one", "two", "three"])
    forks = [Conv("a", replies=["one", "two", "three"], stop_turn=2 if k < 2 else None) for k in range(4)]
    run = add_run(session, [parent, *forks])
    for k, c in enumerate(forks):
        session.get(ConversationRow, c.id).sqlmodel_update({"parent_id": parent.id, "fork_at": 3, "fork_seq": k})
    session.commit()
    tag(session, parent, "visual", "ana", codebook=book)
    rows = {r.group["fork"]: r for r in stop_tally(session, [run], by=["fork"]).rows}
    assert (rows[f"{parent.id} #3"].stopped, rows[f"{parent.id} #3"].n) == (2, 4)
    assert (rows[NOT_A_FORK].stopped, rows[NOT_A_FORK].n) == (0, 1)


def test_forks_counted_as_units_of_a_test_are_flagged_and_by_fork_tests_only_fork_points(session) -> None:  # type: ignore[no-untyped-def]
    book = add_codebook(session, "acts", ["visual"])
    parents = [Conv(m, replies=["one", "two", "three"]) for m in ("a", "b")]
    forks = [Conv(m, replies=["one", "two", "three"]) for m in ("a", "b") for _ in range(4)]
    run = add_run(session, parents + forks)
    for k, c in enumerate(forks):
        parent = parents[0] if c.model == "a" else parents[1]
        session.get(ConversationRow, c.id).sqlmodel_update({"parent_id": parent.id, "fork_at": 3, "fork_seq": k})
    session.commit()
    for c in [parents[0], *forks[:4], forks[4]]:
        tag(session, c, "visual", "ana", codebook=book)
    for c in [parents[1], *forks[5:]]:
        tag(session, c, "visual", "ana", present=False, codebook=book)
    # a test between models treats the 8 forks as independent of their parents and of each other: flagged
    by_model = code_tally(session, [run], by=["model"], coder="ana")
    assert by_model.tests and any("8 of 10 coded units are forks" in w for w in by_model.provenance.warnings)
    # --by fork compares the two fork points; the parents ("not a fork") are shown, not tested
    by_fork = code_tally(session, [run], by=["fork"], coder="ana")
    assert not any("units are forks" in w for w in by_fork.provenance.warnings)
    (visual,) = [t for t in by_fork.tests if t.code == "visual"]
    assert visual.groups == 2
    assert {r.group["fork"] for r in by_fork.rows} == {f"{parents[0].id} #3", f"{parents[1].id} #3", NOT_A_FORK}
    assert any("compare the fork points only" in m for m in by_fork.provenance.methods)
