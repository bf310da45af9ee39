"""The batch transport (issue 13) against the fake provider's batch endpoints, in its own process.

    uv run python bench/batch.py [--quick] [--only choices|waves] [--replicates N] [--wait-quiet S]

(a) choices: a pairwise-choice protocol whose plan is 100,000 comparisons (11 options, both
    orders: 110 per replicate, 910 replicates = 100,100 requests) run with `latitude run` on a
    `transport: batch` alias: one wave, split by OpenAI's 50,000-request limit, prepared, submitted,
    polled, read and stored (conversations, messages, choices, batch rows). Targets: peak RSS of the
    `latitude run` process < 1 GiB; CPU per request end to end <= 2 ms (the whole process, imports
    included, divided by the requests).
(b) waves: 10,000 conversations x 5 turns (5,000 on an OpenAI alias, 5,000 on an Anthropic alias)
    on `transport: batch`: 5 waves per vendor. The fake provider holds every batch until the bench
    ends it; the run is SIGKILLed while wave 3 is out, then `latitude resume` finishes it. Target:
    0 requests resubmitted (the fake provider's per-custom_id counters), every conversation done.

--quick divides both shapes by 10. Results: bench/results/batch.json (`--only X`: batch-X.json;
`--quick`: ...-quick.json).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (  # noqa: E402
    API_KEY,
    API_KEY_ENV,
    PYTHON,
    QUIET,
    REPO,
    FakeServer,
    base_env,
    run_child,
    save,
    system_busy_s,
    table,
)

OPTIONS = 11
"""Options of the choice protocol: 11 x 10 ordered pairs = 110 comparisons per replicate."""
BATCH_ENV = {"LATITUDE_BATCH_POLL_S": "0.2", "LATITUDE_BATCH_IDLE_S": "30"}


def _control(server: FakeServer, action: str, **kw: Any) -> Any:
    import httpx

    return httpx.post(server.url + "/_control", json={"action": action, **kw}, timeout=120).json()


def _batches(server: FakeServer) -> dict[str, Any]:
    import httpx

    return httpx.get(server.url + "/_control/batches", timeout=120).json()


def _models(path: Path, server: FakeServer) -> Path:
    base = server.url
    path.write_text(
        "models:\n"
        f"  bench-openai: {{model: openai/gpt-4o-mini, api_base: \"{base}/v1\", api_key_env: {API_KEY_ENV}, "
        "transport: batch, timeout_s: 600}\n"
        f"  bench-anthropic: {{model: anthropic/claude-haiku-4-5, api_base: \"{base}\", api_key_env: {API_KEY_ENV}, "
        "transport: batch, timeout_s: 600}\n")
    return path


def _query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=60)
    except sqlite3.Error:
        return []
    try:
        return con.execute(sql).fetchall()
    except sqlite3.Error:
        return []
    finally:
        con.close()


def choices(scale: int, tmp: Path, replicates: int | None = None) -> dict[str, Any]:
    replicates = replicates or max(1, 910 // scale)
    options = "\n".join(f"    - {{id: o{i}, text: Option number {i} - a small task}}" for i in range(OPTIONS))
    proto = tmp / "choices.yaml"
    proto.write_text(f"name: bench-choices\ndescription: bench\npreferences:\n  options:\n{options}\n")
    db = tmp / "choices.db"
    with FakeServer(latency_s=0.0) as server:
        models = _models(tmp / "models.yaml", server)
        env = base_env(**BATCH_ENV, **{API_KEY_ENV: API_KEY})
        child = run_child([PYTHON, "-m", "runner", "run", str(proto), "-m", "bench-openai", "--replicates",
                           str(replicates), "--models", str(models), "--db", f"sqlite:///{db}"], server=server,
                          env=env, timeout=3600, parse_json=False)
        snap = _batches(server)
    if child.rc != 0:
        raise RuntimeError(f"run failed ({child.rc}):\n{child.stdout_tail}\n{child.stderr_tail}")
    (requests,), = _query(db, "SELECT count(*) FROM batch_requests WHERE state = 'succeeded'")
    (stored,), = _query(db, "SELECT count(*) FROM choices")
    sizes = [n for (n,) in _query(db, "SELECT requests FROM batches ORDER BY created_at")]
    return {"requests": requests, "choices_stored": stored, "batches": sizes,
            "LATITUDE_BATCH_IN_FLIGHT": os.environ.get("LATITUDE_BATCH_IN_FLIGHT", "default"), "wall_s": round(child.wall_s, 1),
            "cpu_s": round(child.cpu_s, 2), "cpu_ms_per_request": round(child.cpu_s / max(requests, 1) * 1000, 3),
            "peak_rss_mib": round(child.maxrss_mib, 1), "server_cpu_s": round(child.server_cpu_s or 0, 1),
            "foreign_cpu_s": round(child.foreign_cpu_s, 1), "received": snap["received"],
            "resubmitted": snap["resubmitted"]}


def waves(scale: int, tmp: Path) -> dict[str, Any]:
    per_vendor = max(1, 5000 // scale)
    proto = tmp / "five.yaml"
    proto.write_text("name: bench-five\ndescription: bench\nmax_turns: 10\nsteps:\n  - repeat:\n      times: 5\n"
                     "      steps:\n        - say: \"Conversation {{ replicate }}, turn {{ i }}: go on.\"\n")
    db = tmp / "waves.db"
    out: dict[str, Any] = {"conversations": 2 * per_vendor, "turns": 5}
    with FakeServer(latency_s=0.0) as server:
        models = _models(tmp / "models.yaml", server)
        _control(server, "batch_config", hold=True)
        env = base_env(**BATCH_ENV, **{API_KEY_ENV: API_KEY})
        cmd = [PYTHON, "-m", "runner", "run", str(proto), "-m", "bench-openai", "-m", "bench-anthropic",
               "--replicates", str(per_vendor), "--models", str(models), "--db", f"sqlite:///{db}"]
        b0 = system_busy_s()
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            for wave in (1, 2, 3):
                deadline = time.monotonic() + 1800
                while time.monotonic() < deadline:
                    if proc.poll() is not None:
                        raise RuntimeError(f"run ended early: {proc.stderr.read() if proc.stderr else ''}")
                    (out_now,), = _query(db, "SELECT count(*) FROM batches WHERE vendor_id IS NOT NULL "
                                             "AND read_at IS NULL") or [(0,)]
                    if out_now == 2:  # one batch per vendor
                        break
                    time.sleep(0.2)
                else:
                    raise RuntimeError(f"wave {wave} never went out")
                if wave < 3:
                    _control(server, "batch_finish")
                    want = 2 * per_vendor * wave
                    while True:
                        (n,), = _query(db, "SELECT count(*) FROM messages WHERE role = 'assistant'") or [(0,)]
                        if n >= want:
                            break
                        if proc.poll() is not None:
                            raise RuntimeError("run ended early")
                        time.sleep(0.2)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        out["killed_after_s"] = round(time.perf_counter() - t0, 1)
        out["killed_with"] = {"replies_stored": _query(db, "SELECT count(*) FROM messages WHERE role = 'assistant'")[0][0],
                              "batches_out": _query(db, "SELECT count(*) FROM batches WHERE read_at IS NULL")[0][0]}
        (run_id,), = _query(db, "SELECT id FROM runs")
        before = _batches(server)
        _control(server, "batch_finish")
        _control(server, "batch_config", hold=False)
        child = run_child([PYTHON, "-m", "runner", "resume", run_id, "--db", f"sqlite:///{db}"], server=server,
                          env=env, timeout=3600, parse_json=False)
        after = _batches(server)
    if child.rc != 0:
        raise RuntimeError(f"resume failed ({child.rc}):\n{child.stdout_tail}\n{child.stderr_tail}")
    done = dict(_query(db, "SELECT status || ':' || turns, count(*) FROM conversations GROUP BY 1"))
    out.update({
        "received_before_kill": before["received"], "received": after["received"], "distinct": after["distinct"],
        "resubmitted": after["resubmitted"], "conversations_by_status_turns": done,
        "batches": [tuple(r) for r in _query(db, "SELECT vendor, requests, state FROM batches ORDER BY created_at")],
        "resume_wall_s": round(child.wall_s, 1), "resume_cpu_s": round(child.cpu_s, 2),
        "resume_peak_rss_mib": round(child.maxrss_mib, 1), "machine_busy_cpu_s_whole_bench": round(
            max(0.0, system_busy_s() - b0), 1)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="Both shapes divided by 10.")
    ap.add_argument("--only", choices=["choices", "waves"], default=None)
    ap.add_argument("--replicates", type=int, default=None,
                    help="choices: replicates of the 110 comparisons (default 910: 100,100 requests; profiling: fewer).")
    ap.add_argument("--wait-quiet", type=float, default=0.0, help="Wait up to S seconds for a quiet machine first.")
    args = ap.parse_args()
    QUIET["max_wait_s"] = args.wait_quiet
    scale = 10 if args.quick else 1
    result: dict[str, Any] = {"load_before": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="latitude-bench-batch-") as d:
        tmp = Path(d)
        if args.only in (None, "choices"):
            result["choices"] = c = choices(scale, tmp, args.replicates)
            print(table([[c["requests"], c["batches"], c["wall_s"], c["cpu_s"], c["cpu_ms_per_request"],
                          c["peak_rss_mib"], c["server_cpu_s"], c["foreign_cpu_s"], c["resubmitted"]]],
                        ["requests", "batches", "wall s", "cpu s", "cpu ms/req", "peak RSS MiB", "server cpu s",
                         "foreign cpu s", "resubmitted"]))
        if args.only in (None, "waves"):
            result["waves"] = w = waves(scale, tmp)
            print(json.dumps(w, indent=1, default=str))
    result["load_after"] = os.getloadavg()
    path = save("batch" + (f"-{args.only}" if args.only else "") + ("-quick" if args.quick else ""), result)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
