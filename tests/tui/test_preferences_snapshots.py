"""Snapshots of the preferences screen (ranking and one option's comparisons) at 80×24 and 200×50, over a
real run of the chooser persona whose ids are then fixed (run and conversation ids are random)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.tui.conftest import settle
from tests.tui.test_preferences import PROTOCOL

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((200, 50), id="200x50")]
RUN_ID = "prefsrun0001"


@pytest.fixture
def fixed_prefs_store(cli, tmp_path: Path, tmp_db_url: str) -> str:
    models = tmp_path / "models.yaml"
    models.write_text("models:\n  chooser:\n    model: sim/chooser\n    extra: {unclear: 0.25}\n")
    proto = tmp_path / "p.yaml"
    proto.write_text(PROTOCOL)
    result = cli("run", proto, "-m", "chooser", "--models", models)
    assert result.exit_code == 0, result.output
    db = sqlite3.connect(tmp_db_url.removeprefix("sqlite:///"))
    db.execute("PRAGMA foreign_keys = OFF")
    db.execute("UPDATE runs SET id = ?, started_at = '2026-11-30 09:00:00.000000', "
               "ended_at = '2026-11-30 09:05:00.000000'", (RUN_ID,))
    db.execute("UPDATE conversations SET run_id = ?, started_at = '2026-11-30 09:00:00.000000', "
               "ended_at = '2026-11-30 09:01:00.000000'", (RUN_ID,))
    db.execute("UPDATE messages SET started_at = '2026-11-30 09:00:00.000000', "
               "created_at = '2026-11-30 09:00:01.000000'")
    db.execute("UPDATE choices SET created_at = '2026-11-30 09:00:01.000000'")
    ids = [r[0] for r in db.execute("SELECT id FROM conversations ORDER BY seq")]
    for n, old in enumerate(ids):
        new = f"c{n:011d}"
        for table, column in (("conversations", "id"), ("messages", "conversation_id"),
                              ("choices", "conversation_id")):
            db.execute(f"UPDATE {table} SET {column} = ? WHERE {column} = ?", (new, old))
    db.commit()
    db.close()
    return tmp_db_url


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("view", ["ranking", "comparisons"])
def test_preferences(snap_compare, fixed_prefs_store, size, view, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TEXTUAL_ANIMATIONS", "none")
    from tui.app import make_app
    from tui.screens.preferences import PreferencesScreen

    async def before(pilot) -> None:  # type: ignore[no-untyped-def]
        pilot.app.action_preferences(RUN_ID)
        await settle(pilot, lambda: isinstance(pilot.app.screen, PreferencesScreen) and pilot.app.screen.loaded)
        if view == "comparisons":
            await pilot.press("enter")
            await settle(pilot, lambda: pilot.app.screen.mode == "comparisons")

    app = make_app(db_url=fixed_prefs_store, coder="ana", cursor_blink=False)
    assert snap_compare(app, terminal_size=size, run_before=before)
