"""`queries.cache_totals`: a run's prompt-cache figures per replying model, on both backends."""

from __future__ import annotations

import pytest

from runner.store import StoreWriter, make_engine, session
from runner.store.queries import cache_totals, run_summary

from .builders import conversation_row, message_row, run_row


def test_cache_totals_per_model_and_the_first_prompt(migrated_url: str) -> None:
    with StoreWriter(migrated_url) as w:
        w.add_sync(run_row(id="r1"))
        w.add_sync(run_row(id="other"))
        claude = dict(model_alias="claude", litellm_model="anthropic/claude-sonnet-4-5", vendor="anthropic",
                      simulated=False)
        w.add_sync(conversation_row("r1", seq=0, id="a", cache_write_tokens=1300, input_cost=0.5,
                                    input_cost_uncached=2.0, **claude))
        w.add_sync(conversation_row("r1", seq=1, id="b", kind="pair", partner_alias="gpt",
                                    partner_model="openai/gpt-4.1", **claude))
        w.add_sync(conversation_row("other", seq=0, id="z", **claude))
        # conversation a: two model replies (the first request is the shared prefix)
        w.add_sync(message_row("a", 0))
        w.add_sync(message_row("a", 1, tokens_in=1200, cached_tokens=None, cache_write_tokens=1200,
                               input_cost=0.3, input_cost_uncached=0.4))
        w.add_sync(message_row("a", 2))
        w.add_sync(message_row("a", 3, tokens_in=1300, cached_tokens=1200, cache_write_tokens=100,
                               input_cost=0.2, input_cost_uncached=1.6))
        # conversation b: side a (claude) then side b (its partner, gpt)
        w.add_sync(message_row("b", 0))
        w.add_sync(message_row("b", 1, tokens_in=900, input_cost=0.1, input_cost_uncached=0.1))
        w.add_sync(message_row("b", 2, role="assistant", speaker="b", tokens_in=50, cached_tokens=0))
        w.add_sync(message_row("z", 1, tokens_in=99999))
    engine = make_engine(migrated_url)
    try:
        with session(engine) as s:
            rows = {r["alias"]: r for r in cache_totals(s, "r1")}
            summary = run_summary(s, "r1")
    finally:
        engine.dispose()
    assert rows["claude"] == {"alias": "claude", "model": "anthropic/claude-sonnet-4-5", "vendor": "anthropic",
                              "replies": 3, "tokens_in": 3400, "cached_tokens": 1200, "cache_write_tokens": 1300,
                              "input_cost": pytest.approx(0.6), "input_cost_uncached": pytest.approx(2.1),
                              "first_prompt_max": 1200}
    assert rows["gpt"]["model"] == "openai/gpt-4.1" and rows["gpt"]["replies"] == 1
    assert rows["gpt"]["input_cost"] is None and rows["gpt"]["first_prompt_max"] == 0  # not a first request
    assert summary is not None and summary.cache_write_tokens == 1300
    assert summary.input_cost == pytest.approx(0.5) and summary.input_saving == pytest.approx(0.75)
