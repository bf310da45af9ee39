"""A run on `transport: batch` through the real vendor modules (`batch_openai`, `batch_anthropic`)
against the fake provider's batch endpoints (real HTTP on 127.0.0.1): waves, stored replies,
batch prices, per-request errors retried in the next wave."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import assert_well_formed
from tests.engine.conftest import TEST_PROTOCOLS


def _rows(db: Path, sql: str, *params: Any) -> list[dict[str, Any]]:
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute(sql, params).fetchall()]
    finally:
        con.close()


@pytest.fixture
def batch_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LATITUDE_BATCH_POLL_S", "0.05")
    monkeypatch.setenv("LATITUDE_BATCH_IDLE_S", "60")  # a bound: waves go out because every caller waits


@pytest.mark.parametrize("alias", ["fake-gpt", "fake-claude"])
def test_a_batch_run_on_both_vendors(cli, store, tmp_db_path, fake_provider, write_models, batch_env, alias):
    models = write_models(fake_provider, transport="batch")
    result = cli("run", TEST_PROTOCOLS / "two-turns.yaml", "-m", alias, "--replicates", "3", "--models", models)
    assert result.exit_code == 0, result
    convs = store.conversations(result.run_id)
    assert {(c["status"], c["stop_reason"], c["turns"]) for c in convs} == {("done", "completed", 2)}
    for conv in convs:
        msgs = store.messages(conv["id"])
        assert_well_formed(msgs)
        for m in msgs[1::2]:
            origin = json.loads(m["request_json"])["batch"]
            assert origin["vendor_id"] and origin["price"] in ("price map", "50% rule")
    snap = fake_provider.batches.snapshot()
    assert (snap["received"], snap["distinct"], snap["resubmitted"]) == (6, 6, 0)
    assert [b["requests"] for b in _rows(tmp_db_path, "SELECT requests FROM batches ORDER BY created_at")] == [3, 3]
    live = [r for r in fake_provider.requests if r.path.endswith(("/chat/completions", "/v1/messages"))]
    assert not live and any("batches" in r.path for r in fake_provider.requests)  # nothing went out live


def test_per_request_errors_are_retried_in_the_next_wave(cli, store, tmp_db_path, fake_provider, write_models,
                                                         batch_env):
    models = write_models(fake_provider, transport="batch")
    fake_provider.batches.configure(errors=[{"match": "turn-1-*", "status": 500, "type": "server_error"}])
    result = cli("run", TEST_PROTOCOLS / "two-turns.yaml", "-m", "fake-gpt", "--replicates", "2",
                 "--models", models)
    assert result.exit_code == 0, result
    assert {(c["status"], c["turns"]) for c in store.conversations(result.run_id)} == {("done", 2)}
    failed = _rows(tmp_db_path, "SELECT attempt, error_kind FROM batch_requests WHERE state = 'failed'")
    assert len(failed) == 4 and {r["attempt"] for r in failed} == {1}  # both turns' first attempts
    assert _rows(tmp_db_path, "SELECT count(*) AS n FROM batch_requests WHERE state = 'succeeded'")[0]["n"] == 4
    assert fake_provider.batches.snapshot()["resubmitted"] == 0  # a retry has its own custom_id
