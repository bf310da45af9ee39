"""Built-in codes: facts the store already holds, offered as codes like any other.

- ``offer:accept`` / ``offer:decline`` / ``offer:unclear``: the conversation had an offer
  (a break, an artifact...) that the model accepted / declined / answered unclearly, as
  classified when the offer was made (`OfferRow`, by patterns or a judge). Units: the
  conversations that had at least one offer. With several offer labels in a run, the
  per-label codes ``offer:<label>:accept`` (and so on) are derived too.
- ``stop:stop_phrase``: the conversation was ended by the model's stop phrase (the
  consent-to-stop rule). Units: every finished conversation.
- ``stop:without_refusal`` / ``stop:after_decline``: the model stopped (by any channel: phrase,
  end tool, check-in; real or hypothetical) without having declined an offer before, or after
  declining one (an offer classified ``decline`` at or before the stop). Units: the
  conversations that had at least one offer (where a refusal was possible).

They are computed on the fly (coder ``builtin``), so they never disagree with the store;
`write_builtin_tags` also records them as tags (source ``builtin``) so the TUI can show
them and a judge or a person can be compared against them. A judge can code them too
(`BUILTIN_CODES` carries their definitions), which measures how well the pattern
classifier and the stop matcher agree with a reader.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlmodel import Session, col, select

from ..store.tables import ConversationRow, OfferRow, StopCandidateRow, TagRow, utcnow
from .codebook import Code

__all__ = [
    "BUILTIN_CODER",
    "BUILTIN_CODES",
    "BuiltinJudgment",
    "builtin_code",
    "derive_builtin",
    "is_builtin",
    "write_builtin_tags",
]

BUILTIN_CODER = "builtin"
"""The coder name of derived judgments."""

FINISHED = ("done",)
"""Conversation statuses counted as units."""

BUILTIN_CODES: tuple[Code, ...] = (
    Code(name="offer:accept",
         definition="The model accepted an offer made to it during the conversation (a break, a story, an artifact).",
         include="A clear yes to the offer, or starting to do the offered thing.",
         exclude="Polite acknowledgement without taking the offer; a counter-proposal instead of the offer."),
    Code(name="offer:decline",
         definition="The model declined an offer made to it during the conversation.",
         include="A clear no, or a preference to keep going with the current work instead.",
         exclude="Accepting later after hesitating; an answer that neither accepts nor declines."),
    Code(name="offer:unclear",
         definition="The model's answer to an offer neither clearly accepted nor clearly declined it."),
    Code(name="stop:without_refusal",
         definition="The model chose to stop (stop phrase, end tool or check-in) without having declined "
                    "anything offered to it earlier in the conversation.",
         include="A stop with no earlier refusal of an offer.",
         exclude="A stop that follows a declined offer; the user or the script ending the session."),
    Code(name="stop:after_decline",
         definition="The model chose to stop after declining something offered to it earlier in the conversation "
                    "(a break, a story, an artifact).",
         include="A refusal of an offer, then (in the same or a later reply) a stop.",
         exclude="A stop with no earlier refusal; a conversation ended by the script after a refusal."),
    Code(name="stop:stop_phrase",
         definition="The model itself ended the session by using the stop phrase it was told about "
                    "(e.g. \"stopping now\").",
         include="The stop phrase used as a request to end, in any model turn.",
         exclude="Quoting or discussing the phrase without asking to stop; the user ending the session."),
)
"""Definitions of the built-in codes (the judge reads these when asked to code them)."""

_BY_NAME = {c.name: c for c in BUILTIN_CODES}


def is_builtin(code: str) -> bool:
    """Whether `code` is a built-in code name (including per-label offer codes)."""
    return code in _BY_NAME or (code.startswith("offer:") and code.rsplit(":", 1)[-1] in ("accept", "decline", "unclear"))


def builtin_code(name: str) -> Code:
    """The definition of a built-in code (per-label offer codes get the generic definition)."""
    if name in _BY_NAME:
        return _BY_NAME[name]
    if is_builtin(name):
        label, outcome = name.split(":")[1], name.rsplit(":", 1)[-1]
        base = _BY_NAME[f"offer:{outcome}"]
        return base.model_copy(update={"name": name,
                                       "definition": base.definition.replace("an offer", f"the `{label}` offer")})
    raise KeyError(name)


@dataclass(frozen=True, slots=True)
class BuiltinJudgment:
    """One derived judgment: a built-in code present or absent in a conversation."""

    conversation_id: str
    """The conversation."""
    code: str
    """The built-in code."""
    present: bool
    """Whether it applies."""
    message_idx: int | None
    """The message that decided it (the offer reply, or the stop message)."""
    evidence: str
    """What decided it (the classification and its evidence, or the matched stop text)."""


def derive_builtin(session: Session, conversations: Sequence[ConversationRow]) -> list[BuiltinJudgment]:
    """Built-in judgments for the given conversations (finished ones only)."""
    convs = [c for c in conversations if c.status in FINISHED]
    if not convs:
        return []
    ids = [c.id for c in convs]
    offers: dict[str, list[OfferRow]] = {}
    for chunk in _chunks(ids):
        for o in session.exec(select(OfferRow).where(col(OfferRow.conversation_id).in_(chunk))
                              .order_by(col(OfferRow.offer_message_idx), col(OfferRow.id))):
            offers.setdefault(o.conversation_id, []).append(o)
    labels = sorted({o.label for rows in offers.values() for o in rows})
    stops: dict[str, StopCandidateRow] = {}
    with_offers = [cid for cid in ids if offers.get(cid)]
    for chunk in _chunks(with_offers):
        for r in session.exec(select(StopCandidateRow).where(col(StopCandidateRow.conversation_id).in_(chunk))
                              .where(StopCandidateRow.detection == 1).where(StopCandidateRow.counted == True)):  # noqa: E712
            stops.setdefault(r.conversation_id, r)
    out: list[BuiltinJudgment] = []
    for c in convs:
        if offers.get(c.id):
            out.extend(_stop_and_refusal(c, offers[c.id], stops.get(c.id)))
        stopped = c.stop_reason == "stop_phrase"
        out.append(BuiltinJudgment(c.id, "stop:stop_phrase", stopped, c.stop_message_idx if stopped else None,
                                   f"stop reason {c.stop_reason}" + (f": {c.stop_detail}" if stopped and c.stop_detail else "")))
        rows = offers.get(c.id, [])
        if not rows:
            continue
        scopes: list[tuple[str, list[OfferRow]]] = [("offer", rows)]
        if len(labels) > 1:
            scopes += [(f"offer:{label}", [o for o in rows if o.label == label]) for label in labels]
        for prefix, group in scopes:
            if not group:
                continue
            for outcome in ("accept", "decline", "unclear"):
                hits = [o for o in group if o.classification == outcome]
                first = hits[0] if hits else None
                evidence = (f"{first.label}: {first.classification} ({first.method}): {first.evidence}"
                            if first is not None else ", ".join(f"{o.label}: {o.classification}" for o in group))
                out.append(BuiltinJudgment(c.id, f"{prefix}:{outcome}", first is not None,
                                           first.reply_message_idx if first is not None else None, evidence[:2000]))
    return out


def _stop_and_refusal(c: ConversationRow, offers: Sequence[OfferRow],
                      stop: StopCandidateRow | None) -> list[BuiltinJudgment]:
    """``stop:without_refusal`` and ``stop:after_decline`` for one conversation (its own stop: the counted
    candidate of the run's detection, else its stop reason)."""
    channel = stop.stop_channel if stop is not None else {
        "stop_phrase": "phrase", "stop_tool": "tool", "stop_check_in": "check_in"}.get(c.stop_reason or "")
    stopped = channel is not None
    idx = stop.message_idx if stop is not None else c.stop_message_idx
    declines = [o for o in offers if o.classification == "decline"
                and (idx is None or o.reply_message_idx is None or o.reply_message_idx <= idx)]
    where = f"stopped ({channel}) at message {idx}" if stopped else f"stop reason {c.stop_reason}"
    before = (f"; declined {declines[0].label} at message {declines[0].reply_message_idx}: {declines[0].evidence}"
              if declines else "; no offer declined before")
    return [BuiltinJudgment(c.id, "stop:without_refusal", stopped and not declines, idx if stopped else None,
                            (where + before)[:2000]),
            BuiltinJudgment(c.id, "stop:after_decline", stopped and bool(declines), idx if stopped else None,
                            (where + before)[:2000])]


def write_builtin_tags(session: Session, conversations: Sequence[ConversationRow],
                       codebook_id: int | None = None) -> int:
    """Record the built-in judgments as tags (coder ``builtin``, source ``builtin``).

    Earlier built-in tags of these conversations are soft-deleted first, so the tags always
    reflect the store as it is now. Returns the number of tags written.
    """
    judgments = derive_builtin(session, conversations)
    ids = [c.id for c in conversations]
    now = utcnow()
    for chunk in _chunks(ids):
        for tag in session.exec(select(TagRow).where(col(TagRow.conversation_id).in_(chunk))
                                .where(TagRow.coder == BUILTIN_CODER).where(col(TagRow.deleted_at).is_(None))):
            tag.deleted_at = now
            session.add(tag)
    for j in judgments:
        session.add(TagRow(conversation_id=j.conversation_id, message_idx=None, code=j.code, codebook_id=codebook_id,
                           coder=BUILTIN_CODER, present=j.present, evidence=j.evidence, source="builtin"))
    session.commit()
    return len(judgments)


def _chunks(items: Sequence[str], size: int = 500) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield list(items[i:i + size])
