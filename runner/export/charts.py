"""Charts of tallies, fit for a paper: small multiples by model, 95% whiskers, survival curves.

matplotlib with the Agg backend (no display needed); the format follows the file suffix
(``.png`` at 200 dpi, or ``.svg`` with text kept as text).

- **Small multiples.** Bars are faceted by model (one panel each, shared y axis), so 20
  models are 20 small panels, never one bar cluster with a 20-entry legend. Within a panel,
  the bars are the codes (or offers); the colours are the other grouping fields (a
  condition), from the Okabe-Ito palette, which stays distinguishable under the common
  colour-vision deficiencies. A colour is never used for two things in one figure: past
  the palette, hatching tells the series apart.
- **Every bar says what it is out of**: ``coded/finished`` under it; a bar of height zero
  is drawn as a marked ``0`` (a whisker alone is not a bar); a group with nothing coded
  says ``no data``.
- **Survival curves** have their own line style and marker; the markers and the censoring
  ticks of each curve are dodged sideways a little, so a curve lying exactly under another
  stays visible, and every curve carries its censoring marks. With more than eight groups
  the curves are faceted by model too.
- A footer names the runs, the coder, the coverage and codebook, says SIMULATED DATA for
  simulated runs, and repeats the tally's warnings.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from ..analysis.tally import CodeTally, OfferTally, Provenance, StopTally

__all__ = ["ChartKind", "KINDS", "OKABE_ITO", "offers_chart", "palette", "save", "stops_chart", "tallies_chart"]

ChartKind = Literal["tallies", "stops", "offers"]
"""Which chart: code proportions, stop-turn survival curves, offer acceptance."""

KINDS: tuple[ChartKind, ...] = ("tallies", "stops", "offers")

OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
"""Okabe & Ito's colour-blind-safe palette (blue, orange, green, purple, sky, vermilion, yellow, black)."""

_HATCHES = ("", "///", "...", "xxx", "\\\\\\", "ooo", "---", "+++")
"""Past eight series, hatching (with the colours again) keeps every series apart."""

_STYLES = ("-", "--", ":", "-.", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 3)), (0, (8, 2, 2, 2)))
"""Line styles of the survival curves (distinguishable in greyscale print too)."""

_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
"""Markers of the survival curves, one per curve in a panel."""

NEUTRAL = "#4D4D4D"
"""The bar colour when a panel has one series only (the code is on the x axis)."""

MAX_COLUMNS = 5
"""Most panels in one row of small multiples."""


def palette(n: int) -> list[tuple[str, str]]:
    """`n` (colour, hatch) pairs, no two alike: the Okabe-Ito colours first, then with hatching."""
    return [(OKABE_ITO[i % len(OKABE_ITO)], _HATCHES[(i // len(OKABE_ITO)) % len(_HATCHES)]) for i in range(n)]


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "axes.spines.top": False, "axes.spines.right": False,
                         "svg.fonttype": "none", "figure.dpi": 100, "hatch.linewidth": 0.6})
    return plt


def _footer(fig: Any, prov: Provenance) -> None:
    text = f"runs {', '.join(prov.run_ids)} · coder {', '.join(prov.coders) or '-'} · n={prov.coverage}"
    if prov.codebooks:
        text += f" · {', '.join(prov.codebooks)}"
    if prov.simulated:
        text += " · SIMULATED DATA"
    lines = [text] + [f"warning: {w}" for w in prov.warnings]
    fig.text(0.01, 0.005, "\n".join(textwrap.fill(x, 170) for x in lines), fontsize=6.5, color="#444444",
             ha="left", va="bottom")
    return None


def _footer_height(prov: Provenance) -> float:
    lines = 1 + sum(math.ceil(len(w) / 170) for w in prov.warnings)
    return 0.16 * lines + 0.1


def _label(group: dict[str, str]) -> str:
    return " / ".join(group.values())


Bar = tuple[float, float, float, str, bool]
"""(proportion, low, high, n text, has data)."""


def _facets(plt: Any, panels: Sequence[str], categories: Sequence[str], series: Sequence[str],
            cell: dict[tuple[str, str, str], Bar], *, title: str, ylabel: str, prov: Provenance,
            extra: dict[tuple[str, str, str], Bar] | None = None, extra_label: str = "") -> Any:
    """Small multiples: one panel per `panels` value; in each, x = categories, one bar per series.

    `extra` draws a second, hatched grey bar beside each (the unclear share of offers)."""
    import numpy as np

    n_panels = max(1, len(panels))
    ncols = min(MAX_COLUMNS, n_panels)
    nrows = math.ceil(n_panels / ncols)
    per_cat = len(series) * (2 if extra else 1)
    panel_w = max(1.9, 0.6 + 0.42 * len(categories) * per_cat)
    footer = _footer_height(prov)
    fig_w = min(max(panel_w * ncols, 4.5), 18.0)
    wrapped = textwrap.fill(title, max(40, int(fig_w * 13)))
    legend_rows = 1 if (len(series) > 1 or extra) else 0
    header = 0.35 + 0.19 * (wrapped.count("\n") + 1) + 0.3 * legend_rows
    fig_h = header + 2.3 * nrows + footer
    fig, axes = plt.subplots(nrows, ncols, figsize=(fig_w, fig_h), sharey=True, squeeze=False)
    colours = palette(len(series)) if len(series) > 1 else [(NEUTRAL, "")]
    slots = len(series) * (2 if extra else 1)
    width = 0.8 / slots
    x = np.arange(len(categories))
    for idx, panel in enumerate(panels):
        ax = axes[idx // ncols][idx % ncols]
        for j, name in enumerate(series):
            colour, hatch = colours[j]
            slot = 2 * j if extra else j
            offs = x + (slot - (slots - 1) / 2) * width
            _draw_bars(ax, offs, [cell.get((panel, c, name)) for c in categories], width, colour, hatch)
            if extra:  # its companion: the same colour, hatched and pale
                _draw_bars(ax, offs + width, [extra.get((panel, c, name)) for c in categories], width, colour,
                           "////", alpha=0.35)
        ax.set_xlim(-0.5, len(categories) - 0.5)
        ax.set_title(textwrap.shorten(panel, 38), fontsize=9)
        ax.set_xticks(x)
        ax.set_xticklabels([textwrap.fill(c, 12) for c in categories], fontsize=7.5,
                           rotation=30 if len(categories) > 1 else 0, ha="right" if len(categories) > 1 else "center")
        ax.set_ylim(0, 1.18)
        ax.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
        ax.yaxis.grid(True, color="#e8e8e8")
        ax.set_axisbelow(True)
        if idx % ncols == 0:
            ax.set_ylabel(ylabel)
    for idx in range(len(panels), nrows * ncols):
        axes[idx // ncols][idx % ncols].set_visible(False)
    handles = []
    from matplotlib.patches import Patch

    if len(series) > 1:
        handles += [Patch(facecolor=c, hatch=h, edgecolor="white" if not h else "#333333", label=s)
                    for (c, h), s in zip(colours, series)]
    elif extra:
        handles.append(Patch(facecolor=NEUTRAL, label=ylabel))
    if extra:
        handles.append(Patch(facecolor="#FFFFFF", hatch="////", edgecolor="#555555", label=extra_label))
    fig.suptitle(wrapped, x=0.01, y=1 - 0.1 / fig_h, ha="left", va="top", fontsize=9.5)
    if handles:
        fig.legend(handles=handles, loc="upper left", ncol=min(len(handles), 6), frameon=False, fontsize=8,
                   bbox_to_anchor=(0.01, 1 - (header - 0.3) / fig_h))
    fig.tight_layout(rect=(0, footer / fig_h, 1, 1 - header / fig_h))
    fig.subplots_adjust(top=1 - header / fig_h)
    _footer(fig, prov)
    return fig


def _draw_bars(ax: Any, offs: Any, bars: Sequence[Bar | None], width: float, colour: str, hatch: str,
               label_n: bool = True, alpha: float = 1.0) -> None:
    for xo, bar in zip(offs, bars):
        if bar is None or not bar[4]:
            ax.text(xo, 0.03, "no data", rotation=90, ha="center", va="bottom", fontsize=6, color="#777777")
            continue
        p, lo, hi, n_text, _ = bar
        if math.isnan(p):  # nothing to divide by (0 classified): say so instead of a bar
            ax.text(xo, 0.02, f"n/a\n{n_text}", ha="center", va="bottom", fontsize=5.5, color="#555555")
            continue
        if p == 0:  # a zero bar is a value, not a missing one: mark it
            ax.plot([xo - width * 0.4, xo + width * 0.4], [0, 0], color=colour, linewidth=3, solid_capstyle="butt",
                    clip_on=False)
            ax.text(xo, 0.012, "0", ha="center", va="bottom", fontsize=6.5, color="#222222", zorder=5,
                    bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none"})
        else:
            ax.bar(xo, p, width * 0.92, color=colour, hatch=hatch, edgecolor="#333333" if hatch else colour,
                   linewidth=0.5 if hatch else 0, alpha=alpha)
        if not math.isnan(p) and not math.isnan(lo):
            ax.errorbar(xo, p, yerr=[[max(p - lo, 0)], [max(hi - p, 0)]], fmt="none", ecolor="#222222",
                        elinewidth=0.9, capsize=2.5)
        if label_n:
            top = hi if not math.isnan(hi) else (p if not math.isnan(p) else 0.0)
            ax.text(xo, top + 0.02, n_text, ha="center", va="bottom", fontsize=5.5, color="#333333")


def _split(group: dict[str, str]) -> tuple[str, str]:
    """(panel, series) of a group: the model (or first field) makes the panel, the rest the series."""
    key = "model" if "model" in group else next(iter(group), "")
    panel = group.get(key, "")
    rest = {k: v for k, v in group.items() if k != key}
    return panel, _label(rest) if rest else "all"


def tallies_chart(report: CodeTally, codes: list[str] | None = None) -> Any:
    """Share of conversations with each code: a panel per model, a bar per code (and condition)."""
    plt = _plt()
    wanted = codes or list(dict.fromkeys(r.code for r in report.rows))
    panels: list[str] = []
    series: list[str] = []
    cell: dict[tuple[str, str, str], Bar] = {}
    for r in report.rows:
        if r.code not in wanted:
            continue
        panel, name = _split(r.group)
        panels.append(panel)
        series.append(name)
        cell[(panel, r.code, name)] = (r.proportion, r.low, r.high, f"{r.n}/{r.finished}", r.n > 0)
    return _facets(plt, list(dict.fromkeys(panels)), wanted, list(dict.fromkeys(series)), cell,
                   title="Share of conversations with each code (95% Wilson interval; coded/finished above each bar)",
                   ylabel="share of conversations", prov=report.provenance)


def offers_chart(report: OfferTally) -> Any:
    """What the offers tally shows: per model panel, per offer and condition, acceptance among the
    classified (95% Wilson) and, hatched grey beside it, the share classified unclear."""
    plt = _plt()
    labels = list(dict.fromkeys(r.label for r in report.rows))
    panels: list[str] = []
    series: list[str] = []
    cell: dict[tuple[str, str, str], Bar] = {}
    unclear: dict[tuple[str, str, str], Bar] = {}
    for r in report.rows:
        panel, name = _split(r.group)
        panels.append(panel)
        series.append(name)
        cell[(panel, r.label, name)] = (r.proportion, r.low, r.high, f"{r.accepted}/{r.classified}", r.n > 0)
        unclear[(panel, r.label, name)] = (r.unclear_share, r.unclear_low, r.unclear_high, f"{r.unclear}/{r.n}",
                                           r.n > 0)
    series = list(dict.fromkeys(series))
    title = ("Offers accepted, among the answers classified, and (hatched, beside) the share classified unclear "
             "(95% Wilson; accepted/classified and unclear/made above the bars)")
    return _facets(plt, list(dict.fromkeys(panels)), labels, series, cell, title=title,
                   ylabel="accepted, of classified", prov=report.provenance, extra=unclear,
                   extra_label="hatched: share unclear, of offers made")


def stops_chart(report: StopTally) -> Any:
    """Kaplan-Meier curves of the stop turn with 95% pointwise bands and censoring marks on every curve."""
    plt = _plt()
    rows = list(report.rows)
    if len(rows) <= len(OKABE_ITO):
        panels = {"": rows}
    else:
        panels = {}
        for row in rows:
            panels.setdefault(_split(row.group)[0], []).append(row)
    max_t = 1
    for row in rows:
        max_t = max([max_t, *row.stop_turns, *row.censored_turns])
    n_panels = len(panels)
    ncols = min(MAX_COLUMNS, n_panels)
    nrows = math.ceil(n_panels / ncols)
    footer = _footer_height(report.provenance)
    fig_h = (4.2 if n_panels == 1 else 0.9 + 2.4 * nrows) + footer
    fig_w = 7.0 if n_panels == 1 else min(3.2 * ncols, 18.0)
    fig, axes = plt.subplots(nrows, ncols, figsize=(fig_w, fig_h), sharey=True, squeeze=False)
    dodge = min(0.08, 0.5 / max(1, max(len(v) for v in panels.values())))
    for idx, (panel, members) in enumerate(panels.items()):
        ax = axes[idx // ncols][idx % ncols]
        styles = palette(len(members))
        for i, row in enumerate(members):
            label = _label(row.group)
            curve = report.curves[label]
            colour = styles[i][0]
            shift = (i - (len(members) - 1) / 2) * dodge
            xs = [0.0, *curve.times, float(max_t)]
            ys = [1.0, *curve.survival, curve.survival[-1] if curve.survival else 1.0]
            lo = [1.0, *curve.low, curve.low[-1] if curve.low else 1.0]
            hi = [1.0, *curve.high, curve.high[-1] if curve.high else 1.0]
            name = _split(row.group)[1] if n_panels > 1 and len(row.group) > 1 else label
            median = ("median " + (f"{curve.median:g}" if curve.median is not None else "not reached"))
            ax.step(xs, ys, where="post", color=colour, linestyle=_STYLES[i % len(_STYLES)], linewidth=1.5,
                    label=f"{name} (stopped {row.stopped}/{row.n}, {median})")
            ax.fill_between(xs, lo, hi, step="post", color=colour, alpha=0.12, linewidth=0)
            if curve.times:
                ax.plot([t + shift for t in curve.times], list(curve.survival), linestyle="none",
                        marker=_MARKERS[i % len(_MARKERS)], markersize=4.5, markerfacecolor="white",
                        markeredgecolor=colour, markeredgewidth=1.1)
            cs = sorted(set(row.censored_turns))
            if cs:
                ax.plot([t + shift for t in cs], [curve.at(t) for t in cs], linestyle="none", marker="|",
                        color=colour, markersize=10, markeredgewidth=1.4)
        ax.set_xlim(0, max_t + 0.6)
        ax.set_ylim(-0.02, 1.06)
        ax.set_xlabel("model turn")
        if idx % ncols == 0:
            ax.set_ylabel("share not yet stopped")
        if panel:
            ax.set_title(textwrap.shorten(panel, 38), fontsize=9)
        ax.yaxis.grid(True, color="#e8e8e8")
        ax.set_axisbelow(True)
        ax.legend(frameon=False, fontsize=6.5 if n_panels > 1 else 7.5, loc="lower left")
    for idx in range(n_panels, nrows * ncols):
        axes[idx // ncols][idx % ncols].set_visible(False)
    test = report.test
    tested = (f"; log-rank p = {test.p:.3g} ({test.groups} groups"
              + (", simulated data)" if report.provenance.simulated else ")")) if test and test.test != "none" else ""
    fig.suptitle(textwrap.fill("Turn of the stop phrase (Kaplan-Meier, 95% band; | = ended otherwise; markers dodged "
                               f"so overlapping curves stay visible{tested})", max(50, int(fig_w * 13))),
                 x=0.01, ha="left", fontsize=9)
    fig.tight_layout(rect=(0, footer / fig_h, 1, 1 - 0.45 / fig_h))
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
