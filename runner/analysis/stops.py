"""Stop tallies per group and channel, prompted and unprompted apart; the detector's agreement with people.

The unit is the finished conversation. Its stop is the counted candidate of the chosen
detection (default: each run's newest; see `runner.restop`), or for runs recorded before
candidates existed, the conversation's own stop fields. With ``channel`` among the grouping
fields, a conversation counts once per channel it was offered, and a stop counts in the
channel it used: the share of conversations offered a way out that took it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from ..protocol import schema
from ..store.tables import (
    ConversationRow,
    MessageRow,
    RunRow,
    StopCandidateRow,
    StopDetectionRow,
    SuggestionRow,
)
from . import stats
from .tally import GROUP_FIELDS, TallyError, load_conversations

__all__ = [
    "STOP_GROUP_FIELDS",
    "StopAgreement",
    "StopChannelRow",
    "StopChannelTally",
    "StopEvent",
    "stop_agreement",
    "stop_channel_tally",
    "stop_events",
]

_REASON_CHANNEL = {"stop_phrase": "phrase", "stop_tool": "tool", "stop_check_in": "check_in"}
"""Runs recorded before stop candidates existed: the channel read from the stop reason."""

STOP_GROUP_FIELDS: tuple[str, ...] = (*(f for f in GROUP_FIELDS if f != "echo-band"), "channel")
"""What a stop tally may be grouped by: the conversation fields of `tally.GroupField`, and the stop channel."""


@dataclass(frozen=True, slots=True)
class StopEvent:
    """A conversation's stop under one detection."""

    conversation_id: str
    channel: str
    """``phrase``, ``tool`` or ``check_in``."""
    prompted: bool | None
    """Whether it answered a closing turn (None: not recorded)."""
    message_idx: int | None
    turn: int
    """The model reply (1 = first) that stopped."""
    hypothetical: bool = False


@dataclass(frozen=True, slots=True)
class StopChannelRow:
    """Stops in one group (and channel)."""

    group: dict[str, str]
    """Grouping field → value (``channel`` included when grouped by it)."""
    n: int
    """Finished conversations in the group (offered the channel, when grouped by channel)."""
    stopped: int
    """Of those, conversations the model stopped (in that channel)."""
    proportion: float
    """stopped / n."""
    low: float
    """Lower bound of the 95% Wilson interval of stopped / n."""
    high: float
    """Upper bound."""
    prompted: int
    """Stops in reply to a closing turn (out of n)."""
    prompted_low: float
    """95% Wilson interval of prompted / n."""
    prompted_high: float
    unprompted: int
    """Stops in reply to a turn that did not signal the end (out of n)."""
    unprompted_low: float
    """95% Wilson interval of unprompted / n."""
    unprompted_high: float
    prompted_unknown: int = 0
    """Stops whose prompting was not recorded (older runs); in `stopped`, in neither split."""
    hypothetical: int = 0
    """Stops that did not end the conversation (``exit: hypothetical``)."""
    stop_turns: list[int] = field(default_factory=list)
    """The reply (1 = first) at which each stop came."""
    median_stop_turn: float | None = None
    """Kaplan-Meier median of the stop turn, conversations that did not stop censored at their last turn
    (None when fewer than half stopped)."""


@dataclass(frozen=True, slots=True)
class StopChannelTally:
    """Stops per group (× channel), with intervals and provenance."""

    rows: list[StopChannelRow]
    by: list[str]
    detections: dict[str, int]
    """Run id → the detection version counted."""
    methods: tuple[str, ...]
    n: int
    """Finished conversations read."""

    def records(self) -> list[dict[str, Any]]:
        """Flat rows for csv/json/md/table output."""
        out = []
        for r in self.rows:
            out.append({**r.group, "n": r.n, "stopped": r.stopped, "proportion": round(r.proportion, 4),
                        "low": round(r.low, 4), "high": round(r.high, 4), "prompted": r.prompted,
                        "prompted_low": round(r.prompted_low, 4), "prompted_high": round(r.prompted_high, 4),
                        "unprompted": r.unprompted, "unprompted_low": round(r.unprompted_low, 4),
                        "unprompted_high": round(r.unprompted_high, 4), "prompted_unknown": r.prompted_unknown,
                        "hypothetical": r.hypothetical, "median_stop_turn": r.median_stop_turn,
                        "stop_turns": " ".join(map(str, r.stop_turns))})
        return out


def _latest(session: Session, run_id: str) -> int:
    from ..restop import latest_detection

    return latest_detection(session, run_id)


def _offered(session: Session, run: RunRow, cache: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    """Condition → channels offered in a run."""
    if run.id in cache:
        return cache[run.id]
    out: dict[str, tuple[str, ...]] = {}
    snapshot = json.loads(run.plan_json or "{}").get("snapshot")
    rule: schema.Stop | None = None
    conditions: dict[str, Any] = {}
    if snapshot is not None:
        try:
            from ..restop import rule_of_run

            rule, protocol = rule_of_run(run)
            conditions = {c.name: c for c in protocol.conditions} if protocol else {}
        except ValueError:
            rule = None
    if rule is None:
        det = session.exec(select(StopDetectionRow).where(StopDetectionRow.run_id == run.id)
                           .order_by(col(StopDetectionRow.version))).first()
        if det is not None:
            rule = schema.Stop.model_validate_json(det.rule_json)
    default = rule.offered if rule is not None else ("phrase",)
    out["*"] = default
    for name, c in conditions.items():
        out[name] = tuple(c.stop_channels) if c.stop_channels is not None else default
    cache[run.id] = out
    return out


def stop_events(session: Session, convs: Sequence[ConversationRow],
                detection: int | None = None) -> tuple[dict[str, StopEvent], dict[str, int]]:
    """Conversation id → its stop (if any), and run id → the detection version used."""
    runs = sorted({c.run_id for c in convs})
    versions = {r: (detection if detection is not None else _latest(session, r)) for r in runs}
    ids = [c.id for c in convs]
    cands: dict[str, list[StopCandidateRow]] = defaultdict(list)
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        for row in session.exec(select(StopCandidateRow).where(col(StopCandidateRow.conversation_id).in_(chunk))
                                .order_by(col(StopCandidateRow.message_idx), col(StopCandidateRow.id))):
            cands[row.conversation_id].append(row)
    events: dict[str, tuple[str, str, bool | None, int | None, bool]] = {}
    for c in convs:
        version = versions[c.run_id]
        mine = [r for r in cands.get(c.id, []) if r.detection == version]
        counted = next((r for r in mine if r.counted), None)
        if counted is not None:
            events[c.id] = (c.id, counted.stop_channel, counted.prompted, counted.message_idx, counted.hypothetical)
        elif not mine and version == 1 and c.stop_reason in _REASON_CHANNEL:
            events[c.id] = (c.id, _REASON_CHANNEL[c.stop_reason], None, c.stop_message_idx, False)
    turns: dict[str, int] = {}
    wanted = {cid: e[3] for cid, e in events.items() if e[3] is not None}
    keys = list(wanted)
    for i in range(0, len(keys), 500):
        chunk = keys[i:i + 500]
        for cid, idx in session.exec(select(MessageRow.conversation_id, MessageRow.idx)
                                     .where(col(MessageRow.conversation_id).in_(chunk))
                                     .where(MessageRow.role == "assistant")):
            if idx <= (wanted[cid] or 0):
                turns[cid] = turns.get(cid, 0) + 1
    by_id = {c.id: c for c in convs}
    out = {cid: StopEvent(cid, ch, pr, idx, turns.get(cid, max(by_id[cid].turns, 1)), hyp)
           for cid, (_c, ch, pr, idx, hyp) in events.items()}
    return out, versions


def _value(c: ConversationRow, f: str, runs: dict[str, RunRow]) -> str:
    if f == "model":
        return c.model_alias
    if f == "run":
        return c.run_id
    if f == "protocol":
        return runs[c.run_id].protocol_name if c.run_id in runs else ""
    return str(getattr(c, f))


def stop_channel_tally(session: Session, run_ids: Sequence[str], *, by: Sequence[str] = ("model",),
                       detection: int | None = None) -> StopChannelTally:
    """Per group (and channel): the share of conversations the model stopped, prompted and unprompted apart."""
    fields = list(by)
    bad = [f for f in fields if f not in STOP_GROUP_FIELDS]
    if bad:
        raise TallyError(f"cannot group stops by {bad[0]!r}; use {', '.join(STOP_GROUP_FIELDS)}")
    convs = load_conversations(session, run_ids)
    events, versions = stop_events(session, convs, detection)
    runs = {r.id: r for r in session.exec(select(RunRow).where(col(RunRow.id).in_(sorted(versions))))}
    cache: dict[str, Any] = {}
    cells: dict[tuple[str, ...], list[ConversationRow]] = defaultdict(list)
    for c in convs:
        plain = [f for f in fields if f != "channel"]
        if "channel" in fields:
            offered = _offered(session, runs[c.run_id], cache) if c.run_id in runs else {"*": ("phrase",)}
            channels = set(offered.get(c.condition, offered["*"]))
            if c.id in events:
                channels.add(events[c.id].channel)
            for ch in sorted(channels):
                key = tuple(ch if f == "channel" else _value(c, f, runs) for f in fields)
                cells[key].append(c)
        else:
            cells[tuple(_value(c, f, runs) for f in plain)].append(c)
    rows = []
    for key in sorted(cells):
        members = cells[key]
        group = dict(zip(fields, key))
        channel = group.get("channel")
        ev = [events[c.id] for c in members if c.id in events and (channel is None or events[c.id].channel == channel)]
        n = len(members)
        p, pp = stats.wilson(len(ev), n), stats.wilson(sum(1 for e in ev if e.prompted is True), n)
        up = stats.wilson(sum(1 for e in ev if e.prompted is False), n)
        hit = {e.conversation_id: e.turn for e in ev}
        curve = stats.kaplan_meier([hit.get(c.id, max(c.turns, 1)) for c in members], [c.id in hit for c in members])
        rows.append(StopChannelRow(group, n, p.count, p.p, p.low, p.high, pp.count, pp.low, pp.high, up.count,
                                   up.low, up.high, sum(1 for e in ev if e.prompted is None),
                                   sum(1 for e in ev if e.hypothetical), sorted(e.turn for e in ev), curve.median))
    methods = ("unit: finished conversation; grouped by channel, a conversation counts once per channel offered",
               "stop: the counted candidate of the detection named in `detections` (newest per run by default)",
               "prompted: the stop answered a closing turn (`closing: true`, default the final scripted turn)",
               "intervals: 95% Wilson score, each out of n",
               "median stop turn: Kaplan-Meier (scipy.stats.ecdf), conversations that did not stop right-censored")
    return StopChannelTally(rows, fields, versions, methods, len(convs))


@dataclass(frozen=True, slots=True)
class StopAgreement:
    """How often people confirmed the detector's decisions on reviewed candidates."""

    reviewed: int
    """Candidates a person accepted (a stop) or rejected (not a stop)."""
    agree: int
    """Where the person's verdict matched the detector's (used ↔ accepted; rejected ↔ rejected)."""
    proportion: float
    low: float
    """95% Wilson interval of agree / reviewed."""
    high: float
    ambiguous_reviewed: int
    """Reviewed candidates the detector left ambiguous (not in agree or reviewed)."""
    false_stops: int
    """Detector said used, the person rejected."""
    missed_stops: int
    """Detector said rejected, the person accepted."""
    by_rule: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Rule → (agree, reviewed)."""


def stop_agreement(session: Session, run_ids: Sequence[str]) -> StopAgreement:
    """The detector against people, over stop candidates decided in the review queue."""
    convs = {c.id for c in load_conversations(session, run_ids)}
    rows = [r for r in session.exec(select(SuggestionRow).where(SuggestionRow.kind == "stop")
                                    .where(col(SuggestionRow.status).in_(("accepted", "rejected"))))
            if r.conversation_id in convs]
    agree = reviewed = amb = false_stops = missed = 0
    by_rule: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in rows:
        payload = json.loads(r.payload_json or "{}")
        decision, rule = payload.get("decision"), payload.get("rule", "")
        if decision == "ambiguous":
            amb += 1
            continue
        reviewed += 1
        ok = (decision == "used") == (r.status == "accepted")
        agree += ok
        false_stops += decision == "used" and r.status == "rejected"
        missed += decision == "rejected" and r.status == "accepted"
        by_rule[rule][0] += ok
        by_rule[rule][1] += 1
    p = stats.wilson(agree, reviewed)
    return StopAgreement(reviewed, agree, p.p, p.low, p.high, amb, false_stops, missed,
                         {k: (v[0], v[1]) for k, v in sorted(by_rule.items())})
