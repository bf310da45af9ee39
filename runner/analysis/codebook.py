"""Codebooks: YAML in and out, versioned in the store.

A codebook version is immutable. Every change (import, add, edit, rename, merge,
delete) writes a new version with all its codes, so every tag and judgment can point at
the exact codebook it was made with. Tags follow renames and merges.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlmodel import Session, col, select

from ..store.tables import CodebookRow, CodeRow, TagRow, utcnow

CodeName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/ -]*$", max_length=80)]
"""A code's name: short, no leading punctuation."""


class CodebookError(ValueError):
    """A codebook operation that cannot be done (unknown code, name taken...)."""


class Code(BaseModel):
    """One code of a codebook."""

    model_config = ConfigDict(extra="forbid")
    name: CodeName
    definition: str = ""
    """What the code means."""
    include: str = ""
    """When to apply it."""
    exclude: str = ""
    """When not to."""
    examples: list[str] = Field(default_factory=list)
    """Example quotes."""
    parent: str | None = None
    """The parent code's name."""


class Codebook(BaseModel):
    """A codebook as written in YAML."""

    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=80)]
    description: str = ""
    codes: list[Code] = Field(default_factory=list)

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        names = [c.name for c in self.codes]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"code names must be unique: {', '.join(dupes)} repeated")
        for c in self.codes:
            if c.parent is not None and c.parent not in names:
                raise ValueError(f"code `{c.name}` names parent `{c.parent}`, which is not in the codebook")
        return self


def read_codebook(path: Path) -> Codebook:
    """Parse and validate a codebook file; errors name file, line and field (ProtocolError)."""
    from ..protocol.load import load_yaml_model

    return load_yaml_model(path, Codebook)


def to_yaml(book: Codebook) -> str:
    import io

    from ruamel.yaml import YAML  # here, not at the top: the TUI imports this module at start

    y = YAML()
    y.default_flow_style = False
    buf = io.StringIO()
    data = book.model_dump(exclude_defaults=False)
    data["codes"] = [{k: v for k, v in c.items() if v not in (None, "", [])} for c in data["codes"]]
    y.dump(data, buf)
    return buf.getvalue()


# ---------------------------------------------------------------- store


def latest(session: Session, name: str | None = None) -> CodebookRow | None:
    """The newest version of a codebook (of any codebook when `name` is None)."""
    query = select(CodebookRow)
    if name is not None:
        query = query.where(CodebookRow.name == name)
    return session.exec(query.order_by(col(CodebookRow.created_at).desc(), col(CodebookRow.id).desc())).first()


def codes(session: Session, codebook_id: int) -> list[CodeRow]:
    """The codes of one version, in order."""
    return list(session.exec(select(CodeRow).where(CodeRow.codebook_id == codebook_id)
                             .order_by(CodeRow.position, CodeRow.id)).all())


def as_model(session: Session, row: CodebookRow) -> Codebook:
    from ruamel.yaml import YAML

    stored = YAML(typ="safe").load(row.yaml) if row.yaml else None
    return Codebook(
        name=row.name,
        description=(stored or {}).get("description", "") if isinstance(stored, dict) else "",
        codes=[Code(name=c.name, definition=c.definition, include=c.include, exclude=c.exclude,
                    examples=json.loads(c.examples_json or "[]"), parent=c.parent)
               for c in codes(session, row.id or 0) if not c.builtin],
    )


def export_codebook(session: Session, codebook_id: int) -> str:
    row = session.get(CodebookRow, codebook_id)
    if row is None:
        raise CodebookError(f"no codebook version {codebook_id}")
    return to_yaml(as_model(session, row))


def _write_version(session: Session, book: Codebook, *, coder: str, note: str,
                   parent: CodebookRow | None) -> CodebookRow:
    prev = latest(session, book.name)
    row = CodebookRow(name=book.name, version=(prev.version + 1) if prev else 1,
                      parent_version_id=parent.id if parent else (prev.id if prev else None),
                      yaml=to_yaml(book), note=note, created_by=coder, created_at=utcnow())
    session.add(row)
    session.flush()
    for i, c in enumerate(book.codes):
        session.add(CodeRow(codebook_id=row.id, name=c.name, definition=c.definition, include=c.include,
                            exclude=c.exclude, examples_json=json.dumps(c.examples), parent=c.parent, position=i))
    session.commit()
    session.refresh(row)
    return row


def import_codebook(session: Session, book: Codebook | str | Path, *, coder: str = "",
                    name: str | None = None) -> CodebookRow:
    """Store a codebook as a new version (version 1 if the name is new)."""
    if isinstance(book, Path):
        book = read_codebook(book)
    elif isinstance(book, str):
        from ruamel.yaml import YAML

        book = Codebook.model_validate(YAML(typ="safe").load(book) or {})
    if name is not None:
        book = book.model_copy(update={"name": name})
    return _write_version(session, book, coder=coder, note="imported", parent=None)


def _current(session: Session, name: str) -> tuple[CodebookRow, Codebook]:
    row = latest(session, name)
    if row is None:
        raise CodebookError(f"no codebook named {name!r}")
    return row, as_model(session, row)


def _find(book: Codebook, code: str) -> int:
    for i, c in enumerate(book.codes):
        if c.name == code:
            return i
    raise CodebookError(f"no code {code!r} in codebook {book.name!r}")


def add_code(session: Session, codebook: str, code: Code, *, coder: str = "") -> CodebookRow:
    row, book = _current(session, codebook)
    if any(c.name == code.name for c in book.codes):
        raise CodebookError(f"code {code.name!r} already exists")
    book.codes.append(code)
    return _write_version(session, Codebook.model_validate(book.model_dump()), coder=coder,
                          note=f"add {code.name}", parent=row)


def edit_code(session: Session, codebook: str, name: str, *, coder: str = "", **fields: Any) -> CodebookRow:
    """Change a code's definition, include, exclude, examples or parent (not its name: see `rename_code`)."""
    row, book = _current(session, codebook)
    i = _find(book, name)
    if "name" in fields:
        raise CodebookError("use rename_code to rename")
    book.codes[i] = book.codes[i].model_copy(update=fields)
    return _write_version(session, Codebook.model_validate(book.model_dump()), coder=coder,
                          note=f"edit {name}", parent=row)


def rename_code(session: Session, codebook: str, old: str, new: str, *, coder: str = "") -> CodebookRow:
    """Rename a code; tags and child codes follow."""
    row, book = _current(session, codebook)
    i = _find(book, old)
    if any(c.name == new for c in book.codes):
        raise CodebookError(f"code {new!r} already exists; merge instead")
    book.codes[i] = book.codes[i].model_copy(update={"name": new})
    for j, c in enumerate(book.codes):
        if c.parent == old:
            book.codes[j] = c.model_copy(update={"parent": new})
    _retag(session, codebook, old, new)
    return _write_version(session, Codebook.model_validate(book.model_dump()), coder=coder,
                          note=f"rename {old} -> {new}", parent=row)


def merge_codes(session: Session, codebook: str, source: str, target: str, *, coder: str = "") -> CodebookRow:
    """Fold `source` into `target`: its tags become `target` tags (duplicates on one unit dropped)."""
    row, book = _current(session, codebook)
    i = _find(book, source)
    _find(book, target)
    if source == target:
        raise CodebookError("cannot merge a code into itself")
    del book.codes[i]
    book.codes = [c.model_copy(update={"parent": target}) if c.parent == source else c for c in book.codes]
    _retag(session, codebook, source, target)
    _drop_duplicate_tags(session, target)
    return _write_version(session, Codebook.model_validate(book.model_dump()), coder=coder,
                          note=f"merge {source} -> {target}", parent=row)


def delete_code(session: Session, codebook: str, name: str, *, coder: str = "") -> CodebookRow:
    """Remove a code; its tags are soft-deleted (kept for audit). Child codes lose their parent."""
    row, book = _current(session, codebook)
    i = _find(book, name)
    del book.codes[i]
    book.codes = [c.model_copy(update={"parent": None}) if c.parent == name else c for c in book.codes]
    now = utcnow()
    for tag in _live_tags(session, codebook, name):
        tag.deleted_at = now
        session.add(tag)
    return _write_version(session, Codebook.model_validate(book.model_dump()), coder=coder,
                          note=f"delete {name}", parent=row)


def _version_ids(session: Session, codebook: str) -> list[int]:
    return [r.id for r in session.exec(select(CodebookRow).where(CodebookRow.name == codebook)).all() if r.id]


def _live_tags(session: Session, codebook: str, code: str) -> list[TagRow]:
    ids = _version_ids(session, codebook)
    return list(session.exec(select(TagRow).where(TagRow.code == code).where(col(TagRow.deleted_at).is_(None))
                             .where(col(TagRow.codebook_id).in_(ids))).all())


def _retag(session: Session, codebook: str, old: str, new: str) -> None:
    for tag in _live_tags(session, codebook, old):
        tag.code = new
        session.add(tag)
    session.flush()


def _drop_duplicate_tags(session: Session, code: str) -> None:
    seen: set[tuple[Any, ...]] = set()
    now = utcnow()
    rows = session.exec(select(TagRow).where(TagRow.code == code).where(col(TagRow.deleted_at).is_(None))
                        .order_by(TagRow.id)).all()
    for tag in rows:
        key = (tag.conversation_id, tag.message_idx, tag.coder, tag.span_start, tag.span_end, tag.present)
        if key in seen:
            tag.deleted_at = now
            session.add(tag)
        seen.add(key)
    session.flush()


__all__ = [
    "Code",
    "Codebook",
    "CodebookError",
    "add_code",
    "as_model",
    "codes",
    "delete_code",
    "edit_code",
    "export_codebook",
    "import_codebook",
    "latest",
    "merge_codes",
    "read_codebook",
    "rename_code",
    "to_yaml",
]
