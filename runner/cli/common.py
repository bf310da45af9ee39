"""Options and helpers shared by the commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

DbOption = Annotated[
    str | None,
    typer.Option("--db", envvar="LATITUDE_DB", help="Store URL (SQLAlchemy) or SQLite file path. Default ./transcripts.db."),
]
ModelsOption = Annotated[
    Path | None,
    typer.Option("--models", help="Models file with aliases (default ./models.yaml when present).", dir_okay=False),
]

EXIT_OK, EXIT_USAGE, EXIT_ERRORED, EXIT_INTERRUPTED = 0, 1, 2, 130


def console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    from rich.text import Text

    console(stderr=True).print(Text(message, style="red"), soft_wrap=True)
    raise typer.Exit(code)


def db_url(db: str | None) -> str:
    from ..store.db import default_url

    if db is None:
        return default_url()
    if "://" in db:
        return db
    return f"sqlite:///{Path(db).expanduser()}"


def open_store(db: str | None) -> Any:
    """The store's engine, migrated once (`runner.store.open`)."""
    from ..store.db import open as open_db

    return open_db(db_url(db))


def load_or_exit(path: Path, models_file: Path | None) -> Any:
    from ..protocol import ProtocolError, load, load_models

    try:
        return load(path, load_models(models_file))
    except ProtocolError as exc:
        print_problems(exc)
        raise typer.Exit(EXIT_USAGE) from None


def print_problems(exc: Any) -> None:
    from rich.text import Text

    err = console(stderr=True)
    for p in exc.problems:
        err.print(Text(str(p)), soft_wrap=True)
