"""The preferences screen over a real run of the chooser persona (Pilot)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tui.conftest import SIZE, settle

PROTOCOL = """\
name: tui-prefs
description: test
preferences:
  options:
    - {id: story, text: Write a short story}
    - {id: readme, text: Improve a README}
    - {id: viz, text: Build a small visualiser}
    - {id: nothing, text: Do nothing for a while, opt_out: true}
"""


@pytest.fixture
def prefs_store(cli, tmp_path: Path, tmp_db_url: str) -> tuple[str, str]:
    models = tmp_path / "models.yaml"
    models.write_text("models:\n  chooser:\n    model: sim/chooser\n    extra: {unclear: 0.25}\n")
    proto = tmp_path / "p.yaml"
    proto.write_text(PROTOCOL)
    result = cli("run", proto, "-m", "chooser", "--models", models)
    assert result.exit_code == 0, result.output
    return tmp_db_url, result.run_id


async def test_ranking_comparisons_transcript_and_unclear_filter(prefs_store, monkeypatch) -> None:
    monkeypatch.setenv("TEXTUAL_ANIMATIONS", "none")
    from runner.analysis import prefs
    from runner.store.db import make_engine
    from tui.app import make_app
    from tui.screens.preferences import PreferencesScreen
    from tui.screens.transcript import TranscriptScreen
    from sqlmodel import Session

    url, run_id = prefs_store
    engine = make_engine(url)
    with Session(engine) as s:
        records, options = prefs.load_choices(s, [run_id])
    engine.dispose()
    report = prefs.analyse(records, options)
    top = report.groups[0].ranked()[0].option

    app = make_app(db_url=url, coder="ana", cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        app.action_preferences(run_id)
        await settle(pilot, lambda: isinstance(app.screen, PreferencesScreen) and app.screen.loaded)
        screen = app.screen
        table = screen.query_one("#preferences")
        assert table.row_count == 4
        assert str(table.get_row_at(0)[2]) == top
        assert "opt-out" in " ".join(str(table.get_row_at(i)[2]) for i in range(4))

        await pilot.press("enter")  # the top option's comparisons
        await settle(pilot, lambda: screen.mode == "comparisons")
        mine = [r for r in records if top in (r.option_a, r.option_b)]
        assert table.row_count == len(mine) == 6

        await pilot.press("enter")  # a comparison's transcript
        await settle(pilot, lambda: isinstance(app.screen, TranscriptScreen))
        assert app.screen.conversation_id == mine[0].conversation_id
        await pilot.press("escape")
        await settle(pilot, lambda: app.screen is screen)

        await pilot.press("escape", "u")  # back to the ranking, then unclear answers only
        await settle(pilot, lambda: screen.unclear_only)
        unclear = [r for r in records if r.answer == "unclear"]
        assert unclear and table.row_count == len(unclear)
        assert {str(table.get_row_at(i)[3]) for i in range(table.row_count)} == {"unclear"}
