"""TUI test fixtures: a fixture store per test (copied from one built per session), the app
built with the CLI's own `make_app`, and waits on predicates (never sleeps)."""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.data.tui_fixtures import TuiStore, tui_store

SIZE = (120, 40)
"""Every test and snapshot runs at this terminal size."""


@pytest.fixture(scope="session")
def _template(tmp_path_factory: pytest.TempPathFactory) -> TuiStore:
    path = tmp_path_factory.mktemp("tui-template") / "store.db"
    fx = tui_store(path)
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return fx


@pytest.fixture
def store(_template: TuiStore, tmp_path: Path) -> Iterator[TuiStore]:
    """A fresh copy of the fixture store for this test."""
    from runner.analysis import tags

    path = tmp_path / "store.db"
    shutil.copy(_template.path, path)
    tags.clear_history()
    yield replace(_template, path=path, url=f"sqlite:///{path}")
    tags.clear_history()


@pytest.fixture
def app_factory(store: TuiStore, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """``app_factory(coder="ana", **kw)`` → the app over this test's store (cursor blink off)."""
    monkeypatch.setenv("TEXTUAL_ANIMATIONS", "none")
    from tui.app import make_app

    def make(coder: str = "ana", **kw: Any) -> Any:
        kw.setdefault("cursor_blink", False)
        app = make_app(db_url=store.url, coder=coder, **kw)
        return app

    return make


async def settle(pilot: Any, predicate: Callable[[], Any] | None = None, timeout: float = 15.0) -> None:
    """Wait until every worker is done (also those started by finished ones) and ``predicate`` holds."""
    app = pilot.app
    deadline = time.monotonic() + timeout
    from textual.worker import WorkerCancelled

    while True:
        try:
            await app.workers.wait_for_complete()
        except WorkerCancelled:
            pass  # an exclusive worker replaced by a newer one (a refresh): wait for that one instead
        await pilot.pause()
        busy = any(w.is_running for w in app.workers)
        if not busy and (predicate is None or predicate()):
            await pilot.pause()
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting (busy={busy})")


def q(store: TuiStore, sql: str, *params: Any) -> list[dict[str, Any]]:
    """Read the store with plain sqlite3 (the app's own reads are not trusted)."""
    con = sqlite3.connect(f"file:{store.path}?mode=ro", uri=True, timeout=30)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute(sql, params)]
    finally:
        con.close()


def live_tags(store: TuiStore, coder: str = "ana", conversation_id: str | None = None) -> list[dict[str, Any]]:
    sql = "SELECT * FROM tags WHERE deleted_at IS NULL AND coder = ?"
    params: list[Any] = [coder]
    if conversation_id is not None:
        sql += " AND conversation_id = ?"
        params.append(conversation_id)
    return q(store, sql + " ORDER BY id", *params)


async def to_conversations(pilot: Any, run_row: int = 1) -> Any:
    """From the runs screen, open the run on row ``run_row`` (0: the live run, 1: the finished run)."""
    from tui.screens.conversations import ConversationsScreen
    from tui.screens.runs import RunsScreen

    app = pilot.app
    await settle(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loaded)
    for _ in range(run_row):
        await pilot.press("down")
    await pilot.press("enter")
    await settle(pilot, lambda: isinstance(app.screen, ConversationsScreen) and app.screen.shown_at
                 and app.screen.count is not None)
    return app.screen


async def to_transcript(pilot: Any, row: int = 0, run_row: int = 1) -> Any:
    """Open the conversation on ``row`` of the finished run."""
    from tui.screens.transcript import TranscriptScreen

    await to_conversations(pilot, run_row)
    for _ in range(row):
        await pilot.press("down")
    await pilot.press("enter")
    app = pilot.app
    await settle(pilot, lambda: isinstance(app.screen, TranscriptScreen) and app.screen.loaded_id is not None)
    return app.screen
