"""`latitude export ...`: transcripts (jsonl, md)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Literal

import typer

from .common import DbOption, console, fail, open_store

app = typer.Typer(help="Export transcripts and tallies.", no_args_is_help=True, rich_markup_mode=None)


@app.command()
def transcripts(
    run_id: Annotated[str, typer.Argument(help="Run id.")],
    format: Annotated[str, typer.Option("--format", "-f", help="jsonl or md.")] = "jsonl",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="File to write (default: standard output).")] = None,
    db: DbOption = None,
) -> None:
    """Export a run's transcripts: one JSON object per conversation (jsonl), or Markdown."""
    from sqlmodel import Session

    from ..export import transcripts as tx
    from ..store import queries

    if format not in ("jsonl", "md"):
        fail(f"unknown format {format!r}: use jsonl or md")
    engine = open_store(db)
    with Session(engine) as session:
        run = queries.get_run(session, run_id)
        if run is None:
            fail(f"no run {run_id}")
        writer = tx.write_jsonl if format == "jsonl" else tx.write_markdown
        if out is None:
            n = writer(session, run, sys.stdout)
        else:
            with out.open("w", encoding="utf-8") as fh:
                n = writer(session, run, fh)
    if out is not None:
        console(stderr=True).print(f"{n} conversations → {out}")
