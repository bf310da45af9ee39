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
    BatchEnded,
    BatchPolled,
    BatchSubmitted,
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


@dataclass
class BatchStats:
    """The batches of a run as the display counts them (from `Batch*` events)."""

    out: dict[str, int]
    """Batch id → requests, for batches submitted and not yet read."""
    finished_now: dict[str, int]
    """Batch id → requests answered so far (last poll), for batches out."""
    finished: int = 0
    """Requests answered in batches read."""
    failed: int = 0
    """Requests of batches read that failed (retried)."""
    batches: int = 0
    """Batches submitted in this session."""
    live_cost: float = 0.0
    """What the answered requests would have cost live."""
    cost: float = 0.0
    """What they cost at the batch price."""
    unpriced: int = 0
    """Batches read whose saving is unknown (a price missing from the map)."""

    @property
    def pending(self) -> int:
        """Requests in batches out, not yet answered."""
        return sum(n - self.finished_now.get(b, 0) for b, n in self.out.items())

    def line(self) -> str:
        saving = self.live_cost - self.cost
        pct = f" ({saving / self.live_cost:.0%} of ${self.live_cost:,.4f} live)" if self.live_cost else ""
        note = f"; {self.unpriced} batch(es) unpriced" if self.unpriced else ""
        return (f"batches: {len(self.out)} out of {self.batches} submitted · requests: {self.pending:,} pending, "
                f"{self.finished:,} finished, {self.failed:,} failed · saving ${saving:,.4f}{pct}{note}")


class RunDisplay:
    """Counts events and draws a per-model table (at most a few times a second)."""

    def __init__(self, console: Console | None = None):
        self.console = console or Console(highlight=False)
        self.stats: dict[str, ModelStats] = defaultdict(ModelStats)
        self.run_id = ""
        self.started = time.monotonic()
        self.stop_reasons: dict[str, int] = defaultdict(int)
        self.live: Live | None = None
        self.batches = BatchStats({}, {})

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
        elif isinstance(event, BatchSubmitted):
            self.batches.out[event.batch_id] = event.requests
            self.batches.batches += 1
        elif isinstance(event, BatchPolled):
            if event.batch_id in self.batches.out:
                self.batches.finished_now[event.batch_id] = event.finished
            else:  # a batch of an earlier session, polled again after a resume
                self.batches.out[event.batch_id] = event.requests
                self.batches.finished_now[event.batch_id] = event.finished
        elif isinstance(event, BatchEnded):
            b = self.batches
            b.out.pop(event.batch_id, None)
            b.finished_now.pop(event.batch_id, None)
            b.finished += event.finished
            b.failed += event.failed
            if event.live_cost is None or event.cost is None:
                b.unpriced += 1
            else:
                b.live_cost += event.live_cost
                b.cost += event.cost
        elif isinstance(event, JudgeStarted):
            self.run_id = event.coder
            s = self.stats[event.model_alias]
            s.total, s.before, s.done = event.units, event.already_done, event.already_done

    def renderable(self) -> Any:
        """The live view: the per-model table, and the batches line when the run uses batches."""
        if not self.batches.batches and not self.batches.out:
            return self.table()
        return Group(self.table(), Text(self.batches.line()))

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
        self.live = Live(get_renderable=self.renderable, console=self.console, refresh_per_second=4, transient=True)
        self.live.__enter__()
        return self

    def plain(self) -> str:
        """The final figures for a log or a pipe: `run <id>`, then tab-separated lines, nothing cut."""
        columns = ["model", "done", "total", "turns", "tokens_in", "tokens_out", "cost_usd", "errors", "retries"]
        lines = [f"run {self.run_id}", "\t".join(columns)]
        for alias, s in self.stats.items():
            lines.append("\t".join(str(v) for v in (alias, s.done, s.total, s.turns, s.tokens_in, s.tokens_out,
                                                    round(s.cost, 6), s.errors, s.retries)))
        return "\n".join(lines)

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)
        if not self.console.is_terminal:  # piped or logged: whole values (a run id is resumable from a log)
            self.console.file.write(self.plain() + "\n")  # tabs kept: Rich would expand them
            self.console.file.flush()
        else:
            self.console.print(self.table(final=True))
        if self.batches.batches or self.batches.out:
            self.console.print(Text(self.batches.line()), soft_wrap=True, crop=False)
        if self.stop_reasons:
            reasons = ", ".join(f"{k}: {v}" for k, v in sorted(self.stop_reasons.items()))
            self.console.print(Text(f"stop reasons: {reasons}"), soft_wrap=True, crop=False)


__all__ = ["RunDisplay"]
