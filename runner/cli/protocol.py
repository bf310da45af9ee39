"""`latitude validate`, `schema`, `plan`: everything that reads a protocol without spending."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from .common import EXIT_USAGE, ModelsOption, console, fail, load_or_exit, print_problems


def validate(
    protocols: Annotated[list[Path], typer.Argument(help="Protocol files to check.")],
    models_file: ModelsOption = None,
) -> None:
    """Check protocols (syntax, schema, references, templates) without calling any model."""
    from rich.text import Text

    from ..protocol import ProtocolError, load, load_models

    out = console()
    bad = 0
    try:
        aliases = load_models(models_file)
    except ProtocolError as exc:
        print_problems(exc)
        raise typer.Exit(EXIT_USAGE) from None
    for path in protocols:
        try:
            loaded = load(path, aliases)
        except ProtocolError as exc:
            bad += 1
            print_problems(exc)
            continue
        out.print(Text(f"ok  {path}  ({loaded.protocol.name} v{loaded.protocol.version})", style="green"))
    if bad:
        raise typer.Exit(EXIT_USAGE)


def schema() -> None:
    """Print the protocol JSON Schema (for editors: `latitude schema > protocol.schema.json`)."""
    from ..protocol.schema import Protocol

    typer.echo(json.dumps(Protocol.model_json_schema(), indent=2))


def plan(
    protocol: Annotated[Path, typer.Argument(help="Protocol file.")],
    model: Annotated[list[str] | None, typer.Option("--model", "-m", help="Model alias (repeatable).")] = None,
    condition: Annotated[list[str] | None, typer.Option("--condition", "-c", help="Condition (repeatable).")] = None,
    replicates: Annotated[int | None, typer.Option(help="Replicates per model × condition.")] = None,
    models_file: ModelsOption = None,
) -> None:
    """Print the expanded matrix, worst-case calls and tokens, and an estimated cost, before anything is spent."""
    from rich.table import Table
    from rich.text import Text

    from ..plan import PlanError, make_plan

    loaded = load_or_exit(protocol, models_file)
    try:
        p = make_plan(loaded, models=model, conditions=condition, replicates=replicates)
    except PlanError as exc:
        fail(str(exc))
    from .. import providers

    out = console()
    out.print(Text(f"{loaded.protocol.name} v{loaded.protocol.version}: {len(p.specs)} conversations = "
                   f"{len(p.models)} models × {len(p.conditions)} conditions × {p.replicates} replicates"))
    out.print(Text(f"conditions: {', '.join(p.conditions)}; at most {p.calls_per_conversation} model calls "
                   "per conversation (worst case)"))
    if p.preferences:
        pr = p.preferences
        adaptive = (f" × {pr['rounds']} adaptive rounds (worst case: every round in full)" if pr["rounds"] > 1 else "")
        out.print(Text(f"preferences: {pr['options']} options ({pr['pairs_possible']} possible pairs, opt-out: "
                       f"{pr['opt_out'] or 'none'}); {pr['comparisons_per_round']} comparisons per model × condition × "
                       f"replicate per round{adaptive}; {pr['comparisons']:,} comparisons in all, one conversation each; "
                       f"mode {pr['mode']}, seed {pr['seed']}"
                       + (f"; {pr['judge_calls']:,} judge calls" if pr["judge_calls"] else "")), soft_wrap=True)
    table = Table("model", "litellm model", "conversations", "calls (max)", "tokens in (max)", "tokens out (max)",
                  "cost (max)", "batch cost (max)", title="Worst case: every offer takes its longest branch, nobody stops early")
    from ..protocol.models_file import resolve_model

    total = batch_total = 0.0
    unknown = False
    notes: set[str] = set()
    for alias, entry in p.per_model.items():
        m = resolve_model(alias, loaded.models)
        price = providers.live_price_per_token(m) if m else None
        batch = providers.batch_price_per_token(m) if m else None
        if price is None:
            cost_text = "unknown"
            unknown = True
        else:
            cost = entry["tokens_in"] * price[0] + entry["tokens_out"] * price[1]
            total += cost
            cost_text = f"${cost:,.2f}"
        if batch is None:
            batch_text = "no batch API" if price is not None and m is not None and m.vendor not in ("openai", "anthropic") else "unknown"
            batch_total += cost if price is not None else 0.0
        else:
            (b_in, b_out), note = batch
            b_cost = entry["tokens_in"] * b_in + entry["tokens_out"] * b_out
            batch_total += b_cost
            notes.add(note)
            batch_text = f"${b_cost:,.2f} ({note})"
        table.add_row(Text(alias), Text(entry["litellm_model"]), str(entry["conversations"]), f"{entry['calls']:,}",
                      f"{entry['tokens_in']:,}", f"{entry['tokens_out']:,}", cost_text, batch_text)
    out.print(table)
    out.print(Text(f"estimated worst-case cost: ${total:,.2f}" + (" (plus models without a known price)" if unknown else "")))
    out.print(Text(f"on batches (latitude run --batch): ${batch_total:,.2f}"
                   + (f", priced by the {' and the '.join(sorted(notes))}" if notes else "")
                   + "; models without a batch API at their live price"), soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command()(validate)
    app.command()(schema)
    app.command()(plan)
