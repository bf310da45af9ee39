"""`latitude runs`, `show`, `models`: read the store and the models file."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from .common import DbOption, ModelsOption, console, fail, open_store


def runs(
    db: DbOption = None,
    limit: Annotated[int, typer.Option(help="Most runs to list, newest first.")] = 50,
) -> None:
    """List runs with their status, conversation counts, tokens and cost."""
    from rich.table import Table
    from rich.text import Text
    from sqlmodel import Session

    from ..store import queries

    engine = open_store(db)
    with Session(engine) as session:
        rows = queries.list_runs(session, limit=limit)
    table = Table("run", "protocol", "started", "status", "conversations", "done", "error", "unfinished", "turns",
                  "tokens", "cost")
    for r in rows:
        name = Text(f"{r.protocol_name} v{r.protocol_version}")
        if r.simulated:
            name.append(" [simulated]", style="magenta")
        table.add_row(Text(r.id), name, r.started_at.strftime("%Y-%m-%d %H:%M"), Text(r.status), str(r.conversations),
                      str(r.by_status.get("done", 0)), str(r.by_status.get("error", 0)), str(r.unfinished),
                      f"{r.turns:,}", f"{r.tokens_in + r.tokens_out:,}", f"${r.cost:,.4f}")
    console().print(table)


def show(
    conversation: Annotated[str, typer.Argument(help="Conversation id (see `latitude export` or the TUI).")],
    db: DbOption = None,
) -> None:
    """Print one transcript. Model text is shown literally: never read as markup or terminal escapes."""
    from rich.rule import Rule
    from rich.text import Text
    from sqlmodel import Session

    from ..export.transcripts import literal
    from ..store import queries

    engine = open_store(db)
    with Session(engine) as session:
        conv = queries.get_conversation(session, conversation)
        if conv is None:
            fail(f"no conversation {conversation}")
        messages = queries.conversation_messages(session, conversation)
        offers = {o.reply_message_idx: o for o in queries.conversation_offers(session, conversation)}
        artifacts = queries.conversation_artifacts(session, conversation)
        candidates: dict[int, list[Any]] = {}
        for c in queries.conversation_stop_candidates(session, conversation):
            candidates.setdefault(c.message_idx, []).append(c)
    out = console()
    head = Text(f"{conv.id}  {conv.model_alias} ({conv.litellm_model})  condition={conv.condition}  "
                f"replicate={conv.replicate}  stop={conv.stop_reason}  turns={conv.turns}")
    if conv.simulated:
        head.append("  [SIMULATED]", style="bold magenta")
    out.print(head)
    for m in messages:
        meta = f"#{m.idx} {m.speaker}"
        if m.latency_ms is not None and m.role == "assistant":
            meta += f"  {m.latency_ms:,.0f} ms, ttft {m.ttft_ms or 0:,.0f} ms, {m.tokens_in or 0}→{m.tokens_out or 0} tok"
        out.print(Rule(Text(meta), style="dim"))
        out.print(Text(literal(m.content)))
        if m.reasoning:
            out.print(Text("reasoning: " + literal(m.reasoning), style="dim"))
        if m.idx in offers:
            o = offers[m.idx]
            out.print(Text(f"[offer {o.label}: {o.classification} by {o.method}; evidence: {literal(o.evidence)}]",
                           style="cyan"))
        for c in candidates.get(m.idx, []):
            out.print(Text(f"[stop candidate v{c.detection} {c.stop_channel}: {c.decision} ({c.rule})"
                           + (" counted" if c.counted else "") + f"; {literal(c.evidence)[:300]}]",
                           style="green" if c.decision == "used" else "magenta"))
        if conv.stop_message_idx == m.idx and conv.stop_detail:
            out.print(Text(f"[stop: {literal(conv.stop_detail)}]", style="yellow"))
    for a in artifacts:
        out.print(Rule(Text(f"artifact {literal(a.name)} (message #{a.message_idx})"), style="green"))
        out.print(Text(literal(a.content)))


def models(models_file: ModelsOption = None) -> None:
    """List model aliases, what they resolve to, and whether each key variable is set (never its value)."""
    from rich.table import Table
    from rich.text import Text

    from ..protocol import ProtocolError, load_models
    from .common import print_problems

    try:
        aliases = load_models(models_file)
    except ProtocolError as exc:
        print_problems(exc)
        raise typer.Exit(1) from None
    table = Table("alias", "litellm model", "vendor", "key variable", "key set", "limits")
    for name, m in aliases.items():
        key = m.key_is_set()
        vendor = Text(m.vendor + (" (simulated)" if m.simulated else ""))
        limits = ", ".join(f"{k}={getattr(m, k)}" for k in ("rpm", "tpm", "max_concurrency") if getattr(m, k))
        table.add_row(Text(name), Text(m.model), vendor, Text(m.api_key_env or "—"),
                      "—" if key is None else ("yes" if key else Text("NO", style="red")), limits)
    console().print(table)


def register(app: typer.Typer) -> None:
    app.command()(runs)
    app.command()(show)
    app.command()(models)
