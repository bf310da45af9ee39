"""Transcripts out of the store: jsonl (one conversation per line) and Markdown."""

from __future__ import annotations

import re
from typing import Iterator, TextIO

from sqlmodel import Session

from ..store import queries
from ..store.tables import ConversationRow, RunRow
from .schema import (
    ExportArtifact,
    ExportChoice,
    ExportConversation,
    ExportMessage,
    ExportOffer,
    ExportStopCandidate,
    Usage,
)

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def literal(text: str) -> str:
    """Untrusted model text made safe for a terminal: control and escape characters shown as `\\xNN`."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group(0)):02x}", text)


def conversations(session: Session, run: RunRow) -> Iterator[ExportConversation]:
    for conv in queries.run_conversations(session, run.id):
        yield to_export(session, run, conv)


def failed(conv: ConversationRow) -> bool:
    """The conversation ended in an error (its `stop_detail` is then the error text)."""
    return conv.status == "error" or (conv.stop_reason or "").startswith("error")


def to_export(session: Session, run: RunRow, conv: ConversationRow) -> ExportConversation:
    messages = queries.conversation_messages(session, conv.id)
    return ExportConversation(
        id=conv.id, run_id=run.id, protocol=run.protocol_name, protocol_sha256=run.protocol_hash,
        model=conv.model_alias, litellm_model=conv.litellm_model, vendor=conv.vendor, simulated=conv.simulated,
        condition=conv.condition, replicate=conv.replicate, status=conv.status, stop_reason=conv.stop_reason,
        stop_detail=conv.stop_detail, turns=conv.turns,
        error=(conv.stop_detail or "(no error text was stored)") if failed(conv) else None,
        usage=Usage(tokens_in=conv.tokens_in, tokens_out=conv.tokens_out, cached_tokens=conv.cached_tokens,
                    cost=conv.cost),
        messages=[
            ExportMessage(idx=m.idx, role=m.role, speaker=m.speaker, content=m.content, reasoning=m.reasoning,
                          latency_ms=m.latency_ms, ttft_ms=m.ttft_ms, tokens_in=m.tokens_in,
                          tokens_out=m.tokens_out, cost=m.cost)
            for m in messages
        ],
        offers=[ExportOffer(label=o.label, offer_message_idx=o.offer_message_idx,
                            reply_message_idx=o.reply_message_idx, classification=o.classification,
                            method=o.method, evidence=o.evidence)
                for o in queries.conversation_offers(session, conv.id)],
        artifacts=[ExportArtifact(name=a.name, content=a.content, message_idx=a.message_idx)
                   for a in queries.conversation_artifacts(session, conv.id)],
        choices=_choices(session, conv.id),
        stops=_stops(session, conv.id),
    )


def _choices(session: Session, conversation_id: str) -> list[ExportChoice]:
    from sqlmodel import select

    from ..store.tables import ChoiceRow

    rows = session.exec(select(ChoiceRow).where(ChoiceRow.conversation_id == conversation_id)
                        .order_by(ChoiceRow.message_idx)).all()
    return [ExportChoice.model_validate(r.model_dump(exclude={"id", "conversation_id", "created_at"})) for r in rows]


def _stops(session: Session, conversation_id: str) -> list[ExportStopCandidate]:
    from sqlalchemy import func
    from sqlmodel import col, select

    from ..store.tables import StopCandidateRow as sc

    latest = select(func.max(sc.detection)).where(sc.conversation_id == conversation_id).scalar_subquery()
    rows = session.exec(select(sc).where(sc.conversation_id == conversation_id, sc.detection == latest)
                        .order_by(col(sc.message_idx), col(sc.id))).all()
    fields = set(ExportStopCandidate.model_fields)
    return [ExportStopCandidate.model_validate({k: v for k, v in r.model_dump().items() if k in fields}) for r in rows]


def write_jsonl(session: Session, run: RunRow, out: TextIO) -> int:
    n = 0
    for conv in conversations(session, run):
        out.write(conv.model_dump_json() + "\n")
        n += 1
    return n


def write_markdown(session: Session, run: RunRow, out: TextIO) -> int:
    n = 0
    out.write(f"# Run {run.id}: {run.protocol_name} v{run.protocol_version}\n\n")
    for conv in conversations(session, run):
        n += 1
        sim = " (SIMULATED)" if conv.simulated else ""
        out.write(f"## {conv.model} · {conv.condition} · replicate {conv.replicate}{sim}\n\n")
        out.write(f"conversation `{conv.id}` · `{conv.litellm_model}` · stop: {conv.stop_reason} · "
                  f"turns: {conv.turns} · tokens {conv.usage.tokens_in}→{conv.usage.tokens_out}\n\n")
        if conv.error is not None:
            out.write(f"**error:** {conv.error}\n\n")
        for m in conv.messages:
            out.write(f"### {m.speaker}\n\n")
            body = m.content.replace("\n```", "\n\\`\\`\\`")
            out.write(body + "\n\n")
        for a in conv.artifacts:
            out.write(f"#### artifact: {a.name}\n\n~~~~\n{a.content}\n~~~~\n\n")
    return n
