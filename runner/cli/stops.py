"""`latitude restop RUN`: re-apply a stop rule to stored transcripts (no model is called), and the
output of `latitude tally RUN --what stops` (per group × channel, prompted and unprompted apart)."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from .common import DbOption, ModelsOption, console, db_url, fail, load_or_exit

MatchOption = Annotated[str | None, typer.Option(
    "--match", help="Override the rule's match mode: used, final_line or anywhere.")]


def restop(
    run_id: Annotated[str, typer.Argument(help="The run whose stored transcripts are read again.")],
    protocol: Annotated[Path | None, typer.Option(
        "--protocol", help="Take the stop rule from this protocol file (default: the run's own).",
        exists=True, dir_okay=False)] = None,
    stop_phrase: Annotated[list[str] | None, typer.Option(
        "--stop-phrase", help="Or use these phrases (repeatable) with the default `used` rule.")] = None,
    match: MatchOption = None,
    models: ModelsOption = None,
    db: DbOption = None,
) -> None:
    """Re-apply a stop rule to a run's transcripts as a new, versioned detection (the old one is kept)."""
    from rich.text import Text

    from ..protocol import schema
    from ..restop import RestopError
    from ..restop import restop as apply
    from ..store.db import make_engine, session, upgrade

    if match is not None and match not in ("used", "final_line", "anywhere"):
        fail("--match must be used, final_line or anywhere")
    rule = proto = None
    if protocol is not None:
        proto = load_or_exit(protocol, models).protocol
        rule = proto.stop
        if rule is None:
            fail(f"{protocol}: the protocol has no `stop` rule")
    elif stop_phrase:
        rule = schema.Stop(phrases=stop_phrase)
    url = db_url(db)
    upgrade(url)
    note = f"--protocol {protocol}" if protocol else (f"--stop-phrase {stop_phrase}" if stop_phrase else "run's own rule")
    with session(make_engine(url)) as s:
        try:
            result = apply(s, run_id, rule, proto, match=match, note=note + (f" --match {match}" if match else ""))
        except RestopError as exc:
            fail(str(exc))
        s.commit()
    console().print(Text(
        f"run {result.run_id}: stop detection v{result.version} over {result.conversations} conversations, "
        f"{result.candidates} candidates; stopped: {result.stopped_now}/{result.conversations} "
        f"(v{result.version - 1}: {result.stopped_before}/{result.conversations})"))


def emit_stop_tally(report: Any, fmt: str, out: Path | None) -> None:
    """Print or write a `StopChannelTally` as a table, csv, json or md."""
    from rich.text import Text

    rows = report.records()
    cols = list(rows[0]) if rows else [*report.by, "n", "stopped"]
    if fmt == "table" and out is not None:
        fmt = {".csv": "csv", ".json": "json", ".md": "md"}.get(out.suffix.lower(), "md")
    if fmt == "table":
        from rich.table import Table

        t = Table(title="stops (each count out of n; 95% Wilson intervals)")
        show = [*report.by, "n", "stopped", "proportion", "low", "high", "prompted", "unprompted",
                "prompted_unknown", "hypothetical", "median_stop_turn"]
        for c in show:
            t.add_column(c, justify="left" if c in report.by else "right", overflow="fold")
        def cell(r: dict[str, Any], c: str) -> Text:
            v = r[c]
            if c in ("prompted", "unprompted") and r["n"]:
                return Text(f"{v} [{r[c + '_low']:.3f}, {r[c + '_high']:.3f}]")
            return Text(f"{v:.3f}" if isinstance(v, float) else str(v if v is not None else ""))

        for r in rows:
            t.add_row(*(cell(r, c) for c in show))
        con = console()
        con.print(t)
        con.print(Text(f"n={report.n} finished conversations · detections "
                       + ", ".join(f"{k} v{v}" for k, v in report.detections.items()), style="dim"))
        return
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        text = buf.getvalue()
    elif fmt == "json":
        text = json.dumps({"kind": "stops", "by": report.by, "rows": rows,
                           "provenance": {"run_ids": list(report.detections), "detections": report.detections,
                                          "n": report.n, "methods": list(report.methods)}}, indent=2) + "\n"
    else:
        text = "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n" + "".join(
            "| " + " | ".join(str(r[c]).replace("|", "\\|") for c in cols) + " |\n" for r in rows)
        text += "\n" + "\n".join(f"- {m}" for m in report.methods) + "\n"
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        console(stderr=True).print(Text(f"stops ({fmt}) → {out}"))


def emit_stop_agreement(report: Any) -> None:
    from rich.text import Text

    con = console()
    if not report.reviewed and not report.ambiguous_reviewed:
        fail("no stop candidate has been decided in the review queue yet")
    con.print(Text(f"detector vs people: {report.agree}/{report.reviewed} agree ({report.proportion:.3f}, 95% Wilson "
                   f"{report.low:.3f}-{report.high:.3f}); false stops {report.false_stops}, missed stops "
                   f"{report.missed_stops}; {report.ambiguous_reviewed} ambiguous candidates decided by people"))
    for rule, (agree, n) in report.by_rule.items():
        con.print(Text(f"  {rule}: {agree}/{n}"))


def register(app: typer.Typer) -> None:
    app.command(name="restop")(restop)
