"""`latitude register`, `latitude deviations`, `latitude report`: parse, call `runner.rigour`, display.

Also the displays `latitude run --registration` uses (`show_deviations`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from .common import DbOption, ModelsOption, console, db_url, fail, print_problems
from .inspect import FormatOption, _format, emit

DEVIATION_COLUMNS = ["kind", "path", "registered", "actual", "diff"]
"""Fields of `latitude deviations --format json|tsv`, in order (values as JSON text)."""


def _text(value: Any, style: str = "") -> Any:
    from rich.text import Text

    return Text("" if value is None else str(value), style=style)


def _value(v: Any) -> str:
    """A deviation's value as one line: text as it is (quoted), anything else as JSON; absent as `-`."""
    if v is None:
        return "-"
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False) if len(v) <= 80 else json.dumps(v[:77] + "...", ensure_ascii=False)
    text = json.dumps(v, ensure_ascii=False, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def show_deviations(registration: Any, found: list[Any], *, err: bool = False) -> None:
    """Print a run's deviations from its registration (every one; none is ever hidden)."""
    out = console(stderr=err)
    head = f"registration {registration.id} ({registration.name}, sha256 {registration.sha256[:16]})"
    if not found:
        out.print(_text(f"{head}: no deviations"), soft_wrap=True)
        return
    out.print(_text(f"{head}: {len(found)} deviation{'s' if len(found) != 1 else ''}", "yellow"), soft_wrap=True)
    for d in found:
        out.print(_text(f"  {d.kind}  {d.path}: {_value(d.registered)} -> {_value(d.actual)}"), soft_wrap=True)
        for line in d.diff.splitlines():
            out.print(_text(f"      {line}"), soft_wrap=True)
    out.file.flush()


def register_cmd(
    protocol: Annotated[Path, typer.Argument(help="Protocol file to register.", exists=True, dir_okay=False)],
    hypotheses: Annotated[Path, typer.Option("--hypotheses", help="Hypotheses YAML (see docs/rigour.md).",
                                             exists=True, dir_okay=False)],
    codebook: Annotated[Path | None, typer.Option("--codebook", help="Codebook YAML registered with it.",
                                                  exists=True, dir_okay=False)] = None,
    analysis: Annotated[Path | None, typer.Option("--analysis", help="Planned analysis: one latitude command a line.",
                                                  exists=True, dir_okay=False)] = None,
    models_file: ModelsOption = None,
    name: Annotated[str | None, typer.Option("--name", help="A label (default: the protocol's name).")] = None,
    db: DbOption = None,
    format: FormatOption = None,
) -> None:
    """Freeze a protocol (with its files and models, secrets excluded), its hypotheses, codebook and planned
    analysis as one hashed record, before any run. Follow it with `latitude run PROTOCOL --registration ID`."""
    from ..plan import PlanError
    from ..protocol import ProtocolError
    from ..rigour import registration as reg

    fmt = _format(format)
    url = db_url(db)
    try:
        record = reg.prepare(url, protocol, hypotheses, codebook=codebook, analysis=analysis,
                             models_file=models_file, name=name)
    except ProtocolError as exc:
        print_problems(exc)
        raise typer.Exit(1) from None
    except (PlanError, reg.RegistrationError) as exc:
        fail(str(exc))
    row = reg.register(url, record)
    plan = record.protocol.plan
    summary = {"id": row.id, "name": row.name, "sha256": row.sha256, "created_at": row.created_at.isoformat(),
               "protocol": f"{plan.get('protocol')} v{plan.get('version')}", "models": list(plan.get("models") or {}),
               "conditions": plan.get("conditions"), "replicates": plan.get("replicates"),
               "conversations": plan.get("conversations"),
               "hypotheses": [h.id for h in record.hypotheses.hypotheses],
               "codebook": f"{record.codebook.name} ({len(record.codebook.codes)} codes)" if record.codebook.name else None,
               "analysis": record.analysis.commands}
    if fmt == "json":
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
        return
    if fmt == "tsv":
        emit([{**summary, **{k: ",".join(map(str, v)) for k, v in summary.items() if isinstance(v, list)}}],
             list(summary), "tsv", None)
        return
    out = console()
    out.print(_text(f"registration id: {row.id}"), soft_wrap=True)
    out.print(_text(f"sha256: {row.sha256}"), soft_wrap=True)
    out.print(_text(f"registered at {summary['created_at']}: {summary['protocol']}, models "
                    f"{', '.join(summary['models'])}, conditions {', '.join(summary['conditions'] or [])}, "
                    f"{summary['replicates']} replicate(s): {summary['conversations']} conversations planned"),
              soft_wrap=True)
    out.print(_text(f"hypotheses: {', '.join(summary['hypotheses'])}; codebook: {summary['codebook'] or 'none'}; "
                    f"planned analysis: {len(record.analysis.commands)} command(s)"), soft_wrap=True)
    out.print(_text(f"run it with: latitude run {protocol} --registration {row.id}"), soft_wrap=True)


REGISTRATION_COLUMNS = ["id", "name", "created_at", "sha256", "protocol", "hypotheses", "runs"]
"""Fields of `latitude registrations --format json|tsv`, in order."""


def registrations(db: DbOption = None, format: FormatOption = None) -> None:
    """The registrations in the store, newest first, with the runs that follow each."""
    from rich.table import Table

    from ..rigour import registration as reg

    fmt = _format(format)
    records = [{"id": r.id, "name": r.name, "created_at": r.created_at.isoformat(timespec="seconds"),
                "sha256": r.sha256, "protocol": f"{s.protocol} v{s.version}", "hypotheses": ", ".join(s.hypotheses),
                "runs": ", ".join(s.runs)} for r, s in reg.summaries(db_url(db))]
    table = Table(title="registrations")
    for c in REGISTRATION_COLUMNS:
        table.add_column(c)
    for r in records:
        table.add_row(*(_text(r[c] if c != "sha256" or fmt != "table" else r[c][:16]) for c in REGISTRATION_COLUMNS))
    emit(records, REGISTRATION_COLUMNS, fmt, table)


def deviations(
    run_id: Annotated[str, typer.Argument(help="The run (see `latitude runs`).")],
    db: DbOption = None,
    format: FormatOption = None,
) -> None:
    """List every way a run departs from the registration it follows (recorded before it started)."""
    from rich.table import Table

    from ..rigour import registration as reg

    fmt = _format(format)
    try:
        registration, found = reg.stored_run_deviations(db_url(db), run_id)
    except reg.RegistrationError as exc:
        fail(str(exc))
    if registration is None:
        fail(f"run {run_id} follows no registration (it was not started with --registration): every result "
             "of it is exploratory")
    records = [{"kind": d.kind, "path": d.path,
                "registered": None if d.registered is None else json.dumps(d.registered, ensure_ascii=False),
                "actual": None if d.actual is None else json.dumps(d.actual, ensure_ascii=False), "diff": d.diff}
               for d in found]
    if fmt == "json":
        sys.stdout.write(json.dumps({"run_id": run_id, "registration": {"id": registration.id, "name": registration.name,
                                     "sha256": registration.sha256},
                                     "deviations": [d.as_dict() for d in found]}, indent=2, ensure_ascii=False) + "\n")
        return
    table = Table(title=f"run {run_id}: {len(found)} deviation(s) from registration {registration.id} "
                        f"(sha256 {registration.sha256[:16]})")
    for c in DEVIATION_COLUMNS:
        table.add_column(c)
    for d in found:
        table.add_row(_text(d.kind), _text(d.path), _text(_value(d.registered)), _text(_value(d.actual)),
                      _text(d.diff))
    emit(records, DEVIATION_COLUMNS, fmt, table)


def report(
    run_id: Annotated[str, typer.Argument(help="A run that follows a registration.")],
    format: Annotated[str, typer.Option("--format", "-f", help="md (default) or json.")] = "md",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file instead of stdout.",
                                             dir_okay=False)] = None,
    blind_only: Annotated[bool, typer.Option("--blind-only", help="Count only units coded blind.")] = False,
    exclude_self_coded: Annotated[bool, typer.Option(
        "--exclude-self-coded", help="Leave out units coded by whoever ran or prompted the conversation.")] = False,
    db: DbOption = None,
) -> None:
    """Registered hypotheses first (the planned test, n-of-N, intervals, supported or not at the registered
    alpha), then the run's deviations, then every other analysis, marked exploratory."""
    from ..analysis.tally import UnitFilter
    from ..rigour import report as rep

    if format not in ("md", "json"):
        fail(f"unknown format {format!r}: use md or json")
    try:
        result = rep.build_report(db_url(db), run_id, UnitFilter(exclude_self_coded=exclude_self_coded,
                                                                 blind_only=blind_only))
    except rep.ReportError as exc:
        fail(str(exc))
    text = rep.render(result, format)  # type: ignore[arg-type]
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        console().print(_text(f"wrote {out}"), soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("register")(register_cmd)
    app.command()(registrations)
    app.command()(deviations)
    app.command()(report)
