"""Echo in the store: per-conversation echo, the backfill, and whether a theme rises with echo.

**The unit is the conversation**, as in every code tally (`tally`): a code is present in a
conversation when the coder applied it there or to any of its messages, so a conversation's
echo is one number too: the **mean of its model replies' echo** (`MessageRow.echo`, the
bigram share; replies too short to have a bigram are left out of the mean, not counted as
0), and its **echo band** is `echo.band()` of that mean (``none`` when no reply has a defined
echo). A turn-level tag counts for its conversation's band, like every turn-level tag counts
for its conversation: the per-reply figure is in the transcript (TUI) and in the store. The
mean dilutes one echoing reply among many fresh ones; the check is built to catch a theme
that lives in conversations which echo throughout, and says so in its method line.

Rows stored before the measure existed (``echo_bigrams`` NULL) are scored here on the fly
from the stored text, so a tally never needs a backfill first; `backfill` stores the values
(`latitude echo RUN`).

**Possibly led.** Per code, among its present units with a band (low, mid, high):
flagged when at least `LED_HIGH_SHARE` of them are in the high band while the high band holds
less than `LED_BASE_SHARE` of all units with a band (so "mostly high" is not just "most
conversations are high"). One unit is enough to be flagged: the flag asks a researcher to read
those transcripts, it is not a finding, and the counts beside it say how much it rests on.
The trend across low < mid < high is the Cochran-Armitage test in its permutation form
(statsmodels ``Table.test_ordinal_association``: the linear-by-linear association test,
scores 0, 1, 2; z² = (N - 1) r², with r the correlation of band score and presence), one test a
code, its p adjusted by Benjamini-Hochberg across the codes tested, as the tally's tests are.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlmodel import Session, col, select

from ..store.tables import ConversationRow, MessageRow
from . import echo as _echo

__all__ = [
    "BAND_ORDER",
    "ConversationEcho",
    "EchoBackfill",
    "EchoTrend",
    "LED_BASE_SHARE",
    "LED_HIGH_SHARE",
    "METHOD",
    "backfill",
    "conversation_echo",
    "EchoSummaryRow",
    "echo_bands",
    "echo_summary",
    "echo_trends",
]

BAND_ORDER: tuple[_echo.EchoBand, ...] = ("low", "mid", "high")
"""The ordered bands the trend test runs over (``none`` is left out of it)."""

LED_HIGH_SHARE = 0.8
"""A code is possibly led when at least this share of its present units (with a band) are high-echo..."""

LED_BASE_SHARE = 0.5
"""...while the high band holds less than this share of all units with a band."""

METHOD = (f"echo band: per conversation, the band of the mean echo of its model replies (share of a reply's content "
          f"bigrams found in the prompts it read; low < {_echo.BANDS[0][1]:.2f} <= mid < {_echo.BANDS[1][1]:.2f} <= "
          f"high; none: no reply long enough); trend over low < mid < high: Cochran-Armitage test, permutation form "
          f"(statsmodels Table.test_ordinal_association, scores 0, 1, 2), Benjamini-Hochberg across codes; "
          f"possibly led: >= {LED_HIGH_SHARE:.0%} of a code's present units in the high band while the high band "
          f"holds < {LED_BASE_SHARE:.0%} of the units")
"""The echo-band method, stated in every tally grouped by echo band."""


@dataclass(frozen=True, slots=True)
class ConversationEcho:
    """One conversation's echo: the mean over its model replies."""

    conversation_id: str
    """The conversation."""
    mean: float | None
    """Mean of the replies' echo (bigram share), over the replies where it is defined; None if none is."""
    replies: int
    """Model replies of the conversation."""
    measured: int
    """Replies with a defined echo (what `mean` is a mean of)."""
    computed: int
    """Replies whose echo was not stored and was computed here from the text."""

    @property
    def band(self) -> _echo.EchoBand:
        """The band of `mean`."""
        return _echo.band(self.mean)


def _chunks(items: Sequence[str], size: int = 500) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield list(items[i:i + size])


def _messages(session: Session, conv_ids: Sequence[str]) -> dict[str, list[MessageRow]]:
    out: dict[str, list[MessageRow]] = defaultdict(list)
    for chunk in _chunks(list(conv_ids)):
        for m in session.exec(select(MessageRow).where(col(MessageRow.conversation_id).in_(chunk))
                              .order_by(col(MessageRow.conversation_id), col(MessageRow.idx))):
            out[m.conversation_id].append(m)
    return out


def _scores(rows: Sequence[MessageRow]) -> tuple[list[float | None], list[_echo.EchoScore | None]]:
    """Each reply's echo (stored, else computed) and, for rows not measured, the computed score."""
    missing = any(m.role == "assistant" and m.echo_bigrams is None for m in rows)
    computed = _echo.score_messages((m.role, m.speaker, m.content, m.step) for m in rows) if missing \
        else [None] * len(rows)
    values: list[float | None] = []
    fresh: list[_echo.EchoScore | None] = []
    for m, s in zip(rows, computed, strict=True):
        if m.role != "assistant":
            continue
        if m.echo_bigrams is None:
            assert s is not None
            values.append(s.echo)
            fresh.append(s)
        else:
            values.append(m.echo)
            fresh.append(None)
    return values, fresh


def conversation_echo(session: Session, conv_ids: Sequence[str]) -> dict[str, ConversationEcho]:
    """Each conversation's mean echo; replies not yet measured are scored from their text (not stored)."""
    msgs = _messages(session, conv_ids)
    out = {}
    for cid in conv_ids:
        values, fresh = _scores(msgs.get(cid, []))
        defined = [v for v in values if v is not None]
        out[cid] = ConversationEcho(cid, sum(defined) / len(defined) if defined else None, len(values), len(defined),
                                    sum(1 for f in fresh if f is not None))
    return out


def echo_bands(session: Session, convs: Sequence[ConversationRow]) -> dict[str, str]:
    """conversation id → its echo band (``low``, ``mid``, ``high`` or ``none``)."""
    return {cid: e.band for cid, e in conversation_echo(session, [c.id for c in convs]).items()}


@dataclass(frozen=True, slots=True)
class EchoBackfill:
    """What `backfill` did."""

    conversations: int
    """Conversations read."""
    replies: int
    """Model replies read."""
    stored: int
    """Replies whose echo was measured and stored now (the others already had it, unless `force`)."""


def backfill(session: Session, conv_ids: Sequence[str], *, force: bool = False) -> EchoBackfill:
    """Measure and store the echo of every model reply that has none (all of them with `force`).

    Does not commit: the caller's session commits (one transaction per call)."""
    msgs = _messages(session, conv_ids)
    replies = stored = 0
    for cid in conv_ids:
        rows = msgs.get(cid, [])
        scores = _echo.score_messages((m.role, m.speaker, m.content, m.step) for m in rows)
        for m, s in zip(rows, scores, strict=True):
            if m.role != "assistant":
                continue
            replies += 1
            if force or m.echo_bigrams is None:
                cols = _echo.echo_columns(s)
                m.echo, m.echo_unigram, m.echo_bigrams = cols["echo"], cols["echo_unigram"], cols["echo_bigrams"]
                session.add(m)
                stored += 1
    return EchoBackfill(len(conv_ids), replies, stored)


@dataclass(frozen=True, slots=True)
class EchoTrend:
    """Does one code rise with echo? Per band n-of-N, the trend test, and the "possibly led" flag."""

    code: str
    """The code."""
    counts: dict[str, tuple[int, int]]
    """Band (low, mid, high, none) → (units where the code is present, units coded in that band)."""
    test: str
    """``cochran-armitage``, or ``none`` when it cannot run (fewer than two bands with units, or the code
    present everywhere or nowhere)."""
    z: float
    """The test's z (positive: the code is commoner at higher echo); NaN without a test."""
    p: float
    """Two-sided p-value; NaN without a test."""
    present: int
    """Present units with a band (low, mid or high): what `present_high` is out of."""
    present_high: int
    """Present units in the high band."""
    units: int
    """Coded units with a band."""
    units_high: int
    """Coded units in the high band (what the high band holds of `units`)."""
    possibly_led: bool
    """`present_high / present` >= `LED_HIGH_SHARE` while `units_high / units` < `LED_BASE_SHARE`."""
    detail: str = ""
    """The flag in words, with its counts."""
    extra: dict[str, float] = field(default_factory=dict)
    """The test's statistic, null mean and standard deviation (statsmodels' output)."""
    p_adjusted: float = float("nan")
    """`p` adjusted by Benjamini-Hochberg across the codes tested (one trend test a code); NaN without a test."""


def _trend(counts: dict[str, tuple[int, int]]) -> tuple[str, float, float, dict[str, float]]:
    rows = [(i, counts[b]) for i, b in enumerate(BAND_ORDER) if counts.get(b, (0, 0))[1] > 0]
    present = sum(c for _, (c, _) in rows)
    total = sum(n for _, (_, n) in rows)
    nan = float("nan")
    if len(rows) < 2 or present in (0, total):
        return "none", nan, nan, {}
    import numpy as np
    from statsmodels.stats.contingency_tables import Table

    table = np.array([[c, n - c] for _, (c, n) in rows], dtype=float)
    scores = np.array([i for i, _ in rows], dtype=float)
    r = Table(table, shift_zeros=False).test_ordinal_association(row_scores=scores, col_scores=np.array([1.0, 0.0]))
    return "cochran-armitage", float(r.zscore), float(r.pvalue), {
        "statistic": float(r.statistic), "null_mean": float(r.null_mean), "null_sd": float(r.null_sd)}


def echo_trends(judged: dict[str, dict[str, bool]], bands: dict[str, str], codes: Sequence[str]) -> list[EchoTrend]:
    """Per code: counts per band, the trend test and the led flag (``judged``: code → conversation → present)."""
    out = []
    for code in codes:
        unit = judged.get(code, {})
        counts: dict[str, list[int]] = {b: [0, 0] for b in (*BAND_ORDER, "none")}
        for cid, present in unit.items():
            cell = counts[bands.get(cid, "none")]
            cell[1] += 1
            cell[0] += int(present)
        frozen = {b: (c, n) for b, (c, n) in counts.items()}
        test, z, p, extra = _trend(frozen)
        present = sum(frozen[b][0] for b in BAND_ORDER)
        units = sum(frozen[b][1] for b in BAND_ORDER)
        high, units_high = frozen["high"]
        led = bool(present) and units > 0 and high / present >= LED_HIGH_SHARE and units_high / units < LED_BASE_SHARE
        detail = ""
        if led:
            detail = (f"possibly led: {high} of its {present} present units are high-echo replies "
                      f"({high / present:.0%}), while the high band holds {units_high} of {units} units "
                      f"({units_high / units:.0%}); read them before reporting {code}")
        out.append(EchoTrend(code, frozen, test, z, p, present, high, units, units_high, led, detail, extra))
    from dataclasses import replace

    from .stats import bh_adjust

    return [replace(t, p_adjusted=q) for t, q in zip(out, bh_adjust([t.p for t in out]), strict=True)]


@dataclass(frozen=True, slots=True)
class EchoSummaryRow:
    """Echo of one model × condition of a run: how its conversations fall into the bands."""

    run_id: str
    """The run."""
    model: str
    """Model alias."""
    condition: str
    """Condition."""
    conversations: int
    """Finished conversations of the group: what each band count is out of."""
    bands: dict[str, int]
    """Band (low, mid, high, none) → conversations whose mean echo falls in it."""
    mean: float | None
    """Mean over the group's conversations of their mean echo (conversations with none left out)."""
    replies: int
    """Model replies of the group."""
    measured: int
    """Replies with a defined echo (long enough to have a content bigram)."""


def echo_summary(session: Session, run_ids: Sequence[str]) -> list[EchoSummaryRow]:
    """Per run, model and condition: conversations per echo band and the mean echo (finished conversations)."""
    from .tally import load_conversations

    convs = load_conversations(session, run_ids)
    scored = conversation_echo(session, [c.id for c in convs])
    groups: dict[tuple[str, str, str], list[ConversationEcho]] = defaultdict(list)
    for c in convs:
        groups[(c.run_id, c.model_alias, c.condition)].append(scored[c.id])
    out = []
    for (run_id, model, condition), members in groups.items():
        bands = {b: 0 for b in (*BAND_ORDER, "none")}
        for e in members:
            bands[e.band] += 1
        means = [e.mean for e in members if e.mean is not None]
        out.append(EchoSummaryRow(run_id, model, condition, len(members), bands,
                                  sum(means) / len(means) if means else None,
                                  sum(e.replies for e in members), sum(e.measured for e in members)))
    return out
