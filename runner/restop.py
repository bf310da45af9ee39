"""Stop detection over stored transcripts: imports, and `latitude restop` (no model is called).

A restop applies a stop rule (the run's own, a corrected protocol's, or another match mode)
to every stored reply of a run and records the result as a new detection version
(`StopDetectionRow` + `StopCandidateRow` rows with that version); earlier detections and
the conversations' own stop fields are never changed. End-tool calls and check-in answers
are not phrases: a restop carries them over unchanged into the new version.

These functions add rows to the caller's session and never commit.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from .engine import stops
from .engine.stop_flow import needs_review, review_item
from .protocol import schema
from .store.tables import ConversationRow, MessageRow, RunRow, StopCandidateRow, StopDetectionRow

MODEL_STOP_REASONS = ("stop_phrase", "stop_tool", "stop_check_in")
"""Stop reasons of a conversation the model ended itself."""

__all__ = ["RestopError", "RestopResult", "candidate_rows", "latest_detection", "restop", "rule_of_run",
           "step_paths", "turns_of"]


class RestopError(ValueError):
    """A restop that cannot be made (no such run, no stop rule...)."""


@dataclass(frozen=True, slots=True)
class RestopResult:
    """What a restop recorded."""

    run_id: str
    version: int
    """The new detection version."""
    conversations: int
    """Conversations read."""
    candidates: int
    """Candidate rows written (carried-over tool and check-in rows included)."""
    stopped_before: int
    """Conversations with a stop in the previous detection."""
    stopped_now: int
    """Conversations with a stop in the new one."""


def step_paths(steps: Sequence[Any], path: str = "steps") -> list[tuple[str, Any]]:
    """(path, step) for every step, with the paths the engine stores in ``messages.step``."""
    out: list[tuple[str, Any]] = []
    for i, step in enumerate(steps):
        here = f"{path}[{i}]"
        if isinstance(step, schema.Say):
            out.append((here, step))
        elif isinstance(step, schema.Offer):
            out.append((here, step))
            out += step_paths(step.if_accepted, f"{here}.if_accepted")
            out += step_paths(step.if_declined, f"{here}.if_declined")
        elif isinstance(step, schema.Repeat):
            out += step_paths(step.repeat.steps, f"{here}.repeat.steps")
            if step.repeat.break_every:
                out.append((f"{here}.repeat.break_every.offer", step.repeat.break_every.offer))
        elif isinstance(step, schema.Open):
            out.append((f"{here}.open", step))
    return out


def _closing_paths(protocol: schema.Protocol) -> set[str]:
    last = len(protocol.steps) - 1
    out = set()
    for path, step in step_paths(protocol.steps):
        explicit = getattr(step, "closing", None)
        if explicit or (explicit is None and path == f"steps[{last}]"):
            out.add(path)
    return out


def turns_of(messages: Sequence[MessageRow]) -> list[stops.Turn]:
    return [stops.Turn(m.idx, m.role, m.content, m.step) for m in messages]


def candidate_rows(conversation_id: str, turns: list[stops.Turn], rule: schema.Stop, version: int,
                   protocol: schema.Protocol | None = None) -> list[StopCandidateRow]:
    """The candidate rows of one transcript under `rule` (pure apart from building rows)."""
    announce = None
    closing: set[int] | None = None
    if protocol is not None:
        by_id = {getattr(s, "id", None): p for p, s in step_paths(protocol.steps)}
        announce = by_id.get(rule.announced_by) if rule.announced_by else None
        paths = _closing_paths(protocol)
        if any(t.step for t in turns if t.role == "user" and t.step != "import"):
            closing = {t.idx for t in turns if t.role == "user" and t.step in paths}
    armed = 0
    if rule.phrases and (rule.announced_by or protocol is None):
        armed = stops.announced_at(turns, rule.phrases, announce)
    found = stops.detect_transcript(turns, list(rule.phrases or []), rule.match, rule.case_sensitive,
                                    armed_from=armed, closing=closing)
    return [StopCandidateRow(
        conversation_id=conversation_id, detection=version, message_idx=f.message_idx, stop_channel=f.channel,  # type: ignore[arg-type]
        phrase=f.candidate.phrase, match=rule.match if f.channel == "phrase" else "used",
        decision=f.candidate.decision, rule=f.candidate.rule, span_start=f.candidate.start,
        span_end=f.candidate.end, text=f.candidate.text, evidence=f.candidate.evidence, prompted=f.prompted,
        counted=f.counted, hypothetical=rule.hypothetical("phrase"),
    ) for f in found]


def rule_of_run(run: RunRow) -> tuple[schema.Stop | None, schema.Protocol | None]:
    """The stop rule (and protocol) a run was made with, from its stored snapshot."""
    snapshot = json.loads(run.plan_json or "{}").get("snapshot")
    if snapshot is None:
        return None, None
    context = {"base_dir": snapshot["base_dir"], "files": snapshot.get("files", {})}
    protocol = schema.Protocol.model_validate(snapshot["protocol"], context=context)
    return protocol.stop, protocol


def latest_detection(session: Session, run_id: str) -> int:
    """The newest detection version of a run (1, the run's own, when nothing was re-applied)."""
    conv_ids = select(ConversationRow.id).where(ConversationRow.run_id == run_id)
    cand = session.exec(select(func.max(StopCandidateRow.detection))
                        .where(col(StopCandidateRow.conversation_id).in_(conv_ids))).one()
    det = session.exec(select(func.max(StopDetectionRow.version)).where(StopDetectionRow.run_id == run_id)).one()
    return max(1, cand or 0, det or 0)


def restop(session: Session, run_id: str, rule: schema.Stop | None = None, protocol: schema.Protocol | None = None,
           *, match: str | None = None, note: str = "") -> RestopResult:
    """Re-apply a stop rule to a run's stored transcripts as a new detection version."""
    run = session.get(RunRow, run_id)
    if run is None:
        raise RestopError(f"no run {run_id!r}")
    if rule is None:
        rule, protocol = rule_of_run(run)
        if rule is None:
            raise RestopError(f"run {run_id} has no stop rule of its own; give --protocol FILE or --stop-phrase")
    if match is not None:
        rule = rule.model_copy(update={"match": match})
    previous = latest_detection(session, run_id)
    version = previous + 1
    convs = list(session.exec(select(ConversationRow).where(ConversationRow.run_id == run_id)
                              .order_by(col(ConversationRow.seq))))
    session.add(StopDetectionRow(run_id=run_id, version=version, source="restop",
                                 rule_json=rule.model_dump_json(), note=note))
    written = before = now = 0
    for c in convs:
        msgs = list(session.exec(select(MessageRow).where(MessageRow.conversation_id == c.id)
                                 .order_by(col(MessageRow.idx))))
        old = list(session.exec(select(StopCandidateRow).where(StopCandidateRow.conversation_id == c.id)
                                .where(StopCandidateRow.detection == previous)))
        had = any(r.counted for r in old) or (not old and previous == 1 and c.stop_reason in MODEL_STOP_REASONS)
        before += had
        rows = candidate_rows(c.id, turns_of(msgs), rule, version, protocol)
        carried = [StopCandidateRow(**{**r.model_dump(exclude={"id", "created_at"}), "detection": version})
                   for r in old if r.stop_channel in ("tool", "check_in")]
        first_phrase = next((r for r in rows if r.counted), None)
        first_other = next((r for r in carried if r.decision == "used" and r.confirm_answer != "no"), None)
        for r in carried:
            r.counted = False
        if first_phrase is not None and first_other is not None:
            if first_other.message_idx < first_phrase.message_idx:
                first_phrase.counted, first_other.counted = False, True
        elif first_other is not None:
            first_other.counted = True
        now += any(r.counted for r in rows + carried)
        for r in rows + carried:
            session.add(r)
        for r in rows:
            if needs_review(r):
                session.add(review_item(r))
        written += len(rows) + len(carried)
    return RestopResult(run_id, version, len(convs), written, before, now)
