"""Rich live progress for a run, fed by engine events (the engine never imports this)."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .engine.events import (
    ConversationFinished,
    ConversationStarted,
    EngineEvent,
    JudgeStarted,
    Retrying,
    RunStarted,
    TurnCompleted,
    UnitFinished,
    UnitStarted,
)


@dataclass
class ModelStats:
    total: int = 0
    done: int = 0
    before: int = 0
    running: int = 0
    turns: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    errors: int = 0
    retries: int = 0


class RunDisplay:
    """Counts events and draws a per-model table (at most a few times a second)."""

    def __init__(self, console: Console | None = None):
        self.console = console or Console(highlight=False)
        self.stats: dict[str, ModelStats] = defaultdict(ModelStats)
        self.run_id = ""
        self.started = time.monotonic()
        self.stop_reasons: dict[str, int] = defaultdict(int)
        self.live: Live | None = None

    def __call__(self, event: EngineEvent) -> None:
        if isinstance(event, TurnCompleted):
            s = self.stats[event.model_alias]
            s.turns += 1
            s.tokens_in += event.tokens_in
            s.tokens_out += event.tokens_out
            s.cost += event.cost
        elif isinstance(event, ConversationStarted):
            self.stats[event.model_alias].running += 1
        elif isinstance(event, ConversationFinished):
            s = self.stats[event.model_alias]
            s.running -= 1
            s.done += 1
            self.stop_reasons[event.stop_reason] += 1
            if event.status == "error":
                s.errors += 1
        elif isinstance(event, Retrying):
            self.stats[event.model_alias].retries += 1
        elif isinstance(event, RunStarted):
            self.run_id = event.run_id
            for alias, n in event.totals.items():
                self.stats[alias].total = n
                self.stats[alias].before = event.already_done.get(alias, 0)
                self.stats[alias].done = event.already_done.get(alias, 0)
        elif isinstance(event, UnitStarted):  # judge runs: units counted like conversations
            self.stats[event.model_alias].running += 1
        elif isinstance(event, UnitFinished):
            s = self.stats[event.model_alias]
            s.running -= 1
            s.done += 1
            self.stop_reasons[event.outcome if event.outcome != "error" else f"error:{event.detail}"] += 1
            if event.outcome != "judged":
                s.errors += 1
        elif isinstance(event, JudgeStarted):
            self.run_id = event.coder
            s = self.stats[event.model_alias]
            s.total, s.before, s.done = event.units, event.already_done, event.already_done

    def table(self, final: bool = False) -> Table:
        elapsed = time.monotonic() - self.started
        title = f"run {self.run_id}" + ("" if final else f"  ·  {elapsed:,.0f}s")
        t = Table("model", "done/total", "running", "turns", "tokens in", "tokens out", "cost", "errors", "retries",
                  "ETA", title=title)
        for alias, s in self.stats.items():
            new = s.done - s.before
            remaining = s.total - s.done
            eta = "—"
            if not final and new and remaining:
                eta = f"{elapsed / new * remaining:,.0f}s"
            t.add_row(Text(alias), f"{s.done}/{s.total}", str(max(s.running, 0)), f"{s.turns:,}", f"{s.tokens_in:,}",
                      f"{s.tokens_out:,}", f"${s.cost:,.4f}", str(s.errors), str(s.retries), eta)
        return t

    def __enter__(self) -> "RunDisplay":
        self.live = Live(get_renderable=self.table, console=self.console, refresh_per_second=4, transient=True)
        self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)
        self.console.print(self.table(final=True))
        if self.stop_reasons:
            reasons = ", ".join(f"{k}: {v}" for k, v in sorted(self.stop_reasons.items()))
            self.console.print(Text(f"stop reasons: {reasons}"))


__all__ = ["RunDisplay"]
