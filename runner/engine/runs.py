"""A run's lifecycle: start, resume, rerun, cancel, dry-run. The CLI parses and displays;
everything a run needs besides (its status, reading its sources, rebuilding its plan from
the stored snapshot, marking it interrupted) happens here, so a run can be started or
resumed without Typer.

    prepared = runs.prepare_start(plan, url, options)      # or prepare_resume / prepare_rerun
    print(prepared.run_id)                                 # known before the first model call
    outcome = runs.drive(prepared, emit)                   # Ctrl-C: marked interrupted, resumable
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Literal

from ..plan import Plan
from ..protocol.models_file import ModelAlias, resolve_model
from .conversation import RunContext
from .driver import Target, new_id, start_sync, started_event
from .batches import uses_batches
from .events import Emit
from .limits import Limits
from .retry import RetryPolicy

__all__ = ["Outcome", "Prepared", "RunError", "cancel", "drive", "latest_unfinished", "named_judges", "prepare_resume",
           "prepare_rerun", "prepare_start", "read_sources", "simulated", "stored_plan", "versions"]

StartKind = Literal["start", "resume", "rerun", "fork"]
"""How a session of the engine begins: a new run, the unfinished part of a stored one, a stored run again,
or a new fork run (`runner.engine.forks`: continuations of a stored conversation, driven like a resume)."""

SIM_SUFFIX = "~sim"
"""Appended to every alias of a dry run (the models replaced by the simulator)."""


class RunError(Exception):
    """A run cannot start or resume (unknown run, no snapshot, a source missing from the store)."""


@dataclass
class Prepared:
    """Everything a session of the engine needs, decided before the first model call."""

    url: str
    """The store."""
    run_id: str
    """The run this session writes to (new for start and rerun)."""
    plan: Plan
    """The plan (rebuilt from the snapshot for resume and rerun)."""
    kind: StartKind
    """start, resume or rerun."""
    concurrency: int
    """Most conversations in flight."""
    sources: dict[str, Any] = field(default_factory=dict)
    """`sources.NAME` for templates, read from files and the store."""
    options: dict[str, Any] = field(default_factory=dict)
    """The run's options (stored with a new run)."""
    models_json: str = "{}"
    """The aliases the run uses (key variable names only), stored with a new run."""
    targets: list[Target] = field(default_factory=list)
    """The conversations to drive: a new run's, written (pending) before its id is shown; or the
    unfinished ones of a stored run."""

    @property
    def conversations(self) -> int:
        """Conversations this session will drive."""
        return len(self.targets)


@dataclass
class Outcome:
    """How a session ended."""

    run_id: str
    statuses: Counter[str]
    """Final statuses of the conversations driven now (`ConversationStatus` → count)."""
    interrupted: bool = False
    """Ctrl-C: the run is marked interrupted and its unfinished conversations cancelled (resumable)."""

    @property
    def errored(self) -> int:
        return self.statuses.get("error", 0)


# ----------------------------------------------------------------------------- preparing


def versions() -> tuple[str, str]:
    """(latitude, litellm) versions, stored with a run (litellm's read from its metadata, not imported)."""
    from importlib.metadata import version

    def of(name: str, fallback: str) -> str:
        try:
            return version(name)
        except Exception:
            return fallback

    return of("latitude", "dev"), of("litellm", "unknown")


def models_json(plan: Plan) -> str:
    """The aliases a plan uses, as configured (key variable names only, never values): the
    conversations' models, partners and experimenters, and the judges the protocol names (offer,
    stop and choice judges), so a resume, rerun or fork of the run, which knows only these, can
    call them."""
    used: dict[str, ModelAlias] = {s.model_alias: s.model for s in plan.specs}
    for s in plan.specs:
        if s.partner_alias and s.partner:
            used[s.partner_alias] = s.partner
        if s.experimenter_alias and s.experimenter:
            used[s.experimenter_alias] = s.experimenter
    for name in sorted(named_judges(plan.protocol.model_dump())):
        judge = resolve_model(name, plan.loaded.models) if name not in used else None
        if judge is not None:
            used[name] = judge
    return json.dumps({k: v.model_dump(exclude_none=True) for k, v in used.items()}, default=str)


def named_judges(node: Any) -> set[str]:
    """Every alias a protocol (as `model_dump()`) names under a ``judge`` key, wherever it is."""
    found: set[str] = set()
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "judge" and isinstance(v, str):
                found.add(v)
            else:
                found |= named_judges(v)
    elif isinstance(node, list):
        for v in node:
            found |= named_judges(v)
    return found


def simulated(plan: Plan) -> Plan:
    """The dry run of `plan`: a new plan with every model replaced by a simulator persona
    (the plan given is left as it was)."""
    sim = ModelAlias(model="sim/stopper")
    specs = [replace(s, model_alias=f"{s.model_alias}{SIM_SUFFIX}", model=sim,
                     partner=sim if s.partner else None,
                     partner_alias=f"{s.partner_alias}{SIM_SUFFIX}" if s.partner_alias else None,
                     experimenter=sim if s.experimenter else None) for s in plan.specs]
    return replace(plan, specs=specs)


def read_sources(plan: Plan, url: str) -> dict[str, Any]:
    """Resolve `sources:`: files were read at load time; store sources are read here."""
    from sqlmodel import Session, select

    from ..store import queries
    from ..store.db import open as open_store
    from ..store.tables import CaptureRow

    out: dict[str, Any] = {}
    engine = None

    def text_of(session: Any, conversation_id: str, capture: str | None) -> str:
        messages = queries.conversation_messages(session, conversation_id)
        if capture:
            row = session.exec(select(CaptureRow).where(CaptureRow.conversation_id == conversation_id)
                               .where(CaptureRow.name == capture).order_by(CaptureRow.message_idx.desc())).first()
            return messages[row.message_idx].content if row is not None and row.message_idx < len(messages) else ""
        return "\n\n".join(f"[{m.speaker}] {m.content}" for m in messages if m.role in ("user", "assistant"))

    try:
        for name, src in plan.protocol.sources.items():
            if src.file is not None:
                out[name] = {"text": src.text}
                continue
            engine = engine or open_store(url)
            with Session(engine) as session:
                if src.conversation is not None:
                    conv = queries.get_conversation(session, src.conversation)
                    if conv is None:
                        raise RunError(f"source `{name}`: no conversation {src.conversation} in the store")
                    convs = [conv]
                else:
                    if queries.get_run(session, src.run or "") is None:
                        raise RunError(f"source `{name}`: no run {src.run} in the store")
                    convs = queries.run_conversations(session, src.run or "")
                out[name] = [{"text": text_of(session, c.id, src.capture), "conversation": c.id} for c in convs]
    finally:
        if engine is not None:
            engine.dispose()
    return out


def prepare_start(plan: Plan, url: str, options: dict[str, Any], *, concurrency: int,
                  dry_run: bool = False, also: Callable[[str], list[Any]] | None = None) -> Prepared:
    """A new run of `plan` (the simulator standing in for every model when `dry_run`). `also(run_id)`:
    further rows written in the run's own transaction (its deviations from a registration)."""
    from ..store.db import open as open_store

    open_store(url).dispose()
    if dry_run:
        plan = simulated(plan)
    elif options.get("batch"):
        plan = batched(plan)
    prepared = Prepared(url=url, run_id=new_id(), plan=plan, kind="start", concurrency=concurrency,
                        sources=read_sources(plan, url), options=options, models_json=models_json(plan))
    return _created(prepared, also)


def _created(prepared: Prepared, also: Callable[[str], list[Any]] | None = None) -> Prepared:
    """Write a new run and its pending conversations (one transaction): from here on the run
    can be resumed by its id, even if the process is killed before the first model call."""
    prepared.targets = start_sync(prepared.plan, prepared.url, prepared.run_id, prepared.options,
                                  prepared.models_json, versions(), also)
    return prepared


def stored_plan(row: Any) -> tuple[Plan, dict[str, Any]]:
    """The plan of a stored run, rebuilt from its snapshot: the protocol and prompt files as they were
    when it started, and the model aliases it used (key variable names only)."""
    from ..plan import make_plan
    from ..protocol.load import from_snapshot
    from ..protocol.models_file import BUILTIN_ALIASES
    from ..store.records import PlanRecord, RunOptions

    options = RunOptions.model_validate_json(row.options_json).model_dump(exclude_none=True)
    snapshot = PlanRecord.model_validate_json(row.plan_json).snapshot
    if snapshot is None:
        raise RunError(f"run {row.id} has no stored snapshot (it was imported, or made by an older latitude)")
    stored = {k: ModelAlias.model_validate(v) for k, v in json.loads(row.models_json or "{}").items()
              if not k.endswith(SIM_SUFFIX)}
    loaded = from_snapshot(snapshot, {**BUILTIN_ALIASES, **stored}, Path(row.protocol_path), row.protocol_text)
    plan = make_plan(loaded, models=options.get("models"), conditions=options.get("conditions"),
                     replicates=options.get("replicates"))
    if options.get("dry_run"):
        plan = simulated(plan)
    elif options.get("batch"):
        plan = batched(plan)
    return plan, options


def latest_unfinished(url: str) -> str | None:
    """The most recently started run with unfinished conversations (what `resume` with no id picks)."""
    from ..store import queries
    from ..store.db import opened

    with opened(url) as session:
        for summary in queries.list_runs(session):  # newest first
            if summary.unfinished:
                return summary.id
    return None


def prepare_resume(url: str, run_id: str, *, concurrency: int | None = None,
                   retry_errors: bool = False) -> Prepared:
    """The unfinished conversations of a stored run, each from its last committed turn."""
    from ..store import queries
    from ..store.db import opened

    with opened(url) as session:
        row = queries.get_run(session, run_id)
        if row is None:
            raise RunError(f"no run {run_id} in {url}")
        plan, options = stored_plan(row)
        from .choose import specs_for_stored, stored_choices

        by_seq = {s.seq: s for s in plan.specs}
        unfinished = queries.unfinished_conversations(session, run_id, include_errors=retry_errors)
        # later adaptive rounds are not in the plan: rebuilt from each conversation's stored comparison
        by_seq.update({k: v for k, v in specs_for_stored(plan, unfinished).items() if k not in by_seq})
        from .forks import fork_specs

        forked = fork_specs(plan, unfinished)  # a fork: its parent's spec with its own alias, condition, seed
        targets = [
            Target(forked.get(conv.id) or by_seq[conv.seq], conv.id, queries.conversation_messages(session, conv.id),
                   queries.conversation_offers(session, conv.id),
                   queries.conversation_stop_candidates(session, conv.id), stored_choices(session, conv.id),
                   shared=conv.fork_at or 0)
            for conv in unfinished if conv.id in forked or (conv.parent_id is None and conv.seq in by_seq)
        ]
        from .forks import with_forks

        plan = with_forks(plan, options, session, run_id)  # the run's whole design: its forks counted too
    return Prepared(url=url, run_id=run_id, plan=plan, kind="resume",
                    concurrency=concurrency or options.get("concurrency") or 16,
                    sources=read_sources(plan, url), options=options, targets=targets)


def prepare_rerun(url: str, run_id: str, *, concurrency: int | None = None,
                  also: Callable[[str], list[Any]] | None = None) -> Prepared:
    """A stored run again, as a new run, from its snapshot: same protocol text, prompt files, models, options."""
    from ..store import queries
    from ..store.db import opened

    with opened(url) as session:
        row = queries.get_run(session, run_id)
        if row is None:
            raise RunError(f"no run {run_id} in {url}")
        plan, options = stored_plan(row)
        stored_models = row.models_json
    if options.get("fork"):  # a fork run: the same fork again (same parent, point and seeds)
        from .forks import prepare_refork

        return prepare_refork(url, row, concurrency)
    options = {**options, "rerun_of": run_id}
    return _created(Prepared(url=url, run_id=new_id(), plan=plan, kind="rerun",
                             concurrency=concurrency or options.get("concurrency") or 16,
                             sources=read_sources(plan, url), options=options, models_json=stored_models), also)


# ----------------------------------------------------------------------------- driving


async def _begin(prepared: Prepared, writer: Any) -> list[Target]:
    """Mark a resumed run and its conversations running again (a new run was written by its prepare)."""
    from ..store.tables import ConversationRow, RunRow

    targets = prepared.targets
    if prepared.kind in ("start", "rerun"):
        return targets
    await writer.update(RunRow, prepared.run_id, status="running", ended_at=None)
    await asyncio.gather(*(writer.update(ConversationRow, t.conversation_id, status="running",
                                         stop_reason=None, stop_detail=None) for t in targets))
    return targets


async def execute(prepared: Prepared, writer: Any, emit: Emit, retry: RetryPolicy | None = None) -> Counter[str]:
    """Drive the session to its end on an open `StoreWriter`; marks the run done."""
    from ..store.tables import RunRow, utcnow

    targets = await _begin(prepared, writer)
    ctx = RunContext(run_id=prepared.run_id, protocol=prepared.plan.protocol, writer=writer, limits=Limits(),
                     emit=emit, retry=retry or RetryPolicy.from_env(), sources=prepared.sources,
                     models=prepared.plan.loaded.models)
    concurrency = prepared.concurrency
    if uses_batches(plan_models(prepared.plan)):
        from .batches import collector

        assert ctx.client is not None
        ctx.client.batches = await collector(writer, prepared.run_id, emit, api_for=batch_api_for)
        # coroutines are cheap: every conversation may wait on a wave (the live limit does not apply)
        concurrency = BATCH_IN_FLIGHT
    emit(started_event(prepared.run_id, prepared.plan, targets))
    from .choose import run_all

    try:
        statuses = await run_all(ctx, prepared.plan, targets, concurrency)  # adaptive runs: round by round
        from .forks import spawn_planned

        statuses.update(await spawn_planned(ctx, prepared, concurrency))  # a protocol's `fork:`
    finally:
        if ctx.client is not None and ctx.client.batches is not None:
            await ctx.client.batches.aclose()
    await writer.update(RunRow, prepared.run_id, status="done", ended_at=utcnow())
    return statuses


BATCH_IN_FLIGHT = 1_000_000
"""Conversations in flight at once when a run uses the batch transport (all of them, in practice)."""

batch_api_for: Any = None
"""Tests: the `BatchAPI` factory the run's collector uses instead of `batch_wire.batch_api`."""


def plan_models(plan: Plan) -> list[ModelAlias | None]:
    """Every alias a plan may call: each conversation's model, partner and experimenter, and the
    judges its protocol names (offer, stop and choice judges). Not the rest of the models file:
    an alias no conversation calls must not put a live run on the batch transport's footing
    (its concurrency replaced by `BATCH_IN_FLIGHT`)."""
    out: list[ModelAlias | None] = []
    for s in plan.specs:
        out += [s.model, s.partner, s.experimenter]
    judges = named_judges(plan.protocol.model_dump())
    return out + [m for name, m in plan.loaded.models.items() if name in judges]


def batched(plan: Plan) -> Plan:
    """`latitude run --batch`: every openai/ and anthropic/ alias of `plan` on the batch transport."""
    specs = [replace(s, model=s.model.batched(), partner=s.partner.batched() if s.partner else None,
                     experimenter=s.experimenter.batched() if s.experimenter else None) for s in plan.specs]
    loaded = replace(plan.loaded, models={k: v.batched() for k, v in plan.loaded.models.items()})
    return replace(plan, specs=specs, loaded=loaded)


def cancel(writer: Any, run_id: str) -> None:
    """Mark a run interrupted and its running or pending conversations cancelled (resumable).
    Synchronous: called after the event loop has stopped (Ctrl-C)."""
    from ..store.tables import ConversationRow, RunRow, utcnow

    def mark(session: Any) -> None:
        from sqlmodel import update

        session.exec(update(ConversationRow).where(ConversationRow.run_id == run_id)
                     .where(ConversationRow.status.in_(["running", "pending"]))
                     .values(status="cancelled", stop_reason="cancelled"))
        session.exec(update(RunRow).where(RunRow.id == run_id).values(status="interrupted", ended_at=utcnow()))

    writer.call_sync(mark)


def drive(prepared: Prepared, emit: Emit, retry: RetryPolicy | None = None) -> Outcome:
    """Run the session in its own event loop (uvloop where installed: `eventloop`). Ctrl-C ends it
    with the run marked interrupted (committed turns kept; `resume` continues it)."""
    from ..store import StoreWriter
    from . import eventloop
    from .gctune import tuned_gc

    policy = retry or RetryPolicy.from_env()
    writer = StoreWriter(prepared.url)
    try:
        try:
            with tuned_gc():
                statuses = eventloop.run(execute(prepared, writer, emit, policy))  # uvloop where installed
        except KeyboardInterrupt:
            cancel(writer, prepared.run_id)
            return Outcome(prepared.run_id, Counter(), interrupted=True)
    finally:
        writer.close_sync()
    return Outcome(prepared.run_id, statuses)
