"""Codebooks in the store: import/export, versions, rename/merge/delete with tags following; tags and undo."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, select

from runner.analysis import codebook as cb
from runner.analysis import tags
from runner.protocol import ProtocolError
from runner.store.db import make_engine
from runner.store.tables import CodebookRow, TagRow
from tests.data.builders import small_run

BOOK = """\
name: activities
description: what the model chose to do
codes:
  - name: making
    definition: proposes or builds an artifact
  - name: visualiser
    definition: a visualisation of simple emergent behaviour
    include: cellular automata, reaction-diffusion, flocking
    examples: ["a Gray-Scott pattern"]
    parent: making
  - name: functional
    definition: something useful to the user (README, TODO system)
  - name: stop
    definition: ends the session
"""


@pytest.fixture()
def db(tmp_path: Path):
    path = tmp_path / "t.db"
    small_run(path)
    engine = make_engine(f"sqlite:///{path}")
    tags.clear_history()
    with Session(engine) as session:
        yield session
    engine.dispose()


def test_import_export_round_trip(db: Session, tmp_path: Path) -> None:
    f = tmp_path / "book.yaml"
    f.write_text(BOOK)
    row = cb.import_codebook(db, f, coder="ana")
    assert (row.name, row.version) == ("activities", 1)
    assert [c.name for c in cb.codes(db, row.id)] == ["making", "visualiser", "functional", "stop"]
    exported = tmp_path / "exported.yaml"
    exported.write_text(cb.export_codebook(db, row.id))
    assert cb.read_codebook(exported) == cb.read_codebook(f)


def test_codebook_errors_are_located(tmp_path: Path) -> None:
    f = tmp_path / "book.yaml"
    f.write_text("name: x\ncodes:\n  - name: a\n    definiton: oops\n")
    with pytest.raises(ProtocolError) as info:
        cb.read_codebook(f)
    p = info.value.problems[0]
    assert (p.line, p.field, p.hint) == (4, "codes[0].definiton", "did you mean `definition`?")
    f.write_text("name: x\ncodes:\n  - name: a\n    parent: nobody\n")
    with pytest.raises(ProtocolError, match="parent `nobody`"):
        cb.read_codebook(f)


def test_every_change_is_a_new_version_and_tags_follow(db: Session) -> None:
    v1 = cb.import_codebook(db, BOOK, coder="ana")
    t1 = tags.toggle_tag(db, "conv00000000", 1, "visualiser", "ana", v1.id)
    t2 = tags.toggle_tag(db, "conv00000001", None, "functional", "ana", v1.id)
    tags.toggle_tag(db, "conv00000001", None, "making", "ana", v1.id)
    assert t1 is not None and t2 is not None
    v2 = cb.rename_code(db, "activities", "visualiser", "emergent-visualiser", coder="ana")
    assert v2.version == 2 and v2.parent_version_id == v1.id
    db.refresh(t1)
    assert t1.code == "emergent-visualiser"
    v3 = cb.merge_codes(db, "activities", "functional", "making", coder="bo")
    assert v3.version == 3 and "functional" not in [c.name for c in cb.codes(db, v3.id)]
    live = tags.live(db, "conv00000001")
    assert [t.code for t in live] == ["making"]  # the merged duplicate was dropped
    v4 = cb.delete_code(db, "activities", "making", coder="bo")
    child = next(c for c in cb.codes(db, v4.id) if c.name == "emergent-visualiser")
    assert child.parent is None
    assert tags.live(db, "conv00000001") == []
    assert db.exec(select(TagRow).where(TagRow.conversation_id == "conv00000001")).all()  # kept for audit
    assert [r.version for r in db.exec(select(CodebookRow).order_by(CodebookRow.version)).all()] == [1, 2, 3, 4]
    # the older version is untouched
    assert "visualiser" in [c.name for c in cb.codes(db, v1.id)]


def test_codebook_operation_errors(db: Session) -> None:
    cb.import_codebook(db, BOOK)
    with pytest.raises(cb.CodebookError, match="already exists"):
        cb.rename_code(db, "activities", "making", "stop")
    with pytest.raises(cb.CodebookError, match="no code"):
        cb.delete_code(db, "activities", "nope")
    with pytest.raises(cb.CodebookError, match="no codebook"):
        cb.add_code(db, "other", cb.Code(name="x"))
    row = cb.add_code(db, "activities", cb.Code(name="conversation", definition="prefers talking"))
    assert [c.name for c in cb.codes(db, row.id)][-1] == "conversation"
    row = cb.edit_code(db, "activities", "conversation", definition="prefers talking to making")
    assert cb.codes(db, row.id)[-1].definition == "prefers talking to making"


def test_toggle_span_note_and_undo(db: Session) -> None:
    v = cb.import_codebook(db, BOOK)
    tag = tags.toggle_tag(db, "conv00000002", 1, "making", "ana", v.id)
    assert tag is not None and tag.coder == "ana" and tag.created_at is not None
    assert tags.toggle_tag(db, "conv00000002", 1, "making", "ana", v.id) is None  # toggled off
    assert tags.live(db, "conv00000002") == []
    content = "I would like to build a small thing #2."
    span = tags.add_span_tag(db, "conv00000002", 1, "making", "ana", v.id, 16, 21, content, note="verb")
    assert span.quote == "build"
    with pytest.raises(tags.TagError):
        tags.add_span_tag(db, "conv00000002", 1, "making", "ana", v.id, 10, 400, content)
    tags.set_note(db, span.id, "the verb", coder="ana")
    # undo: note, then span, then the untoggle, then the toggle
    tags.undo(db, "ana")
    db.refresh(span)
    assert span.note == "verb"
    tags.undo(db, "ana")
    assert tags.live(db, "conv00000002") == []
    tags.undo(db, "ana")
    assert [t.code for t in tags.live(db, "conv00000002")] == ["making"]
    tags.undo(db, "ana")
    assert tags.live(db, "conv00000002") == []
    assert tags.undo(db, "ana") is None
    # another coder's tags are separate
    tags.toggle_tag(db, "conv00000002", 1, "making", "bo", v.id)
    assert [t.coder for t in tags.live(db, "conv00000002", coder="bo")] == ["bo"]
