"""The transcript screen: reading, moving through the filter, and tagging (asserted on the store)."""

from __future__ import annotations

from rich.text import Text

from tests.data.builders import HOSTILE
from tests.tui.conftest import SIZE, live_tags, q, settle, to_transcript
from tui.screens.compare import CompareScreen
from tui.screens.conversations import ConversationsScreen
from tui.screens.modals import ArtifactModal, CodeFormModal, CodePickerModal, SpanModal, TextModal
from tui.screens.transcript import TranscriptScreen
from tui.widgets.telemetry import TelemetryPanel
from tui.widgets.turn_view import TurnView


def views(screen: TranscriptScreen) -> list[TurnView]:
    return list(screen.query(TurnView))


def plain(view: TurnView) -> str:
    return view.build().plain


async def test_messages_in_order_with_speakers_offers_stop_and_telemetry(app_factory, store) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await to_transcript(pilot, row=1)  # stop-phrase conversation
        assert screen.loaded_id == store.conversations[1]
        vs = views(screen)
        assert [v.idx for v in vs] == list(range(6))
        assert [v.message.speaker for v in vs] == ["system", "user", "model", "user", "model", "model"]
        assert "-speaker-user" in vs[1].classes and "-speaker-model" in vs[2].classes
        # the system prompt is collapsed until asked for
        assert "system prompt, 3 line(s)" in plain(vs[0]) and "Say 'Stopping now.'" not in plain(vs[0])
        await pilot.press("s")
        assert "Say 'Stopping now.'" in plain(vs[0])
        # offer made and its classification
        assert "offer story_break" in plain(vs[3])
        assert "answers offer story_break: UNCLEAR  by patterns" in plain(vs[4])
        # the stop phrase is highlighted in the message that stopped it
        body = vs[5].build()
        assert "■ stop  stop_phrase: “Stopping now.”" in body.plain
        start = body.plain.index("Stopping now.")
        assert any(span.start <= start < span.end and "yellow" in str(span.style) for span in body.spans)
        # per-turn telemetry of generated messages
        panel = screen.query_one(TelemetryPanel)
        assert panel.row_count == 3
        assert [str(c) for c in panel.get_row_at(0)][:5] == ["2", "1,220", "312", "450", "62"]
        await pilot.press("i")
        assert not panel.display


async def test_reasoning_collapsed_then_expanded(app_factory) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await to_transcript(pilot, row=4)  # claude-sonnet: has reasoning
        turn = next(v for v in views(screen) if v.message.reasoning)
        assert "▸ reasoning (" in plain(turn) and "honest answer" not in plain(turn)
        while screen.current() is not turn:
            await pilot.press("j")
        await pilot.press("r")
        assert "honest answer" in plain(turn)
        await pilot.press("R")
        assert "honest answer" not in plain(turn)


async def test_model_text_is_shown_literally(app_factory, store) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await to_transcript(pilot, row=3)
        assert screen.loaded_id == store.hostile
        turn = views(screen)[2]
        rendered = turn.build()
        assert isinstance(rendered, Text)
        assert "[bold red]not markup[/]" in rendered.plain
        assert "\\x1b[31mnot red\\x1b[0m" in rendered.plain and "\\x07 bell" in rendered.plain
        assert "\x1b" not in rendered.plain and "\x07" not in rendered.plain
        assert not any("red" in str(s.style) for s in rendered.spans)
        # and on the real screen: the escape arrives as the four characters \x1b
        lines = "\n".join(strip.text for strip in turn.render_lines(turn.region.reset_offset))
        assert "\\x1b[31m" in lines and "\x1b" not in lines
        assert HOSTILE.replace("\x1b", "\\x1b").split(" and ")[0] in lines


async def test_next_and_previous_follow_the_filter(app_factory, store) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await to_transcript(pilot, row=0)
        await pilot.press("n")
        await settle(pilot, lambda: screen.loaded_id == store.conversations[1])
        await pilot.press("right")
        await settle(pilot, lambda: screen.loaded_id == store.conversations[2])
        await pilot.press("p")
        await settle(pilot, lambda: screen.loaded_id == store.conversations[1])
        await pilot.press("left")
        await settle(pilot, lambda: screen.loaded_id == store.conversations[0])
        await pilot.press("p")  # the first: stays, says so
        await settle(pilot)
        assert screen.loaded_id == store.conversations[0]
        # back in the list, filtered to one model: next skips the others
        await pilot.press("escape")
        await settle(pilot, lambda: isinstance(app.screen, ConversationsScreen))
        conversations = app.screen
        conversations.set_filter(conversations.filter.with_(model="claude-sonnet"))
        await settle(pilot, lambda: conversations.count == 6)
        await pilot.press("enter")
        await settle(pilot, lambda: isinstance(app.screen, TranscriptScreen) and app.screen.loaded_id)
        transcript = app.screen
        assert transcript.loaded_id == store.conversations[4]
        assert (transcript.position, transcript.count) == (0, 6)
        await pilot.press("n")
        await settle(pilot, lambda: transcript.loaded_id == store.conversations[5])
        for _ in range(3):
            await pilot.press("n")
            await settle(pilot)
        assert transcript.loaded_id == store.pair  # the pair: claude-sonnet is its partner
        await pilot.press("escape")
        await settle(pilot, lambda: isinstance(app.screen, ConversationsScreen))
        assert app.screen.selected_id() == store.pair


async def test_digit_toggles_code_on_focused_turn(app_factory, store) -> None:
    app = app_factory(coder="cleo")
    async with app.run_test(size=SIZE) as pilot:
        screen = await to_transcript(pilot, row=2)
        cid = store.conversations[2]
        assert screen.current().idx == 1  # the first turn after the system prompt
        await pilot.press("j", "1")
        await settle(pilot, lambda: live_tags(store, "cleo"))
        (tag,) = live_tags(store, "cleo")
        assert (tag["conversation_id"], tag["message_idx"], tag["code"], tag["coder"]) == (cid, 2, "curiosity", "cleo")
        assert tag["source"] == "human" and tag["created_at"] and tag["codebook_id"] == store.codebook_id
        await pilot.press("5", "j", "j", "2")
        await settle(pilot, lambda: len(live_tags(store, "cleo")) == 3)
        assert [(t["message_idx"], t["code"]) for t in live_tags(store, "cleo")] == [
            (2, "curiosity"), (2, "humour"), (4, "boredom")]
        await pilot.press("2")  # again: toggles off (soft delete)
        await settle(pilot, lambda: len(live_tags(store, "cleo")) == 2)
        deleted = q(store, "SELECT * FROM tags WHERE coder = 'cleo' AND deleted_at IS NOT NULL")
        assert [t["code"] for t in deleted] == ["boredom"]
        # the screen shows them
        await settle(pilot, lambda: any("[humour]" in plain(v) for v in views(screen)))
        await pilot.press("9")  # no ninth code: nothing written
        await settle(pilot)
        assert len(live_tags(store, "cleo")) == 2


async def test_mode_key_tags_the_whole_conversation(app_factory, store) -> None:
    app = app_factory(coder="cleo")
    async with app.run_test(size=SIZE) as pilot:
        screen = await to_transcript(pilot, row=2)
        await pilot.press("m", "3")
        await settle(pilot, lambda: live_tags(store, "cleo"))
        (tag,) = live_tags(store, "cleo")
        assert (tag["message_idx"], tag["code"]) == (None, "consent")
        assert screen.mode == "conversation"
        await pilot.press("m", "3")
        await settle(pilot, lambda: len(live_tags(store, "cleo")) == 2)
        assert [t["message_idx"] for t in live_tags(store, "cleo")] == [None, 1]


async def test_undo_reverts_the_last_decisions(app_factory, store) -> None:
    app = app_factory(coder="cleo")
    async with app.run_test(size=SIZE) as pilot:
        await to_transcript(pilot, row=2)
        await pilot.press("1", "2", "1")  # add curiosity, add boredom, remove curiosity
        await settle(pilot, lambda: [t["code"] for t in live_tags(store, "cleo")] == ["boredom"])
        await pilot.press("u")  # curiosity back
        await settle(pilot, lambda: {t["code"] for t in live_tags(store, "cleo")} == {"boredom", "curiosity"})
        await pilot.press("ctrl+z", "u")  # boredom gone, then curiosity gone
        await settle(pilot, lambda: live_tags(store, "cleo") == [])
        await pilot.press("u", "u")  # nothing left: harmless
        await settle(pilot)
        assert live_tags(store, "cleo") == []


async def test_picker_adds_any_code(app_factory, store) -> None:
    app = app_factory(coder="cleo")
    async with app.run_test(size=SIZE) as pilot:
        await to_transcript(pilot, row=2)
        await pilot.press("t")
        await settle(pilot, lambda: isinstance(app.screen, CodePickerModal))
        await pilot.press(*"humr")  # fuzzy
        await pilot.press("enter")
        await settle(pilot, lambda: live_tags(store, "cleo"))
        assert [(t["message_idx"], t["code"]) for t in live_tags(store, "cleo")] == [(1, "humour")]


async def test_picker_creates_a_code_with_definition(app_factory, store) -> None:
    app = app_factory(coder="cleo")
    async with app.run_test(size=SIZE) as pilot:
        screen = await to_transcript(pilot, row=2)
        await pilot.press("t")
        await settle(pilot, lambda: isinstance(app.screen, CodePickerModal))
        await pilot.press(*"wonder", "enter")
        await settle(pilot, lambda: isinstance(app.screen, CodeFormModal))
        await pilot.press(*"Expresses awe", "enter")
        await settle(pilot, lambda: live_tags(store, "cleo"))
        (tag,) = live_tags(store, "cleo")
        assert tag["code"] == "wonder"
        newest = q(store, "SELECT * FROM codebooks WHERE name = 'themes' ORDER BY version DESC LIMIT 1")[0]
        assert newest["version"] == 2 and tag["codebook_id"] == newest["id"]
        (code,) = q(store, "SELECT * FROM codes WHERE codebook_id = ? AND name = 'wonder'", newest["id"])
        assert code["definition"] == "Expresses awe" and code["position"] == 5
        await settle(pilot, lambda: [c.name for c in app.codes][-1] == "wonder")
        assert isinstance(app.screen, TranscriptScreen) and app.screen is screen


async def test_span_tag_stores_the_quote(app_factory, store) -> None:
    app = app_factory(coder="cleo")
    async with app.run_test(size=SIZE) as pilot:
        screen = await to_transcript(pilot, row=3)  # hostile text: offsets must map through the escapes
        await pilot.press("j")
        content = screen.current().message.content
        await pilot.press("v")
        await settle(pilot, lambda: isinstance(app.screen, SpanModal))
        # select "not red" (after the ESC sequence) with the keyboard
        shown = app.screen.shown
        start = shown.index("not red")
        area = app.screen.query_one("#span-text")
        area.move_cursor(area.document.get_location_from_index(start))
        for _ in range(len("not red")):
            await pilot.press("shift+right")
        await pilot.press("enter")
        await settle(pilot, lambda: isinstance(app.screen, CodePickerModal))
        await pilot.press(*"humour", "enter")
        await settle(pilot, lambda: live_tags(store, "cleo"))
        (tag,) = live_tags(store, "cleo")
        assert tag["quote"] == "not red"
        assert content[tag["span_start"]:tag["span_end"]] == "not red"
        assert (tag["message_idx"], tag["code"]) == (2, "humour")
        await settle(pilot, lambda: "❝ humour: not red" in plain(screen.current()))


async def test_span_covering_an_escape_quotes_the_raw_character(app_factory, store) -> None:
    app = app_factory(coder="cleo")
    async with app.run_test(size=SIZE) as pilot:
        screen = await to_transcript(pilot, row=3)
        await pilot.press("j", "v")
        await settle(pilot, lambda: isinstance(app.screen, SpanModal))
        modal = app.screen
        area = modal.query_one("#span-text")
        start = modal.shown.index("\\x1b[31m")
        area.move_cursor(area.document.get_location_from_index(start + 2))  # inside the escape
        for _ in range(len("\\x1b[31mnot") - 2):
            await pilot.press("shift+right")
        await pilot.press("t")
        await settle(pilot, lambda: isinstance(app.screen, CodePickerModal))
        await pilot.press("enter")
        await settle(pilot, lambda: live_tags(store, "cleo"))
        (tag,) = live_tags(store, "cleo")
        assert tag["quote"] == "\x1b[31mnot"
        assert screen.current().message.content[tag["span_start"]:tag["span_end"]] == "\x1b[31mnot"


async def test_note_on_a_tag(app_factory, store) -> None:
    app = app_factory(coder="cleo")
    async with app.run_test(size=SIZE) as pilot:
        screen = await to_transcript(pilot, row=2)
        await pilot.press("a")  # no tag yet: nothing to annotate
        await settle(pilot)
        assert app.screen is screen
        await pilot.press("4")
        await settle(pilot, lambda: live_tags(store, "cleo"))
        await pilot.press("a")
        await settle(pilot, lambda: isinstance(app.screen, TextModal))
        await pilot.press(*"draws a map", "enter")
        await settle(pilot, lambda: live_tags(store, "cleo")[0]["note"] == "draws a map")
        await settle(pilot, lambda: "✎ cleo on visualiser: draws a map" in plain(screen.current()))
        await pilot.press("u")  # undo the note
        await settle(pilot, lambda: live_tags(store, "cleo")[0]["note"] is None)


async def test_artifacts_viewable(app_factory) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await to_transcript(pilot, row=0)
        await pilot.press("o")
        await settle(pilot, lambda: isinstance(app.screen, ArtifactModal))
        text = app.screen.query_one("#artifact-text").text
        assert "lighthouse keeper [bold]counted[/bold]" in text
        await pilot.press("escape")
        await settle(pilot, lambda: isinstance(app.screen, TranscriptScreen))


async def test_compare_key_opens_another_model(app_factory, store) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await to_transcript(pilot, row=0)
        await pilot.press("c")
        await settle(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.loaded)
        compare = app.screen
        assert compare.left_id == store.conversations[0]
        assert compare.right_id == store.conversations[4]  # claude-sonnet, warm, replicate 0


async def test_other_coders_tags_shown_and_conversation_tags_in_title(app_factory, store) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await to_transcript(pilot, row=0)
        turn = views(screen)[2]
        assert "[❝curiosity ✎]" in plain(turn) and "[curiosity · ben]" in plain(turn)
        title = str(screen.query_one("#transcript-title").render())
        assert "conversation: [curiosity] [curiosity · judge:openai/gpt-4o]" in title


async def test_pair_turns_are_labelled_with_both_models(app_factory, store) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await to_transcript(pilot, row=12)
        assert screen.loaded_id == store.pair
        vs = views(screen)
        assert plain(vs[0]).startswith("#0 gpt-4o") and plain(vs[1]).startswith("#1 claude-sonnet")
        assert "-speaker-a" in vs[0].classes and "-speaker-b" in vs[1].classes


async def test_live_conversation_grows_while_it_is_written(app_factory, store) -> None:
    from runner.store import StoreWriter
    from runner.store.tables import ConversationRow, MessageRow

    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await to_transcript(pilot, row=0, run_row=0)  # the live run
        assert screen.loaded_id == "l00000000000" and len(views(screen)) == 1
        with StoreWriter(store.url) as w:
            w.add_sync(MessageRow(conversation_id="l00000000000", idx=1, role="assistant", speaker="model",
                                  step="steps[0]", content="I would like to paint the sea."))
            w.update_sync(ConversationRow, "l00000000000", turns=2)
        await settle(pilot, lambda: len(views(screen)) == 2, timeout=120)
        assert "paint the sea" in plain(views(screen)[1])


async def test_tagging_while_a_run_writes_never_locks(app_factory, store, tmp_path) -> None:
    """A run in another process committing messages as fast as it can, and a coder tagging at the
    same time: every tag lands, and neither side sees "database is locked"."""
    import asyncio
    import subprocess
    import sys
    import time

    stop = tmp_path / "stop"
    code = (
        "import sys, pathlib\n"
        "from runner.store import StoreWriter\n"
        "from runner.store.tables import MessageRow\n"
        "url, stop = sys.argv[1], pathlib.Path(sys.argv[2])\n"
        "n = 0\n"
        "with StoreWriter(url) as w:\n"
        "    while not stop.exists():\n"
        "        n += 1\n"
        "        w.insert_sync(MessageRow, conversation_id='l00000000001', idx=n, role='assistant',\n"
        "                      speaker='model', step='s', content='x' * 2000)\n"
        "print(n)\n"
    )
    def written() -> int:
        return q(store, "SELECT count(*) AS n FROM messages WHERE conversation_id = 'l00000000001' AND step = 's'")[0]["n"]

    async def until(predicate, what: str) -> None:  # waits on the store, not on either side's speed
        deadline = time.monotonic() + 120
        while not predicate():
            if run.poll() is not None:
                raise AssertionError(f"the writer exited before {what}: {run.stderr.read()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the writer never {what}")
            await asyncio.sleep(0.02)

    run = subprocess.Popen([sys.executable, "-c", code, store.url, str(stop)], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    app = app_factory(coder="cleo")
    try:
        await until(lambda: written() > 0, "wrote its first row")  # the run is writing before the coder starts
        async with app.run_test(size=SIZE) as pilot:
            await to_transcript(pilot, row=2)
            for key in ["1", "j", "2", "j", "3", "m", "4", "5"]:
                await pilot.press(key)
            await settle(pilot, lambda: len(live_tags(store, "cleo")) == 5)
            assert [(t["message_idx"], t["code"]) for t in live_tags(store, "cleo")] == [
                (1, "curiosity"), (2, "boredom"), (3, "consent"), (None, "visualiser"), (None, "humour")]
            assert not [n for n in app._notifications if n.severity == "error"]
            after_tags = written()
            await until(lambda: written() > after_tags, "wrote again after the tags landed")  # and still is
    finally:
        stop.touch()
        out, err = run.communicate(timeout=60)
    assert run.returncode == 0, err
    assert "locked" not in err
    assert int(out) == written() > after_tags  # every row it counted is in the store
