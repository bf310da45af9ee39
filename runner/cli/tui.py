"""`latitude tui`: browse, read, tag, review and tally in the terminal."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import DbOption, db_url


def tui(
    db: DbOption = None,
    coder: Annotated[
        str | None,
        typer.Option("--coder", envvar="LATITUDE_CODER",
                     help="Your name, recorded on every tag and review decision (default: your login name)."),
    ] = None,
    blind: Annotated[
        bool,
        typer.Option("--blind", help="Code blind: hide models, vendors and conditions on every screen, in a "
                                     "random order of your own. Stays on (stored) until you unblind a run (U)."),
    ] = False,
) -> None:
    """Open the terminal UI over the store: runs, transcripts, tagging, codebook, review queue, tallies."""
    from ..store.db import open as open_db

    url = db_url(db)
    open_db(url).dispose()
    from tui.app import make_app  # Textual is imported only here: `latitude --help` stays fast

    make_app(db_url=url, coder=coder, migrate=False, blind=blind).run()


def register(app: typer.Typer) -> None:
    app.command("tui")(tui)
