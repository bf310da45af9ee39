"""`latitude echo RUN`: store the echo measure of runs stored before it existed, and show it per group."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import DbOption, fail
from .inspect import FormatOption, _format, emit


def echo(
    run_ids: Annotated[list[str], typer.Argument(help="Run id(s) (see `latitude runs`).")],
    force: Annotated[bool, typer.Option("--force", help="Measure every reply again, not only unmeasured ones.")] = False,
    format: FormatOption = None,
    db: DbOption = None,
) -> None:
    """Measure and store each model reply's echo of its prompts (replies without one), then show the echo
    bands per model and condition: conversations per band, out of the finished ones."""
    from rich.table import Table
    from rich.text import Text
    from sqlmodel import Session

    from ..analysis.echo_band import backfill, echo_summary
    from ..analysis.tally import TallyError, all_conversations
    from .common import console, open_store

    fmt = _format(format)
    with Session(open_store(db), expire_on_commit=False) as session:
        try:
            convs = all_conversations(session, run_ids)
        except TallyError as exc:
            fail(str(exc))
        done = backfill(session, [c.id for c in convs], force=force)
        session.commit()
        rows = echo_summary(session, run_ids)
    columns = ["run", "model", "condition", "conversations", "low", "mid", "high", "none", "mean_echo",
               "replies", "measured"]
    records = [{"run": r.run_id, "model": r.model, "condition": r.condition, "conversations": r.conversations,
                **r.bands, "mean_echo": None if r.mean is None else round(r.mean, 4), "replies": r.replies,
                "measured": r.measured} for r in rows]
    table = Table("run", "model", "condition", "conversations", "low", "mid", "high", "none", "mean echo",
                  "replies measured", title="echo bands: conversations by the mean echo of their replies")
    for r in rows:
        table.add_row(Text(r.run_id), Text(r.model), Text(r.condition), str(r.conversations),
                      *(f"{r.bands[b]} of {r.conversations}" for b in ("low", "mid", "high", "none")),
                      "" if r.mean is None else f"{r.mean:.3f}", f"{r.measured} of {r.replies}")
    if fmt == "table":
        console(stderr=True).print(Text(f"{done.stored} of {done.replies} replies measured and stored now "
                                        f"({done.conversations} conversations)"))
    emit(records, columns, fmt, table)


def register(app: typer.Typer) -> None:
    app.command()(echo)
