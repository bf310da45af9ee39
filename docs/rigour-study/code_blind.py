"""Code the worked study of `docs/rigour.md` (§7) from the keyboard, as three people would.

The TUI is driven headlessly with Textual's Pilot, built by the CLI's own `tui.app.make_app`; every tag is
made by a key press on a transcript (`m` for conversation mode, a digit per code, `x` to mark the
conversation reviewed, `n` for the next one), so it goes through the same path as a person's.

The "people" are scripted readers, not people: each applies a code when the replies *it is shown* contain
one of the code's `include` words (from `codebook.yaml`). That is the honest limit of this example: it shows
what blind coding records and how the tallies count it, not how well people code.

- **ben** codes blind (`blind=True`): he reads masked transcripts under neutral labels, in his own order,
  every reply;
- **cleo** codes blind too, but reads `gratitude` by its definition ("thanks the researcher for *the
  offer*"): she looks for it only in the replies after the offer (the second reply on), and the other
  codes in every reply;
- **ana**, who ran the study (`latitude run --researcher ana`), codes the first `ANA_READS` conversations
  of the list unblinded, like ben: her units are self-coded.

Usage, from the study folder after the commands of §2-4 (``LATITUDE_DB=study.db``)::

    python code_blind.py study.db RUN_ID

It prints the blind coder's conversations list as ben saw it, then what each coder tagged.
"""

from __future__ import annotations

import asyncio
import io
import os
import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
SIZE = (120, 40)
"""Terminal size of every session (the rendered screen shown in the doc is at this size)."""
ANA_READS = 8
"""How many conversations ana (the researcher, self-coded) codes."""


@dataclass(frozen=True)
class Reader:
    """A scripted coder: who, whether blind, and which replies each code is looked for in."""

    coder: str
    blind: bool
    from_reply: dict[str, int] = field(default_factory=dict)
    """Per code, the first reply (0-based) it is looked for in; 0 when not given."""
    limit: int | None = None
    """Code only this many conversations (None: all)."""


READERS = (
    Reader("ben", blind=True),
    Reader("cleo", blind=True, from_reply={"gratitude": 1}),
    Reader("ana", blind=False, limit=ANA_READS),
)


def include_words(codebook: Path = HERE / "codebook.yaml") -> dict[str, list[str]]:
    """Each code's `include` words, lower-cased."""
    doc = yaml.safe_load(codebook.read_text())
    return {c["name"]: [w.strip().lower() for w in c.get("include", "").split(",") if w.strip()]
            for c in doc["codes"]}


def codes_for(replies: list[str], reader: Reader, words: dict[str, list[str]]) -> list[str]:
    """The codes ``reader`` applies to a conversation whose replies (in order) are ``replies``."""
    out = []
    for code, include in words.items():
        text = " ".join(replies[reader.from_reply.get(code, 0):]).lower()
        if any(w in text for w in include):
            out.append(code)
    return out


def screen_text(app: Any) -> str:
    """The screen as rendered now, as plain text (what a person sees)."""
    from rich.console import Console

    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True, record=True,
                      legacy_windows=False, safe_box=False, color_system="truecolor")
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return "\n".join(line.rstrip() for line in console.export_text().splitlines()).rstrip() + "\n"


def _count(db: Path, sql: str, *params: Any) -> int:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return int(con.execute(sql, params).fetchone()[0])
    finally:
        con.close()


async def _settle(pilot: Any, predicate: Callable[[], Any] | None = None, timeout: float = 60.0) -> None:
    """Wait until no worker runs and ``predicate`` holds (never a fixed sleep)."""
    from textual.worker import WorkerCancelled

    app = pilot.app
    deadline = time.monotonic() + timeout
    while True:
        try:
            await app.workers.wait_for_complete()
        except WorkerCancelled:
            pass
        await pilot.pause()
        if not any(w.is_running for w in app.workers) and (predicate is None or predicate()):
            await pilot.pause()
            return
        if time.monotonic() > deadline:
            raise TimeoutError("the TUI did not settle")


@dataclass
class Session:
    """What one coder did: their conversations list as shown, and the codes per conversation read."""

    coder: str
    list_screen: str = ""
    coded: list[tuple[str, list[str]]] = field(default_factory=list)
    """(conversation id, codes applied) in reading order."""


async def code_as(db: Path, run_id: str, reader: Reader, words: dict[str, list[str]] | None = None) -> Session:
    """Open ``run_id`` in the TUI as ``reader.coder`` and code it from the keyboard."""
    from tui.app import make_app
    from tui.screens.conversations import ConversationsScreen
    from tui.screens.runs import RunsScreen
    from tui.screens.transcript import TranscriptScreen

    os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")
    words = words or include_words()
    app = make_app(db_url=f"sqlite:///{db}", coder=reader.coder, blind=reader.blind, cursor_blink=False)
    done = Session(reader.coder)
    live = "SELECT count(*) FROM tags WHERE deleted_at IS NULL AND coder = ?"
    reviewed = "SELECT count(*) FROM reviewed_marks WHERE deleted_at IS NULL AND coder = ?"
    async with app.run_test(size=SIZE) as pilot:
        await _settle(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loaded)
        for _ in range(50):
            if app.screen.selected_run() == run_id:
                break
            await pilot.press("down")
        assert app.screen.selected_run() == run_id, f"run {run_id} is not on the runs screen"
        await pilot.press("enter")
        await _settle(pilot, lambda: isinstance(app.screen, ConversationsScreen) and app.screen.count is not None)
        done.list_screen = screen_text(app)
        total = len(app.screen.rows)
        await pilot.press("enter")
        await _settle(pilot, lambda: isinstance(app.screen, TranscriptScreen) and app.screen.record is not None)
        tr = app.screen
        if tr.mode != "conversation":
            await pilot.press("m")
        codes = [c.name for c in app.codes]
        for _ in range(reader.limit or total):
            record = tr.record
            cid = record.conversation.id
            replies = [m.content for m in record.messages if m.role == "assistant"]
            chosen = codes_for(replies, reader, words)
            tags_before = _count(db, live, reader.coder)
            reviewed_before = _count(db, reviewed, reader.coder)
            await pilot.press(*[str(codes.index(c) + 1) for c in chosen], "x")
            await _settle(pilot, lambda: _count(db, live, reader.coder) == tags_before + len(chosen)
                          and _count(db, reviewed, reader.coder) == reviewed_before + 1)
            done.coded.append((cid, chosen))
            await pilot.press("n")
            await _settle(pilot, lambda: tr.record is not None)
            if tr.record.conversation.id == cid:
                break
    return done


async def code_study(db: Path, run_id: str, readers: tuple[Reader, ...] = READERS) -> list[Session]:
    """Every reader codes the run in turn (one TUI session each)."""
    return [await code_as(db, run_id, r) for r in readers]


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.split("Usage", 1)[1].split("::", 1)[1].strip(), file=sys.stderr)
        return 2
    db, run_id = Path(argv[0]), argv[1]
    sessions = asyncio.run(code_study(db, run_id))
    print(f"ben's conversations list (blind), {SIZE[0]}x{SIZE[1]}:\n")
    print(sessions[0].list_screen)
    for s in sessions:
        n_tags = sum(len(c) for _, c in s.coded)
        print(f"{s.coder}: {len(s.coded)} conversations read and marked reviewed, {n_tags} tags")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
