"""Built-in codes derived from offers and stop reasons."""

from __future__ import annotations

from sqlmodel import select

from runner.analysis.builtin_codes import (
    BUILTIN_CODES,
    builtin_code,
    derive_builtin,
    is_builtin,
    write_builtin_tags,
)
from runner.store.tables import ConversationRow, TagRow
from tests.analysis.conftest import Conv, add_run


def _rows(session, convs):  # type: ignore[no-untyped-def]
    return [session.get(ConversationRow, c.id) for c in convs]


def test_derive_offer_and_stop_codes(session) -> None:  # type: ignore[no-untyped-def]
    convs = [Conv("a", stop_turn=1, offers=[("story_break", "accept")]),
             Conv("a", offers=[("story_break", "decline"), ("artifact", "accept")]),
             Conv("b"), Conv("b", status="error", stop_turn=1)]
    add_run(session, convs)
    got = {(j.conversation_id, j.code): j.present for j in derive_builtin(session, _rows(session, convs))}
    c0, c1, c2, c3 = (c.id for c in convs)
    assert got[(c0, "stop:stop_phrase")] and not got[(c1, "stop:stop_phrase")] and not got[(c2, "stop:stop_phrase")]
    assert got[(c0, "offer:accept")] and not got[(c0, "offer:decline")]
    assert got[(c1, "offer:accept")] and got[(c1, "offer:decline")]  # any offer of the conversation
    assert got[(c1, "offer:story_break:decline")] and not got[(c1, "offer:story_break:accept")]
    assert got[(c1, "offer:artifact:accept")]
    assert (c2, "offer:accept") not in got  # no offer made: not a unit for offer codes
    assert not any(cid == c3 for cid, _ in got)  # unfinished conversations are not units


def test_write_builtin_tags_replaces_earlier_ones(session) -> None:  # type: ignore[no-untyped-def]
    convs = [Conv("a", stop_turn=1), Conv("b")]
    add_run(session, convs)
    assert write_builtin_tags(session, _rows(session, convs)) == 2
    assert write_builtin_tags(session, _rows(session, convs)) == 2
    live = session.exec(select(TagRow).where(TagRow.deleted_at.is_(None))).all()  # type: ignore[union-attr]
    assert len(live) == 2 and {t.source for t in live} == {"builtin"} and {t.coder for t in live} == {"builtin"}
    assert len(session.exec(select(TagRow)).all()) == 4


def test_builtin_definitions() -> None:
    assert {c.name for c in BUILTIN_CODES} >= {"offer:accept", "offer:decline", "stop:stop_phrase"}
    assert is_builtin("offer:story_break:accept") and not is_builtin("visual")
    assert "story_break" in builtin_code("offer:story_break:accept").definition
