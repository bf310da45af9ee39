"""`start_sync` writes a run's conversations as chunked multi-row inserts: the stored rows are
exactly what `conversation_row` builds, on each backend, whatever the chunk size."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from runner.store.db import make_engine
from tests.engine.conftest import TEST_PROTOCOLS


@pytest.mark.parametrize("chunk", [2, 2_000])
def test_start_sync_stores_every_conversation_as_conversation_row_builds_it(migrated_url, monkeypatch, chunk):
    from runner.engine import driver
    from runner.plan import make_plan
    from runner.protocol import load

    monkeypatch.setattr(driver, "START_CHUNK", chunk)
    plan = make_plan(load(TEST_PROTOCOLS / "two-turns.yaml", {}), models=["gemma"], replicates=5)
    targets = driver.start_sync(plan, migrated_url, "run1", {}, "{}", ("0", "0"))
    assert [t.spec.seq for t in targets] == [s.seq for s in plan.specs]
    engine = make_engine(migrated_url)
    try:
        with engine.connect() as con:
            rows = con.execute(text("SELECT id, run_id, seq, model_alias, litellm_model, replicate, status, "
                                    "params_json, kind FROM conversations ORDER BY seq")).all()
    finally:
        engine.dispose()
    assert [r.id for r in rows] == [t.conversation_id for t in targets]
    for r, spec in zip(rows, plan.specs, strict=True):
        want = driver.conversation_row("run1", spec)
        assert (r.run_id, r.seq, r.model_alias, r.litellm_model, r.replicate, r.status, r.params_json, r.kind) == (
            "run1", spec.seq, want.model_alias, want.litellm_model, want.replicate, "pending", want.params_json,
            want.kind)
