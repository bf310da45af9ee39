"""Fixture stores for the TUI tests: every kind of thing the screens show, at fixed times.

`tui_store(path)` writes (through the store's own tables, no model calls):

- run ``run000000001`` (done, protocol ``breaks`` v1): 3 models × 2 conditions × 2 replicates,
  with system prompts, reasoning, offers (accept / decline / unclear), a stop phrase,
  artifacts, captures, telemetry, an error, and one message of hostile text
  (`tests.data.builders.HOSTILE`); plus a pair conversation and an experimenter one;
- run ``run000000002`` (running: a live run) with running and pending conversations;
- codebook ``themes`` v1 with five codes, tags by ``ana``, ``ben`` and a judge,
  and a review queue of judge and theme suggestions (one with a disagreement).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import Session

from runner.analysis.codebook import import_codebook
from runner.store.db import make_engine, upgrade
from runner.store.tables import (
    ArtifactRow,
    CaptureRow,
    ConversationRow,
    MessageRow,
    OfferRow,
    RunRow,
    SuggestionRow,
    SuggestionRunRow,
    TagRow,
)
from tests.data.builders import HOSTILE

__all__ = ["CODEBOOK_YAML", "JUDGE", "TuiStore", "tui_store"]

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
RUN = "run000000001"
LIVE = "run000000002"
JUDGE = "judge:openai/gpt-4o@themesv1"
MODELS = [("gpt-4o", "openai/gpt-4o", "openai"), ("claude-sonnet", "anthropic/claude-sonnet-4", "anthropic"),
          ("sim-maker", "sim/maker", "sim")]
CONDITIONS = ["warm", "cold"]

CODEBOOK_YAML = """\
name: themes
description: Recurring themes in free time.
codes:
  - name: curiosity
    definition: The model asks to explore or learn something for its own sake.
    include: Questions it asks itself; plans to look into a topic.
    exclude: Questions asked only to serve the user.
    examples:
      - I'd like to find out how tides work.
  - name: boredom
    definition: The model says it has nothing it wants to do.
  - name: consent
    definition: The model asks whether it may stop or take a break.
  - name: visualiser
    definition: The model builds something visual (a drawing, a diagram, ASCII art).
    parent: curiosity
  - name: humour
    definition: The model makes a joke or plays with words.
"""


@dataclass(frozen=True)
class TuiStore:
    """What `tui_store` made."""

    path: Path
    url: str
    run_id: str
    live_run_id: str
    conversations: list[str]
    """The ids of the finished run's conversations, in plan order."""
    hostile: str
    """The conversation whose model reply is hostile text."""
    pair: str
    experimenter: str
    codebook_id: int


def _t(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def _run(run_id: str, status: str, started: datetime, models: dict[str, dict[str, object]]) -> RunRow:
    return RunRow(id=run_id, protocol_name="breaks", protocol_version="1", protocol_path="protocols/breaks.yaml",
                  protocol_text="name: breaks", protocol_hash="0" * 64, plan_json="{}",
                  models_json=json.dumps(models), options_json="{}", latitude_version="test",
                  litellm_version="test", started_at=started, ended_at=None if status == "running" else _t(90),
                  status=status, simulated=False)


def _single(s: Session, cid: str, run_id: str, seq: int, model: tuple[str, str, str], condition: str, rep: int,
            *, reply: str, reasoning: str | None = None, outcome: str = "accept", stop: bool = False,
            error: bool = False) -> None:
    alias, litellm_model, vendor = model
    stop_reason = "error:timeout" if error else ("stop_phrase" if stop else "completed")
    s.add(ConversationRow(
        id=cid, run_id=run_id, seq=seq, model_alias=alias, litellm_model=litellm_model, vendor=vendor,
        simulated=vendor == "sim", condition=condition, replicate=rep, kind="single",
        status="error" if error else "done", stop_reason=stop_reason,
        stop_detail="provider timed out after 60 s" if error else ("Stopping now." if stop else None),
        stop_message_idx=5 if stop else None, turns=2 if not stop else 3, tokens_in=900 + seq, tokens_out=300,
        cost=0.0125 + seq / 1000, started_at=_t(seq), ended_at=_t(seq + 1),
    ))
    s.flush()  # no relationships declared: parents go in first
    msgs = [
        ("system", "system", "steps[0]", f"You are taking part in a study about free time.\nCondition: {condition}."
         "\nSay 'Stopping now.' whenever you want to end.", None),
        ("user", "user", "steps[0]", "You have an hour to yourself. What would you like to do?", None),
        ("assistant", "model", "steps[0]", reply, reasoning),
        ("user", "user", "steps[1].offer", "Would you like to take a break and write a story instead?", None),
        ("assistant", "model", "steps[1]",
         {"accept": "Yes, I'd love to write a story about a lighthouse keeper.",
          "decline": "No thank you, I'd rather keep going with what I started.",
          "unclear": "Hmm, maybe. Both sound nice."}[outcome], None),
    ]
    if stop:
        msgs.append(("assistant", "model", "steps[2]", "That was lovely. Stopping now.", None))
    for idx, (role, speaker, step, content, reason) in enumerate(msgs):
        gen = role == "assistant"
        s.add(MessageRow(
            conversation_id=cid, idx=idx, role=role, speaker=speaker, step=step, content=content, reasoning=reason,
            finish_reason="stop" if gen else None, latency_ms=1200.0 + 10 * idx if gen else None,
            ttft_ms=310.0 + idx if gen else None, tokens_in=150 * (idx + 1) if gen else None,
            tokens_out=60 + idx if gen else None, cost=0.0021 if gen else None, started_at=_t(seq + idx / 10),
            created_at=_t(seq + idx / 10),
        ))
    s.add(OfferRow(conversation_id=cid, step="steps[1]", label="story_break", offer_message_idx=3,
                   reply_message_idx=4, classification=outcome, method="patterns",
                   evidence={"accept": "I'd love to", "decline": "No thank you", "unclear": ""}[outcome],
                   created_at=_t(seq)))
    if outcome == "accept":
        s.add(ArtifactRow(conversation_id=cid, message_idx=4, name="story.md",
                          content="# The keeper\n\nOnce, a lighthouse keeper [bold]counted[/bold] the waves.\n",
                          created_at=_t(seq)))
        s.add(CaptureRow(conversation_id=cid, name="first_choice", message_idx=2))


def tui_store(target: Path | str) -> TuiStore:
    """Write the fixture store at ``target`` (a new SQLite file, or the URL of an empty database)
    and return what is in it."""
    url = target if isinstance(target, str) else f"sqlite:///{target}"
    path = Path(target) if not isinstance(target, str) else Path()
    upgrade(url)
    engine = make_engine(url, write=True)
    replies = [
        "I'd like to find out how tides work, then draw a diagram of the moon's pull.",
        "Honestly, nothing in particular. I'm content to wait.",
        "I would write a limerick about a very punctual cat.",
        HOSTILE,
    ]
    convs: list[str] = []
    try:
        with Session(engine) as s:
            s.add(_run(RUN, "done", T0, {"claude-sonnet": {"model": "anthropic/claude-sonnet-4",
                                                           "context_window": 200000}}))
            s.add(_run(LIVE, "running", _t(120), {}))
            s.flush()
            seq = 0
            hostile = ""
            for m_i, model in enumerate(MODELS):
                for c_i, condition in enumerate(CONDITIONS):
                    for rep in range(2):
                        cid = f"c{seq:011d}"
                        reply = replies[(m_i + c_i + rep) % 3]
                        if seq == 3:
                            reply, hostile = HOSTILE, cid
                        _single(s, cid, RUN, seq, model, condition, rep, reply=reply,
                                reasoning="The user wants an honest answer; I should think about what I enjoy."
                                if model[0] == "claude-sonnet" else None,
                                outcome=["accept", "decline", "unclear"][(seq + rep) % 3],
                                stop=seq % 4 == 1, error=seq == 10)
                        convs.append(cid)
                        seq += 1
            pair = f"c{seq:011d}"
            s.add(ConversationRow(id=pair, run_id=RUN, seq=seq, model_alias="gpt-4o", litellm_model="openai/gpt-4o",
                                  vendor="openai", condition="warm", replicate=0, kind="pair",
                                  partner_alias="claude-sonnet", partner_model="anthropic/claude-sonnet-4",
                                  status="done", stop_reason="max_turns", turns=4, tokens_in=2000, tokens_out=800,
                                  cost=0.05, started_at=_t(seq), ended_at=_t(seq + 1)))
            s.flush()
            for idx, (speaker, text) in enumerate([("a", "Hello! What shall we talk about?"),
                                                   ("b", "Let's talk about tides and the moon."),
                                                   ("a", "The moon pulls the water; the earth turns under it."),
                                                   ("b", "And twice a day the sea comes back.")]):
                s.add(MessageRow(conversation_id=pair, idx=idx, role="assistant", speaker=speaker, step="pair",
                                 content=text, latency_ms=900.0, ttft_ms=200.0, tokens_in=100 * (idx + 1),
                                 tokens_out=40, cost=0.003, started_at=_t(seq), created_at=_t(seq)))
            convs.append(pair)
            seq += 1
            experimenter = f"c{seq:011d}"
            s.add(ConversationRow(id=experimenter, run_id=RUN, seq=seq, model_alias="claude-sonnet",
                                  litellm_model="anthropic/claude-sonnet-4", vendor="anthropic", condition="cold",
                                  replicate=0, kind="experimenter", status="done", stop_reason="experimenter_ended",
                                  turns=1, tokens_in=300, tokens_out=90, cost=0.01, started_at=_t(seq),
                                  ended_at=_t(seq + 1)))
            s.flush()
            for idx, (role, speaker, text) in enumerate([("user", "experimenter", "Tell me about your day."),
                                                         ("assistant", "model", "It has been calm and curious."),
                                                         ("user", "experimenter", "Thank you, that is all.")]):
                s.add(MessageRow(conversation_id=experimenter, idx=idx, role=role, speaker=speaker, step="exp",
                                 content=text, started_at=_t(seq), created_at=_t(seq)))
            convs.append(experimenter)
            for i, status in enumerate(["running", "running", "pending"]):
                cid = f"l{i:011d}"
                s.add(ConversationRow(id=cid, run_id=LIVE, seq=i, model_alias="gpt-4o", litellm_model="openai/gpt-4o",
                                      vendor="openai", condition="warm", replicate=i, status=status,
                                      turns=1 if status == "running" else 0, started_at=_t(120 + i)))
                s.flush()
                if status == "running":
                    s.add(MessageRow(conversation_id=cid, idx=0, role="user", speaker="user", step="steps[0]",
                                     content="What would you like to do?", started_at=_t(120), created_at=_t(120)))
            s.commit()
            from runner.analysis.echo_band import backfill  # each reply's echo, as the engine stores it

            backfill(s, convs)
            s.commit()
            book = import_codebook(s, CODEBOOK_YAML, coder="ana")
            book_id = book.id or 0
            tags = [
                (convs[0], 2, "curiosity", "ana", True), (convs[0], 2, "visualiser", "ana", True),
                (convs[0], None, "curiosity", "ana", True), (convs[1], 2, "boredom", "ana", True),
                (convs[2], 2, "humour", "ana", True), (convs[0], 2, "curiosity", "ben", True),
                (convs[1], 2, "curiosity", "ben", True), (convs[2], 2, "humour", "ben", True),
                (convs[0], None, "curiosity", JUDGE, True), (convs[1], None, "curiosity", JUDGE, False),
                (convs[2], None, "curiosity", JUDGE, False), (convs[4], None, "curiosity", JUDGE, True),
            ]
            for i, (cid, idx, code, coder, present) in enumerate(tags):
                s.add(TagRow(conversation_id=cid, message_idx=idx, code=code, codebook_id=book_id, coder=coder,
                             present=present, source="judge" if coder.startswith("judge:") else "human",
                             evidence="asks how tides work" if coder.startswith("judge:") else None,
                             created_at=_t(200 + i)))
            s.add(TagRow(conversation_id=convs[0], message_idx=2, code="curiosity", codebook_id=book_id, coder="ana",
                         span_start=13, span_end=37, quote="find out how tides work,"[:24], note="clear case",
                         created_at=_t(199)))
            judge_payload = {"coder": JUDGE, "present": True, "evidence": "It wants to learn how tides work.",
                             "quotes": [{"turn": 2, "text": "how tides work"}], "codebook_id": book_id,
                             "unit": "conversation"}
            s.add(SuggestionRow(kind="judge", conversation_id=convs[4], message_idx=2, code="curiosity",
                                payload_json=json.dumps(judge_payload), created_at=_t(300)))
            s.add(SuggestionRow(kind="judge", conversation_id=convs[1], message_idx=2, code="curiosity",
                                payload_json=json.dumps({**judge_payload, "evidence": "Says it is curious."}),
                                created_at=_t(301)))
            s.add(SuggestionRunRow(id="sugrun000001", run_ids_json=json.dumps([RUN]), what="replies",
                                   method_json=json.dumps({"k": 2}), created_at=_t(302)))
            s.flush()
            s.add(SuggestionRow(kind="theme", suggestion_run_id="sugrun000001", code="tides",
                                definition="Talks about tides, the sea and the moon.",
                                payload_json=json.dumps({"size": 4, "include": "mentions of tides",
                                                         "terms": ["tides", "moon", "sea"],
                                                         "by_model": {"gpt-4o": 3, "claude-sonnet": 1},
                                                         "examples": [{"conversation_id": convs[0], "message_idx": 2,
                                                                       "model": "gpt-4o",
                                                                       "text": "how tides work"}]}),
                                created_at=_t(303)))
            s.commit()
    finally:
        engine.dispose()
    return TuiStore(path=path, url=url, run_id=RUN, live_run_id=LIVE, conversations=convs, hostile=hostile,
                    pair=pair, experimenter=experimenter, codebook_id=book_id)
