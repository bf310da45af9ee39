"""A real `python -m runner run` process, killed (SIGKILL) or interrupted (SIGINT) mid-run,
then `latitude resume`: every conversation ends complete, nothing is lost or duplicated,
and no completed model call is repeated beyond the ones in flight at the kill.

The fake provider runs as its own process too (``python -m tests.fakeprovider``) with
200 ms latency, so the run is reliably caught in the middle.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FAKE_ANTHROPIC_KEY, FAKE_OPENAI_KEY, FAST_RETRY_ENV, assert_well_formed, models_yaml
from tests.engine.conftest import REPO, TEST_PROTOCOLS

pytestmark = pytest.mark.slow

CONVERSATIONS, TURNS, CONCURRENCY = 8, 10, 8


@pytest.fixture
def remote(fake_provider_process, write_models):
    """The fake provider in its own process, slowed to 200 ms a reply, and a models file for it."""
    ctl = fake_provider_process.control
    ctl.set_latency(latency_s=0.2)
    return ctl, write_models(fake_provider_process)


def _start_run(models: Path, db: Path) -> subprocess.Popen[str]:
    env = {**os.environ, **FAST_RETRY_ENV, "PYTHONUNBUFFERED": "1",
           "FAKE_OPENAI_KEY": FAKE_OPENAI_KEY, "FAKE_ANTHROPIC_KEY": FAKE_ANTHROPIC_KEY}
    env.pop("LATITUDE_DB", None)
    return subprocess.Popen(
        [sys.executable, "-m", "runner", "run", str(TEST_PROTOCOLS / "long.yaml"), "-m", "fake-gpt",
         "--replicates", str(CONVERSATIONS), "--concurrency", str(CONCURRENCY), "--models", str(models),
         "--db", str(db)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _wait_for_replies(proc: subprocess.Popen[str], db: Path, at_least: int, timeout: float = 90) -> None:
    """Wait until the run has committed `at_least` model replies (but is not finished)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"run ended early ({proc.returncode}):\n{out}\n{err}")
        try:
            (n,), = _query(db, "SELECT count(*) FROM messages WHERE role = 'assistant'")
        except sqlite3.Error:  # not created or not migrated yet
            n = 0
        if n >= at_least:
            return
        time.sleep(0.02)
    proc.kill()
    pytest.fail(f"no {at_least} replies within {timeout} s")


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content if isinstance(b, dict))


def _history(messages: list[dict[str, Any]]) -> tuple[tuple[str, str], ...]:
    return tuple((m["role"], _text(m["content"])) for m in messages)


def _check_complete(store, run_id: str) -> list[dict[str, Any]]:
    """Every conversation done with exactly its 10 turns; returns every stored message."""
    convs = store.conversations(run_id)
    assert len(convs) == CONVERSATIONS
    every = []
    for conv in convs:
        assert (conv["status"], conv["stop_reason"], conv["turns"]) == ("done", "completed", TURNS), conv
        msgs = store.messages(conv["id"])
        assert_well_formed(msgs)
        assert [m["role"] for m in msgs] == ["user", "assistant"] * TURNS
        assert [m["content"] for m in msgs[::2]] == [
            f"Conversation {conv['replicate']}, turn {i} of ten: tell me something." for i in range(1, TURNS + 1)]
        assert len({m["content"] for m in msgs[1::2]}) == TURNS
        every.append(msgs)
    return every


def _check_no_call_repeated(ctl, conversations: list[list[dict[str, Any]]], killed_at: float) -> int:
    """Each stored reply's history was completed once, at most twice if its call was in flight at
    the kill; returns how many completed calls were repeated."""
    completed = [r for r in ctl.requests() if r["completed"] and not r["fault"]]
    seen = Counter(_history(r["body"]["messages"]) for r in completed)
    wanted = Counter()
    for msgs in conversations:
        for k, m in enumerate(msgs):
            if m["role"] == "assistant":
                wanted[_history(msgs[:k])] += 1
    assert set(seen) == set(wanted), "a completed call has no stored reply, or a reply no call"
    repeated = {h for h, n in seen.items() if n > 1}
    assert all(seen[h] == 2 for h in repeated)
    assert len(completed) == sum(wanted.values()) + len(repeated)
    assert len(repeated) <= CONCURRENCY
    # a repeated call's first copy was sent before the kill
    first_sent = {}
    for r in completed:
        first_sent.setdefault(_history(r["body"]["messages"]), r["time"])
    late = [(first_sent[h] - killed_at, h[-1]) for h in repeated if first_sent[h] >= killed_at]
    assert not late, late
    return len(repeated)


def test_sigkill_then_resume(remote, cli, store, tmp_db_path, fake_keys):
    ctl, models = remote
    proc = _start_run(models, tmp_db_path)
    _wait_for_replies(proc, tmp_db_path, at_least=12)
    killed_at = time.time()
    proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    (run_id, status), = _query(tmp_db_path, "SELECT id, status FROM runs")
    assert status == "running"  # a hard kill leaves the run as it was
    stored = _query(tmp_db_path, "SELECT count(*) FROM messages WHERE role = 'assistant'")[0][0]
    assert 12 <= stored < CONVERSATIONS * TURNS

    resumed = cli("resume", run_id, db=f"sqlite:///{tmp_db_path}")
    assert resumed.exit_code == 0, resumed
    assert f"resuming run {run_id}: {CONVERSATIONS} unfinished conversations" in resumed.stdout
    assert store.run(run_id)["status"] == "done"
    _check_no_call_repeated(ctl, _check_complete(store, run_id), killed_at)
    for key in (FAKE_OPENAI_KEY, FAKE_ANTHROPIC_KEY):
        assert key not in out + err + resumed.output


def test_ctrl_c_exits_130_then_resume_finishes(remote, cli, store, tmp_db_path, fake_keys):
    ctl, models = remote
    proc = _start_run(models, tmp_db_path)
    _wait_for_replies(proc, tmp_db_path, at_least=12)
    killed_at = time.time()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    (run_id, status), = _query(tmp_db_path, "SELECT id, status FROM runs")
    assert status == "interrupted"
    assert f"latitude resume {run_id}" in out and f"run id: {run_id}" in out
    convs = store.conversations(run_id)
    assert {c["status"] for c in convs} == {"cancelled"}
    assert {c["stop_reason"] for c in convs} == {"cancelled"}
    for c in convs:  # what was committed is whole: a user turn, then its reply, no gap
        msgs = store.messages(c["id"])
        assert_well_formed(msgs)
        assert [m["role"] for m in msgs] == ["user", "assistant"] * (len(msgs) // 2) + ["user"] * (len(msgs) % 2)

    resumed = cli("resume", run_id, db=f"sqlite:///{tmp_db_path}")
    assert resumed.exit_code == 0, resumed
    assert store.run(run_id)["status"] == "done"
    _check_no_call_repeated(ctl, _check_complete(store, run_id), killed_at)
