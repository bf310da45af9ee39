"""One registry of actions feeds the bindings, the footer, the palette and the help screen."""

from __future__ import annotations

import pytest
from textual.command import CommandPalette
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

from tests.tui.conftest import SIZE, settle, to_transcript
from tui import actions
from tui.screens.codebook import CodebookScreen
from tui.screens.compare import CompareScreen
from tui.screens.conversations import ConversationsScreen
from tui.screens.help import HelpScreen
from tui.screens.review import ReviewScreen
from tui.screens.runs import RunsScreen
from tui.screens.tallies import TalliesScreen
from tui.screens.transcript import TranscriptScreen

SCREENS = {"runs": RunsScreen, "conversations": ConversationsScreen, "transcript": TranscriptScreen,
           "codebook": CodebookScreen, "review": ReviewScreen, "tallies": TalliesScreen, "compare": CompareScreen}


def test_every_action_is_complete_and_bound() -> None:
    # (ids are unique: tui.actions refuses duplicates when imported)
    app_keys = {k.strip() for a in actions.for_scope("app") for k in a.keys.split(",")}
    for scope in actions.SCOPES:
        keys = [k.strip() for a in actions.for_scope(scope) for k in a.keys.split(",")]
        assert len(keys) == len(set(keys)), f"{scope}: a key is bound twice"
        if scope != "app":
            assert not set(keys) & app_keys, f"{scope}: a key shadows an app-wide key"
    for spec in actions.ACTIONS:
        assert spec.id.count(".") == 1 and spec.scope in actions.SCOPES, spec.id
        assert spec.help.endswith(".") and spec.label and spec.keys, spec.id
        area, _, rest = spec.title.partition(": ")
        assert area and area == area.lower() and rest[:1].isupper(), spec.title
        b = spec.binding()
        assert (b.id, b.tooltip, b.description) == (spec.id, spec.help, spec.label)
    for scope, screen in SCREENS.items():
        bound = {b.id for b in screen.BINDINGS}  # type: ignore[attr-defined]
        assert bound == {a.id for a in actions.for_scope(scope)}, scope
        assert screen.SCOPE == scope
        for spec in actions.for_scope(scope):
            method = "action_" + spec.action.split("(")[0]
            assert callable(getattr(screen, method, None)), f"{screen.__name__}.{method}"
    from tui.app import LatitudeApp

    for spec in actions.for_scope("app"):
        assert spec.action == "command_palette" or callable(getattr(LatitudeApp, "action_" + spec.action, None))


async def test_help_shows_all_actions_by_scope(app_factory) -> None:
    from rich.console import Console

    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: getattr(app.screen, "loaded", False))
        await pilot.press("question_mark")
        await settle(pilot, lambda: isinstance(app.screen, HelpScreen))
        console = Console(width=200, record=True, file=open("/dev/null", "w"))
        for static in app.screen.query("#help Static"):
            console.print(static.visual._renderable if hasattr(static.visual, "_renderable") else static.render())
        out = console.export_text()
        for spec in actions.ACTIONS:
            if spec.id.startswith("transcript.code_") and spec.id != "transcript.code_1":
                continue
            assert spec.title in out, spec.id
        assert "1-9" in out and "Transcript" in out and "Review queue" in out
        await pilot.press("escape")
        await settle(pilot, lambda: isinstance(app.screen, RunsScreen))
        await pilot.press("question_mark")
        await settle(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.press("question_mark")  # ? again closes it
        await settle(pilot, lambda: isinstance(app.screen, RunsScreen))


async def test_footer_shows_the_keys_that_apply(app_factory) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await to_transcript(pilot, row=0)
        shown = {b.binding.id for b in screen.active_bindings.values() if b.binding.show}
        assert {"transcript.next", "transcript.code_1", "transcript.pick", "transcript.undo", "app.help"} <= shown
        assert "conversations.search" not in shown
        footer_keys = {k.description for k in screen.query_one(Footer).query(FooterKey)}
        assert {"Next", "Toggle code", "Undo"} <= footer_keys, footer_keys


async def test_palette_lists_and_runs_actions(app_factory, store) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await to_transcript(pilot, row=0)
        from tui.commands import ActionCommands

        provider = ActionCommands(screen)
        titles = [hit.text async for hit in provider.discover()]
        assert "tag: Add code" in titles and "go: Next conversation" in titles and "view: Codebook" in titles
        assert "review: Accept suggestion" not in titles  # not on this screen
        hits = [hit async for hit in provider.search("next conv")]
        assert hits and hits[0].text == "go: Next conversation"
        await pilot.press("ctrl+p")
        await settle(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press(*"next conversation")
        await settle(pilot)
        await pilot.pause(0.3)  # the palette searches on a timer of its own
        await pilot.press("enter")
        await settle(pilot, lambda: isinstance(app.screen, TranscriptScreen)
                     and app.screen.loaded_id == store.conversations[1])


async def test_keymap_remaps_by_binding_id(app_factory, store) -> None:
    app = app_factory(keymap={"transcript.next": "x"})
    async with app.run_test(size=SIZE) as pilot:
        screen = await to_transcript(pilot, row=0)
        await pilot.press("x")
        await settle(pilot, lambda: screen.loaded_id == store.conversations[1])


def test_cli_registers_tui_and_help_stays_light() -> None:
    import subprocess
    import sys

    code = ("import sys, runner.cli; from typer.main import get_command; "
            "cmd = get_command(runner.cli.app); assert 'tui' in cmd.commands; "
            "print(sorted(m for m in sys.modules if m.startswith(('textual', 'tui'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_cli_starts_the_app_with_make_app(monkeypatch, store) -> None:
    from typer.testing import CliRunner

    import tui.app
    from runner.cli import app as cli

    seen = {}

    class Fake:
        def run(self) -> None:
            seen["ran"] = True

    def fake_make_app(**kw):
        seen.update(kw)
        return Fake()

    monkeypatch.setattr(tui.app, "make_app", fake_make_app)
    result = CliRunner().invoke(cli, ["tui", "--db", str(store.path), "--coder", "dana"])
    assert result.exit_code == 0, result.output
    assert seen == {"db_url": store.url, "coder": "dana", "migrate": False, "blind": False, "ran": True}
    seen.clear()
    result = CliRunner().invoke(cli, ["tui", "--db", str(store.path), "--coder", "dana", "--blind"])
    assert result.exit_code == 0, result.output
    assert seen["blind"] is True


@pytest.mark.parametrize("coder_env", ["zoe"])
def test_default_coder_from_environment(monkeypatch, coder_env) -> None:
    from tui.app import default_coder

    monkeypatch.setenv("LATITUDE_CODER", coder_env)
    assert default_coder() == coder_env


async def test_movement_and_closing_keys(app_factory, store) -> None:
    """The keys not exercised elsewhere: turn movement, paging, refresh, Esc out of every screen."""
    from tui.screens.modals import CodePickerModal

    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await to_transcript(pilot, row=1)
        last = len(list(screen.query("TurnView"))) - 1
        await pilot.press("G")
        assert screen.cursor == last
        await pilot.press("k", "up")
        assert screen.cursor == last - 2
        await pilot.press("g")
        assert screen.cursor == 0
        await pilot.press("end", "home", "down")
        assert screen.cursor == 1
        await pilot.press("pagedown", "space", "pageup")
        await pilot.press("t")
        await settle(pilot, lambda: isinstance(app.screen, CodePickerModal))
        options = app.screen.query_one("#code-options")
        await pilot.press("down", "down", "up")
        assert options.highlighted == 1
        await pilot.press("escape")
        await settle(pilot, lambda: app.screen is screen)
        await pilot.press("escape")
        await settle(pilot, lambda: isinstance(app.screen, ConversationsScreen))
        conversations = app.screen
        generation = conversations.generation
        await pilot.press("r")
        await settle(pilot, lambda: conversations.generation == generation + 1 and conversations.count == 14)
        for key, screen_type in (("f3", CodebookScreen), ("f5", TalliesScreen)):
            await pilot.press(key)
            await settle(pilot, lambda: isinstance(app.screen, screen_type) and app.screen.loaded)
            await pilot.press("escape")
            await settle(pilot, lambda: app.screen is conversations)
