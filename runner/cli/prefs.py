"""`latitude prefs`: utilities, position bias and consistency from pairwise choices."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import DbOption, console, fail, open_store


def prefs(
    run_ids: Annotated[list[str], typer.Argument(help="Run id(s) with choices.")],
    by: Annotated[str, typer.Option("--by", help="Fit per `model` or per `condition`.")] = "model",
    fmt: Annotated[str, typer.Option("--format", help="table, csv, json or md.")] = "table",
    chart: Annotated[Path | None, typer.Option("--chart", help="Write a forest plot of utilities (.png or .svg).")] = None,
    bias_chart: Annotated[Path | None, typer.Option("--bias-chart", help="Write position-bias bars (.png or .svg).")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the report here instead of printing it.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the held-out folds, triad sample and Elo orderings.")] = 0,
    db: DbOption = None,
) -> None:
    """Per model (or condition): Bradley–Terry and Thurstonian utilities with intervals, the opt-out line,
    held-out fit, position bias, order consistency, triad cycles, Elo, and every answer counted out of those asked."""
    if by not in ("model", "condition"):
        fail(f"--by takes model or condition, not {by!r}")
    if fmt not in ("table", "csv", "json", "md"):
        fail(f"--format takes table, csv, json or md, not {fmt!r}")
    from sqlmodel import Session

    from ..analysis import prefs as analysis
    from ..export import preferences as export

    engine = open_store(db)
    try:
        with Session(engine) as session:
            try:
                records, options = analysis.load_choices(session, run_ids)
            except LookupError as exc:
                fail(str(exc))
    finally:
        engine.dispose()
    if not records:
        fail(f"no choices in run(s) {', '.join(run_ids)}: is it a `preferences` protocol?")
    report = analysis.analyse(records, options, by=by, run_ids=run_ids, seed=seed)  # type: ignore[arg-type]
    if chart is not None:
        export.save_chart(export.forest_chart(report), chart)
    if bias_chart is not None:
        export.save_chart(export.position_bias_chart(report), bias_chart)
    if fmt == "table":
        _print_table(report)
    else:
        text = {"csv": export.to_csv, "json": export.to_json, "md": export.to_markdown}[fmt](report)
        if out is not None:
            out.write_text(text, encoding="utf-8")
        else:
            typer.echo(text, nl=False)
    for path in (chart, bias_chart, out if fmt != "table" else None):
        if path is not None:
            console(stderr=True).print(f"wrote {path}")


def _print_table(report: object) -> None:
    from rich.table import Table
    from rich.text import Text

    from ..export import preferences as export

    def _thurstonian(r: dict) -> str:
        if r["thurstonian_mean"] is None:
            return "-"
        ci = (f" [{r['thurstonian_low']:+.2f}, {r['thurstonian_high']:+.2f}]" if r["thurstonian_low"] is not None
              else " [no interval]")
        return f"{r['thurstonian_mean']:+.2f}{ci} ({r['thurstonian_variance']:.2f})"

    out = console()
    rows = export.utility_rows(report)  # type: ignore[arg-type]
    by = report.by  # type: ignore[attr-defined]
    for group in report.groups:  # type: ignore[attr-defined]
        table = Table("rank", "option", "utility [95% CI]", "won", "Thurstonian μ [95% CI] (σ²)", "Elo ± sd",
                      title=f"{group.group}: utilities relative to {group.anchor}")
        for r in (r for r in rows if r[by] == group.group):
            table.add_row(str(r["rank"]), Text(r["option"] + (" (opt-out)" if r["opt_out"] else "")),
                          f"{r['bt_utility']:+.2f} [{r['bt_low']:+.2f}, {r['bt_high']:+.2f}]",
                          f"{r['wins']}/{r['comparisons']}",
                          _thurstonian(r),
                          f"{r['elo_mean']:.0f} ± {r['elo_sd']:.0f}")
        out.print(table)
    for s in export.summary_rows(report):  # type: ignore[arg-type]
        out.print(Text(f"{s[by]}: {s['fitted']} of {s['asked']} comparisons fitted; answers a {s['answer_a']}, "
                       f"b {s['answer_b']}, opt-out {s['answer_opt_out']}, unclear {s['answer_unclear']}, "
                       f"refused {s['answer_refused']}, no reply {s['answer_no_reply']}; unanswered {s['unanswered']}"),
                  soft_wrap=True)
        out.print(Text(f"  first-shown chosen {s['first_shown']}; same choice in both orders {s['order_consistency']}; "
                       f"cyclic triads {s['triad_cycles']}"), soft_wrap=True)
        out.print(Text(f"  held-out log-loss {s['held_out_log_loss']}; held-out accuracy {s['held_out_accuracy']}"),
                  soft_wrap=True)
    corr, flips, attrs = export.other_rows(report)  # type: ignore[arg-type]
    for c in corr:
        out.print(Text(f"Spearman {c['a']} vs {c['b']}: {c['spearman']} over {c['options']} options"), soft_wrap=True)
    for f in flips:
        out.print(Text(f"flip rate under rephrasing, {f['model']}: {f['flip_rate']}"), soft_wrap=True)
    for a in attrs:
        out.print(Text(f"attribute {a['term']} ({a[by]}): {a['coef']}, robust SE {a['robust_se']}, p {a['p']}, "
                       f"{a['options']} options"), soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command()(prefs)
