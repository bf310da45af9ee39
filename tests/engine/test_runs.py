"""The run lifecycle in the engine (`runner.engine.runs`): the run id is printed before the first
model call, `resume` with no id picks the most recent unfinished run, a dry run leaves the plan
it was given alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import FAKE_ANTHROPIC_KEY, FAKE_OPENAI_KEY, FAST_RETRY_ENV
from tests.engine.conftest import REPO, TEST_PROTOCOLS


def test_the_run_id_is_printed_before_the_first_reply_and_resume_finds_the_run(
        cli, store, tmp_db_path: Path, models_file, fake_provider):
    # the first request hangs: nothing the model says can come before the run id
    fake_provider.inject("hang", count=1, hang_s=120)
    env = {**os.environ, **FAST_RETRY_ENV, "FAKE_OPENAI_KEY": FAKE_OPENAI_KEY, "FAKE_ANTHROPIC_KEY": FAKE_ANTHROPIC_KEY}
    env.pop("LATITUDE_DB", None)
    env.pop("PYTHONUNBUFFERED", None)  # the command flushes the id itself
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", "run", str(TEST_PROTOCOLS / "two-turns.yaml"), "-m", "fake-gpt",
         "--models", str(models_file), "--db", str(tmp_db_path)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until the line is flushed (or the process ends)
        assert line.startswith("run id: "), (line, proc.poll())
        run_id = line.split()[-1]
        assert proc.poll() is None and not any(r.completed for r in fake_provider.requests)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert store.run(run_id)["status"] == "running"  # killed: never marked

    fake_provider.clear_faults()
    result = cli("resume", "--db", str(tmp_db_path))
    assert result.exit_code == 0, result
    assert f"resuming the most recent unfinished run, {run_id}" in result.stdout
    assert result.run_id == run_id
    (conv,) = store.conversations(run_id)
    assert (conv["status"], conv["stop_reason"], conv["turns"]) == ("done", "completed", 2)


def test_resume_with_no_id_and_nothing_unfinished_says_so(cli, store, models_file, fake_provider):
    done = cli("run", TEST_PROTOCOLS / "two-turns.yaml", "-m", "fake-gpt", "--models", models_file)
    assert done.exit_code == 0, done
    result = cli("resume")
    assert result.exit_code == 1
    assert "no unfinished run" in result.stderr


def test_latest_unfinished_is_the_newest_run_with_work_left(tmp_db_url: str):
    from datetime import timedelta

    from runner.engine.runs import latest_unfinished
    from runner.store import StoreWriter, open as open_store
    from runner.store.tables import ConversationRow, RunRow, utcnow

    open_store(tmp_db_url).dispose()
    t0 = utcnow()

    def run(run_id: str, minutes: int, status: str) -> list[object]:
        row = RunRow(id=run_id, protocol_name="p", protocol_version="1", protocol_path="p.yaml", protocol_text="",
                     protocol_hash="", plan_json="{}", models_json="{}", options_json="{}", latitude_version="t",
                     litellm_version="t", started_at=t0 + timedelta(minutes=minutes))
        conv = ConversationRow(id=f"{run_id}-c", run_id=run_id, seq=0, model_alias="m", litellm_model="sim/maker",
                               vendor="sim", condition="default", replicate=0, status=status)
        return [row, conv]

    with StoreWriter(tmp_db_url) as writer:
        for r in run("old-cut", 0, "cancelled") + run("newer-done", 1, "done") + run("newest-done", 2, "done"):
            writer.add_sync(r)  # type: ignore[arg-type]
    assert latest_unfinished(tmp_db_url) == "old-cut"


def test_a_dry_run_leaves_the_plan_alone(tmp_path: Path):
    from runner.engine.runs import simulated
    from runner.plan import make_plan
    from runner.protocol import load

    plan = make_plan(load(TEST_PROTOCOLS / "two-turns.yaml", {}), models=["gemma"], replicates=2)
    dry = simulated(plan)
    assert [s.model.model for s in plan.specs] == ["local/gemma-3-270m"] * 2
    assert [(s.model_alias, s.model.model) for s in dry.specs] == [("gemma~sim", "sim/stopper")] * 2


def test_a_simulated_run_is_served_directly_without_litellm(tmp_path: Path):
    """The simulator is a provider of its own: a run on sim personas never imports litellm."""
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from runner.cli import app\n"
        f"r = CliRunner().invoke(app, ['run', {str(TEST_PROTOCOLS / 'two-turns.yaml')!r}, '-m', 'sim-maker',"
        f" '--replicates', '3', '--db', {str(tmp_path / 't.db')!r}])\n"
        "print(r.exit_code, 'litellm' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.stdout.split()[-2:] == ["0", "False"], out.stdout + out.stderr


async def test_the_simulator_waits_its_latency_and_the_client_stamps_the_request(tmp_path: Path):
    from runner.engine.client import ModelClient
    from runner.protocol.models_file import ModelAlias

    events: list[object] = []
    client = ModelClient(emit=events.append)
    alias = ModelAlias(model="sim/maker", extra={"latency": 0.05})
    reply = await client.chat(alias, [{"role": "user", "content": "hello"}], alias="sim", owner="c1", overrides={"seed": 3})
    assert reply.content and reply.cost == 0.0 and reply.finish_reason == "stop"
    assert reply.latency_ms >= 49 and reply.started_at is not None and reply.attempts == 1
    assert reply.request["params"]["latency"] == 0.05 and reply.request["model"] == "sim/maker"
    assert [type(e).__name__ for e in events] == ["TurnCompleted"]
