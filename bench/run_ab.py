"""`latitude run` on W1 as a whole process, two code trees taking turns (a shared machine's load
moves between runs, so a before/after is only read when interleaved).

    uv run python bench/run_ab.py [--tree LABEL=DIR ...] [--runs N] [--new-store]

Each tree is a checkout of the repository (e.g. `git archive <commit> | tar -x -C /tmp/before`);
its `python -m runner run` is started from that directory, so it runs that tree's code in this
venv. For each run: CPU (wait4), wall, when the first request reached the fake provider, how long
after the last reply (its request + the 100 ms latency) the process ended, and the CPU the rest
of the machine used meanwhile (the fake provider included). Prints the medians per tree. Not
saved: a probe for start-up work, next to `native.py`'s rows.
"""
import argparse, os, statistics, subprocess, sys, tempfile, threading, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as H  # noqa: E402

ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
ap.add_argument("--tree", action="append", default=[], help="LABEL=DIR (repeatable; default: this checkout)")
ap.add_argument("--runs", type=int, default=3, help="runs per tree (interleaved)")
ap.add_argument("--new-store", action="store_true", help="into a new store (Alembic creates it), not a migrated one")
args = ap.parse_args()
CWDS = [tuple(x.split("=", 1)) for x in args.tree] or [("this", str(H.REPO))]
SIX = H.BENCH / "protocols" / "six-turns.yaml"
n = args.runs
for label, cwd in CWDS:
    subprocess.run([H.PYTHON, "-c", "import runner.cli, runner.cli.run, runner.engine.runs, runner.display, runner.providers.native, runner.store.writer, aiohttp, rich.live, tenacity\nimport tempfile, runner.store.db as d\nwith tempfile.TemporaryDirectory() as t:\n    d.upgrade(f'sqlite:///{t}/warm.db')"], cwd=cwd, env=H.base_env(), check=True, capture_output=True)
res = {label: [] for label, _ in CWDS}
with tempfile.TemporaryDirectory() as td:
    tmp = Path(td)
    with H.FakeServer(0.1, max_log=100_000) as server:
        models = H.write_models_file(tmp / "m.yaml", server.openai_base, transport="native")
        for i in range(n):
            for label, cwd in CWDS:
                db = tmp / f"{label}-{i}.db"
                if not args.new_store:
                    subprocess.run([H.PYTHON, "-c", f"from runner.store.db import upgrade; upgrade('sqlite:///{db}')"], check=True, cwd=cwd, env=H.base_env())
                since = server.requests_seen()
                argv = [H.PYTHON, "-m", "runner", "run", str(SIX), "--models", str(models), "--db", f"sqlite:///{db}",
                        "--concurrency", "50", "--replicates", "200"]
                busy0 = H.system_busy_s()
                t0 = time.time()
                p = subprocess.Popen(argv, cwd=cwd, env=H.base_env(COLUMNS="120"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                bufs = {}
                th = [threading.Thread(target=lambda k=k, f=f: bufs.__setitem__(k, f.read())) for k, f in (("out", p.stdout), ("err", p.stderr))]
                [t.start() for t in th]
                _, status, ru = os.wait4(p.pid, 0)
                t1 = time.time()
                [t.join() for t in th]
                busy = H.system_busy_s() - busy0
                rc = os.waitstatus_to_exitcode(status)
                cpu = ru.ru_utime + ru.ru_stime
                times = server.request_times(since)
                r = dict(cpu=cpu, wall=t1 - t0, first=times[0] - t0, tail=t1 - times[-1] - 0.1, span=times[-1] - times[0] + 0.1,
                         foreign=busy - cpu, load=os.getloadavg()[0])
                res[label].append(r)
                print(f"{label:6} {i}: rc {rc} cpu {cpu:.2f} s, wall {r['wall']:.2f} s, first request at +{r['first']:.2f} s, "
                      f"exit {r['tail']:.2f} s after the last reply, requests {len(times)} over {r['span']:.2f} s, "
                      f"other CPU (fake provider included) {r['foreign']:.2f} s, load {r['load']:.2f}", flush=True)
                if rc != 0:
                    print(bufs["out"][-2000:], bufs["err"][-2000:])
for label, rs in res.items():
    med = lambda k: statistics.median(x[k] for x in rs)
    print(f"{label:6} median of {len(rs)}: cpu {med('cpu'):.2f} s (min {min(x['cpu'] for x in rs):.2f}), wall {med('wall'):.2f} s (min {min(x['wall'] for x in rs):.2f}), "
          f"first request +{med('first'):.2f} s, exit {med('tail'):.2f} s after the last reply, workload span {med('span'):.2f} s")
