"""`latitude fork`: parse, call `runner.engine.forks`, display (the run is driven like `run`)."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import DbOption, ModelsOption, db_url, fail


def fork(
    conversation: Annotated[str, typer.Argument(help="The conversation to fork (its id, or a unique prefix).")],
    at: Annotated[int, typer.Option("--at", help="Fork point: the message number #N the transcript shows; it must be a model reply. Messages #0..#N-1 are replayed from the store, #N is sampled again.", min=0)],
    samples: Annotated[int, typer.Option("--samples", "-n", help="Continuations to sample from that point.", min=1, max=1000)] = 5,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Continue with another alias (from the run's models, or --models).")] = None,
    condition: Annotated[str | None, typer.Option("--condition", "-c", help="Follow the rest of the protocol under another condition.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Base seed: sample k is sent seed + k (default: the parent's seed + 1).")] = None,
    concurrency: Annotated[int | None, typer.Option(help="Most conversations in flight at once.", min=1)] = None,
    db: DbOption = None,
    models_file: ModelsOption = None,
) -> None:
    """Sample N continuations of a stored conversation from one point, each a conversation of a new run
    (kind fork) that names its parent and fork point; the shared history is replayed, never sent again."""
    from ..engine import forks
    from ..engine.runs import RunError
    from ..protocol import ProtocolError, load_models
    from .run import _announce, _drive

    try:
        aliases = load_models(models_file) if model else None
    except ProtocolError as exc:
        fail(str(exc))
    request = forks.ForkRequest(conversation, at, samples, model=model, condition=condition, seed=seed)
    try:
        prepared = forks.prepare_fork(db_url(db), request, models=aliases, concurrency=concurrency)
    except RunError as exc:
        fail(str(exc))
    record = prepared.options["fork"]
    alias = record.get("model") or (prepared.targets[0].spec.model_alias if prepared.targets else "?")
    lead = (f"forking {record['parent']} at #{at}: {prepared.conversations} continuations on {alias}, "
            f"seeds {record['seed']}..{record['seed'] + samples - 1}")
    _announce(prepared.run_id, lead)
    raise typer.Exit(_drive(prepared))


def register(app: typer.Typer) -> None:
    app.command()(fork)
