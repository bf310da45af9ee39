"""`latitude run` and `latitude resume`."""

from __future__ import annotations

import asyncio
import json
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Iterator

import typer

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


def _versions() -> tuple[str, str]:
    from importlib.metadata import version

    from ..engine.providers import litellm_version

    try:
        ours = version("latitude")
    except Exception:
        ours = "dev"
    return ours, litellm_version()


def _models_json(loaded: Any, plan: Any) -> str:
    """The aliases this run uses, as configured (key variable names only, never values)."""
    used = {s.model_alias: s.model for s in plan.specs}
    for s in plan.specs:
        if s.partner_alias and s.partner:
            used[s.partner_alias] = s.partner
        if s.experimenter_alias and s.experimenter:
            used[s.experimenter_alias] = s.experimenter
    return json.dumps({k: v.model_dump(exclude_none=True) for k, v in used.items()}, default=str)


def _simulated(plan: Any) -> Any:
    """--dry-run: the same plan with every model replaced by a simulator persona."""
    from dataclasses import replace

    from ..protocol.models_file import ModelAlias

    sim = ModelAlias(model="sim/stopper")
    specs = [replace(s, model_alias=f"{s.model_alias}~sim", model=sim,
                     partner=sim if s.partner else None,
                     partner_alias=f"{s.partner_alias}~sim" if s.partner_alias else None,
                     experimenter=sim if s.experimenter else None) for s in plan.specs]
    plan.specs = specs
    return plan


def _drive(url: str, plan: Any, targets_factory: Any, run_id_hint: str | None, concurrency: int) -> int:
    """Run the engine with a live display; returns the exit code."""
    from ..display import RunDisplay
    from ..engine.conversation import RunContext
    from ..engine.choose import run_all
    from ..engine.driver import started_event
    from ..engine.limits import Limits
    from ..engine.retry import RetryPolicy
    from ..store import StoreWriter
    from ..store.tables import ConversationRow, RunRow, utcnow

    out = console()
    try:
        retry = RetryPolicy.from_env()
    except ValueError as exc:
        fail(str(exc))
    sources = _sources(plan, url)
    writer = StoreWriter(url)
    display = RunDisplay(out)
    state: dict[str, Any] = {}

    async def main() -> Any:
        run_id, targets = await targets_factory(writer)
        state["run_id"] = run_id
        ctx = RunContext(run_id=run_id, protocol=plan.protocol, writer=writer, limits=Limits(), emit=display,
                         retry=retry, sources=sources, models=plan.loaded.models)
        display(started_event(run_id, plan, targets))
        statuses = await run_all(ctx, plan, targets, concurrency)  # adaptive preference runs go round by round
        await writer.update(RunRow, run_id, status="done", ended_at=utcnow())
        return statuses

    code = EXIT_OK
    try:
        with display:
            statuses = asyncio.run(main())
        if statuses.get("error"):
            code = EXIT_ERRORED
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
        run_id = state.get("run_id")
        if run_id:
            def mark(session: Any) -> None:
                from sqlmodel import update

                session.exec(update(ConversationRow).where(ConversationRow.run_id == run_id)
                             .where(ConversationRow.status.in_(["running", "pending"]))
                             .values(status="cancelled", stop_reason="cancelled"))
                session.exec(update(RunRow).where(RunRow.id == run_id).values(status="interrupted", ended_at=utcnow()))
            writer.call_sync(mark)
    finally:
        writer.close_sync()
    run_id = state.get("run_id", run_id_hint)
    from rich.text import Text

    if code == EXIT_INTERRUPTED:
        out.print(Text(f"interrupted; committed turns are kept. Continue with: latitude resume {run_id}", style="yellow"),
                  soft_wrap=True)  # never break the command across lines
    out.print(Text(f"run id: {run_id}"), soft_wrap=True)
    return code


def _sources(plan: Any, url: str) -> dict[str, Any]:
    """Resolve `sources:`: files were read at load time; store sources are read here."""
    from sqlmodel import Session

    from ..store import queries
    from ..store.db import make_engine

    out: dict[str, Any] = {}
    engine = None
    for name, src in plan.protocol.sources.items():
        if src.file is not None:
            out[name] = {"text": src.text}
            continue
        engine = engine or make_engine(url)
        with Session(engine) as session:
            if src.conversation is not None:
                conv = queries.get_conversation(session, src.conversation)
                if conv is None:
                    fail(f"source `{name}`: no conversation {src.conversation} in the store")
                convs = [conv]
            else:
                if queries.get_run(session, src.run or "") is None:
                    fail(f"source `{name}`: no run {src.run} in the store")
                convs = queries.run_conversations(session, src.run or "")
            out[name] = [{"text": _transcript_text(session, c.id, src.capture), "conversation": c.id} for c in convs]
    if engine is not None:
        engine.dispose()
    return out


def _transcript_text(session: Any, conversation_id: str, capture: str | None) -> str:
    from sqlmodel import select

    from ..store import queries
    from ..store.tables import CaptureRow

    messages = queries.conversation_messages(session, conversation_id)
    if capture:
        row = session.exec(select(CaptureRow).where(CaptureRow.conversation_id == conversation_id)
                           .where(CaptureRow.name == capture).order_by(CaptureRow.message_idx.desc())).first()
        return messages[row.message_idx].content if row is not None and row.message_idx < len(messages) else ""
    return "\n\n".join(f"[{m.speaker}] {m.content}" for m in messages if m.role in ("user", "assistant"))


def run(
    protocol: Annotated[Path, typer.Argument(help="Protocol file.", exists=True, dir_okay=False)],
    model: Annotated[list[str] | None, typer.Option("--model", "-m", help="Model alias or litellm string (repeatable); overrides the protocol's.")] = None,
    condition: Annotated[list[str] | None, typer.Option("--condition", "-c", help="Run only these conditions (repeatable).")] = None,
    replicates: Annotated[int | None, typer.Option(help="Replicates per model × condition.", min=1)] = None,
    concurrency: Annotated[int, typer.Option(help="Most conversations in flight at once.", min=1)] = 16,
    db: DbOption = None,
    models_file: ModelsOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Replace every model with the simulator: check the flow, spend nothing.")] = False,
) -> None:
    """Run a protocol: every model × condition × replicate, concurrently, every turn committed as it completes."""
    from ..engine.driver import new_id, start
    from ..plan import PlanError, make_plan

    loaded = load_or_exit(protocol, models_file)
    try:
        plan = make_plan(loaded, models=model, conditions=condition, replicates=replicates)
    except PlanError as exc:
        fail(str(exc))
    if dry_run:
        plan = _simulated(plan)
    url = db_url(db)
    from ..store.db import upgrade

    upgrade(url)
    options = {"models": model, "conditions": condition, "replicates": replicates, "concurrency": concurrency,
               "dry_run": dry_run, "models_file": str(models_file) if models_file else None}
    run_id = new_id()

    async def targets(writer: Any) -> Any:
        return run_id, await start(plan, writer, run_id, options, _models_json(loaded, plan), _versions())

    raise typer.Exit(_drive(url, plan, targets, run_id, concurrency))


def _stored_plan(row: Any) -> Any:
    """The plan of a stored run, rebuilt from its snapshot: the protocol and prompt files as they were
    when it started, and the model aliases it used (key variable names only)."""
    from ..plan import make_plan
    from ..protocol.load import from_snapshot
    from ..protocol.models_file import BUILTIN_ALIASES, ModelAlias

    options = json.loads(row.options_json)
    snapshot = json.loads(row.plan_json).get("snapshot")
    if snapshot is None:
        fail(f"run {row.id} has no stored snapshot (it was imported, or made by an older latitude)")
    stored = {k: ModelAlias.model_validate(v) for k, v in json.loads(row.models_json or "{}").items()
              if not k.endswith("~sim")}
    loaded = from_snapshot(snapshot, {**BUILTIN_ALIASES, **stored}, Path(row.protocol_path), row.protocol_text)
    plan = make_plan(loaded, models=options.get("models"), conditions=options.get("conditions"),
                     replicates=options.get("replicates"))
    if options.get("dry_run"):
        plan = _simulated(plan)
    return plan, options


@contextmanager
def _stored_run(db: str | None, run_id: str) -> Iterator[tuple[str, Any, Any, Any, dict[str, Any]]]:
    """Open the store (upgrading it), find the run and rebuild its plan from the snapshot."""
    from sqlmodel import Session

    from ..store import queries
    from ..store.db import make_engine, upgrade

    url = db_url(db)
    upgrade(url)
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            row = queries.get_run(session, run_id)
            if row is None:
                fail(f"no run {run_id} in {url}")
            plan, options = _stored_plan(row)
            yield url, session, row, plan, options
    finally:
        engine.dispose()


def resume(
    run_id: Annotated[str, typer.Argument(help="Run id (see `latitude runs`).")],
    concurrency: Annotated[int | None, typer.Option(help="Most conversations in flight at once.", min=1)] = None,
    retry_errors: Annotated[bool, typer.Option("--retry-errors", help="Also continue conversations that ended in an error.")] = False,
    db: DbOption = None,
) -> None:
    """Continue every unfinished conversation of a run from its last committed turn.

    The run's stored snapshot is used (protocol and prompt files as they were when it started),
    so editing the protocol file afterwards cannot change a run halfway.
    """
    from ..engine.driver import Target
    from ..store import queries
    from ..store.tables import ConversationRow

    with _stored_run(db, run_id) as (url, session, _row, plan, options):
        from ..engine.choose import specs_for_stored, stored_choices

        by_seq = {s.seq: s for s in plan.specs}
        unfinished = queries.unfinished_conversations(session, run_id, include_errors=retry_errors)
        by_seq.update({k: v for k, v in specs_for_stored(plan, unfinished).items() if k not in by_seq})  # later adaptive rounds
        targets = [
            Target(by_seq[conv.seq], conv.id, queries.conversation_messages(session, conv.id),
                   queries.conversation_offers(session, conv.id), stored_choices(session, conv.id))
            for conv in unfinished if conv.seq in by_seq
        ]
    out = console()
    from rich.text import Text

    out.print(Text(f"resuming run {run_id}: {len(targets)} unfinished conversations"))

    async def factory(writer: Any) -> Any:
        from ..store.tables import RunRow

        await writer.update(RunRow, run_id, status="running", ended_at=None)
        await asyncio.gather(*(writer.update(ConversationRow, t.conversation_id, status="running",
                                             stop_reason=None, stop_detail=None) for t in targets))
        return run_id, targets

    raise typer.Exit(_drive(url, plan, factory, run_id, concurrency or options.get("concurrency") or 16))


def rerun(
    run_id: Annotated[str, typer.Argument(help="The run to repeat.")],
    concurrency: Annotated[int | None, typer.Option(help="Most conversations in flight at once.", min=1)] = None,
    db: DbOption = None,
) -> None:
    """Run a stored run again as a new run, from its snapshot: same protocol text, prompt files, models, options."""
    from ..engine.driver import new_id, start

    with _stored_run(db, run_id) as (url, _session, row, plan, options):
        models_json = row.models_json
    new_run = new_id()
    options = {**options, "rerun_of": run_id}
    from rich.text import Text

    console().print(Text(f"re-running {run_id} as {new_run}: {len(plan.specs)} conversations"))

    async def targets(writer: Any) -> Any:
        return new_run, await start(plan, writer, new_run, options, models_json, _versions())

    raise typer.Exit(_drive(url, plan, targets, new_run, concurrency or options.get("concurrency") or 16))


def register(app: typer.Typer) -> None:
    app.command()(run)
    app.command()(resume)
    app.command()(rerun)
