"""`latitude run`, `latitude resume` and `latitude rerun`: parse, call `runner.engine.runs`, display."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ..engine.gctune import paused_gc
from .common import (
    EXIT_ERRORED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    DbOption,
    ModelsOption,
    console,
    db_url,
    fail,
    load_or_exit,
)


def _announce(run_id: str, lead: str | None = None) -> None:
    """Print (and flush) the run id before the first model call: a run killed early can be
    resumed from what it printed."""
    from rich.text import Text

    out = console()
    if lead:
        out.print(Text(lead), soft_wrap=True)
    out.print(Text(f"run id: {run_id}"), soft_wrap=True)
    out.file.flush()
    sys.stdout.flush()


def _drive(prepared: Any) -> int:
    """Run the engine with a live display; returns the exit code."""
    from rich.text import Text

    from ..display import RunDisplay
    from ..engine import runs
    from ..engine.gctune import skip_collection_at_exit
    from ..engine.retry import RetryPolicy

    try:
        retry = RetryPolicy.from_env()
    except ValueError as exc:
        fail(str(exc))
    out = console()
    display = RunDisplay(out)
    with display:
        outcome = runs.drive(prepared, display, retry)
    if outcome.interrupted:
        out.print(Text(f"interrupted; committed turns are kept. Continue with: latitude resume {outcome.run_id}",
                       style="yellow"), soft_wrap=True)  # never break the command across lines
    _cache_summary(prepared.url, outcome.run_id)
    out.print(Text(f"run id: {outcome.run_id}"), soft_wrap=True)
    skip_collection_at_exit()  # the writer and every engine are closed: exit without walking every object
    if outcome.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_ERRORED if outcome.errored else EXIT_OK


def _cache_summary(url: str, run_id: str) -> None:
    """The run's prompt-cache lines (reads, writes, cost against uncached, a prefix too short to cache)."""
    from rich.text import Text

    from ..store.db import opened
    from .inspect import cache_report_lines

    with opened(url) as session:
        lines = cache_report_lines(session, run_id)
    for line in lines:
        console().print(Text(line), soft_wrap=True)


def _prepared(make: Any) -> Any:
    from ..engine.runs import RunError
    from ..rigour.registration import RegistrationError

    try:
        return make()
    except (RunError, RegistrationError) as exc:
        fail(str(exc))


RegistrationOption = Annotated[str | None, typer.Option(
    "--registration", help="The registration this run follows (`latitude register`): every deviation from it is "
                           "listed, stored and printed before the run starts.")]
StrictOption = Annotated[bool, typer.Option(
    "--strict", help="Refuse to start when the run deviates from its registration in any way.")]


def _check_registration(url: str, registration_id: str, plan: Any, strict: bool) -> list[Any]:
    """The deviations of `plan` from a registration, printed; exits when `--strict` finds any."""
    from ..rigour import registration as reg

    try:
        row = reg.get(url, registration_id)
    except reg.RegistrationError as exc:
        fail(str(exc))
    found = reg.deviations(row, plan)
    from .rigour import show_deviations

    show_deviations(row, found)
    if strict and found:
        fail(f"refusing to start (--strict): the run deviates from registration {registration_id} in "
             f"{len(found)} way(s); nothing was written")
    return found


def _deviation_rows(registration_id: str | None, found: list[Any]) -> Any:
    """For `prepare_start`/`prepare_rerun`: the deviations, written in the new run's own transaction."""
    if registration_id is None:
        return None
    from ..rigour import registration as reg

    return lambda run_id: reg.deviation_rows(run_id, registration_id, found)


def run(
    protocol: Annotated[Path, typer.Argument(help="Protocol file.", exists=True, dir_okay=False)],
    model: Annotated[list[str] | None, typer.Option("--model", "-m", help="Model alias or litellm string (repeatable); overrides the protocol's.")] = None,
    condition: Annotated[list[str] | None, typer.Option("--condition", "-c", help="Run only these conditions (repeatable).")] = None,
    replicates: Annotated[int | None, typer.Option(help="Replicates per model × condition.", min=1)] = None,
    concurrency: Annotated[int, typer.Option(help="Most conversations in flight at once.", min=1)] = 16,
    db: DbOption = None,
    models_file: ModelsOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Replace every model with the simulator: check the flow, spend nothing.")] = False,
    registration: RegistrationOption = None,
    strict: StrictOption = False,
    researcher: Annotated[str | None, typer.Option("--researcher", help="Who runs or prompts this run: their own codes on it are flagged as self-coded.")] = None,
    batch: Annotated[bool, typer.Option("--batch", help="Send every openai/ and anthropic/ alias through the vendor's batch API (half price; waves, slower).")] = False,
) -> None:
    """Run a protocol: every model × condition × replicate, concurrently, every turn committed as it completes."""
    with paused_gc():  # start-up (imports, protocol, plan, store) and teardown; runs.drive turns it on for the run
        from ..engine import runs
        from ..engine.retry import RetryPolicy
        from ..plan import PlanError, make_plan

        loaded = load_or_exit(protocol, models_file)
        try:
            plan = make_plan(loaded, models=model, conditions=condition, replicates=replicates)
        except PlanError as exc:
            fail(str(exc))
        try:
            RetryPolicy.from_env()
        except ValueError as exc:
            fail(str(exc))
        options = {"models": model, "conditions": condition, "replicates": replicates, "concurrency": concurrency,
                   "dry_run": dry_run, "models_file": str(models_file) if models_file else None,
                   "researcher": researcher, "batch": batch or None}
        url = db_url(db)
        found: list[Any] = []
        if registration:
            found = _check_registration(url, registration, runs.simulated(plan) if dry_run else plan, strict)
            options["registration"] = registration
        prepared = _prepared(lambda: runs.prepare_start(plan, url, options, concurrency=concurrency,
                                                        dry_run=dry_run, also=_deviation_rows(registration, found)))
        _announce(prepared.run_id)
        code = _drive(prepared)
    raise typer.Exit(code)


def resume(
    run_id: Annotated[str | None, typer.Argument(help="Run id (see `latitude runs`); default: the most recent unfinished run.")] = None,
    concurrency: Annotated[int | None, typer.Option(help="Most conversations in flight at once.", min=1)] = None,
    retry_errors: Annotated[bool, typer.Option("--retry-errors", help="Also continue conversations that ended in an error.")] = False,
    db: DbOption = None,
) -> None:
    """Continue every unfinished conversation of a run from its last committed turn.

    The run's stored snapshot is used (protocol and prompt files as they were when it started),
    so editing the protocol file afterwards cannot change a run halfway. With no id, the most
    recently started run that has unfinished conversations is resumed (and named).
    """
    from ..engine import runs

    url = db_url(db)
    lead = None
    if run_id is None:
        run_id = runs.latest_unfinished(url)
        if run_id is None:
            fail(f"no unfinished run in {url}")
        lead = f"resuming the most recent unfinished run, {run_id}"
    chosen = run_id
    prepared = _prepared(lambda: runs.prepare_resume(url, chosen, concurrency=concurrency,
                                                     retry_errors=retry_errors))
    if prepared.options.get("registration"):  # the run keeps its registration; its deviations were recorded at start
        from ..rigour import registration as reg
        from .rigour import show_deviations

        row, found = reg.stored_run_deviations(url, prepared.run_id)
        show_deviations(row, found)
    _announce(prepared.run_id, (lead + "\n" if lead else "")
              + f"resuming run {prepared.run_id}: {prepared.conversations} unfinished conversations")
    raise typer.Exit(_drive(prepared))


def rerun(
    run_id: Annotated[str, typer.Argument(help="The run to repeat.")],
    concurrency: Annotated[int | None, typer.Option(help="Most conversations in flight at once.", min=1)] = None,
    db: DbOption = None,
    strict: StrictOption = False,
) -> None:
    """Run a stored run again as a new run, from its snapshot: same protocol text, prompt files, models, options.
    A run that follows a registration is re-run following it: its deviations are listed and stored again."""
    with paused_gc():
        from ..engine import runs
        from ..rigour import registration as reg

        url = db_url(db)
        registered, found = _prepared(lambda: reg.check_stored_run(url, run_id))
        if registered is not None:
            from .rigour import show_deviations

            show_deviations(registered, found)
            if strict and found:
                fail(f"refusing to start (--strict): a rerun of {run_id} deviates from registration {registered.id} in "
                     f"{len(found)} way(s); nothing was written")
        prepared = _prepared(lambda: runs.prepare_rerun(
            url, run_id, concurrency=concurrency, also=_deviation_rows(registered.id if registered else None, found)))
        _announce(prepared.run_id, f"re-running {run_id} as {prepared.run_id}: {prepared.conversations} conversations")
        code = _drive(prepared)
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command()(run)
    app.command()(resume)
    app.command()(rerun)
