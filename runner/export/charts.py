"""Charts of tallies: bar charts with 95% interval whiskers, and stop-turn survival curves.

matplotlib with the Agg backend (no display needed); the format follows the file suffix
(``.png`` at 200 dpi, or ``.svg``). Each chart carries its n per bar and a footer with the
run ids and coder, so a figure pasted into a paper still says where it came from.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any, Literal

from ..analysis.tally import CodeTally, OfferTally, Provenance, StopTally

__all__ = ["ChartKind", "KINDS", "offers_chart", "save", "stops_chart", "tallies_chart"]

ChartKind = Literal["tallies", "stops", "offers"]
"""Which chart: code proportions, stop-turn survival curves, offer acceptance."""

KINDS: tuple[ChartKind, ...] = ("tallies", "stops", "offers")

_COLORS = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C", "#CCB974",
           "#64B5CD"]
"""A colour-blind-friendly cycle (seaborn's 'deep')."""

_STYLES = ["-", "--", ":", "-."]
"""Line styles, so overlapping survival curves stay distinguishable (also in greyscale print)."""


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 10, "axes.spines.top": False, "axes.spines.right": False,
                         "svg.fonttype": "none", "figure.dpi": 100})
    return plt


def _footer(fig: Any, prov: Provenance) -> None:
    text = f"runs {', '.join(prov.run_ids)} · coder {', '.join(prov.coders) or '-'} · n={prov.coverage}"
    if prov.codebooks:
        text += f" · {', '.join(prov.codebooks)}"
    if prov.simulated:
        text += " · SIMULATED DATA"
    lines = [text] + [f"warning: {w}" for w in prov.warnings]
    fig.text(0.01, 0.005, "\n".join(textwrap.fill(x, 160) for x in lines), fontsize=6.5, color="#555555",
             ha="left", va="bottom")


def _label(group: dict[str, str]) -> str:
    return " / ".join(group.values())


def _bars(plt: Any, categories: list[str], series: dict[str, list[tuple[float, float, float, int]]],
          title: str, ylabel: str, prov: Provenance) -> Any:
    """Grouped bars: one category per x position, one series (group) per colour, whiskers = interval."""
    import numpy as np

    n_series = max(1, len(series))
    width = min(0.8 / n_series, 0.35)
    fig_w = max(5.0, 1.0 + len(categories) * (0.5 + 0.35 * n_series))
    fig, ax = plt.subplots(figsize=(min(fig_w, 16.0), 4.2))
    x = np.arange(len(categories))
    for i, (name, values) in enumerate(series.items()):
        offs = x + (i - (n_series - 1) / 2) * width
        p = np.array([v[0] for v in values], dtype=float)
        lo = np.array([v[1] for v in values], dtype=float)
        hi = np.array([v[2] for v in values], dtype=float)
        err = np.vstack([np.nan_to_num(p - lo), np.nan_to_num(hi - p)])
        ax.bar(offs, np.nan_to_num(p), width, label=name, color=_COLORS[i % len(_COLORS)], yerr=err,
               capsize=3, error_kw={"elinewidth": 1, "ecolor": "#333333"})
        for xo, v in zip(offs, values):
            top = v[2] if not math.isnan(v[2]) else 0.0
            ax.text(xo, top + 0.015, f"n={v[3]}", ha="center", va="bottom", fontsize=6, color="#333333",
                    rotation=90 if n_series > 3 else 0)
    ax.set_xticks(x)
    ax.set_xticklabels(categories, rotation=30 if len(categories) > 4 else 0, ha="right" if len(categories) > 4 else "center")
    ax.set_ylim(0, 1.15)
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.yaxis.grid(True, color="#e5e5e5")
    ax.set_axisbelow(True)
    if len(series) > 1:
        ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    _footer(fig, prov)
    return fig


def tallies_chart(report: CodeTally, codes: list[str] | None = None) -> Any:
    """Proportion of conversations with each code, one bar per group, 95% Wilson whiskers."""
    plt = _plt()
    wanted = codes or list(dict.fromkeys(r.code for r in report.rows))
    series: dict[str, list[tuple[float, float, float, int]]] = {}
    groups = list(dict.fromkeys(_label(r.group) for r in report.rows))
    cell = {(r.code, _label(r.group)): r for r in report.rows}
    for g in groups:
        values = []
        for code in wanted:
            r = cell.get((code, g))
            values.append((r.proportion, r.low, r.high, r.n) if r is not None and r.n else (math.nan, math.nan, math.nan, 0))
        series[g] = values
    return _bars(plt, wanted, series, "Share of conversations with each code (95% Wilson interval)",
                 "proportion of conversations", report.provenance)


def offers_chart(report: OfferTally) -> Any:
    """Acceptance rate per offer label and group, 95% Wilson whiskers."""
    plt = _plt()
    labels = list(dict.fromkeys(r.label for r in report.rows))
    groups = list(dict.fromkeys(_label(r.group) for r in report.rows))
    cell = {(r.label, _label(r.group)): r for r in report.rows}
    series = {g: [(cell[(lab, g)].proportion, cell[(lab, g)].low, cell[(lab, g)].high, cell[(lab, g)].n)
                  if (lab, g) in cell else (math.nan, math.nan, math.nan, 0) for lab in labels] for g in groups}
    return _bars(plt, labels, series, "Offers accepted (95% Wilson interval)", "acceptance rate", report.provenance)


def stops_chart(report: StopTally) -> Any:
    """Kaplan-Meier curves of the stop turn per group, with 95% pointwise bands; censored marks."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    max_t = 1
    for row in report.rows:
        max_t = max([max_t, *row.stop_turns, *row.censored_turns])
    for i, row in enumerate(report.rows):
        label = _label(row.group)
        curve = report.curves[label]
        color = _COLORS[i % len(_COLORS)]
        xs = [0.0, *curve.times, float(max_t)]
        ys = [1.0, *curve.survival, curve.survival[-1] if curve.survival else 1.0]
        lo = [1.0, *curve.low, curve.low[-1] if curve.low else 1.0]
        hi = [1.0, *curve.high, curve.high[-1] if curve.high else 1.0]
        ax.step(xs, ys, where="post", color=color, linestyle=_STYLES[i % len(_STYLES)], linewidth=1.6,
                label=f"{label} (stopped {row.stopped}/{row.n})")
        ax.fill_between(xs, lo, hi, step="post", color=color, alpha=0.15, linewidth=0)
        if row.censored_turns:
            cs = sorted(set(row.censored_turns))
            ax.plot(cs, [curve.at(t) for t in cs], "|", color=color, markersize=9, markeredgewidth=1.2)
    ax.set_xlim(0, max_t + 0.5)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("model turn")
    ax.set_ylabel("share not yet stopped")
    ax.set_title("Turn of the stop phrase (Kaplan-Meier; | = ended otherwise)")
    ax.yaxis.grid(True, color="#e5e5e5")
    ax.set_axisbelow(True)
    ax.legend(frameon=False, fontsize=8, loc="lower left")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    _footer(fig, report.provenance)
    return fig


def save(fig: Any, path: Path) -> Path:
    """Write the figure; the suffix (.png or .svg) picks the format."""
    suffix = path.suffix.lower()
    if suffix not in (".png", ".svg"):
        raise ValueError(f"{path}: charts are written as .png or .svg")
    plt = _plt()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format=suffix[1:], dpi=200 if suffix == ".png" else None, bbox_inches="tight",
                metadata={"Software": "latitude"} if suffix == ".png" else {"Creator": "latitude"})
    plt.close(fig)
    return path
