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
    codebook: Annotated[Path | None, typer.Option(
        "--codebook", help="Codebook file: report, per condition, which of each code's words the protocol's own "
                           "wording contains (a code whose words are in the prompt is at risk of being led).",
        dir_okay=False)] = None,
    format: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
) -> None:
    """Print the expanded matrix, worst-case calls and tokens, and an estimated cost, before anything is spent."""
    from rich.table import Table
    from rich.text import Text

    from ..plan import PlanError, make_plan

    if format not in ("table", "json"):
        fail("--format must be table or json")
    loaded = load_or_exit(protocol, models_file)
    try:
        p = make_plan(loaded, models=model, conditions=condition, replicates=replicates)
    except PlanError as exc:
        fail(str(exc))
    risks = _leading(loaded.protocol, codebook, p.conditions) if codebook is not None else None
    if format == "json":
        doc = {"protocol": loaded.protocol.name, "version": loaded.protocol.version, "conversations": len(p.specs),
               "conditions": list(p.conditions), "calls_per_conversation": p.calls_per_conversation,
               "per_model": p.per_model}
        if risks is not None:
            doc["leading"] = [_risk_record(r) for r in risks]
        typer.echo(json.dumps(doc, indent=2, default=str))
        return
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
    if p.forks:
        fk = p.forks
        out.print(Text(f"forks: {fk['samples']} continuations of each conversation from its model reply at {fk['where']} "
                       f"(the history before it replayed, never sent): up to {fk['conversations']:,} more conversations, "
                       "counted whole in the worst case below"), soft_wrap=True)
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
    short = [c for c in p.cache_prefixes if not c["prefix_cacheable"]]
    if short:
        out.print(Text("prompt cache: these shared prefixes (system prompt + first user turn, estimated at ~4 "
                       "characters a token) are shorter than the model's minimum cacheable length, so the vendor "
                       "will cache nothing for them (replies' history can still cache later turns):",
                       style="yellow"), soft_wrap=True)
        for c in short:
            out.print(Text(f"  {c['model']} ({c['litellm_model']}), condition {c['condition']}: "
                           f"~{c['prefix_tokens_estimate']:,} of {c['min_cacheable_tokens']:,} tokens"), soft_wrap=True)
    elif p.cache_prefixes:
        out.print(Text(f"prompt cache: every shared prefix reaches its model's minimum cacheable length "
                       f"(estimated at ~4 characters a token; {len(p.cache_prefixes)} model × condition pairs)"),
                  soft_wrap=True)
    if risks is not None:
        _print_leading(risks)


def _leading(protocol: object, path: Path, conditions: list[str]) -> list[object]:
    from ..analysis.codebook import read_codebook
    from ..analysis.leading import plan_risks
    from ..protocol import ProtocolError

    try:
        book = read_codebook(path)
    except ProtocolError as exc:
        print_problems(exc)
        raise typer.Exit(EXIT_USAGE) from None
    return [r for r in plan_risks(protocol, book) if r.condition in conditions]


def _risk_record(r: object) -> dict[str, object]:
    return {"condition": r.condition, "code": r.code, "shared": list(r.shared),  # type: ignore[attr-defined]
            "words": r.words, "share": round(r.share, 4),  # type: ignore[attr-defined]
            "name_words_shared": list(r.name_words_shared), "at_risk": r.flagged}  # type: ignore[attr-defined]


def _print_leading(risks: list[object]) -> None:
    from rich.table import Table
    from rich.text import Text

    from ..analysis.leading import SHARE_FLAG

    table = Table("condition", "code", "code words in the prompts", "share of the code's words", "check",
                  title="Leading check: the codebook's words in the protocol's own wording, per condition")
    for r in risks:
        rec = _risk_record(r)
        table.add_row(Text(str(rec["condition"])), Text(str(rec["code"])), Text(", ".join(rec["shared"]) or "-"),  # type: ignore[arg-type]
                      f"{len(rec['shared'])} of {rec['words']}",  # type: ignore[arg-type]
                      Text("AT RISK of being led into existence" if rec["at_risk"] else "",
                           style="bold yellow" if rec["at_risk"] else ""))
    out = console()
    out.print(table)
    flagged = sum(1 for r in risks if getattr(r, "flagged", False))
    out.print(Text(f"{flagged} of {len(risks)} (condition, code) pairs at risk: a word of the code's name is in the "
                   f"prompts, or at least {SHARE_FLAG:.0%} of its words are (name, definition, include; a plural "
                   "-s ignored). A reply that echoes the prompt can then be coded as the theme: reword the prompt, "
                   "or check the code with `latitude tally --by echo-band` after the run.", style="dim"))


def register(app: typer.Typer) -> None:
    app.command()(validate)
    app.command()(schema)
    app.command()(plan)
