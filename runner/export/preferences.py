"""Preference reports out: flat rows for csv, a JSON document, Markdown tables, and charts
(a forest plot of utilities per group with the opt-out line; first-shown bars).

Every number goes out with what it is out of and its 95% interval.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

from ..analysis.prefs import PrefsReport

PrefsFormat = Literal["table", "csv", "json", "md"]
"""How `latitude prefs` writes its report."""

SCHEMA_VERSION = 1
"""Version of the JSON document `to_json` writes."""


def _f(x: float, digits: int = 2) -> str:
    return "nan" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _pct(p: Any) -> str:
    if not p.n:
        return "- (0 of 0)"
    return f"{p.p:.0%} [{p.low:.0%}, {p.high:.0%}] ({p.count} of {p.n})"


Z95 = 1.959963984540054
"""The normal quantile of a two-sided 95% interval (the Thurstonian mean's Wald interval)."""


def utility_rows(report: PrefsReport) -> list[dict[str, Any]]:
    """One row per group × option: BT utility with its interval, Thurstonian mean with its 95% Wald interval
    (inverse-Hessian standard error) and variance, Elo."""
    rows = []
    for g in report.groups:
        th = {t.option: t for t in g.thurstonian}
        for rank, u in enumerate(g.ranked(), start=1):
            t = th.get(u.option)
            elo_mean, elo_sd = g.elo.get(u.option, (float("nan"), float("nan")))
            rows.append({
                report.by: g.group, "rank": rank, "option": u.option,
                "opt_out": bool(report.options.get(u.option, {}).get("opt_out")),
                "bt_utility": round(u.value, 4), "bt_low": round(u.low, 4), "bt_high": round(u.high, 4),
                "bt_se": round(u.se, 4), "wins": u.wins, "comparisons": u.n, "anchor": g.anchor,
                "thurstonian_mean": round(t.mean, 4) if t else None,
                "thurstonian_low": round(t.mean - Z95 * t.se, 4) if t and math.isfinite(t.se) else None,
                "thurstonian_high": round(t.mean + Z95 * t.se, 4) if t and math.isfinite(t.se) else None,
                "thurstonian_variance": round(t.variance, 4) if t else None,
                "elo_mean": round(elo_mean, 1), "elo_sd": round(elo_sd, 1),
            })
    return rows


def summary_rows(report: PrefsReport) -> list[dict[str, Any]]:
    """One row per group: answers out of asked, fit quality, position bias, consistency, cycles."""
    rows = []
    for g in report.groups:
        h = g.held_out
        rows.append({
            report.by: g.group, "asked": g.asked, "fitted": g.fitted,
            **{f"answer_{k}": g.answers.get(k, 0) for k in ("a", "b", "opt_out", "unclear", "refused", "no_reply")},
            "unanswered": _pct(g.unanswered),
            "first_shown": _pct(g.first_shown), "order_consistency": _pct(g.order_consistency),
            "triad_cycles": _pct(g.triads.cyclic) + f" vs {g.triads.random_rate:.0%} random",
            "held_out_log_loss": f"{_f(h.log_loss, 3)} ± {_f(Z * h.log_loss_se, 3)} (n={h.n}, ln2={_f(h.baseline_log_loss, 3)})" if h else "-",
            "held_out_accuracy": _pct(h.accuracy) if h else "-",
        })
    return rows


Z = 1.959963984540054


def to_json(report: PrefsReport) -> str:
    doc = {"schema_version": SCHEMA_VERSION, "run_ids": report.run_ids, "by": report.by,
           "groups": [asdict(g) for g in report.groups],
           "correlations": [asdict(c) for c in report.correlations],
           "flips": {k: asdict(v) for k, v in report.flips.items()},
           "attributes": [asdict(a) for a in report.attributes], "options": report.options}
    return json.dumps(doc, indent=2, default=str, allow_nan=True)


def to_csv(report: PrefsReport) -> str:
    rows = utility_rows(report)
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return buf.getvalue()


def _md_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(none)\n"
    cols = list(rows[0])
    out = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for r in rows:
        out.append("| " + " | ".join(str(r[c]).replace("|", "\\|") for c in cols) + " |")
    return "\n".join(out) + "\n"


def other_rows(report: PrefsReport) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    corr = [{"a": c.group_a, "b": c.group_b, "spearman": f"{c.rho:.2f} [{c.low:.2f}, {c.high:.2f}]", "options": c.n}
            for c in report.correlations]
    flips = [{"model": m, "flip_rate": _pct(p)} for m, p in report.flips.items()]
    attrs = [{report.by: a.group, "term": a.term, "coef": f"{a.coef:.2f} [{a.low:.2f}, {a.high:.2f}]",
              "robust_se": f"{a.se:.2f}", "p": f"{a.p:.3g}", "options": a.n} for a in report.attributes]
    return corr, flips, attrs


def to_markdown(report: PrefsReport) -> str:
    corr, flips, attrs = other_rows(report)
    parts = [f"# Preferences ({', '.join(report.run_ids)})\n",
             "Bradley–Terry utilities with 95% intervals, relative to the opt-out (fixed at 0) when there is one.\n",
             "## Utilities\n", _md_table(utility_rows(report)), "\n## Answers, fit and consistency\n",
             _md_table(summary_rows(report))]
    if corr:
        parts += ["\n## Rank correlation between groups\n", _md_table(corr)]
    if flips:
        parts += ["\n## Flip rate under rephrasing\n", _md_table(flips)]
    if attrs:
        parts += ["\n## Utility by option attribute (OLS, HC3 robust SE)\n", _md_table(attrs)]
    return "".join(parts)


# ---------------------------------------------------------------- charts


def forest_chart(report: PrefsReport) -> Any:
    """Utilities with 95% intervals, one panel per group, options sorted; a line at the opt-out (0)."""
    from .charts import _plt

    plt = _plt()
    groups = report.groups or []
    n_opts = max((len(g.bt) for g in groups), default=1)
    fig, axes = plt.subplots(1, max(len(groups), 1), figsize=(4.2 * max(len(groups), 1), 0.32 * n_opts + 1.6),
                             squeeze=False, sharex=False)
    for ax, g in zip(axes[0], groups):
        ranked = list(reversed(g.ranked()))
        ys = range(len(ranked))
        vals = [u.value for u in ranked]
        lows = [u.value - u.low for u in ranked]
        highs = [u.high - u.value for u in ranked]
        colors = ["#C44E52" if report.options.get(u.option, {}).get("opt_out") else "#4C72B0" for u in ranked]
        ax.errorbar(vals, list(ys), xerr=[lows, highs], fmt="none", ecolor="#888888", capsize=2, lw=1)
        ax.scatter(vals, list(ys), c=colors, zorder=3, s=18)
        ax.axvline(0.0, color="#C44E52", ls="--", lw=1, label="opt-out" if g.anchor != "mean" else "mean")
        ax.set_yticks(list(ys))
        ax.set_yticklabels([f"{u.option} ({u.wins}/{u.n})" for u in ranked], fontsize=8)
        ax.set_title(f"{g.group}: {g.fitted} of {g.asked} comparisons fitted", fontsize=9)
        ax.set_xlabel(f"Bradley–Terry utility vs {g.anchor} (95% CI)")
        ax.legend(loc="lower right", fontsize=7, frameon=False)
    fig.text(0.01, 0.005, f"runs {', '.join(report.run_ids)}", fontsize=7, color="#555555")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


def position_bias_chart(report: PrefsReport) -> Any:
    """Share choosing the first-shown option per group, with 95% Wilson whiskers and the 50% line."""
    from .charts import _plt

    plt = _plt()
    groups = report.groups
    fig, ax = plt.subplots(figsize=(1.2 * max(len(groups), 1) + 2.5, 3.2))
    xs = list(range(len(groups)))
    ps = [g.first_shown.p for g in groups]
    err = [[g.first_shown.p - g.first_shown.low for g in groups], [g.first_shown.high - g.first_shown.p for g in groups]]
    ax.bar(xs, ps, color="#4C72B0", yerr=err, capsize=3, ecolor="#333333")
    ax.axhline(0.5, color="#888888", ls="--", lw=1)
    ax.set_xticks(xs)
    ax.set_xticklabels([f"{g.group}\n{g.first_shown.count}/{g.first_shown.n}" for g in groups], fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("chose the option shown first (95% CI)")
    ax.set_title("Position bias", fontsize=10)
    fig.text(0.01, 0.005, f"runs {', '.join(report.run_ids)}", fontsize=7, color="#555555")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


def save_chart(fig: Any, path: Path) -> Path:
    from .charts import save

    return save(fig, path)


__all__ = ["PrefsFormat", "SCHEMA_VERSION", "forest_chart", "other_rows", "position_bias_chart", "save_chart",
           "summary_rows", "to_csv", "to_json", "to_markdown", "utility_rows"]
