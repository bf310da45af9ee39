"""`latitude runs`, `show`, `models`: read the store and the models file.

Listings fit their reader. By default a table: on a terminal, fitted to its width; piped or
redirected (a log, `less`, CI output), drawn at its natural width so no value is ever cut (a run
id copied from a log resumes). Scripts ask for `--format tsv` (a header line, then one record
per line, whole values: `cut -f1` gives run ids) or `--format json` (an array of objects). The
piped default stays a table because such output is read by people as often as by programs,
and a script should name the format it parses rather than depend on where stdout goes.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any, Literal

import typer

from .common import DbOption, ModelsOption, console, fail, open_store

ListFormat = Literal["table", "json", "tsv"]
"""How a listing is printed: a Rich table, a JSON array of objects, or tab-separated values."""

FormatOption = Annotated[
    str | None,
    typer.Option("--format", "-f", help="table (default; piped, drawn at full width so nothing is cut), "
                                        "tsv (header line, whole values) or json (array of objects)."),
]


def _format(chosen: str | None) -> ListFormat:
    if chosen is None:
        return "table"
    if chosen not in ("table", "json", "tsv"):
        fail(f"unknown format {chosen!r}: use table, json or tsv")
    return chosen  # type: ignore[return-value]


def _tsv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).replace("\t", " ").replace("\r", " ").replace("\n", " ")


def emit(records: list[dict[str, Any]], columns: list[str], fmt: ListFormat, table: Any) -> None:
    """Print a listing as `fmt`: `records` (whole values) for json/tsv, `table` (a Rich Table) otherwise."""
    if fmt == "json":
        sys.stdout.write(json.dumps(records, indent=2, default=str) + "\n")
    elif fmt == "tsv":
        lines = ["\t".join(columns)] + ["\t".join(_tsv_cell(r.get(c)) for c in columns) for r in records]
        sys.stdout.write("\n".join(lines) + "\n")
    else:
        out = console()
        if not out.is_terminal:  # a log or a pipe: natural width, nothing cut
            from rich.console import Console

            out = Console(highlight=False, soft_wrap=True, width=100_000)
            for column in table.columns:
                column.no_wrap = True
                column.overflow = "ignore"
        out.print(table)


def runs(
    db: DbOption = None,
    limit: Annotated[int, typer.Option(help="Most runs to list, newest first.")] = 50,
    format: FormatOption = None,
) -> None:
    """List runs with their status, conversation counts, tokens and cost."""
    from rich.table import Table
    from rich.text import Text
    from sqlmodel import Session

    from ..store import queries

    fmt = _format(format)
    engine = open_store(db)
    with Session(engine) as session:
        rows = queries.list_runs(session, limit=limit)
    table = Table("run", "protocol", "started", "status", "conversations", "done", "error", "unfinished", "turns",
                  "tokens", "cost")
    records = []
    for r in rows:
        name = Text(f"{r.protocol_name} v{r.protocol_version}")
        if r.simulated:
            name.append(" [simulated]", style="magenta")
        table.add_row(Text(r.id), name, r.started_at.strftime("%Y-%m-%d %H:%M"), Text(r.shown_status), str(r.conversations),
                      str(r.by_status.get("done", 0)), str(r.by_status.get("error", 0)), str(r.unfinished),
                      f"{r.turns:,}", f"{r.tokens_in + r.tokens_out:,}", f"${r.cost:,.4f}")
        records.append({
            "run": r.id, "protocol": r.protocol_name, "version": r.protocol_version, "simulated": r.simulated,
            "started": r.started_at.isoformat(), "ended": r.ended_at.isoformat() if r.ended_at else None,
            "status": r.status, "conversations": r.conversations, "done": r.by_status.get("done", 0),
            "error": r.by_status.get("error", 0), "unfinished": r.unfinished, "turns": r.turns,
            "tokens_in": r.tokens_in, "tokens_out": r.tokens_out, "cost_usd": round(r.cost, 6),
            **_cache_fields(r),
            "batches_out": r.batches_out,
        })
    emit(records, RUN_COLUMNS, fmt, table)


def _cache_fields(r: Any) -> dict[str, Any]:
    """A run's prompt-cache totals for scripts: input tokens read from and written to the cache
    (out of `tokens_in`), and the prompts' cost as charged and as it would have been uncached."""
    return {"cached_tokens": r.cached_tokens, "cache_write_tokens": r.cache_write_tokens,
            "input_cost_usd": None if r.input_cost is None else round(r.input_cost, 6),
            "input_cost_uncached_usd": None if r.input_cost_uncached is None else round(r.input_cost_uncached, 6)}


RUN_COLUMNS = ["run", "protocol", "version", "simulated", "started", "ended", "status", "conversations", "done",
               "error", "unfinished", "turns", "tokens_in", "tokens_out", "cost_usd", "cached_tokens",
               "cache_write_tokens", "input_cost_usd", "input_cost_uncached_usd", "batches_out"]
"""Fields of `latitude runs --format json|tsv`, in order (`cached_tokens` and `cache_write_tokens`
are out of `tokens_in`; `input_cost_usd` is the prompts' cost as charged, `input_cost_uncached_usd`
what it would have been with no prompt cache; empty when no price was known; `batches_out`: vendor
batches of the run not yet ended)."""


def show(
    conversation: Annotated[str, typer.Argument(help="Conversation id (see `latitude export` or the TUI), or a run id (its summary).")],
    db: DbOption = None,
) -> None:
    """Print one transcript, or a run's summary. Model text is shown literally: never read as markup or terminal escapes."""
    from rich.rule import Rule
    from rich.text import Text
    from sqlmodel import Session

    from ..export.transcripts import literal
    from ..store import queries

    engine = open_store(db)
    with Session(engine) as session:
        conv = queries.get_conversation(session, conversation)
        if conv is None and queries.get_run(session, conversation) is not None:
            summary = queries.run_summary(session, conversation)
            lines = cache_report_lines(session, conversation)
        if conv is None:
            if queries.get_run(session, conversation) is not None:
                _show_run(summary, lines)
                return
            fail(f"no conversation or run {conversation}")
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
    if conv.parent_id is not None:
        out.print(Text(f"fork (sample {(conv.fork_seq or 0) + 1}) of {conv.parent_id} at #{conv.fork_at}: messages "
                       f"#0..#{(conv.fork_at or 0) - 1} are the parent's, replayed, never sent again", style="magenta"))
    if conv.status == "error" or (conv.stop_reason or "").startswith("error"):
        out.print(Text(f"error: {literal(conv.stop_detail or '(no error text was stored)')}", style="bold red"))
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


def cache_report_lines(session: Any, run_id: str) -> list[str]:
    """The prompt-cache lines of a run's summary (`runner.engine.caching.report`)."""
    from ..engine.caching import report

    return [line.text() for line in report(session, run_id)]


def _show_run(summary: Any, lines: list[str]) -> None:
    from rich.text import Text

    out = console()
    r = summary
    out.print(Text(f"run {r.id}  {r.protocol_name} v{r.protocol_version}  {r.status}"
                   + ("  [SIMULATED]" if r.simulated else "")), soft_wrap=True)
    out.print(Text(f"conversations: {r.conversations} ({r.by_status.get('done', 0)} done, "
                   f"{r.by_status.get('error', 0)} error, {r.unfinished} unfinished); {r.turns:,} model replies"))
    out.print(Text(f"tokens: {r.tokens_in:,} in, {r.tokens_out:,} out; cost ${r.cost:,.4f} (as recorded per request)"))
    for line in lines:
        out.print(Text(line), soft_wrap=True)


def models(models_file: ModelsOption = None, format: FormatOption = None) -> None:
    """List model aliases, what they resolve to, and whether each key variable is set (never its value)."""
    from rich.table import Table
    from rich.text import Text

    from ..protocol import ProtocolError, load_models
    from .common import print_problems

    fmt = _format(format)
    try:
        aliases = load_models(models_file)
    except ProtocolError as exc:
        print_problems(exc)
        raise typer.Exit(1) from None
    table = Table("alias", "litellm model", "vendor", "key variable", "key set", "limits")
    records = []
    for name, m in aliases.items():
        key = m.key_is_set()
        vendor = Text(m.vendor + (" (simulated)" if m.simulated else ""))
        limits = ", ".join(f"{k}={getattr(m, k)}" for k in ("rpm", "tpm", "max_concurrency") if getattr(m, k))
        table.add_row(Text(name), Text(m.model), vendor, Text(m.api_key_env or "—"),
                      "—" if key is None else ("yes" if key else Text("NO", style="red")), limits)
        records.append({"alias": name, "model": m.model, "vendor": m.vendor, "simulated": m.simulated,
                        "key_variable": m.api_key_env, "key_set": key, "rpm": m.rpm, "tpm": m.tpm,
                        "max_concurrency": m.max_concurrency})
    emit(records, MODEL_COLUMNS, fmt, table)


MODEL_COLUMNS = ["alias", "model", "vendor", "simulated", "key_variable", "key_set", "rpm", "tpm", "max_concurrency"]
"""Fields of `latitude models --format json|tsv`, in order (`key_set` is empty when no key is needed)."""


def register(app: typer.Typer) -> None:
    app.command()(runs)
    app.command()(show)
    app.command()(models)
