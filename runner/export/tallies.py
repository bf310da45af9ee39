"""Tallies out of the store: CSV, JSON and Markdown, every one with its provenance.

Each report of `runner.analysis.tally` (codes, stops, offers, agreement) becomes one flat
table (`table_of`: the same rows for CSV, Markdown and the terminal) plus, in JSON, the
whole structure (`TallyExport`, with a ``schema_version`` that tests load back).

Provenance (run ids, protocol names and sha256 hashes, codebook versions, coders, n, the
methods) heads every format: ``# key: value`` comment lines in CSV (``pandas.read_csv(...,
comment="#")`` skips them), a bullet list in Markdown, a ``provenance`` object in JSON.
"""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any, Literal, TextIO

from pydantic import BaseModel, Field

from ..analysis.tally import (
    AgreementReport,
    CodeTally,
    OfferTally,
    Provenance,
    StopTally,
    to_jsonable,
)

__all__ = [
    "FORMATS",
    "SCHEMA_VERSION",
    "Format",
    "ProvenanceModel",
    "Report",
    "TallyExport",
    "echo_table",
    "factor_table",
    "render",
    "table_of",
    "to_export",
    "write",
]

SCHEMA_VERSION = 1
"""Version of the JSON tally export; bumped on any incompatible change."""

Format = Literal["csv", "json", "md"]
"""An export format."""

FORMATS: tuple[Format, ...] = ("csv", "json", "md")

ReportKind = Literal["codes", "stops", "offers", "agreement"]
"""What a tally export holds."""

Report = CodeTally | StopTally | OfferTally | AgreementReport


class ProvenanceModel(BaseModel):
    """Where the numbers come from."""

    run_ids: list[str]
    """The runs tallied."""
    protocols: list[dict[str, str]]
    """Per run: run_id, protocol, version, sha256 of the protocol text; with ``registration`` and
    ``registration_sha256`` when the run follows a registration (`latitude register`)."""
    codebooks: list[str]
    """Codebook versions of the tags counted (``name vN``)."""
    coders: list[str]
    """Coders whose judgments were counted."""
    coder_rule: str
    """``person``, ``judge``, ``consensus``, ``builtin`` or ``agreement``."""
    n: int
    """Conversations (units) in the tally."""
    by: list[str]
    """Grouping fields."""
    generated_at: str
    """UTC, ISO 8601."""
    latitude_version: str
    """Version of latitude that made the export."""
    methods: list[str] = Field(default_factory=list)
    """Statistical methods, in words."""
    simulated: bool = False
    """True when a run tallied is simulated."""
    finished: int = 0
    """Finished conversations in the scope of the tally: what `n` is out of."""
    planned: int = 0
    """Planned conversations in the scope, whatever their status: what `finished` is out of."""
    warnings: list[str] = Field(default_factory=list)
    """Coverage that differs between groups, ties dropped, an unvalidated judge, conditional intervals."""


class TallyExport(BaseModel):
    """The JSON export of one tally."""

    schema_version: int = SCHEMA_VERSION
    """Version of this format."""
    kind: ReportKind
    """Which report."""
    provenance: ProvenanceModel
    """Run ids, protocol hashes, codebook versions, coders, n, methods."""
    columns: list[str]
    """Columns of `rows` (the flat table, as in CSV)."""
    rows: list[dict[str, Any]]
    """The flat table."""
    detail: dict[str, Any] = Field(default_factory=dict)
    """The full report: tests, per-paraphrase estimates, survival curves, disagreements."""


def _kind(report: Report) -> ReportKind:
    if isinstance(report, CodeTally):
        return "codes"
    if isinstance(report, StopTally):
        return "stops"
    if isinstance(report, OfferTally):
        return "offers"
    if isinstance(report, AgreementReport):
        return "agreement"
    raise TypeError(f"not a tally report: {type(report).__name__}")


def _group_fields(rows: list[Any]) -> list[str]:
    fields: list[str] = []
    for r in rows:
        for k in r.group:
            if k not in fields:
                fields.append(k)
    return fields


def _nan(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


def table_of(report: Report) -> tuple[list[str], list[dict[str, Any]]]:
    """The report as one flat table: (columns, rows). Missing values are None."""
    if isinstance(report, CodeTally):
        return _code_table(report)
    if isinstance(report, StopTally):
        fields = _group_fields(report.rows)
        cols = fields + ["n", "stopped", "proportion", "ci_low", "ci_high", "median_stop_turn", "stop_turns",
                         "planned", "median_low", "median_high", "test", "note", "p"]
        t = report.test if report.test is not None and report.test.test != "none" else None
        rows = [{**r.group, "n": r.n, "stopped": r.stopped, "proportion": _nan(r.proportion), "ci_low": _nan(r.low),
                 "ci_high": _nan(r.high), "median_stop_turn": r.median_stop_turn,
                 "stop_turns": " ".join(map(str, r.stop_turns)), "planned": r.planned, "median_low": r.median_low,
                 "median_high": r.median_high, "test": t.test if t else None, "note": _note(report, t),
                 "p": _nan(t.p) if t else None} for r in report.rows]
        return cols, rows
    if isinstance(report, OfferTally):
        fields = _group_fields(report.rows)
        tests = {t.code: t for t in report.tests}
        cols = ["offer"] + fields + ["n", "accepted", "declined", "unclear", "classified", "proportion", "ci_low",
                                     "ci_high", "unclear_share", "unclear_low", "unclear_high", "test", "note", "p",
                                     "p_adjusted", "cramers_v", "conversations", "finished", "planned"]
        rows = []
        for r in report.rows:
            t = tests.get(r.label)
            rows.append({"offer": r.label, **r.group, "n": r.n, "accepted": r.accepted, "declined": r.declined,
                         "unclear": r.unclear, "classified": r.classified, "proportion": _nan(r.proportion),
                         "ci_low": _nan(r.low), "ci_high": _nan(r.high), "unclear_share": _nan(r.unclear_share),
                         "unclear_low": _nan(r.unclear_low), "unclear_high": _nan(r.unclear_high),
                         "test": t.test if t else None, "note": _note(report, t), "p": _nan(t.p) if t else None,
                         "p_adjusted": _nan(t.p_adjusted) if t else None,
                         "cramers_v": _nan(t.cramers_v) if t else None, "conversations": r.conversations,
                         "finished": r.finished, "planned": r.planned})
        return cols, rows
    if isinstance(report, AgreementReport):
        cols = ["code", "coders", "units", "raw_agreement", "cohen_kappa", "krippendorff_alpha", "disagreements",
                "kappa_low", "kappa_high", "comparison", "finished", "planned"]
        rows = [{"code": r.code, "coders": " vs ".join(r.coders), "units": r.units, "raw_agreement": _nan(r.raw),
                 "cohen_kappa": _nan(r.kappa), "krippendorff_alpha": _nan(r.alpha),
                 "disagreements": r.disagreements, "kappa_low": _nan(r.kappa_low), "kappa_high": _nan(r.kappa_high),
                 "comparison": r.comparison, "finished": r.finished, "planned": r.planned} for r in report.rows]
        return cols, rows
    raise TypeError(f"not a tally report: {type(report).__name__}")


def _note(report: Report, test: Any) -> str | None:
    """``simulated data`` next to every test on simulated runs."""
    return "simulated data" if test is not None and report.provenance.simulated else None


def _code_table(report: CodeTally) -> tuple[list[str], list[dict[str, Any]]]:
    fields = _group_fields(report.rows)
    tests = {t.code: t for t in report.tests}
    para = bool(report.paraphrases)
    judged = {v.code: v for v in report.validation}
    cols = ["code"] + fields + (["paraphrase"] if para else []) + [
        "n", "count", "proportion", "ci_low", "ci_high", "test", "note", "p", "p_adjusted", "cramers_v"]
    if para:
        cols += ["spread", "ranking_flips"]
    cols += ["finished", "planned"]
    if judged:
        cols += ["judge_kappa", "judge_kappa_low", "judge_kappa_high", "judge_kappa_units", "judge_validated"]
    led = {t.code: t.possibly_led for t in report.echo}
    if led:
        cols += ["echo_flag"]

    def echo_cols(code: str) -> dict[str, Any]:
        return {"echo_flag": "possibly led" if led.get(code) else ""} if led else {}

    def test_cols(code: str) -> dict[str, Any]:
        t = tests.get(code)
        if t is None:
            return {"test": None, "note": None, "p": None, "p_adjusted": None, "cramers_v": None}
        return {"test": t.test, "note": _note(report, t), "p": _nan(t.p), "p_adjusted": _nan(t.p_adjusted),
                "cramers_v": _nan(t.cramers_v)}

    def judge_cols(code: str) -> dict[str, Any]:
        v = judged.get(code)
        if not judged:
            return {}
        if v is None:
            return {"judge_kappa": None, "judge_kappa_low": None, "judge_kappa_high": None,
                    "judge_kappa_units": 0, "judge_validated": False}
        return {"judge_kappa": _nan(v.kappa), "judge_kappa_low": _nan(v.low), "judge_kappa_high": _nan(v.high),
                "judge_kappa_units": v.units, "judge_validated": v.validated}

    rows: list[dict[str, Any]] = []
    if not para:
        for r in report.rows:
            rows.append({"code": r.code, **r.group, "n": r.n, "count": r.count, "proportion": _nan(r.proportion),
                         "ci_low": _nan(r.low), "ci_high": _nan(r.high), **test_cols(r.code),
                         "finished": r.finished, "planned": r.planned, **judge_cols(r.code), **echo_cols(r.code)})
        return cols, rows
    for pr in report.paraphrases:
        t = tests.get(pr.code)
        flips = bool(t and t.ranking_flips)
        for name, p in pr.per_paraphrase.items():
            rows.append({"code": pr.code, **pr.group, "paraphrase": name, "n": p.n, "count": p.count,
                         "proportion": _nan(p.p), "ci_low": _nan(p.low), "ci_high": _nan(p.high),
                         "test": None, "note": None, "p": None, "p_adjusted": None, "cramers_v": None,
                         "spread": None, "ranking_flips": None, "finished": None, "planned": None,
                         **judge_cols(pr.code)})
        n = sum(p.n for p in pr.per_paraphrase.values())
        count = sum(p.count for p in pr.per_paraphrase.values())
        row = next((r for r in report.rows if r.code == pr.code and r.group == pr.group), None)
        rows.append({"code": pr.code, **pr.group, "paraphrase": "pooled", "n": n, "count": count,
                     "proportion": _nan(pr.pooled.estimate), "ci_low": _nan(pr.pooled.low),
                     "ci_high": _nan(pr.pooled.high), **test_cols(pr.code), "spread": _nan(pr.pooled.spread),
                     "ranking_flips": flips, "finished": row.finished if row else None,
                     "planned": row.planned if row else None, **judge_cols(pr.code)})
    return cols, rows


def echo_table(report: CodeTally) -> tuple[list[str], list[dict[str, Any]]]:
    """Per code, with ``--by echo-band``: present of coded per band, the trend test, the led flag."""
    cols = ["code", "low", "mid", "high", "none", "high share of present", "high share of units", "test", "z", "p",
            "p (BH)", "echo_flag"]
    rows = []
    for t in report.echo:
        cells = {b: f"{c} of {n}" for b, (c, n) in t.counts.items()}
        rows.append({"code": t.code, **cells,
                     "high share of present": f"{t.present_high} of {t.present}",
                     "high share of units": f"{t.units_high} of {t.units}",
                     "test": t.test, "z": _nan(t.z), "p": _nan(t.p), "p (BH)": _nan(t.p_adjusted),
                     "echo_flag": "possibly led" if t.possibly_led else ""})
    return cols, rows


def factor_table(report: CodeTally) -> tuple[list[str], list[dict[str, Any]]]:
    """The factor model of a code tally as a flat table: one row per code, factor and level."""
    cols = ["code", "factor", "level", "reference", "odds_ratio", "or_low", "or_high", "p", "factor_p", "n",
            "clusters", "note"]
    rows = [{"code": e.code, "factor": e.factor, "level": e.level, "reference": e.reference,
             "odds_ratio": _nan(e.odds_ratio), "or_low": _nan(e.low), "or_high": _nan(e.high), "p": _nan(e.p),
             "factor_p": _nan(e.factor_p), "n": e.n, "clusters": e.clusters,
             "note": "; ".join(x for x in ("" if e.estimable else "not estimable (separation)",
                                           "simulated data" if report.provenance.simulated else "") if x)}
            for e in report.factors]
    return cols, rows


def _detail(report: Report) -> dict[str, Any]:
    if isinstance(report, CodeTally):
        return {"rows": to_jsonable(report.rows), "tests": to_jsonable(report.tests),
                "paraphrases": to_jsonable(report.paraphrases), "validation": to_jsonable(report.validation),
                "factors": to_jsonable(report.factors), "echo": to_jsonable(report.echo),
                # per unit (coder × conversation): blind, unblinded or self-coded, and whether it was counted
                "units": to_jsonable(report.units)}
    if isinstance(report, StopTally):
        return {"rows": to_jsonable(report.rows), "curves": to_jsonable(report.curves),
                "test": to_jsonable(report.test)}
    if isinstance(report, OfferTally):
        return {"rows": to_jsonable(report.rows), "tests": to_jsonable(report.tests)}
    return {"rows": to_jsonable(report.rows), "disagreements": to_jsonable(report.disagreements)}


def to_export(report: Report) -> TallyExport:
    """The JSON document of a report."""
    cols, rows = table_of(report)
    return TallyExport(kind=_kind(report), provenance=ProvenanceModel(**report.provenance.as_dict()),
                       columns=cols, rows=rows, detail=_detail(report))


def _fmt(value: Any, digits: int | None = None) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if digits is not None:
            return f"{value:.{digits}f}" if abs(value) >= 10 ** -digits or value == 0 else f"{value:.2e}"
        return format(value, ".6g")
    return str(value)


def _provenance_lines(p: Provenance) -> list[tuple[str, str]]:
    protocols = "; ".join(f"{x['run_id']}: {x['protocol']} v{x['version']} sha256:{x['sha256'][:16]}"
                          + (f" registration {x['registration']} sha256:{x.get('registration_sha256', '')}"
                             if x.get("registration") else " (not registered: exploratory)")
                          for x in p.protocols)
    lines = [("runs", ", ".join(p.run_ids)), ("protocols", protocols),
             ("codebooks", ", ".join(p.codebooks) or "none (built-in codes)" if p.coder_rule == "builtin"
              else ", ".join(p.codebooks) or "none"),
             ("coders", ", ".join(p.coders)), ("coder rule", p.coder_rule), ("n", p.coverage),
             ("grouped by", ", ".join(p.by) or "-"), ("generated", p.generated_at),
             ("latitude", p.latitude_version)]
    if p.simulated:
        lines.append(("simulated", "yes: the runs used simulated models; every test describes simulated data"))
    lines += [("warning", w) for w in p.warnings]
    lines += [("method", m) for m in p.methods]
    return lines


def _csv(report: Report) -> str:
    buf = io.StringIO()
    for key, value in _provenance_lines(report.provenance):
        buf.write(f"# {key}: {value}\n")
    cols, rows = table_of(report)
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in rows:
        w.writerow([_fmt(r.get(c)) for c in cols])
    return buf.getvalue()


_MD_ESCAPE = str.maketrans({"|": "\\|", "\n": " ", "\r": " "})


def _md_cell(value: Any, col: str) -> str:
    digits = 3 if col in ("proportion", "ci_low", "ci_high", "cramers_v", "raw_agreement", "cohen_kappa",
                          "krippendorff_alpha", "spread", "unclear_share", "unclear_low", "unclear_high",
                          "kappa_low", "kappa_high", "judge_kappa", "judge_kappa_low", "judge_kappa_high") else 4 if col in ("p", "p_adjusted") else None
    return _fmt(value, digits).translate(_MD_ESCAPE)


def _md(report: Report) -> str:
    kind = _kind(report)
    titles = {"codes": "Codes", "stops": "Stop behaviour", "offers": "Offers", "agreement": "Agreement"}
    out = [f"## Tally: {titles[kind]}", ""]
    for key, value in _provenance_lines(report.provenance):
        out.append(f"- **{key}**: {value}".translate({ord("\n"): " "}))
    out.append("")
    cols, rows = table_of(report)
    shown = [c for c in cols if c != "stop_turns"]
    out.append("| " + " | ".join(shown) + " |")
    out.append("|" + "|".join("---:" if c in _NUMERIC else "---" for c in shown) + "|")
    for r in rows:
        out.append("| " + " | ".join(_md_cell(r.get(c), c) for c in shown) + " |")
    if isinstance(report, CodeTally) and report.factors:
        fcols, frows = factor_table(report)
        out += ["", "Factors (logistic regression, cluster-robust; odds ratio against the reference level):", "",
                "| " + " | ".join(fcols) + " |",
                "|" + "|".join("---" if c in ("code", "factor", "level", "reference", "note") else "---:"
                               for c in fcols) + "|"]
        out += ["| " + " | ".join(_fmt(r[c], 3 if c not in ("p", "factor_p") else 4).translate(_MD_ESCAPE)
                                  for c in fcols) + " |" for r in frows]
    if isinstance(report, CodeTally) and report.echo:
        ecols, erows = echo_table(report)
        out += ["", "Echo bands (present of coded per band; Cochran-Armitage trend over low < mid < high):", "",
                "| " + " | ".join(ecols) + " |", "|" + "|".join("---:" if c in ("z", "p", "p (BH)") else "---" for c in ecols) + "|"]
        out += ["| " + " | ".join(_fmt(r[c], 3 if c == "z" else 4).translate(_MD_ESCAPE) for c in ecols) + " |"
                for r in erows]
    if isinstance(report, CodeTally) and any(t.ranking_flips for t in report.tests):
        out += ["", "Ranking flips between paraphrases:", ""]
        out += [f"- `{t.code}`: {t.flip_detail}".translate(_MD_ESCAPE) for t in report.tests if t.ranking_flips]
    if isinstance(report, StopTally):
        out += ["", "Kaplan-Meier: share of conversations still going after each turn (95% interval):", ""]
        for label, curve in report.curves.items():
            points = ", ".join(f"t{int(t)}: {s:.2f} [{lo:.2f}, {hi:.2f}]"
                               for t, s, lo, hi in zip(curve.times, curve.survival, curve.low, curve.high))
            out.append(f"- {label} (n={curve.n}, stopped={curve.events}): {points or 'no stops'}"
                       .translate(_MD_ESCAPE))
    if isinstance(report, AgreementReport) and report.disagreements:
        out += ["", "Disagreements to review:", "", "| conversation | code | model | condition | values |",
                "|---|---|---|---|---|"]
        for d in report.disagreements:
            values = ", ".join(f"{k}: {'yes' if v else 'no'}" for k, v in d.values.items())
            out.append(f"| {d.conversation_id} | {d.code} | {d.model} | {d.condition} | {values} |"
                       .replace("\n", " "))
    return "\n".join(out) + "\n"


_NUMERIC = {"n", "count", "proportion", "ci_low", "ci_high", "p", "p_adjusted", "cramers_v", "spread", "stopped",
            "median_stop_turn", "accepted", "declined", "unclear", "units", "raw_agreement", "cohen_kappa",
            "krippendorff_alpha", "disagreements", "finished", "planned", "classified", "unclear_share",
            "unclear_low", "unclear_high", "conversations", "kappa_low", "kappa_high", "judge_kappa",
            "judge_kappa_low", "judge_kappa_high", "judge_kappa_units", "median_low", "median_high"}


def render(report: Report, fmt: Format) -> str:
    """The report as text in one format."""
    if fmt == "csv":
        return _csv(report)
    if fmt == "json":
        return json.dumps(to_export(report).model_dump(mode="json"), indent=2, ensure_ascii=False,
                          allow_nan=False) + "\n"
    if fmt == "md":
        return _md(report)
    raise ValueError(f"unknown format {fmt!r}; use {', '.join(FORMATS)}")


def write(report: Report, fmt: Format, out: TextIO) -> None:
    """Write the report in one format to an open text stream."""
    out.write(render(report, fmt))
