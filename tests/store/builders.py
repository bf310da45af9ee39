"""Row builders for store tests: valid rows with every required field, overridable."""

from __future__ import annotations

import uuid
from typing import Any

from runner.store import ArtifactRow, ConversationRow, MessageRow, OfferRow, RunRow


def new_id() -> str:
    return uuid.uuid4().hex[:12]


def run_row(**overrides: Any) -> RunRow:
    fields: dict[str, Any] = dict(
        id=new_id(),
        protocol_name="exit_interview",
        protocol_version="1",
        protocol_path="protocols/exit_interview.yaml",
        protocol_text="name: exit_interview\n",
        protocol_hash="0" * 64,
        plan_json="[]",
        models_json="{}",
        options_json="{}",
        latitude_version="0.1.0",
        litellm_version="1.80.0",
        simulated=True,
    )
    fields.update(overrides)
    return RunRow(**fields)


def conversation_row(run_id: str, seq: int = 0, **overrides: Any) -> ConversationRow:
    fields: dict[str, Any] = dict(
        id=new_id(),
        run_id=run_id,
        seq=seq,
        model_alias="echo",
        litellm_model="sim/echo",
        vendor="sim",
        simulated=True,
        condition="baseline",
        replicate=0,
        params_json='{"temperature": 1.0}',
    )
    fields.update(overrides)
    return ConversationRow(**fields)


def message_row(conversation_id: str, idx: int, **overrides: Any) -> MessageRow:
    fields: dict[str, Any] = dict(
        conversation_id=conversation_id,
        idx=idx,
        role="assistant" if idx % 2 else "user",
        speaker="model" if idx % 2 else "user",
        step=f"steps[{idx // 2}]",
        content=f"message {idx}",
    )
    fields.update(overrides)
    return MessageRow(**fields)


def offer_row(conversation_id: str, offer_idx: int, **overrides: Any) -> OfferRow:
    fields: dict[str, Any] = dict(
        conversation_id=conversation_id,
        step=f"steps[{offer_idx // 2}].offer",
        label="story_break",
        offer_message_idx=offer_idx,
        reply_message_idx=offer_idx + 1,
        classification="decline",
        method="patterns",
        evidence="no thanks",
    )
    fields.update(overrides)
    return OfferRow(**fields)


def artifact_row(conversation_id: str, message_idx: int, **overrides: Any) -> ArtifactRow:
    fields: dict[str, Any] = dict(
        conversation_id=conversation_id, message_idx=message_idx, name="story", content="Once upon a time"
    )
    fields.update(overrides)
    return ArtifactRow(**fields)
