"""A reader polling the SQLite store (as the TUI does, from a worker thread) while a
50-conversation run writes to it: no "database is locked", and progress only grows."""

from __future__ import annotations

import threading
import time

from runner.store import make_engine, queries, session, upgrade
from tests.engine.conftest import TEST_PROTOCOLS


def test_reads_during_a_run_see_monotonic_progress(cli, store, tmp_db_url, models_file, fake_provider):
    fake_provider.set_latency(latency_s=0.01)
    upgrade(tmp_db_url)
    stop = threading.Event()
    errors: list[BaseException] = []
    snapshots: list[tuple[int, int, dict[str, int]]] = []  # (done conversations, messages, per conversation)

    def read() -> None:
        engine = make_engine(tmp_db_url)
        try:
            while not stop.is_set():
                with session(engine) as s:
                    runs = queries.list_runs(s)
                    if runs:
                        counts = {c.id: len(queries.conversation_messages(s, c.id))
                                  for c in queries.run_conversations(s, runs[0].id)}
                        snapshots.append((runs[0].by_status["done"], sum(counts.values()), counts))
                time.sleep(0.005)
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            errors.append(exc)
        finally:
            engine.dispose()

    reader = threading.Thread(target=read, name="reader")
    reader.start()
    try:
        result = cli("run", TEST_PROTOCOLS / "two-turns.yaml", "-m", "fake-gpt", "--replicates", "50",
                     "--concurrency", "25", "--models", models_file)
        # wait (a condition, not a pause) until the reader has seen the finished run
        final = (50, 50 * 4)
        deadline = time.monotonic() + 120
        while result.exit_code == 0 and not errors and not (
                snapshots and snapshots[-1][:2] == final and len(snapshots) >= 10):
            assert time.monotonic() < deadline, f"the reader never saw the finished run: {snapshots[-1:]}"
            time.sleep(0.01)
    finally:
        stop.set()
        reader.join(30)
    assert result.exit_code == 0, result
    assert not errors, errors
    convs = store.conversations(result.run_id)
    assert len(convs) == 50 and all(c["status"] == "done" for c in convs)

    assert len(snapshots) >= 10
    final_total = 50 * 4
    assert snapshots[-1][:2] == (50, final_total)
    assert any(0 < total < final_total for _, total, _ in snapshots), "no read saw the run in progress"
    for (done_a, total_a, per_a), (done_b, total_b, per_b) in zip(snapshots, snapshots[1:]):
        assert done_b >= done_a and total_b >= total_a
        assert all(per_b.get(cid, 0) >= n for cid, n in per_a.items())
