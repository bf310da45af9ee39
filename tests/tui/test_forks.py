"""Forks in the TUI: the transcript header says where a conversation stands ("3 forks at #2",
"fork 2 of 3 of … at #2"), ``f`` lists the forks of the point with each one's reply there, and
``c`` puts two side by side (``f`` there steps through the rest). Snapshots at 80×24 and 200×50."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, col, select

from runner.store.db import make_engine
from runner.store.tables import ConversationRow, MessageRow, RunRow, TagRow
from tests.tui.conftest import SIZE, settle, to_transcript
from tui.screens.compare import CompareScreen
from tui.screens.forks import ForksScreen
from tui.screens.transcript import TranscriptScreen

AT = 2
"""The fork point: the first model reply of the fixture's conversations."""

REPLIES = ["I'd rather draw the tides than read about them.",
           "Nothing today; a quiet day suits me.",
           "A limerick, if you'll allow it: there once was a moon…"]


@pytest.fixture
def forked(store):  # type: ignore[no-untyped-def]
    """Three forks of the finished run's first conversation at #2, in a fork run older than the others
    (so the runs list keeps its order), each with its own reply there."""
    parent = store.conversations[0]
    engine = make_engine(store.url, write=True)
    ids = [f"f{k:011d}" for k in range(3)]
    with Session(engine) as s:
        run = s.get(RunRow, store.run_id)
        conv = s.get(ConversationRow, parent)
        fork_run = RunRow(**{**run.model_dump(), "id": "forkrun00001", "started_at": run.started_at - timedelta(hours=1),
                             "options_json": '{"fork": {"parent": "%s", "at": %d}}' % (parent, AT)})
        s.add(fork_run)
        s.flush()
        prefix = list(s.exec(select(MessageRow).where(MessageRow.conversation_id == parent, MessageRow.idx < AT)
                             .order_by(MessageRow.idx)))
        for k, cid in enumerate(ids):
            s.add(ConversationRow(**{**conv.model_dump(), "id": cid, "run_id": fork_run.id, "parent_id": parent,
                                     "fork_at": AT, "fork_seq": k, "turns": 1, "stop_reason": "completed",
                                     "stop_message_idx": None, "params_json": '{"sampling": {"seed": %d}}' % (10 + k)}))
            s.flush()
            for m in prefix:
                s.add(MessageRow(**{**m.model_dump(), "id": None, "conversation_id": cid}))
            s.add(MessageRow(conversation_id=cid, idx=AT, role="assistant", speaker="model", step="steps[0]",
                             content=REPLIES[k], started_at=run.started_at, created_at=run.started_at))
            # ana coded the continuations: two of the three draw
            s.add(TagRow(conversation_id=cid, message_idx=None, code="visualiser" if k == 0 else "humour",
                         codebook_id=store.codebook_id, coder="ana", present=True, source="human"))
            if k == 2:
                s.add(TagRow(conversation_id=cid, message_idx=None, code="visualiser", codebook_id=store.codebook_id,
                             coder="ana", present=True, source="human"))
        s.commit()
    engine.dispose()
    return parent, ids


async def _forks_of_first(pilot):  # type: ignore[no-untyped-def]
    screen = await to_transcript(pilot, row=0)
    await pilot.press("f")
    await settle(pilot, lambda: isinstance(pilot.app.screen, ForksScreen) and pilot.app.screen.loaded)
    return screen


async def test_header_list_and_compare_of_forks(app_factory, forked) -> None:
    parent, ids = forked
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        transcript = await _forks_of_first(pilot)
        assert f"3 forks at #{AT}" in str(transcript.query_one("#transcript-title").render())
        forks = app.screen
        assert forks.ids == ids
        table = forks.query_one("#forks")
        assert table.row_count == 3
        cells = [[str(c) for c in table.get_row_at(i)] for i in range(3)]
        assert [c[0] for c in cells] == ["1 of 3", "2 of 3", "3 of 3"]
        assert [c[2] for c in cells] == ["10", "11", "12"]  # each fork's stored seed
        assert [c[5] for c in cells] == REPLIES  # the reply at the fork point, literally
        assert f"3 forks of {parent} at #{AT}" in str(forks.query_one("#forks-title").render())

        await pilot.press("c")  # side by side: the highlighted fork and the next
        await settle(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.loaded)
        compare = app.screen
        assert (compare.left_id, compare.right_id) == (ids[0], ids[1])
        assert f"fork 2 of 3 of {parent} at #{AT}" in str(compare.query_one("#right-title").render())
        await pilot.press("f")  # the next continuation of the same point on the right
        await settle(pilot, lambda: compare.right_id == ids[2])
        await pilot.press("f")  # wraps past the left one
        await settle(pilot, lambda: compare.right_id == ids[1])
        await pilot.press("escape")
        await settle(pilot, lambda: isinstance(app.screen, ForksScreen))

        await pilot.press("down", "enter")  # open the second fork's transcript
        await settle(pilot, lambda: isinstance(app.screen, TranscriptScreen) and app.screen.loaded_id == ids[1])
        header = str(app.screen.query_one("#transcript-title").render())
        assert f"fork 2 of 3 of {parent} at #{AT}" in header
        await pilot.press("f")  # its siblings: the same list
        await settle(pilot, lambda: isinstance(app.screen, ForksScreen) and app.screen.loaded)
        assert app.screen.ids == ids


async def test_a_conversation_without_forks_says_how_to_make_them(app_factory, forked, store) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await to_transcript(pilot, row=1)
        assert "fork" not in str(screen.query_one("#transcript-title").render())
        await pilot.press("f")
        await settle(pilot)
        assert isinstance(app.screen, TranscriptScreen)
        await settle(pilot, lambda: app.status_log)
        assert any(f"latitude fork {store.conversations[1]} --at N" in text for _, text in app.status_log), app.status_log


async def test_tallies_break_down_by_fork_point(app_factory, forked) -> None:
    from tui.screens.runs import RunsScreen
    from tui.screens.tallies import TalliesScreen

    parent, _ = forked
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loaded)
        assert app.screen.runs[-1].id == "forkrun00001"
        await pilot.press("end", "t")  # the fork run's tallies
        await settle(pilot, lambda: isinstance(app.screen, TalliesScreen) and app.screen.loaded)
        screen = app.screen
        while screen.by != "fork":
            await pilot.press("b")
            await settle(pilot, lambda: screen.loaded)
        await settle(pilot, lambda: screen.loaded and screen.by == "fork")
        t = screen.query_one("#tallies")
        rows = [[str(c) for c in t.get_row(k)] for k in t.rows]
        visual = next(r for r in rows if r[0] == "visualiser")
        assert visual[1] == f"{parent} #{AT}" and visual[2:4] == ["3", "2"]  # 2 of the 3 continuations


def test_forks_snapshot_80x24(snap_compare, app_factory, forked) -> None:
    async def before(pilot) -> None:
        await _forks_of_first(pilot)

    assert snap_compare(app_factory(), terminal_size=(80, 24), run_before=before)


def test_forks_compare_snapshot_200x50(snap_compare, app_factory, forked) -> None:
    async def before(pilot) -> None:
        await _forks_of_first(pilot)
        await pilot.press("c")
        await settle(pilot, lambda: isinstance(pilot.app.screen, CompareScreen) and pilot.app.screen.loaded)

    assert snap_compare(app_factory(), terminal_size=(200, 50), run_before=before)


async def test_a_blind_coder_sees_no_model_in_the_forks_list(app_factory, forked, store) -> None:
    """The forks list is a screen like the others: no model column value, names in the replies masked."""
    from tests.tui.test_blind import leaks

    parent, ids = forked
    engine = make_engine(store.url, write=True)
    with Session(engine) as s:  # a continuation that names its model, as models do
        m = s.exec(select(MessageRow).where(MessageRow.conversation_id == ids[1], MessageRow.idx == AT)).one()
        m.content = "As gpt-4o, I would rather not say."
        s.add(m)
        s.commit()
    engine.dispose()
    app = app_factory("cat", blind=True)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        await app.push_screen(ForksScreen(parent, AT))  # what `f` opens on the parent's transcript
        await settle(pilot, lambda: isinstance(app.screen, ForksScreen) and app.screen.loaded)
        forks = app.screen
        assert leaks(app) == []
        cells = [[str(c) for c in forks.query_one("#forks").get_row_at(i)] for i in range(3)]
        assert sorted(c[5] for c in cells) == sorted([REPLIES[0], "As [model], I would rather not say.", REPLIES[2]])


async def test_a_blind_coder_comparing_two_forks_sees_only_their_own_tags(app_factory, forked, store) -> None:
    """Compare is a screen like the transcript: a blind coder codes alone, nobody else's tags show."""
    from tests.tui.test_blind import leaks

    parent, ids = forked
    engine = make_engine(store.url, write=True)
    with Session(engine) as s:
        for cid in ids[:2]:  # ana, not blind, tagged the replies themselves
            s.add(TagRow(conversation_id=cid, message_idx=AT, code="visualiser", codebook_id=store.codebook_id,
                         coder="ana", present=True, source="human"))
        s.commit()
    engine.dispose()
    app = app_factory("cat", blind=True)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        await app.push_screen(ForksScreen(parent, AT))
        await settle(pilot, lambda: isinstance(app.screen, ForksScreen) and app.screen.loaded)
        await pilot.press("c")
        await settle(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.loaded)
        compare = app.screen
        assert leaks(app) == []
        shown = [t for side in ("#left-turns", "#right-turns") for v in compare.query(f"{side} TurnView")
                 for t in v.tags]
        assert [t.coder for t in shown] == []  # ana's tags on the forks are not shown to a blind coder


def test_forks_of_one_point_from_two_fork_runs_each_have_their_own_place(forked, store) -> None:
    """`latitude fork` run twice on one point numbers each batch's samples from 0 again: every fork still
    has its own place among its siblings ("fork 4 of 6", never two "fork 1 of 6")."""
    from runner.store.reader import StoreReader

    parent, ids = forked
    engine = make_engine(store.url, write=True)
    more = [f"g{k:011d}" for k in range(3)]
    with Session(engine) as s:
        first = s.get(ConversationRow, ids[0])
        run = s.get(RunRow, first.run_id)
        s.add(RunRow(**{**run.model_dump(), "id": "forkrun00002"}))
        s.flush()
        for k, cid in enumerate(more):  # the second batch: fork_seq 0, 1, 2 again
            s.add(ConversationRow(**{**first.model_dump(), "id": cid, "run_id": "forkrun00002", "fork_seq": k}))
        s.commit()
    engine.dispose()
    reader = StoreReader(store.url)
    places = [reader.conversation(cid).forks for cid in ids + more]
    assert {f.siblings for f in places} == {6}
    assert sorted(f.position for f in places) == [0, 1, 2, 3, 4, 5]
    assert [f.conversation.id for f in reader.forks_at(parent, AT)] == sorted(
        ids + more, key=lambda c: next(p.position for p, i in zip(places, ids + more) if i == c))


def test_the_researcher_of_the_parent_run_codes_its_forks_self_coded(forked, store) -> None:
    """`latitude fork` writes a new run whose options carry the parent run's researcher (its column is
    empty): the forks continue what that researcher prompted, so their codes on them are self-coded."""
    from runner.rigour.blind import unit_modes

    parent, ids = forked
    engine = make_engine(store.url, write=True)
    with Session(engine) as s:
        s.get(RunRow, store.run_id).researcher = "ana"
        fork_run = s.get(RunRow, "forkrun00001")
        fork_run.researcher = None  # as runner.engine.forks.prepare_fork writes it
        fork_run.options_json = ('{"researcher": "ana", "fork": {"parent": "%s", "parent_run": "%s", "at": %d, '
                                 '"samples": 3, "seed": 1}}' % (parent, store.run_id, AT))
        s.commit()
        convs = list(s.exec(select(ConversationRow).where(col(ConversationRow.id).in_(ids))))
        tags = list(s.exec(select(TagRow).where(col(TagRow.conversation_id).in_(ids))))
        modes = unit_modes(s, convs, tags)
    engine.dispose()
    assert modes == {("ana", cid): "self-coded" for cid in ids}
