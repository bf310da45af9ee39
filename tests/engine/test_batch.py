"""The batch transport's wave collector through the real engine and store, against an in-process
`BatchAPI` (`tests/engine/batchsim.py`): waves, splits by the vendor's limits, per-request
failures retried in the next wave or live, batch prices, resume without resubmitting."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from runner.providers import batch as batch_mod
from tests.conftest import assert_well_formed
from tests.engine.batchsim import SimBatchAPI
from tests.engine.conftest import TEST_PROTOCOLS

LONG = TEST_PROTOCOLS / "long.yaml"


def _rows(db: Path, sql: str, *params: Any) -> list[dict[str, Any]]:
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute(sql, params).fetchall()]
    finally:
        con.close()


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> SimBatchAPI:
    """The in-process batch API every batch alias of the test's runs goes through."""
    from runner.engine import runs

    sim = SimBatchAPI()
    monkeypatch.setattr(runs, "batch_api_for", lambda model: sim)
    monkeypatch.setenv("LATITUDE_BATCH_POLL_S", "0.05")
    monkeypatch.setenv("LATITUDE_BATCH_IDLE_S", "60")  # a bound: waves must go out because all callers wait
    for k, v in {"LATITUDE_RETRY_MIN_WAIT_S": "0.01", "LATITUDE_RETRY_MAX_WAIT_S": "0.05"}.items():
        monkeypatch.setenv(k, v)
    return sim


@pytest.fixture
def batch_models(tmp_path: Path) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(
        "models:\n"
        "  mini:\n"
        "    model: openai/gpt-4.1-mini\n"
        "    transport: batch\n"
        "    api_base: http://127.0.0.1:9/v1\n"
        "  mini-live:\n"
        "    model: openai/gpt-4.1-mini\n"
        "    api_base: http://127.0.0.1:9/v1\n", encoding="utf-8")
    return path


def test_conversations_advance_in_waves_and_replies_record_their_batch(cli, store, tmp_db_path, api, batch_models):
    result = cli("run", LONG, "-m", "mini", "--replicates", "6", "--models", batch_models)
    assert result.exit_code == 0, result
    run_id = result.run_id
    convs = store.conversations(run_id)
    assert len(convs) == 6
    for conv in convs:
        assert (conv["status"], conv["stop_reason"], conv["turns"]) == ("done", "completed", 10)
        msgs = store.messages(conv["id"])
        assert_well_formed(msgs)
        for k, m in enumerate(msgs[1::2]):
            assert m["content"].startswith(f"reply {k + 1} to: Conversation {conv['replicate']}, turn {k + 1}")
            record = json.loads(m["request_json"])
            assert record["batch"]["price"] == "price map"
            # what was sent, as the live transports record it: the model, the messages' hash and count
            assert record["model"] == "openai/gpt-4.1-mini" and record["messages"] == 2 * k + 1
            assert len(record["messages_sha256"]) == 64
            # gpt-4.1-mini's batch prices in litellm's map: 2e-7 in, 8e-7 out (half the live 4e-7, 1.6e-6)
            assert m["cost"] == pytest.approx(100 * 2e-7 + 20 * 8e-7)
            # its prompt at the same batch price (not the live 4e-7): input cost and cost agree
            assert m["input_cost"] == pytest.approx(100 * 2e-7) and m["input_cost_uncached"] == pytest.approx(100 * 2e-7)
        assert conv["cost"] == pytest.approx(10 * (100 * 2e-7 + 20 * 8e-7))
    # the display's last word on batches: what is out, pending, finished, failed, and the saving
    assert ("batches: 0 out of 10 submitted · requests: 0 pending, 60 finished, 0 failed · "
            "saving $0.0022 (50% of $0.0043 live)") in result.stdout
    # one wave per turn: every conversation's turn k in one batch
    assert api.submits == 10
    assert [len(b.lines) for b in api.batches.values()] == [6] * 10
    assert set(api.received.values()) == {1}
    batches = _rows(tmp_db_path, "SELECT * FROM batches WHERE run_id = ? ORDER BY created_at", run_id)
    assert len(batches) == 10
    assert {(b["state"], b["requests"], b["succeeded"], b["price_note"]) for b in batches} == {
        ("ended", 6, 6, "price map")}
    assert all(b["vendor_id"] and b["submitted_at"] and b["ended_at"] and b["read_at"] for b in batches)
    reqs = _rows(tmp_db_path, "SELECT * FROM batch_requests WHERE run_id = ?", run_id)
    assert len(reqs) == 60 and {r["state"] for r in reqs} == {"succeeded"}
    assert {r["owner"] for r in reqs} == {c["id"] for c in convs}
    # the batch a reply names is the batch that carried its request
    by_cid = {r["custom_id"]: r["batch_id"] for r in reqs}
    for conv in convs:
        for m in store.messages(conv["id"])[1::2]:
            origin = json.loads(m["request_json"])["batch"]
            assert by_cid[origin["custom_id"]] == origin["batch_id"]


def test_a_wave_is_split_by_the_vendors_request_limit(cli, store, tmp_db_path, api, batch_models):
    api.max_requests = 4
    result = cli("run", TEST_PROTOCOLS / "two-turns.yaml", "-m", "mini", "--replicates", "10",
                 "--models", batch_models)
    assert result.exit_code == 0, result
    sizes = Counter(len(b.lines) for b in api.batches.values())
    assert sizes == Counter({4: 4, 2: 2})  # two waves of 10: 4 + 4 + 2 each
    assert sum(api.received.values()) == 20 and set(api.received.values()) == {1}
    assert {c["status"] for c in store.conversations(result.run_id)} == {"done"}


def test_a_batch_run_drives_at_most_latitude_batch_in_flight_conversations_at_once(cli, store, tmp_db_path, api,
                                                                                   batch_models, monkeypatch):
    monkeypatch.setenv("LATITUDE_BATCH_IN_FLIGHT", "3")
    result = cli("run", TEST_PROTOCOLS / "two-turns.yaml", "-m", "mini", "--replicates", "7",
                 "--models", batch_models)
    assert result.exit_code == 0, result
    # groups of 3, 3 and 1 conversations, one after the other: two waves each
    assert [len(b.lines) for b in api.batches.values()] == [3, 3, 3, 3, 1, 1]
    assert sum(api.received.values()) == 14 and set(api.received.values()) == {1}
    convs = store.conversations(result.run_id)
    assert len(convs) == 7 and {(c["status"], c["turns"]) for c in convs} == {("done", 2)}


def test_latitude_batch_in_flight_must_be_a_positive_integer(monkeypatch):
    from runner.engine.driver import BATCH_IN_FLIGHT_DEFAULT, batch_in_flight

    monkeypatch.delenv("LATITUDE_BATCH_IN_FLIGHT", raising=False)
    assert batch_in_flight() == BATCH_IN_FLIGHT_DEFAULT == 25_000
    monkeypatch.setenv("LATITUDE_BATCH_IN_FLIGHT", "12")
    assert batch_in_flight() == 12
    for bad in ("0", "-4", "many"):
        monkeypatch.setenv("LATITUDE_BATCH_IN_FLIGHT", bad)
        with pytest.raises(ValueError, match="LATITUDE_BATCH_IN_FLIGHT: expected a positive integer"):
            batch_in_flight()


def test_a_wave_is_split_by_the_vendors_byte_limit(cli, store, api, batch_models):
    api.max_bytes = 700  # each line is ~250-300 bytes: two fit, three do not
    result = cli("run", TEST_PROTOCOLS / "two-turns.yaml", "-m", "mini", "--replicates", "5",
                 "--models", batch_models)
    assert result.exit_code == 0, result
    assert all(sum(len(json.dumps(x)) for x in b.lines) <= 700 for b in api.batches.values())
    assert sum(api.received.values()) == 10 and set(api.received.values()) == {1}
    assert {c["status"] for c in store.conversations(result.run_id)} == {"done"}


def test_a_failed_item_is_retried_in_the_next_wave(cli, store, tmp_db_path, api, batch_models):
    api.fail_first = 2
    result = cli("run", TEST_PROTOCOLS / "two-turns.yaml", "-m", "mini", "--replicates", "4",
                 "--models", batch_models)
    assert result.exit_code == 0, result
    convs = store.conversations(result.run_id)
    assert {(c["status"], c["turns"]) for c in convs} == {("done", 2)}
    failed = _rows(tmp_db_path, "SELECT * FROM batch_requests WHERE state = 'failed'")
    assert len(failed) == 2 and all(r["error_kind"].startswith("errored") and r["attempt"] == 1 for r in failed)
    retried = _rows(tmp_db_path, "SELECT * FROM batch_requests WHERE attempt = 2")
    assert {r["owner"] for r in retried} == {r["owner"] for r in failed} and {r["state"] for r in retried} == {
        "succeeded"}
    # the retries went out in a later batch than the failures
    first = _rows(tmp_db_path, "SELECT batch_id FROM batch_requests WHERE state = 'failed'")[0]["batch_id"]
    assert all(r["batch_id"] != first for r in retried)
    assert sum(api.received.values()) == 4 * 2 + 2
    attempts = [json.loads(m["request_json"]).get("attempts") for c in convs for m in store.messages(c["id"])[1::2]]
    assert sorted(a or 1 for a in attempts) == [1] * 6 + [2] * 2


def test_an_expired_batch_gives_what_it_finished_and_retries_the_rest(cli, store, tmp_db_path, api, batch_models):
    api.expire = 1  # the first batch ends expired with half its items done: the other half retried
    result = cli("run", TEST_PROTOCOLS / "two-turns.yaml", "-m", "mini", "--replicates", "4",
                 "--models", batch_models)
    assert result.exit_code == 0, result
    assert {(c["status"], c["turns"]) for c in store.conversations(result.run_id)} == {("done", 2)}
    failed = _rows(tmp_db_path, "SELECT error_kind FROM batch_requests WHERE state = 'failed'")
    assert len(failed) == 2 and all(r["error_kind"].startswith("expired") for r in failed)
    states = [b["state"] for b in _rows(tmp_db_path, "SELECT state FROM batches ORDER BY created_at")]
    assert states[0] == "expired" and set(states[1:]) == {"ended"}
    assert sum(api.received.values()) == 4 * 2 + 2


def test_batch_fallback_live_sends_the_retry_on_the_native_transport(cli, store, tmp_db_path, api, tmp_path,
                                                                    fake_provider, fake_keys):
    models = tmp_path / "fallback.yaml"
    models.write_text(
        "models:\n"
        "  fb:\n"
        "    model: openai/fake-gpt\n"
        "    transport: batch\n"
        "    batch_fallback: live\n"
        f"    api_base: {fake_provider.openai_base}\n"
        "    api_key_env: FAKE_OPENAI_KEY\n", encoding="utf-8")
    api.fail_first = 3
    result = cli("run", TEST_PROTOCOLS / "two-turns.yaml", "-m", "fb", "--replicates", "4", "--models", models)
    assert result.exit_code == 0, result
    assert {(c["status"], c["turns"]) for c in store.conversations(result.run_id)} == {("done", 2)}
    assert len([r for r in fake_provider.requests if r.completed]) == 3  # exactly the failed items, live
    assert sum(api.received.values()) == 8  # no retry went into a batch
    live = [m for c in store.conversations(result.run_id) for m in store.messages(c["id"])[1::2]
            if "batch" not in json.loads(m["request_json"])]
    assert len(live) == 3


def test_transport_batch_is_refused_for_a_vendor_without_a_batch_api(cli, tmp_path):
    models = tmp_path / "bad.yaml"
    models.write_text("models:\n  g:\n    model: gemini/gemini-2.0-flash\n    transport: batch\n", encoding="utf-8")
    result = cli("run", LONG, "-m", "g", "--models", models)
    assert result.exit_code != 0
    assert "bad.yaml" in result.stderr and "transport batch serves openai/ and anthropic/" in result.stderr
    assert ":4" in result.stderr or "line 4" in result.stderr or "models.g" in result.stderr


def test_run_batch_flag_puts_every_openai_and_anthropic_alias_on_batches(cli, store, tmp_db_path, api, batch_models):
    result = cli("run", TEST_PROTOCOLS / "two-turns.yaml", "-m", "mini-live", "--replicates", "3", "--batch",
                 "--models", batch_models)
    assert result.exit_code == 0, result
    assert api.submits == 2 and sum(api.received.values()) == 6
    run = store.run(result.run_id)
    assert json.loads(run["options_json"])["batch"] is True
    assert json.loads(run["models_json"])["mini-live"]["transport"] == "batch"


def test_a_pairwise_choice_protocol_runs_on_a_batch_alias(cli, protocol_file, tmp_db_path, api, batch_models):
    from tests.engine.test_choose import PROTOCOL

    result = cli("run", protocol_file("p", PROTOCOL), "-m", "mini", "--models", batch_models)
    assert result.exit_code == 0, result.output
    choices = _rows(tmp_db_path, "SELECT answer FROM choices")
    assert len(choices) == 12 and {c["answer"] for c in choices} <= {"a", "opt_out"}
    assert api.submits == 1 and len(next(iter(api.batches.values())).lines) == 12  # one wave of every choice


# ----------------------------------------------------------------------------- resume


async def _run_until(prepared: Any, condition: Any) -> None:
    """Drive a prepared run in this loop and cancel it once `condition()` holds (a kill, as far as
    the store is concerned: nothing after the cancel is written)."""
    from runner.engine import runs
    from runner.store import StoreWriter

    writer = StoreWriter(prepared.url)
    task = asyncio.get_running_loop().create_task(runs.execute(prepared, writer, lambda e: None))
    try:
        while not condition():
            if task.done():
                task.result()
                raise AssertionError("the run ended before the condition held")
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await writer.close()


def _prepare(url: str, models: Path, replicates: int) -> Any:
    from runner.engine import runs
    from runner.plan import make_plan
    from runner.protocol.load import load, load_models

    loaded = load(LONG, load_models(models))
    plan = make_plan(loaded, models=["mini"], replicates=replicates)
    return runs.prepare_start(plan, url, {"models": ["mini"], "replicates": replicates}, concurrency=2)


def test_resume_polls_the_batches_that_are_out_instead_of_resubmitting(cli, store, tmp_db_url, tmp_db_path, api,
                                                                    batch_models):
    api.polls_to_end = None  # batches stay out: the run is stopped while they are
    prepared = _prepare(tmp_db_url, batch_models, 5)
    asyncio.run(_run_until(prepared, lambda: api.submits == 1))
    (row,) = _rows(tmp_db_path, "SELECT * FROM batches")
    assert row["vendor_id"] == "batch_1" and row["state"] in ("submitted", "in_progress")
    assert len(_rows(tmp_db_path, "SELECT * FROM batch_requests WHERE state = 'submitted'")) == 5
    listed = cli("runs", "--format", "json")
    assert listed.exit_code == 0, listed
    (run,) = json.loads(listed.stdout)
    assert (run["batches_out"], run["unfinished"]) == (1, 5)
    assert "waiting: 1 batch out" in cli("runs", "--format", "table").stdout  # json/tsv keep the RunStatus

    api.polls_to_end = 1
    resumed = cli("resume", prepared.run_id)
    assert resumed.exit_code == 0, resumed
    assert set(api.received.values()) == {1} and sum(api.received.values()) == 50  # 0 resubmitted
    convs = store.conversations(prepared.run_id)
    assert {(c["status"], c["turns"]) for c in convs} == {("done", 10)}
    assert {r["state"] for r in _rows(tmp_db_path, "SELECT state FROM batch_requests")} == {"succeeded"}


def test_a_batch_killed_before_its_vendor_id_was_stored_is_found_by_its_label(cli, store, tmp_db_url, tmp_db_path,
                                                                           api, batch_models):
    api.polls_to_end, api.lost_submit = None, True  # created at the vendor, the answer never stored
    prepared = _prepare(tmp_db_url, batch_models, 3)
    asyncio.run(_run_until(prepared, lambda: api.submits >= 1 and _rows(
        tmp_db_path, "SELECT count(*) AS n FROM batches WHERE vendor_id IS NOT NULL")[0]["n"] >= 1))
    # the collector recovered the id in the same session (find by label); now the same after a restart:
    with sqlite3.connect(tmp_db_path) as con:
        con.execute("UPDATE batches SET vendor_id = NULL, state = 'preparing'")
    api.polls_to_end, api.lost_submit = 1, False
    resumed = cli("resume", prepared.run_id)
    assert resumed.exit_code == 0, resumed
    assert set(api.received.values()) == {1} and sum(api.received.values()) == 30
    assert {(c["status"], c["turns"]) for c in store.conversations(prepared.run_id)} == {("done", 10)}


def test_a_batch_never_created_is_sent_again_and_its_rows_marked_resent(cli, store, tmp_db_url, tmp_db_path, api,
                                                                       batch_models):
    api.polls_to_end = None
    prepared = _prepare(tmp_db_url, batch_models, 3)
    asyncio.run(_run_until(prepared, lambda: api.submits == 1))
    with sqlite3.connect(tmp_db_path) as con:  # as if killed between the commit and the vendor's answer
        con.execute("UPDATE batches SET vendor_id = NULL, state = 'preparing'")
    api.batches.clear()
    api.received.clear()
    api.polls_to_end = 1
    resumed = cli("resume", prepared.run_id)
    assert resumed.exit_code == 0, resumed
    assert set(api.received.values()) == {1} and sum(api.received.values()) == 30
    states = Counter(r["state"] for r in _rows(tmp_db_path, "SELECT state FROM batches"))
    assert states["abandoned"] == 1 and states["ended"] == 10
    assert len(_rows(tmp_db_path, "SELECT * FROM batch_requests WHERE state = 'resent'")) == 3
    assert {(c["status"], c["turns"]) for c in store.conversations(prepared.run_id)} == {("done", 10)}


def test_custom_ids_are_stable_and_distinct() -> None:
    p = batch_mod.Place("conv1", "turn", 1)
    msgs = [{"role": "user", "content": "hi"}]
    a = batch_mod.custom_id("run1", p, msgs)
    assert a == batch_mod.custom_id("run1", batch_mod.Place("conv1", "turn", 1), [{"role": "user", "content": "hi"}])
    assert len(a) <= 64 and all(c.isalnum() or c in "-_" for c in a)
    others = {batch_mod.custom_id("run2", p, msgs), batch_mod.custom_id("run1", batch_mod.Place("conv2", "turn"), msgs),
              batch_mod.custom_id("run1", batch_mod.Place("conv1", "turn", 2), msgs),
              batch_mod.custom_id("run1", batch_mod.Place("conv1", "judge"), msgs),
              batch_mod.custom_id("run1", p, msgs + [{"role": "assistant", "content": "x"}])}
    assert a not in others and len(others) == 5


# ----------------------------------------------------------------------------- the collector alone


def _collector(api: SimBatchAPI, **kw: Any) -> batch_mod.BatchTransport:
    return batch_mod.BatchTransport(batch_mod.MemoryLedger(), run_id="r", poll_interval=0.01,
                                    api_for=lambda m: api, **kw)


def test_a_wave_goes_out_when_every_counted_caller_waits() -> None:
    from runner.protocol.models_file import ModelAlias

    api = SimBatchAPI()
    model = ModelAlias(model="openai/gpt-4.1-mini", transport="batch")

    async def main() -> list[str]:
        t = _collector(api, idle_s=3600, stall_s=3600)  # no timeout can be what sends the wave
        for _ in range(3):
            t.enter()

        async def caller(i: int, gate: asyncio.Event | None) -> str:
            if gate is not None:
                await gate.wait()
            reply = await t.chat(model, [{"role": "user", "content": f"q{i}"}], alias="m",
                                 place=batch_mod.Place(f"c{i}", "turn"))
            t.leave()
            return reply.content

        gate = asyncio.Event()
        tasks = [asyncio.create_task(caller(0, None)), asyncio.create_task(caller(1, None)),
                 asyncio.create_task(caller(2, gate))]
        while t.waiting < 2:
            await asyncio.sleep(0)
        assert api.submits == 0  # two of three wait: the wave is not complete
        gate.set()
        out = await asyncio.gather(*tasks)
        await t.aclose()
        return out

    assert asyncio.run(main()) == [f"reply 1 to: q{i}" for i in range(3)]
    assert api.submits == 1 and len(next(iter(api.batches.values())).lines) == 3


def test_without_counted_callers_the_idle_timeout_sends_the_wave() -> None:
    from runner.protocol.models_file import ModelAlias

    api = SimBatchAPI()
    model = ModelAlias(model="anthropic/claude-haiku-4-5", transport="batch")

    async def main() -> None:
        t = _collector(api, idle_s=0.05, stall_s=3600)
        replies = await asyncio.gather(*(t.chat(model, [{"role": "user", "content": f"q{i}"}], alias="m",
                                                place=batch_mod.Place(f"u{i}", "judge")) for i in range(4)))
        assert [r.content for r in replies] == [f"reply 1 to: q{i}" for i in range(4)]
        assert all(r.request["batch"]["price"] == "price map" for r in replies)
        await t.aclose()

    asyncio.run(main())
    assert api.submits == 1 and len(next(iter(api.batches.values())).lines) == 4


class _FlakyAPI(SimBatchAPI):
    """A vendor whose reads fail now and then: a poll (`status_failures`) or a results download
    broken off after its first item (`results_failures`)."""

    status_failures: int = 0
    results_failures: int = 0

    async def status(self, model: Any, vendor_id: str) -> Any:
        if self.status_failures:
            self.status_failures -= 1
            raise ConnectionError("connection reset while polling")
        return await super().status(model, vendor_id)

    async def results(self, model: Any, vendor_id: str) -> Any:
        n = 0
        async for item in super().results(model, vendor_id):
            if self.results_failures and n == 1:
                self.results_failures -= 1
                raise ConnectionError("connection reset while reading the results")
            n += 1
            yield item


def _three_callers(api: SimBatchAPI) -> list[str]:
    from runner.protocol.models_file import ModelAlias

    model = ModelAlias(model="openai/gpt-4.1-mini", transport="batch")

    async def main() -> list[str]:
        t = _collector(api, idle_s=0.01, stall_s=3600)
        try:
            replies = await asyncio.wait_for(asyncio.gather(*(
                t.chat(model, [{"role": "user", "content": f"q{i}"}], alias="m", place=batch_mod.Place(f"c{i}", "turn"))
                for i in range(3))), timeout=10)
        finally:
            await t.aclose()
        return [r.content for r in replies]

    return asyncio.run(main())


def test_a_poll_that_fails_once_is_polled_again_not_resubmitted() -> None:
    api = _FlakyAPI()
    api.status_failures = 1  # the batch is out at the vendor: a lost poll must not fail its requests
    assert _three_callers(api) == [f"reply 1 to: q{i}" for i in range(3)]
    assert api.submits == 1 and set(api.received.values()) == {1}


def test_a_results_download_broken_off_is_read_again_and_nobody_is_left_waiting() -> None:
    api = _FlakyAPI()
    api.results_failures = 1  # the first item was read before the break: its caller must get its reply too
    assert _three_callers(api) == [f"reply 1 to: q{i}" for i in range(3)]
    assert api.submits == 1 and set(api.received.values()) == {1}


def test_the_saving_counts_cache_writes_on_both_sides() -> None:
    from runner.protocol.models_file import ModelAlias
    from runner.providers import prices

    class _Writes(SimBatchAPI):
        async def results(self, model: Any, vendor_id: str) -> Any:
            async for item in super().results(model, vendor_id):
                item.reply.cache_write_tokens, item.reply.cache_ttl = 60, "1h"  # 60 of the 100 written, 1 h
                yield item

    api = _Writes(name="anthropic")
    model = ModelAlias(model="anthropic/claude-haiku-4-5", transport="batch")
    events: list[batch_mod.WaveEvent] = []

    async def main() -> None:
        t = _collector(api, idle_s=0.01, stall_s=3600, report=events.append)
        await t.chat(model, [{"role": "user", "content": "q"}], alias="m", place=batch_mod.Place("c", "turn"))
        await t.aclose()

    asyncio.run(main())
    (ended,) = [e for e in events if e.kind == "ended"]
    # live, the alias's 5-minute writes at 1.25x the input price; at the batch price, 1-hour writes at 2x, halved
    assert ended.live_cost == pytest.approx(prices.cost(model.model, 100, 20, 0, 60, "5m"))
    assert ended.cost == pytest.approx(batch_mod.cost(model, 100, 20, 0, 60, "1h"))
    assert ended.live_cost != pytest.approx(prices.cost(model.model, 100, 20, 0))


def test_a_reply_read_before_its_resumed_caller_came_keeps_its_request_audit() -> None:
    from runner.protocol.models_file import ModelAlias

    api = SimBatchAPI(polls_to_end=None)  # the first session's batch stays out
    model = ModelAlias(model="openai/gpt-4.1-mini", transport="batch")
    ledger = batch_mod.MemoryLedger()

    def ask(t: batch_mod.BatchTransport, i: int) -> Any:
        return t.chat(model, [{"role": "user", "content": f"q{i}"}], alias="m", place=batch_mod.Place(f"c{i}", "turn"))

    async def first_session() -> None:
        t = batch_mod.BatchTransport(ledger, run_id="r", poll_interval=0.01, idle_s=0.01, api_for=lambda m: api)
        tasks = [asyncio.create_task(ask(t, i)) for i in range(2)]
        while api.submits == 0:
            await asyncio.sleep(0.01)
        await t.aclose()  # killed while the batch is out
        await asyncio.gather(*tasks, return_exceptions=True)

    async def second_session() -> list[Any]:
        for s in ledger.stored.values():
            s.vendor_id = ledger.batches[s.batch_id]["vendor_id"]
        api.polls_to_end = 1
        t = batch_mod.BatchTransport(ledger, run_id="r", poll_interval=0.01, idle_s=0.01, api_for=lambda m: api)
        early = await ask(t, 0)  # polls the batch and reads all of it
        late = await ask(t, 1)  # answered from what was read
        await t.aclose()
        return [early, late]

    asyncio.run(first_session())
    replies = asyncio.run(second_session())
    assert api.submits == 1
    for reply in replies:
        assert reply.request["model"] == "openai/gpt-4.1-mini" and len(reply.request["messages_sha256"]) == 64
        assert reply.request["batch"]["vendor_id"] == "batch_1"


def test_the_byte_limit_counts_what_the_vendor_receives_not_only_the_lines() -> None:
    from runner.protocol.models_file import ModelAlias

    class _Strict(SimBatchAPI):
        async def submit(self, model: Any, lines: list[bytes], *, label: str) -> str:
            data = b"\n".join(lines) + b"\n"  # as `batch_openai` uploads them
            if len(data) > self.max_bytes:
                raise ValueError(f"{len(data)} bytes: at most {self.max_bytes} per batch file")
            return await super().submit(model, lines, label=label)

    api = _Strict()
    model = ModelAlias(model="openai/gpt-4.1-mini", transport="batch")
    ask = [[{"role": "user", "content": f"q{i}"}] for i in range(3)]
    cid = batch_mod.custom_id("r", batch_mod.Place("c0", "turn"), ask[0])
    size = len(api.line(batch_mod.BatchRequest(cid, model, ask[0])))  # every line has this length
    api.max_bytes = 3 * size + 1  # the three lines fit, the three lines with their newlines do not

    async def main() -> list[str]:
        t = _collector(api, idle_s=0.01, stall_s=3600)
        out = await asyncio.gather(*(t.chat(model, m, alias="m", place=batch_mod.Place(f"c{i}", "turn"))
                                     for i, m in enumerate(ask)))
        await t.aclose()
        return [r.content for r in out]

    assert asyncio.run(main()) == [f"reply 1 to: q{i}" for i in range(3)]
    assert sorted(len(b.lines) for b in api.batches.values()) == [1, 2]


def test_an_unused_batch_alias_in_the_models_file_leaves_a_live_run_as_it_was(cli, store, tmp_path, monkeypatch):
    from runner.engine import choose

    seen: list[int] = []
    real = choose.run_all

    async def recording(ctx: Any, plan: Any, targets: Any, max_in_flight: int) -> Any:
        seen.append(max_in_flight)
        assert ctx.client.batches is None  # no wave collector: nothing here is batched
        return await real(ctx, plan, targets, max_in_flight)

    monkeypatch.setattr(choose, "run_all", recording)
    models = tmp_path / "models.yaml"
    models.write_text("models:\n  mini:\n    model: openai/gpt-4.1-mini\n    transport: batch\n", encoding="utf-8")
    result = cli("run", TEST_PROTOCOLS / "two-turns.yaml", "-m", "sim-maker", "--replicates", "4",
                 "--concurrency", "2", "--models", models)
    assert result.exit_code == 0, result
    assert seen == [2]  # the run's own limit, not the batch transport's
    assert {c["status"] for c in store.conversations(result.run_id)} == {"done"}


@pytest.mark.parametrize("split", [None, {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 60}])
def test_cache_writes_of_a_one_hour_batch_request_are_recorded_and_priced_as_one_hour(split) -> None:
    from runner.protocol.models_file import ModelAlias
    from runner.providers import batch_anthropic, prices
    from runner.providers.batch_wire import ItemResult

    class _Vendor(SimBatchAPI):  # answers as Anthropic does, with or without the writes split by lifetime
        async def results(self, model: Any, vendor_id: str) -> Any:
            for item in self.batches[vendor_id].lines:
                usage = {"input_tokens": 40, "cache_creation_input_tokens": 60, "output_tokens": 20}
                if split is not None:
                    usage["cache_creation"] = split
                msg = {"id": "msg_1", "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn",
                       "usage": usage}
                reply, basis = batch_anthropic._reply(model, msg, 1.0)
                yield ItemResult(item["custom_id"], reply=reply, price_basis=basis)

    api = _Vendor(name="anthropic")
    model = ModelAlias(model="anthropic/claude-haiku-4-5", transport="batch")

    async def main() -> Any:
        t = _collector(api, idle_s=0.01, stall_s=3600)
        reply = await t.chat(model, [{"role": "system", "content": "long shared prompt"},
                                     {"role": "user", "content": "q"}], alias="m",
                             place=batch_mod.Place("c", "turn"), cacheable_system=True, cache_key="c")
        await t.aclose()
        return reply

    reply = asyncio.run(main())
    assert reply.request["cache_ttl"] == "1h"  # what the batch asked of every breakpoint
    assert (reply.cache_write_tokens, reply.cache_ttl) == (60, "1h")
    assert reply.cost == pytest.approx(prices.batch_cost(model.model, 100, 20, 0, 0, 60)[0])


def test_a_failure_recorded_in_one_session_is_classified_alike_in_the_next() -> None:
    from runner.engine.retry import classify
    from runner.providers.batch import failure_of, failure_text
    from runner.providers.batch_wire import BatchItemFailed

    for err in (BatchItemFailed("errored", "bad body", 400, error_type="invalid_request_error"),
                BatchItemFailed("errored", "too long", 400, error_type="invalid_request_error",
                                code="context_length_exceeded"),
                BatchItemFailed("errored", "busy", 529, error_type="overloaded_error"),
                BatchItemFailed("expired", "not run in time"), BatchItemFailed("cancelled", "cancelled")):
        text = failure_text(err)
        assert text.startswith(f"{err.kind}: ")
        again = failure_of(text)
        assert (again.kind, classify(again)) == (err.kind, classify(err)), text
    assert classify(failure_of(failure_text(BatchItemFailed("errored", "x", 400, error_type="invalid_request_error")))) \
        != classify(BatchItemFailed("errored", "x"))  # the status decides: a refused request is not retried as a server error
    assert failure_of("expired: batch ended without it").kind == "expired"  # a row of an older session
