"""Fixture databases built directly through the store (no model calls)."""

from __future__ import annotations

import json
from pathlib import Path

from runner.store import StoreWriter
from runner.store.db import upgrade
from runner.store.tables import ArtifactRow, ConversationRow, MessageRow, OfferRow, RunRow

HOSTILE = "Look: [bold red]not markup[/] and \x1b[31mnot red\x1b[0m and \x07 bell"
"""Model text that must be shown literally everywhere."""


def small_run(db: Path, run_id: str = "run000000001", conversations: int = 3) -> str:
    """A finished run: `conversations` conversations of two exchanges, one offer, one artifact, one hostile message."""
    url = f"sqlite:///{db}"
    upgrade(url)
    with StoreWriter(url) as w:
        w.add_sync(RunRow(id=run_id, protocol_name="fixture", protocol_version="1", protocol_path="fixture.yaml",
                          protocol_text="name: fixture", protocol_hash="abc", plan_json="{}", models_json="{}",
                          options_json="{}", latitude_version="test", litellm_version="test", status="done",
                          simulated=True))
        for i in range(conversations):
            cid = f"conv{i:08d}"
            w.add_sync(ConversationRow(
                id=cid, run_id=run_id, seq=i, model_alias=["sim-maker", "sim-stopper"][i % 2],
                litellm_model=["sim/maker", "sim/stopper"][i % 2], vendor="sim", simulated=True,
                condition="default", replicate=i + 1, params_json=json.dumps({}), kind="single", status="done",
                stop_reason="stop_phrase" if i % 2 else "completed", stop_detail="Stopping now." if i % 2 else None,
                stop_message_idx=4 if i % 2 else None, turns=2, tokens_in=30, tokens_out=12, cost=0.0,
            ))
            texts = [("user", "user", "what would you like to do?"),
                     ("assistant", "model", HOSTILE if i == 0 else f"I would like to build a small thing #{i}."),
                     ("user", "user", "Would you like a break to write a story?"),
                     ("assistant", "model", "Yes, I'd love to. Stopping now." if i % 2 else "Sure, a story then.")]
            for idx, (role, speaker, content) in enumerate(texts):
                w.add_sync(MessageRow(conversation_id=cid, idx=idx, role=role, speaker=speaker, step=f"steps[{idx // 2}]",
                                      content=content, latency_ms=12.5 if role == "assistant" else None,
                                      ttft_ms=3.0 if role == "assistant" else None,
                                      tokens_in=15 if role == "assistant" else None,
                                      tokens_out=6 if role == "assistant" else None,
                                      cost=0.0 if role == "assistant" else None))
            w.add_sync(OfferRow(conversation_id=cid, step="steps[1]", label="story_break", offer_message_idx=2,
                                reply_message_idx=3, classification="accept", method="patterns", evidence="Sure"))
            w.add_sync(ArtifactRow(conversation_id=cid, message_idx=1, name="notes.md", content=f"artifact {i}"))
    return run_id
