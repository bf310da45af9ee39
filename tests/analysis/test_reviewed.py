"""Reviewed marks (issue 15): reviewed without codes counts as absent; nobody reviewed is uncoded,
never absent; the operations do not commit; undo like tags. Expected counts come from sqlite3."""

from __future__ import annotations

import sqlite3

import pytest

from runner.analysis import reviewed
from runner.analysis.tally import code_tally
from tests.analysis.conftest import Conv, add_codebook, add_run, tag


def _raw(url: str, sql: str, *params: object) -> list[tuple]:
    con = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


@pytest.fixture(autouse=True)
def _fresh_history():  # type: ignore[no-untyped-def]
    reviewed.clear_history()
    yield
    reviewed.clear_history()


def test_mark_does_not_commit_and_undo_reverts(session, store_url) -> None:  # type: ignore[no-untyped-def]
    (c,) = convs = [Conv("a")]
    add_run(session, convs)
    reviewed.mark(session, c.id, "ana")
    assert _raw(store_url, "SELECT COUNT(*) FROM reviewed_marks") == [(0,)]  # the caller commits
    session.commit()
    assert _raw(store_url, "SELECT coder, deleted_at FROM reviewed_marks") == [("ana", None)]
    assert reviewed.is_reviewed(session, c.id, "ana")
    assert reviewed.toggle(session, c.id, "ana") is False
    session.commit()
    assert _raw(store_url, "SELECT COUNT(*) FROM reviewed_marks WHERE deleted_at IS NULL") == [(0,)]
    assert reviewed.undo(session, "ana").action == "unmark"  # type: ignore[union-attr]
    session.commit()
    assert _raw(store_url, "SELECT COUNT(*) FROM reviewed_marks WHERE deleted_at IS NULL") == [(1,)]
    assert reviewed.undo(session, "ana").action == "mark"  # type: ignore[union-attr]
    session.commit()
    assert _raw(store_url, "SELECT COUNT(*) FROM reviewed_marks WHERE deleted_at IS NULL") == [(0,)]
    assert reviewed.undo(session, "ana") is None


def test_reviewed_without_codes_is_absent_and_unreviewed_is_uncoded(session, store_url) -> None:  # type: ignore[no-untyped-def]
    book = add_codebook(session, "acts", ["visual", "useful"])
    convs = [Conv("a") for _ in range(6)]
    run = add_run(session, convs)
    tag(session, convs[0], "visual", "ana", codebook=book)
    tag(session, convs[1], "useful", "ana", codebook=book)
    for c in convs[2:4]:  # read, nothing applies
        reviewed.mark(session, c.id, "ana", book.id)
    session.commit()
    # convs[4:] nobody read: uncoded
    report = code_tally(session, [run], coder="ana")
    rows = {r.code: r for r in report.rows}
    units = _raw(store_url, """SELECT COUNT(DISTINCT id) FROM (
        SELECT conversation_id AS id FROM tags WHERE coder = 'ana' AND deleted_at IS NULL
        UNION SELECT conversation_id FROM reviewed_marks WHERE coder = 'ana' AND deleted_at IS NULL)""")[0][0]
    visual = _raw(store_url, "SELECT COUNT(DISTINCT conversation_id) FROM tags WHERE coder = 'ana' AND code = 'visual'"
                             " AND deleted_at IS NULL")[0][0]
    assert (rows["visual"].n, rows["visual"].count) == (units, visual) == (4, 1)
    assert (rows["useful"].n, rows["useful"].count) == (4, 1)
    assert rows["visual"].finished == 6  # the two unread conversations are uncoded: out of n, not absent


def test_a_person_with_only_reviewed_marks_is_a_coder(session) -> None:  # type: ignore[no-untyped-def]
    book = add_codebook(session, "acts", ["visual"])
    convs = [Conv("a") for _ in range(3)]
    run = add_run(session, convs)
    for c in convs:
        tag(session, c, "visual", "ana", codebook=book)
    reviewed.mark(session, convs[0].id, "ben", book.id)
    session.commit()
    report = code_tally(session, [run], coder="ben")
    (row,) = [r for r in report.rows if r.code == "visual"]
    assert (row.n, row.count) == (1, 0)
