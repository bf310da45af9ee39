"""Forks: the same point of a conversation, many continuations.

A fork is a resume of a copy. The parent's messages before the fork point are copied into a
new conversation (with the offers, stops, choices, captures and artifacts they carry), and that
conversation is then driven like a resumed one: the interpreter walks the protocol's steps,
consumes the copied messages instead of calling the model, and calls it from the fork point on.
No call is ever made for the shared prefix.

The fork point is a message number, the ``#N`` the TUI's transcript shows on every message
(``MessageRow.idx``, from 0, the system prompt included). It must be a model reply: ``--at 4``
keeps messages ``#0..#3`` (the prompt the model answered at #4 included) and samples #4 again.

    prepared = forks.prepare_fork(url, "abc123", at=4, samples=5)   # a new run, kind fork
    outcome = runs.drive(prepared, emit)                             # Ctrl-C / kill: `latitude resume`

Each sample k (0-based, ``fork_seq``) is sent the seed ``seed + k`` (stored in its params);
``seed`` defaults to the parent's seed + 1, so no sample repeats the parent's own draw.

Where they live: ``latitude fork`` writes a new run (its options carry a `ForkRecord`) with the
parent run's snapshot, so the parent run's design (models × conditions × replicates) is left as
planned and its tallies are not mixed with extra samples of one moment; the fork run has its own
status and is resumed like any run. A protocol's planned ``fork:`` spawns its continuations in
the same run (they are part of that design), after the conversations they fork from have ended.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

from ..plan import ConversationSpec, Plan
from ..protocol import schema
from ..protocol.models_file import ModelAlias, resolve_model
from .runs import Prepared, RunError, prepare_resume, stored_plan, versions

__all__ = ["ForkError", "ForkRequest", "default_seed", "fork_point", "fork_specs", "planned_point",
           "prepare_fork", "prepare_refork", "resolve_conversation", "spawn_planned", "with_forks"]


class ForkError(RunError):
    """A fork cannot be made (unknown conversation, a fork point that is not a model reply...)."""


@dataclass(frozen=True)
class ForkRequest:
    """What ``latitude fork`` asks."""

    conversation: str
    """The parent conversation (its id, or a unique prefix of it)."""
    at: int
    """The fork point: ``#N`` of the parent's model reply to sample again."""
    samples: int
    """Continuations to make."""
    model: str | None = None
    """Another alias to continue the same history (None: the parent's)."""
    condition: str | None = None
    """Another condition for the rest of the protocol (None: the parent's)."""
    seed: int | None = None
    """Base seed (sample k gets ``seed + k``); None: the parent's seed + 1."""


def default_seed(parent_seed: int | None) -> int:
    """The base seed of a fork when none is given: the parent's + 1 (1 when the parent had none)."""
    return (parent_seed if parent_seed is not None else 0) + 1


def _next_seed(session: Any, parent: Any, at: int) -> int:
    """The base seed of a new batch of forks at (`parent`, `at`): one past the highest seed the forks
    already made there were sent with, so a second ``latitude fork`` of the same point samples anew
    instead of repeating the first one's seeds (`default_seed` when there are none yet)."""
    from sqlmodel import select

    from ..store.tables import ConversationRow

    made = session.exec(select(ConversationRow.params_json).where(ConversationRow.parent_id == parent.id)
                        .where(ConversationRow.fork_at == at)).all()
    seeds = [s for s in map(_seed_of, made) if s is not None]
    return max(seeds) + 1 if seeds else default_seed(stored_seed(parent))


def stored_seed(row: Any) -> int | None:
    """The seed a conversation's requests were sent with (from its stored params)."""
    return _seed_of(row.params_json)


def _seed_of(params_json: str | None) -> int | None:
    from ..store.records import ConversationParams

    seed = ConversationParams.model_validate_json(params_json or "{}").sampling.get("seed")
    return int(seed) if seed is not None else None


def fork_point(messages: list[Any], at: int, conversation_id: str) -> None:
    """Check that ``#at`` is a model reply of the stored `messages`; a `ForkError` says why not."""
    replies = [m.idx for m in messages if m.role == "assistant"]
    shown = ", ".join(f"#{i}" for i in replies[:12]) + (" …" if len(replies) > 12 else "")
    if not replies:
        raise ForkError(f"conversation {conversation_id} has no model reply to fork at")
    if at < 0 or at >= len(messages):
        raise ForkError(f"--at {at}: conversation {conversation_id} has messages #0..#{len(messages) - 1}; "
                        f"fork at one of its model replies: {shown}")
    m = messages[at]
    if m.role != "assistant":
        raise ForkError(f"--at {at}: message #{at} of conversation {conversation_id} is the {m.speaker}'s "
                        f"({m.role}, step {m.step}), not a model reply; fork at one of: {shown}")


def resolve_conversation(session: Any, ref: str) -> Any:
    """The conversation named by its id or a unique prefix of it."""
    from sqlmodel import col, select

    from ..store.tables import ConversationRow

    row = session.get(ConversationRow, ref)
    if row is not None:
        return row
    rows = list(session.exec(select(ConversationRow).where(col(ConversationRow.id).startswith(ref)).limit(3)))
    if len(rows) == 1:
        return rows[0]
    if not rows:
        raise ForkError(f"no conversation {ref!r} in the store (see `latitude show RUN`)")
    raise ForkError(f"{ref!r} names more than one conversation ({', '.join(r.id for r in rows)}…); give more of the id")


def _base_specs(plan: Plan, rows: list[Any]) -> dict[int, ConversationSpec]:
    from .choose import specs_for_stored

    by_seq: dict[int, ConversationSpec] = {}
    for s in plan.specs:  # the planned one first: a resumed plan lists its forks after it, with the same seq
        by_seq.setdefault(s.seq, s)
    by_seq.update({k: v for k, v in specs_for_stored(plan, rows).items() if k not in by_seq})
    return by_seq


def _spec_for(plan: Plan, base: ConversationSpec, model_alias: str, condition: str, seed: int | None,
              models: dict[str, ModelAlias] | None = None) -> ConversationSpec:
    aliases = {**plan.loaded.models, **(models or {})}
    model = base.model if model_alias == base.model_alias else resolve_model(model_alias, aliases)
    if model is None:
        raise ForkError(f"unknown model alias `{model_alias}`: not in the run's models "
                        f"({', '.join(sorted(plan.loaded.models)) or 'none'}); pass --models FILE")
    by_name = {c.name: c for c in plan.protocol.conditions}
    if condition not in by_name:
        raise ForkError(f"unknown condition `{condition}`; the protocol has: {', '.join(by_name)}")
    return replace(base, model_alias=model_alias, model=model, condition=by_name[condition], seed=seed)


def fork_specs(plan: Plan, rows: list[Any]) -> dict[str, ConversationSpec]:
    """The spec of every fork among `rows` (conversation id → spec): the planned conversation it
    descends from (same ``seq``) with the fork's own alias, condition and stored seed."""
    forks = [r for r in rows if r.parent_id is not None]
    if not forks:
        return {}
    base = _base_specs(plan, forks)
    out = {}
    for row in forks:
        if row.seq in base:
            out[row.id] = _spec_for(plan, base[row.seq], row.model_alias, row.condition, stored_seed(row))
    return out


def _prefix(session: Any, parent: Any, at: int) -> list[Any]:
    """What a fork of `parent` at ``#at`` copies, read once: messages ``#0..#at-1`` and what they
    carry (offers answered, stop candidates of the engine's own detection, choices, captures, artifacts)."""
    from sqlmodel import select

    from ..store import queries
    from ..store.tables import ArtifactRow, CaptureRow, ChoiceRow

    out: list[Any] = [m for m in queries.conversation_messages(session, parent.id) if m.idx < at]
    out += [o for o in queries.conversation_offers(session, parent.id)
            if o.offer_message_idx < at and (o.reply_message_idx is None or o.reply_message_idx < at)]
    out += [c for c in queries.conversation_stop_candidates(session, parent.id, detection=1)
            if c.message_idx < at and (c.confirm_message_idx is None or c.confirm_message_idx < at)]
    for table in (ChoiceRow, CaptureRow, ArtifactRow):
        out += [r for r in session.exec(select(table).where(table.conversation_id == parent.id)) if r.message_idx < at]
    return out


def _fork_rows(parent: Any, prefix: list[Any], spec: ConversationSpec, run_id: str, at: int, k: int) -> list[Any]:
    """The new conversation (pending) and its copies of the parent's `prefix` (as `(table, values)`)."""
    from ..store.tables import MessageRow
    from .driver import conversation_row

    conv = conversation_row(run_id, spec)
    conv.parent_id, conv.fork_at, conv.fork_seq = parent.id, at, k
    conv.turns = sum(isinstance(r, MessageRow) and r.role == "assistant" for r in prefix)
    copies = [(type(r), {**{c: v for c, v in r.model_dump().items() if c != "id"}, "conversation_id": conv.id})
              for r in prefix]
    return [conv, *copies]


def _add(session: Any, rows: list[Any]) -> None:
    """The conversations first (their copies refer to them), then the copies, one bulk insert per table."""
    from sqlalchemy import insert

    from ..store.tables import ConversationRow

    session.add_all([r for r in rows if isinstance(r, ConversationRow)])
    session.flush()
    by_table: dict[Any, list[dict[str, Any]]] = {}
    for r in rows:
        if isinstance(r, tuple):
            by_table.setdefault(r[0], []).append(r[1])
    connection = session.connection()
    for table, values in by_table.items():  # Core executemany: one statement per table, not one per row
        connection.execute(insert(table.__table__), values)


def prepare_refork(url: str, run: Any, concurrency: int | None = None) -> Prepared:
    """`latitude rerun` of a fork run: the same fork again (same parent, point, samples, alias,
    condition and seeds) as a new fork run, its options naming the run it repeats."""
    from ..store.records import RunOptions

    options = RunOptions.model_validate_json(run.options_json)
    record = options.fork
    assert record is not None
    stored = {k: ModelAlias.model_validate(v) for k, v in json.loads(run.models_json or "{}").items()}
    request = ForkRequest(record.parent, record.at, record.samples, model=record.model, condition=record.condition,
                          seed=record.seed)
    prepared = prepare_fork(url, request, models=stored, concurrency=concurrency or options.concurrency,
                            rerun_of=run.id)
    prepared.kind = "rerun"
    return prepared


def prepare_fork(url: str, request: ForkRequest, *, models: dict[str, ModelAlias] | None = None,
                 concurrency: int | None = None, rerun_of: str | None = None) -> Prepared:
    """Write a fork run (the parent run's snapshot, a `ForkRecord` in its options) and its pending
    forks with their copied prefixes, in one transaction; then prepare it like a resume."""
    from sqlmodel import Session

    from ..store import queries
    from ..store.db import open as open_store
    from ..store.records import ForkRecord, RunOptions
    from ..store.tables import RunRow
    from .driver import new_id

    if request.samples < 1:
        raise ForkError("--samples must be at least 1")
    engine = open_store(url, write=True)
    try:
        with Session(engine) as session:
            parent = resolve_conversation(session, request.conversation)
            run = queries.get_run(session, parent.run_id)
            assert run is not None
            plan, options = stored_plan(run)
            fork_point(queries.conversation_messages(session, parent.id), request.at, parent.id)
            base = _base_specs(plan, [parent]).get(parent.seq)
            if base is None:
                raise ForkError(f"conversation {parent.id} is not in its run's stored plan (seq {parent.seq})")
            if parent.parent_id is not None:  # a fork of a fork continues the fork's own alias and condition
                base = fork_specs(plan, [parent])[parent.id]
            alias = request.model or parent.model_alias
            seed0 = request.seed if request.seed is not None else _next_seed(session, parent, request.at)
            specs = [_spec_for(plan, base, alias, request.condition or parent.condition, seed0 + k, models)
                     for k in range(request.samples)]
            record = ForkRecord(parent=parent.id, parent_run=run.id, at=request.at, samples=request.samples,
                                seed=seed0, model=request.model, condition=request.condition)
            stored_models = json.loads(run.models_json or "{}")
            if alias not in stored_models and alias not in plan.loaded.models:
                stored_models[alias] = specs[0].model.model_dump(exclude_none=True)
            elif request.model and models and alias in models:
                stored_models[alias] = models[alias].model_dump(exclude_none=True)
            run_options = {**options, "fork": record.model_dump(exclude_none=True)}
            run_options.pop("rerun_of", None)
            if rerun_of is not None:
                run_options["rerun_of"] = rerun_of
            RunOptions.model_validate(run_options)
            run_id = new_id()
            fork_run = RunRow(
                id=run_id, protocol_name=run.protocol_name, protocol_version=run.protocol_version,
                protocol_path=run.protocol_path, protocol_text=run.protocol_text, protocol_hash=run.protocol_hash,
                plan_json=run.plan_json, models_json=json.dumps(stored_models, default=str),
                options_json=json.dumps(run_options, default=str), latitude_version=versions()[0],
                litellm_version=versions()[1], status="running", researcher=run.researcher,
                simulated=all(s.model.simulated for s in specs))
            rows: list[Any] = []
            prefix = _prefix(session, parent, request.at)
            for k, spec in enumerate(specs):
                rows += _fork_rows(parent, prefix, spec, run_id, request.at, k)
            session.add(fork_run)
            session.flush()
            _add(session, rows)
            session.commit()
    finally:
        engine.dispose()
    prepared = prepare_resume(url, run_id, concurrency=concurrency)
    prepared.kind = "fork"
    return prepared


def with_forks(plan: Plan, options: dict[str, Any], session: Any, run_id: str) -> Plan:
    """The plan of a stored run with its stored forks in it (what a resume's progress counts): a
    fork run's plan is its forks alone; a run with planned forks, its own conversations and theirs."""
    from ..store import queries

    forks = list(fork_specs(plan, queries.run_conversations(session, run_id)).values())
    if options.get("fork"):
        return replace(plan, specs=forks)
    return replace(plan, specs=plan.specs + forks) if forks else plan


# ----------------------------------------------------------------------------- planned forks


def _step_path(steps: list[Any], wanted: str, path: str = "steps") -> str | None:
    """The `MessageRow.step` path of the step with id `wanted` (as `Conversation.steps` writes it)."""
    for i, step in enumerate(steps):
        here = f"{path}[{i}]"
        if getattr(step, "id", None) == wanted:
            return f"{here}.open" if isinstance(step, schema.Open) else here
        inner: list[tuple[list[Any], str]] = []
        if isinstance(step, schema.Offer):
            inner = [(step.if_accepted, f"{here}.if_accepted"), (step.if_declined, f"{here}.if_declined")]
        elif isinstance(step, schema.Repeat):
            inner = [(step.repeat.steps, f"{here}.repeat.steps")]
        for sub, sub_path in inner:
            found = _step_path(sub, wanted, sub_path)
            if found is not None:
                return found
    return None


def planned_point(protocol: schema.Protocol, messages: list[Any]) -> int | None:
    """Where a protocol's `fork:` falls in a stored conversation: the message number of the model
    reply it names, or None when the conversation never got there."""
    fork = protocol.fork
    if fork is None:
        return None
    if isinstance(fork.at, int):
        ok = fork.at < len(messages) and messages[fork.at].role == "assistant"
        return fork.at if ok else None
    path = _step_path(protocol.steps, fork.at)
    for m in messages:
        if m.role == "assistant" and path is not None and (m.step == path or m.step.startswith(path + ".")):
            return m.idx
    return None


async def spawn_planned(ctx: Any, prepared: Prepared, max_in_flight: int) -> Counter[str]:
    """A protocol's `fork:`: for every ended conversation of the run (not itself a fork) that reached
    the point and has no forks yet, write its `samples` forks (one transaction each) and drive them.
    Run after the run's own conversations, and again on resume (a kill between a parent's end and
    its forks' creation loses nothing)."""
    from sqlmodel import col, select

    from ..store import queries
    from ..store.tables import ConversationRow
    from .choose import stored_choices
    from .driver import Target, run_targets
    from .events import RunStarted

    protocol = prepared.plan.protocol
    fork = protocol.fork
    if fork is None:
        return Counter()
    plan = prepared.plan

    def make(session: Any) -> list[str]:
        c = ConversationRow
        made: list[str] = []
        roots = list(session.exec(select(c).where(c.run_id == prepared.run_id, c.status == "done",
                                                  col(c.parent_id).is_(None))))
        forked = {p for (p,) in session.execute(select(c.parent_id).where(c.run_id == prepared.run_id,
                                                                        col(c.parent_id).is_not(None)))}
        base = _base_specs(plan, roots)
        for parent in sorted(roots, key=lambda r: (r.seq, r.id)):
            if parent.id in forked or parent.seq not in base:
                continue
            at = planned_point(protocol, queries.conversation_messages(session, parent.id))
            if at is None:
                continue
            seed0 = fork.seed if fork.seed is not None else default_seed(stored_seed(parent))
            rows: list[Any] = []
            prefix = _prefix(session, parent, at)
            for k in range(fork.samples):
                spec = replace(base[parent.seq], seed=seed0 + k)
                rows += _fork_rows(parent, prefix, spec, prepared.run_id, at, k)
            _add(session, rows)  # committed by the writer with the rest: every parent's forks, or none
            made += [r.id for r in rows if isinstance(r, ConversationRow)]
        return made

    made = await ctx.writer.call(make)
    if not made:
        return Counter()

    def progress(session: Any) -> RunStarted:
        rows = queries.run_conversations(session, prepared.run_id)
        return RunStarted(prepared.run_id, dict(Counter(r.model_alias for r in rows)),
                          dict(Counter(r.model_alias for r in rows if r.status in ("done", "error"))))

    ctx.emit(await ctx.writer.call(progress))  # the run grew: progress is out of its forks too

    def load(session: Any) -> list[Target]:
        rows = [session.get(ConversationRow, i) for i in made]
        specs = fork_specs(plan, rows)
        return [Target(specs[r.id], r.id, queries.conversation_messages(session, r.id),
                       queries.conversation_offers(session, r.id),
                       queries.conversation_stop_candidates(session, r.id), stored_choices(session, r.id),
                       shared=r.fork_at or 0)
                for r in rows if r.id in specs]

    targets = await ctx.writer.call(load)
    return await run_targets(ctx, targets, max_in_flight)
