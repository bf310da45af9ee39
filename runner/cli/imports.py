"""`latitude import FILE`: transcripts made elsewhere, into the store as a run of their own."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import DbOption, console, db_url, fail


def import_(
    file: Annotated[Path, typer.Argument(help="jsonl export, OpenAI-style messages JSON/jsonl, or Markdown with speaker headings.",
                                         exists=True, dir_okay=False)],
    model: Annotated[str | None, typer.Option(help="Model name to record (default: from the file, else `imported`).")] = None,
    db: DbOption = None,
) -> None:
    """Import transcripts so published conversations can be tagged beside new runs."""
    from rich.text import Text

    from ..engine.driver import new_id
    from ..imports import TranscriptImportError, read, rows
    from ..store import StoreWriter
    from ..store.db import open as open_db

    try:
        items = read(file)
    except (TranscriptImportError, UnicodeDecodeError) as exc:
        fail(str(exc))
    url = db_url(db)
    open_db(url).dispose()
    run_id = new_id()
    with StoreWriter(url) as writer:
        for row in rows(file, items, run_id, new_id, model):
            writer.add_sync(row)
    n_msgs = sum(len(i.messages) for i in items)
    console().print(Text(f"imported {len(items)} conversations ({n_msgs} messages) from {file} as run {run_id}"))


def register(app: typer.Typer) -> None:
    app.command(name="import")(import_)
