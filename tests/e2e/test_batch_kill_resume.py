"""A real `python -m runner run` on `transport: batch`, SIGKILLed while a wave's batch is out at the
fake provider (its own process), then `latitude resume`: the resumed run polls the batch that was
out instead of resubmitting it, and the fake provider's per-custom_id counters show that not one
request was received twice; every conversation finishes with all its turns."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FAKE_ANTHROPIC_KEY, FAKE_OPENAI_KEY, FAST_RETRY_ENV, assert_well_formed
from tests.engine.conftest import REPO, TEST_PROTOCOLS

pytestmark = pytest.mark.slow

CONVERSATIONS, TURNS = 6, 10
BATCH_ENV = {"LATITUDE_BATCH_POLL_S": "0.05", "LATITUDE_BATCH_IDLE_S": "120"}


def _query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error:  # not created yet
        return []
    try:
        return con.execute(sql).fetchall()
    except sqlite3.Error:  # not migrated yet
        return []
    finally:
        con.close()


def _wait(proc: subprocess.Popen[str], what: str, cond: Any, timeout: float = 120) -> None:
    """Wait on a condition of the store (a bound, not a speed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"run ended early ({proc.returncode}) waiting for {what}:\n{out}\n{err}")
        if cond():
            return
        time.sleep(0.02)
    proc.kill()
    pytest.fail(f"no {what} within {timeout} s")


def _replies(db: Path) -> int:
    rows = _query(db, "SELECT count(*) FROM messages WHERE role = 'assistant'")
    return rows[0][0] if rows else 0


def _batches_out(db: Path) -> int:
    rows = _query(db, "SELECT count(*) FROM batches WHERE vendor_id IS NOT NULL AND read_at IS NULL")
    return rows[0][0] if rows else 0


@pytest.mark.parametrize("alias", ["fake-gpt", "fake-claude"])
def test_sigkill_mid_wave_then_resume_resubmits_nothing(fake_provider_process, write_models, cli, store, tmp_db_path,
                                                        fake_keys, monkeypatch, alias):
    ctl = fake_provider_process.control
    ctl.batch_config(hold=True)  # batches end only when the test says so
    models = write_models(fake_provider_process, transport="batch")
    env = {**os.environ, **FAST_RETRY_ENV, **BATCH_ENV, "PYTHONUNBUFFERED": "1",
           "FAKE_OPENAI_KEY": FAKE_OPENAI_KEY, "FAKE_ANTHROPIC_KEY": FAKE_ANTHROPIC_KEY}
    env.pop("LATITUDE_DB", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", "run", str(TEST_PROTOCOLS / "long.yaml"), "-m", alias,
         "--replicates", str(CONVERSATIONS), "--models", str(models), "--db", str(tmp_db_path)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for wave in (1, 2):
            _wait(proc, f"wave {wave} out", lambda: _batches_out(tmp_db_path) == 1)
            if wave == 1:
                ctl.batch_finish()
                _wait(proc, "wave 1 stored", lambda: _replies(tmp_db_path) == CONVERSATIONS)
    finally:
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    (run_id, status), = _query(tmp_db_path, "SELECT id, status FROM runs")
    assert status == "running"  # a hard kill leaves the run as it was
    assert _replies(tmp_db_path) == CONVERSATIONS  # wave 2 is out, none of it stored
    before = ctl.batches()
    assert (before["received"], before["resubmitted"]) == (2 * CONVERSATIONS, 0)

    monkeypatch.setenv("LATITUDE_BATCH_POLL_S", "0.05")
    monkeypatch.setenv("LATITUDE_BATCH_IDLE_S", "120")
    ctl.batch_finish()  # the batch out at the kill has ended meanwhile (its results wait at the vendor)
    ctl.batch_config(hold=False)  # from now on a new batch ends on its first poll
    resumed = cli("resume", run_id, db=f"sqlite:///{tmp_db_path}")
    assert resumed.exit_code == 0, resumed
    assert store.run(run_id)["status"] == "done"
    after = ctl.batches(ids=True)
    assert after["resubmitted"] == 0, {k: v for k, v in after["ids"].items() if v > 1}
    assert (after["received"], after["distinct"]) == (CONVERSATIONS * TURNS, CONVERSATIONS * TURNS)
    convs = store.conversations(run_id)
    assert len(convs) == CONVERSATIONS
    for conv in convs:
        assert (conv["status"], conv["stop_reason"], conv["turns"]) == ("done", "completed", TURNS), conv
        msgs = store.messages(conv["id"])
        assert_well_formed(msgs)
        assert [m["role"] for m in msgs] == ["user", "assistant"] * TURNS
    # the batch out at the kill was read by the resumed run, never sent again
    rows = _query(tmp_db_path, "SELECT state, read_at IS NOT NULL FROM batches ORDER BY created_at")
    assert len(rows) == TURNS and set(rows) == {("ended", 1)}
    for key in (FAKE_OPENAI_KEY, FAKE_ANTHROPIC_KEY):
        assert key not in out + err + resumed.output
