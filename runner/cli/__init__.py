"""The `latitude` command: the composition root (opens the store, builds the engine and
the display, starts the TUI). Heavy modules are imported inside commands so `--help`
stays fast."""

from __future__ import annotations

import typer

from . import export, imports, inspect, protocol, run, stops
from . import analysis
from . import tui
from . import echo as echo_cli
from . import prefs as prefs_cli

app = typer.Typer(
    name="latitude",
    help="Run conversational experiments on many language-model instances, then browse, tag and tally.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
protocol.register(app)
run.register(app)
inspect.register(app)
imports.register(app)
stops.register(app)
analysis.register(app)
tui.register(app)
prefs_cli.register(app)
echo_cli.register(app)
app.add_typer(export.app, name="export")


def main() -> None:
    app()


__all__ = ["app", "main"]
