"""Shared plumbing for the benchmarks (parent side).

Every measured client runs in its own fresh interpreter (`bench/_worker.py`), so one
client's imports, caches and garbage never show up in another's figures. The parent:

- starts the fake provider (`python -m tests.fakeprovider`) in a separate process and
  reads its CPU time from /proc around each measured run, so the server's CPU is reported
  but never counted as the client's;
- runs each worker with `os.wait4`, which gives that child's own CPU (user + system) and
  RSS high-water mark (the `/usr/bin/time -v` figures);
- collects the worker's in-process figures (import cost, workload-only wall and CPU).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"
PYTHON = sys.executable
API_KEY_ENV = "BENCH_FAKE_KEY"
API_KEY = "sk-bench-fake-0000"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _terminate(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwind: the fake server and the running child get stopped


signal.signal(signal.SIGTERM, _terminate)
signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started in the background


BYTECODE = {"cache": True}
"""Whether measured children may use a bytecode cache (the benchmarks' --no-bytecode-cache clears it)."""

PYCACHE = Path(os.environ.get("LATITUDE_BENCH_PYCACHE", "/tmp/latitude-bench-pycache"))
"""Where measured children keep their bytecode (`PYTHONPYCACHEPREFIX`): outside the venv and the repo."""


def bytecode_env(env: dict[str, str]) -> dict[str, str]:
    """`env` with a bytecode cache, as an installed latitude has one: an environment that sets
    PYTHONDONTWRITEBYTECODE (and a venv installed without .pyc files) makes every process compile
    each module it imports from source, ~2-3 s of CPU for `latitude run`, which no user pays after
    their first start. The cache is kept under `PYCACHE`; `warm_bytecode` fills it."""
    if not BYTECODE["cache"]:
        return env
    env = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return env


def base_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True",
           "LITELLM_TELEMETRY": "False", API_KEY_ENV: API_KEY}
    env.update(extra)
    return bytecode_env(env)


def warm_bytecode(*modules: str, then: str = "") -> None:
    """Import `modules` once in a child with the measured environment (and run the code `then`),
    so the bytecode cache holds them before anything is measured (no-op with the cache off)."""
    if not BYTECODE["cache"]:
        return
    code = "import importlib\nfor m in %r:\n    importlib.import_module(m)\n%s\n" % (modules, then)
    subprocess.run([PYTHON, "-c", code], cwd=REPO, env=base_env(), check=True, capture_output=True)


def raise_fd_limit(target: int = 65536) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = target if hard == resource.RLIM_INFINITY else min(target, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def proc_cpu(pid: int) -> float:
    """utime + stime of a live process, in seconds (all its threads)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def system_busy_s() -> float:
    """CPU seconds all processes of the machine have used since boot (from /proc/stat)."""
    with open("/proc/stat") as fh:
        f = fh.readline().split()
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in f[1:9])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


QUIET = {"max_wait_s": 60.0, "threshold": 0.25}
"""`wait_quiet` defaults; the benchmarks' --wait-quiet option sets max_wait_s (0 disables)."""


def wait_quiet(max_wait_s: float | None = None, threshold: float | None = None) -> float:
    """Wait (at most `max_wait_s`) until the machine is quiet: under `threshold` of a core busy
    over one second, with nothing of ours running. Returns the busy share last seen."""
    max_wait_s = QUIET["max_wait_s"] if max_wait_s is None else max_wait_s
    threshold = QUIET["threshold"] if threshold is None else threshold
    deadline = time.monotonic() + max_wait_s
    told = False
    while True:
        b0 = system_busy_s()
        time.sleep(1.0)
        busy = system_busy_s() - b0
        if busy < threshold or time.monotonic() >= deadline:
            if told:
                print(f"  (machine busy {busy:.2f} cores; going on)" if busy >= threshold else "  (quiet now)", flush=True)
            return busy
        if not told:
            print(f"  waiting for a quiet machine (other processes use {busy:.2f} cores) ...", flush=True)
            told = True


def proc_status(pid: int, key: str) -> int:
    """A /proc/PID/status figure in KiB (VmHWM, VmRSS)."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


class FakeServer:
    """`python -m tests.fakeprovider` in its own process (context manager)."""

    def __init__(self, latency_s: float, chunks: int = 4, backlog: int = 4096, reply_words: int = 0,
                 max_log: int = 1000) -> None:
        """`reply_words` > 0: every reply is that many words (a rule), instead of the fake
        provider's short default reply; `chunks` is how many content chunks a stream has
        (at most one per word); `max_log`: requests the server's log keeps (`request_times`)."""
        self.args = [PYTHON, "-m", "tests.fakeprovider", "--port", "0", "--latency", str(latency_s),
                     "--chunks", str(chunks), "--backlog", str(backlog), "--max-log", str(max_log)]
        if reply_words > 0:
            import tempfile

            words = " ".join(f"word{i % 97}" for i in range(reply_words - 1))
            cfg = tempfile.NamedTemporaryFile("w", prefix="latitude-bench-fake-", suffix=".json", delete=False)
            json.dump({"rules": [{"reply": "[{model}] reply {n}: " + words}]}, cfg)
            cfg.close()
            self.args += ["--config", cfg.name]
        self.latency_s = latency_s
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    @property
    def openai_base(self) -> str:
        return self.url + "/v1"

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def __enter__(self) -> "FakeServer":
        self.proc = subprocess.Popen(self.args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=base_env())
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("http://"):
            err = self.proc.stderr.read() if self.proc.stderr else ""
            self.__exit__()
            raise RuntimeError(f"fake provider did not start: {line!r} {err}")
        self.url = line
        import httpx

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/_control/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("fake provider not healthy")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
            for s in (self.proc.stdout, self.proc.stderr):
                if s is not None:
                    s.close()
            self.proc = None

    def requests_seen(self) -> int:
        """Requests the server has logged so far."""
        import httpx

        return int(httpx.get(self.url + "/_control/state", timeout=30).json()["requests"])

    def request_times(self, since: int) -> list[float]:
        """`time.time()` at which each request after the first `since` arrived, sorted (the log keeps `max_log`)."""
        import httpx

        records = httpx.get(self.url + f"/_control/requests?since={since}", timeout=60).json()
        return sorted(r["time"] for r in records)

    def cpu(self) -> float:
        assert self.proc is not None
        return proc_cpu(self.proc.pid)

    def rss_peak_mib(self) -> float:
        assert self.proc is not None
        return proc_status(self.proc.pid, "VmHWM") / 1024

    def log_state(self) -> dict[str, Any]:
        import httpx

        return httpx.get(self.url + "/_control/state", timeout=5).json()


class ConnSampler:
    """Samples the fake server's open TCP connections (/proc/net/tcp) in a thread:
    `peak` is the most ESTABLISHED server-side connections seen at once."""

    def __init__(self, port: int, every_s: float = 0.2) -> None:
        import threading

        self.port_hex = f":{port:04X}"
        self.every_s = every_s
        self.peak = 0
        self.seen: set[str] = set()
        """Distinct client endpoints seen (a lower bound of the connections opened)."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def count(self) -> int:
        now: set[str] = set()  # distinct peers: /proc/net/tcp can repeat lines while it changes
        for name in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                with open(name) as fh:
                    next(fh)
                    for line in fh:
                        parts = line.split(None, 4)
                        if parts[1].endswith(self.port_hex) and parts[3] == "01":
                            now.add(parts[2])
            except OSError:
                continue
        self.seen |= now
        return len(now)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.peak = max(self.peak, self.count())

    def __enter__(self) -> "ConnSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Child:
    """What `run_child` measured of one subprocess."""

    argv: list[str]
    rc: int
    wall_s: float
    cpu_s: float
    """user + system CPU of the child (all its threads), from wait4."""
    maxrss_mib: float
    server_cpu_s: float | None
    foreign_cpu_s: float
    """CPU the rest of the machine used meanwhile (not this child, not the fake server): other
    users of the 2 cores disturb the figures; 0 means a quiet machine."""
    peak_connections: int | None = None
    """Most ESTABLISHED connections the fake server held at once during the run."""
    connections_seen: int | None = None
    """Distinct client connections seen at the server (sampled: a lower bound of those opened)."""
    report: dict[str, Any] = field(default_factory=dict)
    """The JSON the worker printed on its last stdout line (empty for non-workers)."""
    stdout_tail: str = ""
    stderr_tail: str = ""
    started_at: float = 0.0
    """`time.time()` just before the child was started (to line it up with the fake server's request log)."""


def run_child(argv: list[str], server: FakeServer | None = None, env: dict[str, str] | None = None,
              timeout: float = 900.0, parse_json: bool = True, sample_connections: bool = False) -> Child:
    """Run `argv`, return wall, CPU and peak RSS of that process alone (os.wait4)."""
    if QUIET["max_wait_s"] > 0:
        wait_quiet()
    out_path = Path(f"/tmp/latitude-bench-{os.getpid()}-out.txt")
    err_path = Path(f"/tmp/latitude-bench-{os.getpid()}-err.txt")
    s0 = server.cpu() if server else None
    b0 = system_busy_s()
    me = resource.getrusage(resource.RUSAGE_SELF)
    me0 = me.ru_utime + me.ru_stime
    sampler = ConnSampler(server.port) if (server and sample_connections) else None
    if sampler:
        sampler.__enter__()
    started_at = time.time()
    t0 = time.perf_counter()
    with open(out_path, "w") as out, open(err_path, "w") as err:
        proc = subprocess.Popen(argv, cwd=REPO, stdout=out, stderr=err, env=env or base_env())
        deadline = time.monotonic() + timeout
        try:
            while True:
                pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if time.monotonic() > deadline:
                    proc.kill()
                    pid, status, ru = os.wait4(proc.pid, 0)
                    break
                time.sleep(0.01)
        except BaseException:
            proc.kill()
            os.wait4(proc.pid, 0)
            if sampler:
                sampler.__exit__()
            raise
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if sampler:
        sampler.__exit__()
    s1 = server.cpu() if server else None
    b1 = system_busy_s()
    me = resource.getrusage(resource.RUSAGE_SELF)
    me1 = me.ru_utime + me.ru_stime
    stdout = out_path.read_text(errors="replace")
    stderr = err_path.read_text(errors="replace")
    out_path.unlink(missing_ok=True)
    err_path.unlink(missing_ok=True)
    report: dict[str, Any] = {}
    if parse_json:
        for line in reversed(stdout.strip().splitlines()):
            if line.startswith("{"):
                try:
                    report = json.loads(line)
                except ValueError:
                    pass
                break
    return Child(argv=argv, rc=proc.returncode, wall_s=wall, cpu_s=ru.ru_utime + ru.ru_stime,
                 maxrss_mib=ru.ru_maxrss / 1024, server_cpu_s=(s1 - s0) if server else None,
                 foreign_cpu_s=max(0.0, (b1 - b0) - (ru.ru_utime + ru.ru_stime) - ((s1 - s0) if server else 0.0)
                                   - (me1 - me0)),
                 peak_connections=sampler.peak if sampler else None,
                 connections_seen=len(sampler.seen) if sampler else None, report=report, stdout_tail=stdout[-2000:], stderr_tail=stderr[-3000:],
                 started_at=started_at)


def worker(mode: str, *args: str, server: FakeServer | None = None, env: dict[str, str] | None = None,
           timeout: float = 900.0, sample_connections: bool = False) -> Child:
    child = run_child([PYTHON, str(BENCH / "_worker.py"), mode, *args], server=server, env=env, timeout=timeout,
                      sample_connections=sample_connections)
    if child.rc != 0 or not child.report:
        raise RuntimeError(f"worker {mode} failed (rc {child.rc}):\n{child.stdout_tail}\n{child.stderr_tail}")
    return child


def write_models_file(path: Path, api_base: str, model: str = "openai/gpt-4o-mini", transport: str = "litellm") -> Path:
    path.write_text(
        "# written by bench/: the `bench` alias points at the fake provider\n"
        "models:\n"
        f"  bench: {{model: {model}, api_base: \"{api_base}\", api_key_env: {API_KEY_ENV}, timeout_s: 600, "
        f"transport: {transport}}}\n"
    )
    return path


def machine() -> dict[str, Any]:
    cpu_model = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        from importlib.metadata import version

        litellm_v = version("litellm")
    except Exception:
        litellm_v = "?"
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cpus": os.cpu_count(), "cpu_model": cpu_model, "mem_gib": round(mem_gib, 1),
            "python": platform.python_version(), "platform": platform.platform(), "litellm": litellm_v}


def save(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    data = {"benchmark": name, "date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "machine": machine(), **data}
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


def table(rows: list[list[Any]], headers: list[str]) -> str:
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for n, r in enumerate(cells):
        lines.append("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(c: Any) -> str:
    if c is None:
        return "-"
    if isinstance(c, float):
        if abs(c) >= 100:
            return f"{c:,.0f}"
        if abs(c) >= 10:
            return f"{c:.1f}"
        return f"{c:.2f}" if abs(c) >= 0.1 else f"{c:.3f}"
    return str(c)
