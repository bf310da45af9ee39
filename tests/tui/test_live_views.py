"""Views that stay current (issue 14): changes from this window or another show without a key,
a removed code is refused, an import shows its diff first, slow loads show an indicator, live
runs and failed conversations say what is going on; invisible characters are shown."""

from __future__ import annotations

import threading

from sqlmodel import Session

from runner.store.db import make_engine
from runner.store.tables import RunRow
from tests.data.tui_fixtures import CODEBOOK_YAML
from tests.tui.conftest import SIZE, live_tags, q, settle, to_conversations, to_transcript
from tui.coding import Coding
from tui.screens.codebook import CodebookScreen
from tui.screens.modals import ConfirmModal, TextModal
from tui.screens.runs import RunsScreen
from tui.screens.tallies import TalliesScreen
from tui.screens.transcript import TranscriptScreen
from tui.text import literal
from tui.widgets.status_line import StatusLine
from tui.widgets.turn_view import TurnView


async def until(pilot, predicate, timeout: float = 15.0) -> None:
    """Wait for ``predicate`` while a worker is still running (`settle` waits for workers to finish)."""
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        await pilot.pause()


def chips(screen: TranscriptScreen) -> str:
    return " ".join(v.build().plain for v in screen.query(TurnView)) + str(
        screen.query_one("#transcript-title").render())


def elsewhere(store, op_name: str, *args) -> None:
    """A write made by another window (its own `Coding`, as a second TUI would)."""
    other = Coding(store.url, "ben")
    try:
        other.submit(getattr(other, op_name)(*args)).result()
    finally:
        other.close()


async def test_a_rename_shows_in_the_open_transcript_at_once(app_factory, store) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        transcript = await to_transcript(pilot, row=0)
        assert "[curiosity]" in chips(transcript)
        await pilot.press("f3")
        await settle(pilot, lambda: isinstance(app.screen, CodebookScreen) and app.screen.codes)
        await pilot.press("r")
        await settle(pilot, lambda: isinstance(app.screen, TextModal))
        app.screen.query_one("#text").value = "wonder"
        await pilot.press("enter")
        # the transcript underneath has re-read its tags: no key pressed on it
        await settle(pilot, lambda: "[wonder]" in chips(transcript) and "[curiosity]" not in chips(transcript))
        assert q(store, "SELECT count(*) AS n FROM tags WHERE code = 'curiosity' AND deleted_at IS NULL")[0]["n"] == 0


async def test_a_change_made_in_another_window_shows_without_a_key(app_factory, store) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        transcript = await to_transcript(pilot, row=0)
        elsewhere(store, "rename_code", "themes", "humour", "wit")
        elsewhere(store, "toggle", store.conversations[0], None, "boredom", store.codebook_id)
        await settle(pilot, lambda: "boredom · ben" in chips(transcript), timeout=120)
        await settle(pilot, lambda: "wit" in [c.name for c in app.codes], timeout=120)


async def test_a_second_window_refuses_a_tag_on_a_removed_code(app_factory, store) -> None:
    app = app_factory(coder="cleo")
    app.POLL_SECONDS = 3600.0  # this window has not noticed yet: the write itself must refuse
    async with app.run_test(size=SIZE) as pilot:
        screen = await to_transcript(pilot, row=0)
        assert app.codes[4].name == "humour"
        elsewhere(store, "delete_code", "themes", "humour")
        await pilot.press("5")
        await settle(pilot, lambda: "no longer a code" in screen.query_one(StatusLine).message)
        assert live_tags(store, "cleo") == []
        message = screen.query_one(StatusLine).message
        assert "“humour” is no longer a code of themes" in message and "Not tagged" in message
        await settle(pilot, lambda: "humour" not in [c.name for c in app.codes])  # the bar follows


async def test_importing_a_codebook_shows_the_diff_and_asks(app_factory, store, tmp_path) -> None:
    source = tmp_path / "smaller.yaml"
    source.write_text(CODEBOOK_YAML.split("  - name: consent")[0] + "  - name: calm\n    definition: Quiet.\n")
    versions = q(store, "SELECT count(*) AS n FROM codebooks WHERE name = 'themes'")[0]["n"]
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: getattr(app.screen, "loaded", False))
        await pilot.press("f3")
        await settle(pilot, lambda: isinstance(app.screen, CodebookScreen) and app.screen.codes)
        for answer in ("n", "y"):
            await pilot.press("i")
            await settle(pilot, lambda: isinstance(app.screen, TextModal))
            app.screen.query_one("#text").value = str(source)
            await pilot.press("enter")
            await settle(pilot, lambda: isinstance(app.screen, ConfirmModal))
            text = app.screen.question.plain
            assert "5 codes now, 3 after" in text and "+ 1 new: calm" in text
            assert "− 3 removed: consent, visualiser, humour" in text and "stop counting" in text
            await pilot.press(answer)
            await settle(pilot, lambda: isinstance(app.screen, CodebookScreen))
            if answer == "n":
                assert q(store, "SELECT count(*) AS n FROM codebooks WHERE name = 'themes'")[0]["n"] == versions
        await settle(pilot, lambda: [c.name for c in app.codes] == ["curiosity", "boredom", "calm"])
        assert q(store, "SELECT count(*) AS n FROM codebooks WHERE name = 'themes'")[0]["n"] == versions + 1


async def test_a_slow_load_shows_a_loading_indicator(app_factory, monkeypatch) -> None:
    from runner.analysis import tally

    release = threading.Event()
    real = tally.tally_rows

    def slow(*args, **kwargs):
        release.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(tally, "tally_rows", slow)
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: getattr(app.screen, "loaded", False))
        await pilot.press("down", "t")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, TalliesScreen)
        await until(pilot, lambda: screen.is_loading("#tallies-body"))  # the load is held: the indicator shows
        assert not screen.loaded
        release.set()
        await settle(pilot, lambda: screen.loaded and not screen.is_loading("#tallies-body"))


async def test_tallies_rows_do_not_run_the_tests(app_factory, monkeypatch) -> None:
    from runner.analysis import stats

    def boom(*args, **kwargs):
        raise AssertionError("the tallies screen shows rows only; it must not run the tests")

    monkeypatch.setattr(stats, "independence_test", boom)
    monkeypatch.setattr(stats, "wilson", boom)  # the statsmodels path (seconds to import)
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: getattr(app.screen, "loaded", False))
        await pilot.press("down", "t")
        await settle(pilot, lambda: isinstance(app.screen, TalliesScreen) and app.screen.loaded)
        assert app.screen.rows and not [n for n in app._notifications if n.severity == "error"]


def test_the_closed_form_wilson_interval_is_the_statsmodels_one() -> None:
    from runner.analysis import stats

    for n in (1, 2, 3, 7, 12, 50, 601):
        for count in sorted({0, 1, n // 3, n // 2, n - 1, n}):
            a, b = stats.wilson(count, n), stats.wilson_closed_form(count, n)
            assert (a.count, a.n, a.p) == (b.count, b.n, b.p)
            assert abs(a.low - b.low) < 1e-12 and abs(a.high - b.high) < 1e-12, (count, n)


async def test_a_new_run_appears_without_a_key(app_factory, store) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loaded)
        screen = app.screen
        engine = make_engine(store.url, write=True)
        try:
            with Session(engine) as s:
                s.add(RunRow(id="run000000009", protocol_name="fresh", protocol_version="1", protocol_path="f.yaml",
                             protocol_text="", protocol_hash="", plan_json="{}", models_json="{}",
                             options_json="{}", latitude_version="t", litellm_version="t", status="running"))
                s.commit()
        finally:
            engine.dispose()
        await settle(pilot, lambda: "run000000009" in [r.id for r in screen.runs], timeout=120)


async def test_a_running_conversation_without_a_reply_says_so(app_factory, store) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await to_conversations(pilot, run_row=0)  # the live run
        await pilot.press("enter")
        await settle(pilot, lambda: isinstance(app.screen, TranscriptScreen) and app.screen.loaded_id)
        waiting = app.screen.query_one("#waiting")
        assert "waiting for the first reply" in str(waiting.render())


async def test_a_failed_conversation_shows_its_error_in_the_header(app_factory, store) -> None:
    failed = q(store, "SELECT seq, stop_detail FROM conversations WHERE run_id = ? AND status = 'error'",
               store.run_id)[0]
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await to_transcript(pilot, row=failed["seq"])
        header = str(screen.query_one("#transcript-title").render())
        assert f"error: {failed['stop_detail']}" in header


async def test_bidi_and_zero_width_characters_are_shown_escaped(app_factory, store) -> None:
    hostile = "safe\u202eevil\u2066x\u2069 zero\u200bwidth\ufeff tag\U000e0041 \x1b[31m"
    assert literal(hostile) == "safe\\u202eevil\\u2066x\\u2069 zero\\u200bwidth\\ufeff tag\\U000e0041 \\x1b[31m"
    engine = make_engine(store.url, write=True)
    try:
        with engine.begin() as c:
            c.exec_driver_sql("UPDATE messages SET content = ? WHERE conversation_id = ? AND idx = 2",
                              (hostile, store.conversations[0]))
    finally:
        engine.dispose()
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await to_transcript(pilot, row=0)
        text = next(v for v in screen.query(TurnView) if v.idx == 2).build().plain
        assert "\\u202e" in text and "\\u200b" in text and "\u202e" not in text and "\u200b" not in text
