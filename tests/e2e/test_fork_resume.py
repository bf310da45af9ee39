"""A fork run in a real `python -m runner fork` process, killed with SIGKILL mid-run, then
`latitude resume`: every fork ends complete, its copied prefix untouched, no completed call
repeated beyond the ones in flight at the kill, and the shared prefix never sent at all. The same
for a protocol's planned `fork:` killed while its continuations run.

The fake provider runs as its own process (200 ms a reply), so the kill lands mid-run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FAKE_ANTHROPIC_KEY, FAKE_OPENAI_KEY, FAST_RETRY_ENV, assert_well_formed
from tests.e2e.test_kill_resume import _history, _query
from tests.engine.conftest import REPO, TEST_PROTOCOLS

pytestmark = pytest.mark.slow

SAMPLES, AT, TURNS = 6, 5, 10
"""Six continuations of a ten-turn conversation from its third reply (#5)."""


@pytest.fixture
def remote(fake_provider_process, write_models):
    ctl = fake_provider_process.control
    ctl.set_latency(latency_s=0.2)
    return ctl, write_models(fake_provider_process)


def _spawn(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, **FAST_RETRY_ENV, "PYTHONUNBUFFERED": "1",
           "FAKE_OPENAI_KEY": FAKE_OPENAI_KEY, "FAKE_ANTHROPIC_KEY": FAKE_ANTHROPIC_KEY}
    env.pop("LATITUDE_DB", None)
    return subprocess.Popen([sys.executable, "-m", "runner", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait(proc: subprocess.Popen[str], db: Path, sql: str, at_least: int, timeout: float = 120) -> None:
    """Wait until `sql` counts `at_least` (the process still running)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"ended early ({proc.returncode}):\n{out}\n{err}")
        try:
            (n,), = _query(db, sql)
        except Exception:  # not created or not migrated yet
            n = 0
        if n >= at_least:
            return
        time.sleep(0.02)
    proc.kill()
    pytest.fail(f"{sql} did not reach {at_least} within {timeout} s")


def _kill(proc: subprocess.Popen[str]) -> float:
    killed_at = time.time()
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return killed_at


def _fork_replies(parent_ids: str) -> str:
    return ("SELECT count(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id "
            f"WHERE m.role = 'assistant' AND c.parent_id IN ({parent_ids}) AND m.idx >= c.fork_at")


def _check_forks(store, forks: list[dict[str, Any]], parents: dict[str, list[dict[str, Any]]]) -> list[list[dict]]:
    every = []
    for conv in forks:
        assert (conv["status"], conv["stop_reason"], conv["turns"]) == ("done", "completed", TURNS), conv
        msgs = store.messages(conv["id"])
        assert_well_formed(msgs)
        theirs = parents[conv["parent_id"]]
        keep = ("role", "content", "request_json", "request_id", "tokens_out")
        assert [{k: m[k] for k in keep} for m in msgs[:conv["fork_at"]]] \
            == [{k: m[k] for k in keep} for m in theirs[:conv["fork_at"]]]
        assert [m["content"] for m in msgs[::2]] == [m["content"] for m in theirs[::2]]  # the script, followed
        every.append(msgs)
    return every


def _check_calls(ctl, since: int, forks: list[list[dict]], at: int, killed_at: float, in_flight: int) -> None:
    """Each fork reply's history was completed once (twice if in flight at the kill); none for the prefix."""
    completed = [r for r in ctl.requests(since) if r["completed"] and not r["fault"]]
    seen = Counter(_history(r["body"]["messages"]) for r in completed)
    wanted: Counter = Counter()
    for msgs in forks:
        for k, m in enumerate(msgs):
            if m["role"] == "assistant" and k >= at:
                wanted[_history(msgs[:k])] += 1
    assert not [h for h in seen if len(h) < at], "a call was made for the shared prefix"
    # forks of one point share their history up to the first new reply: count them per history
    assert set(seen) == set(wanted)
    extra = {h: seen[h] - wanted[h] for h in seen if seen[h] > wanted[h]}
    assert sum(extra.values()) <= in_flight
    first_sent = {}
    for r in completed:
        first_sent.setdefault(_history(r["body"]["messages"]), r["time"])
    assert not [h for h in extra if first_sent[h] >= killed_at]


def test_a_fork_run_killed_resumes_without_calling_again(remote, cli, store, tmp_db_path, fake_keys):
    ctl, models = remote
    db = f"sqlite:///{tmp_db_path}"
    parent_run = cli("run", TEST_PROTOCOLS / "long.yaml", "-m", "fake-gpt", "--models", models, db=db)
    assert parent_run.exit_code == 0, parent_run
    (parent,) = store.conversations(parent_run.run_id)
    since = max((r["seq"] for r in ctl.requests()), default=0)  # the parent's calls, left out below

    proc = _spawn("fork", parent["id"], "--at", str(AT), "--samples", str(SAMPLES), "--db", str(tmp_db_path))
    _wait(proc, tmp_db_path, _fork_replies(f"'{parent['id']}'"), at_least=SAMPLES + 2)
    killed_at = _kill(proc)
    (fork_run, status), = _query(tmp_db_path, "SELECT id, status FROM runs WHERE id != ?".replace(
        "?", f"'{parent_run.run_id}'"))
    assert status == "running"
    done_before = _query(tmp_db_path, _fork_replies(f"'{parent['id']}'"))[0][0]
    assert SAMPLES + 2 <= done_before < SAMPLES * (TURNS - AT // 2)

    resumed = cli("resume", fork_run, db=db)
    assert resumed.exit_code == 0, resumed
    assert f"resuming run {fork_run}: {SAMPLES} unfinished conversations" in resumed.stdout
    assert f"fake-gpt\t{SAMPLES}\t{SAMPLES}\t" in resumed.stdout  # progress out of the fork run's own six
    assert store.run(fork_run)["status"] == "done"
    forks = store.conversations(fork_run)
    assert sorted(c["fork_seq"] for c in forks) == list(range(SAMPLES))
    every = _check_forks(store, forks, {parent["id"]: store.messages(parent["id"])})
    _check_calls(ctl, since, every, AT, killed_at, in_flight=SAMPLES)


def test_a_planned_fork_killed_while_its_continuations_run_resumes(remote, cli, store, tmp_db_path, fake_keys,
                                                                   tmp_path):
    ctl, models = remote
    text = (TEST_PROTOCOLS / "long.yaml").read_text() + f"fork:\n  at: {AT}\n  samples: 3\n"
    path = tmp_path / "long-forked.yaml"
    path.write_text(text, encoding="utf-8")
    proc = _spawn("run", str(path), "-m", "fake-gpt", "--replicates", "2", "--models", str(models),
                  "--db", str(tmp_db_path))
    _wait(proc, tmp_db_path, _fork_replies("SELECT id FROM conversations WHERE parent_id IS NULL"), at_least=4)
    killed_at = _kill(proc)
    (run_id,), = _query(tmp_db_path, "SELECT id FROM runs")

    resumed = cli("resume", run_id, db=f"sqlite:///{tmp_db_path}")
    assert resumed.exit_code == 0, resumed
    assert store.run(run_id)["status"] == "done"
    convs = store.conversations(run_id)
    roots = [c for c in convs if c["parent_id"] is None]
    forks = [c for c in convs if c["parent_id"] is not None]
    assert len(roots) == 2 and all(c["status"] == "done" for c in roots)
    assert Counter(c["parent_id"] for c in forks) == {r["id"]: 3 for r in roots}  # never spawned twice
    every = _check_forks(store, forks, {r["id"]: store.messages(r["id"]) for r in roots})
    # calls since the kill: only fork replies (the parents had ended), none for a prefix
    _check_calls_after([r for r in ctl.requests() if r["time"] >= killed_at], every)


def _check_calls_after(requests: list[dict], forks: list[list[dict]]) -> None:
    completed = [r for r in requests if r["completed"] and not r["fault"]]
    assert completed, "the resume made no call"
    assert all(len(r["body"]["messages"]) > AT - 1 for r in completed)  # never a prefix reply again
    wanted = {_history(msgs[:k]) for msgs in forks for k, m in enumerate(msgs) if m["role"] == "assistant" and k >= AT}
    assert {_history(r["body"]["messages"]) for r in completed} <= wanted
