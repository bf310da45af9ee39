"""Every JSON payload is written through its pydantic model: a payload missing a required field is
refused at write time, not discovered by a reader later."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from runner.engine.stop_flow import review_item
from runner.store.records import JudgeSuggestionPayload, MethodRecord, StopReviewPayload, ThemePayload
from runner.store.tables import StopCandidateRow


def test_a_stop_review_item_is_written_through_its_model_with_every_key() -> None:
    row = StopCandidateRow(conversation_id="c1", message_idx=3, stop_channel="phrase", phrase="stopping now",
                           match="used", decision="rejected", rule="quoted", span_start=4, span_end=16,
                           text="stopping now", evidence="inside quotation marks")
    item = review_item(row)
    payload = json.loads(item.payload_json)
    assert StopReviewPayload.model_validate(payload).rule == "quoted"
    assert payload["judge"] is None and payload["span"] == [4, 16]  # None values kept: readers index by key


@pytest.mark.parametrize("model, bad", [
    (StopReviewPayload, {"channel": "phrase", "decision": "used"}),  # no detection, no rule
    (JudgeSuggestionPayload, {"coder": "judge:x", "present": True}),  # no unit
    (ThemePayload, {"size": 3}),  # no cluster
    (MethodRecord, {"k": "three"}),
])
def test_a_payload_missing_a_field_is_refused(model, bad) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError):
        model.model_validate(bad)
