"""Startup: how long `latitude --help` takes, and what it imports.

    uv run python bench/startup.py [--runs 10]

- wall (median of --runs runs) and CPU of `.venv/bin/latitude --help`, `latitude run --help`,
  and a bare `python -c pass` for the interpreter's own floor; target: --help < 0.5 s;
- `python -X importtime -c "import runner.cli"` and the same for a full `--help` and
  `run --help` (the entry point's `main()` with that argv): proves litellm (and the other
  heavy modules) are not imported, and lists the top 10 import costs.

Results go to bench/results/startup.json.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import PYTHON, QUIET, REPO, base_env, run_child, save, table  # noqa: E402

LATITUDE = REPO / ".venv" / "bin" / "latitude"
HEAVY = ("litellm", "openai", "sqlalchemy", "sqlmodel", "alembic", "textual", "rich", "jinja2", "pydantic",
         "aiohttp", "httpx", "llama_cpp", "tiktoken", "tokenizers", "ruamel", "mcp", "psycopg")
HELP_SNIPPET = "import sys; sys.argv = {argv!r}\nfrom runner.cli import main\ntry:\n    main()\nexcept SystemExit:\n    pass\n"


def timed(argv: list[str], runs: int, label: str | None = None, **env: str) -> dict[str, Any]:
    walls, cpus = [], []
    for _ in range(runs):
        ch = run_child(argv, parse_json=False, env=base_env(COLUMNS="100", **env))
        if ch.rc != 0:
            raise RuntimeError(f"{argv} failed: {ch.stderr_tail}")
        walls.append(ch.wall_s)
        cpus.append(ch.cpu_s)
    return {"argv": label or " ".join(Path(a).name if i == 0 else a for i, a in enumerate(argv)), "runs": runs,
            "wall_median_s": statistics.median(walls), "wall_min_s": min(walls), "wall_max_s": max(walls),
            "cpu_median_s": statistics.median(cpus)}


def importtime(code: str) -> list[dict[str, Any]]:
    """Rows of `-X importtime`: module, self and cumulative microseconds, depth."""
    proc = subprocess.run([PYTHON, "-X", "importtime", "-c", code], cwd=REPO, capture_output=True, text=True,
                          env=base_env(COLUMNS="100"))
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        _, rest = line.split(":", 1)
        self_us, cum_us, name = rest.split("|", 2)
        depth = (len(name) - len(name.lstrip())) // 2
        rows.append({"module": name.strip(), "self_us": int(self_us), "cumulative_us": int(cum_us), "depth": depth})
    return rows


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    modules = {r["module"] for r in rows}
    top_level = {m.split(".")[0] for m in modules}
    heavy = {h: (h in top_level) for h in HEAVY}
    total_us = sum(r["self_us"] for r in rows)
    by_pkg: dict[str, int] = {}
    for r in rows:
        pkg = r["module"].split(".")[0]
        by_pkg[pkg] = by_pkg.get(pkg, 0) + r["self_us"]
    top_pkgs = sorted(by_pkg.items(), key=lambda kv: -kv[1])[:10]
    top_cum = sorted((r for r in rows if r["depth"] <= 1), key=lambda r: -r["cumulative_us"])[:10]
    top_self = sorted(rows, key=lambda r: -r["self_us"])[:10]
    return {"modules": len(modules), "total_self_ms": total_us / 1000, "heavy_imported": heavy,
            "litellm_imported": heavy["litellm"],
            "top_packages_by_self_ms": [{"package": p, "self_ms": us / 1000} for p, us in top_pkgs],
            "top_cumulative": [{"module": r["module"], "cumulative_ms": r["cumulative_us"] / 1000} for r in top_cum],
            "top_self": [{"module": r["module"], "self_ms": r["self_us"] / 1000} for r in top_self]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--wait-quiet", type=float, default=60.0,
                    help="wait up to this many seconds for other processes to go quiet before each run (0: never)")
    args = ap.parse_args()
    QUIET["max_wait_s"] = args.wait_quiet

    timed([PYTHON, "-c", "pass"], 1)  # warm the page cache
    timed([str(LATITUDE), "--help"], 1)
    runs = [
        timed([PYTHON, "-c", "pass"], args.runs),
        timed([str(LATITUDE), "--help"], args.runs),
        timed([str(LATITUDE), "run", "--help"], args.runs),
    ]
    cli = summarise(importtime("import runner.cli"))
    help_ = summarise(importtime(HELP_SNIPPET.format(argv=["latitude", "--help"])))
    run_help = summarise(importtime(HELP_SNIPPET.format(argv=["latitude", "run", "--help"])))
    target_met = runs[1]["wall_median_s"] < 0.5

    print(table([[r["argv"], r["runs"], r["wall_median_s"], r["wall_min_s"], r["wall_max_s"], r["cpu_median_s"]]
                 for r in runs], ["command", "runs", "wall median s", "min", "max", "CPU median s"]))
    print(f"\n`latitude --help` median {runs[1]['wall_median_s']:.3f} s (target < 0.5 s: "
          f"{'met' if target_met else 'NOT met'})")
    for label, s in (("import runner.cli", cli), ("latitude --help", help_), ("latitude run --help", run_help)):
        imported = [h for h, yes in s["heavy_imported"].items() if yes]
        print(f"\n-X importtime, {label}: {s['modules']} modules, {s['total_self_ms']:.0f} ms of imports; "
              f"litellm imported: {'YES' if s['litellm_imported'] else 'no'}; heavy packages imported: "
              f"{', '.join(imported) or 'none'}")
    print("\ntop 10 import costs of `latitude --help` (cumulative, top-level imports):")
    for r in help_["top_cumulative"]:
        print(f"  {r['cumulative_ms']:7.1f} ms  {r['module']}")
    print("top 10 packages by self time:")
    for r in help_["top_packages_by_self_ms"]:
        print(f"  {r['self_ms']:7.1f} ms  {r['package']}")
    print("\ntop 10 import costs of `latitude run --help` (cumulative, top-level imports):")
    for r in run_help["top_cumulative"]:
        print(f"  {r['cumulative_ms']:7.1f} ms  {r['module']}")

    path = save("startup", {"runs": runs, "target_met": target_met, "importtime_runner_cli": cli,
                            "importtime_help": help_, "importtime_run_help": run_help})
    print(f"\nwrote {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
