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
    stop_phrase: Annotated[list[str] | None, typer.Option(
        "--stop-phrase", help="Detect this stop phrase in the model's replies (repeatable; `used`, not mentioned).")] = None,
    protocol: Annotated[Path | None, typer.Option(
        "--protocol", help="Or take the stop rule from this protocol file.", exists=True, dir_okay=False)] = None,
    db: DbOption = None,
) -> None:
    """Import transcripts so published conversations can be tagged beside new runs."""
    from rich.text import Text

    from ..engine.driver import new_id
    from ..imports import TranscriptImportError, read, rows, stop_rule
    from ..store import StoreWriter
    from ..store.db import open as open_db

    try:
        items = read(file)
    except (TranscriptImportError, UnicodeDecodeError) as exc:
        fail(str(exc))
    rule = None
    if stop_phrase or protocol is not None:
        from .common import load_or_exit

        rule = stop_rule(stop_phrase, load_or_exit(protocol, None).protocol if protocol and not stop_phrase else None)
        if rule is None:
            fail(f"{protocol}: the protocol has no `stop` rule")
    url = db_url(db)
    open_db(url).dispose()
    run_id = new_id()
    with StoreWriter(url) as writer:
        made = rows(file, items, run_id, new_id, model, rule)
        for row in made:
            writer.add_sync(row)
    n_msgs = sum(len(i.messages) for i in items)
    console().print(Text(f"imported {len(items)} conversations ({n_msgs} messages) from {file} as run {run_id}"))
    if rule is not None:
        from ..store.tables import StopCandidateRow

        stopped = sum(1 for r in made if isinstance(r, StopCandidateRow) and r.counted)
        cands = sum(1 for r in made if isinstance(r, StopCandidateRow))
        console().print(Text(f"stop detection: {cands} candidates; {stopped}/{len(items)} conversations stopped"))


def register(app: typer.Typer) -> None:
    app.command(name="import")(import_)
