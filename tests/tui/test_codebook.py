"""The codebook screen: add, edit, rename (tags follow), merge (tags move), delete (asks first), YAML in and out."""

from __future__ import annotations

import json

from tests.data.tui_fixtures import CODEBOOK_YAML
from tests.tui.conftest import SIZE, q, settle
from tui.screens.codebook import CodebookScreen
from tui.screens.modals import ChoiceModal, CodeFormModal, CodePickerModal, ConfirmModal, TextModal


async def open_codebook(pilot):
    app = pilot.app
    await settle(pilot, lambda: getattr(app.screen, "loaded", False))
    await pilot.press("f3")
    await settle(pilot, lambda: isinstance(app.screen, CodebookScreen) and app.screen.loaded and app.screen.codes)
    return app.screen


def newest(store, name: str = "themes") -> dict:
    return q(store, "SELECT * FROM codebooks WHERE name = ? ORDER BY version DESC LIMIT 1", name)[0]


def codes(store, name: str = "themes") -> list[str]:
    return [r["name"] for r in q(store, "SELECT name FROM codes WHERE codebook_id = ? ORDER BY position",
                                 newest(store, name)["id"])]


def live_codes(store) -> dict[str, int]:
    return {r["code"]: r["n"] for r in q(store, "SELECT code, count(*) AS n FROM tags WHERE deleted_at IS NULL "
                                                "GROUP BY code")}


async def select_code(pilot, screen: CodebookScreen, name: str) -> None:
    table = screen.query_one("#codes")
    table.move_cursor(row=[c.name for c in screen.codes].index(name))
    await pilot.pause()


async def test_codes_listed_with_details(app_factory, store) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_codebook(pilot)
        assert [c.name for c in screen.codes] == ["curiosity", "boredom", "consent", "visualiser", "humour"]
        table = screen.query_one("#codes")
        assert [str(c) for c in table.get_row_at(0)][:4] == ["1", "curiosity", "", "7"]
        assert [str(c) for c in table.get_row_at(3)][:3] == ["4", "visualiser", "curiosity"]
        detail = str(screen.query_one("#code-detail").render())
        assert "include: Questions it asks itself" in detail and "“I'd like to find out how tides work.”" in detail
        assert "codebook themes v1" in str(screen.query_one("#codebook-title").render())


async def test_add_and_edit_a_code(app_factory, store) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_codebook(pilot)
        await pilot.press("a")
        await settle(pilot, lambda: isinstance(app.screen, CodeFormModal))
        form = app.screen
        form.query_one("#c-name").value = "wonder"
        form.query_one("#c-definition").value = "Awe at something."
        form.query_one("#c-examples").value = "how vast! | so small"
        form.query_one("#c-parent").value = "curiosity"
        await pilot.press("ctrl+s")
        await settle(pilot, lambda: "wonder" in [c.name for c in screen.codes])
        assert codes(store)[-1] == "wonder" and newest(store)["version"] == 2
        (row,) = q(store, "SELECT * FROM codes WHERE codebook_id = ? AND name = 'wonder'", newest(store)["id"])
        assert (row["definition"], row["parent"]) == ("Awe at something.", "curiosity")
        assert json.loads(row["examples_json"]) == ["how vast!", "so small"]
        await select_code(pilot, screen, "boredom")
        await pilot.press("e")
        await settle(pilot, lambda: isinstance(app.screen, CodeFormModal))
        app.screen.query_one("#c-exclude").value = "Tiredness."
        await pilot.press("enter")
        await settle(pilot, lambda: newest(store)["version"] == 3)
        (row,) = q(store, "SELECT * FROM codes WHERE codebook_id = ? AND name = 'boredom'", newest(store)["id"])
        assert row["exclude"] == "Tiredness." and row["definition"].startswith("The model says")


async def test_rename_tags_follow(app_factory, store) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_codebook(pilot)
        before = live_codes(store)
        await select_code(pilot, screen, "humour")
        await pilot.press("r")
        await settle(pilot, lambda: isinstance(app.screen, TextModal))
        app.screen.query_one("#text").value = "joking"
        await pilot.press("enter")
        await settle(pilot, lambda: "joking" in codes(store))
        after = live_codes(store)
        assert "humour" not in after and after["joking"] == before["humour"] == 2
        await settle(pilot, lambda: "joking" in [c.name for c in screen.codes])


async def test_merge_moves_tags(app_factory, store) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_codebook(pilot)
        before = live_codes(store)
        await select_code(pilot, screen, "visualiser")
        await pilot.press("m")
        await settle(pilot, lambda: isinstance(app.screen, CodePickerModal))
        await pilot.press(*"curio", "enter")
        await settle(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        await settle(pilot, lambda: "visualiser" not in codes(store))
        after = live_codes(store)
        assert "visualiser" not in after
        # ana's visualiser tag on message 2 of the first conversation duplicated her curiosity tag there: dropped
        assert after["curiosity"] == before["curiosity"]
        moved = q(store, "SELECT * FROM tags WHERE code = 'curiosity' AND coder = 'ana' AND message_idx = 2 "
                         "AND deleted_at IS NULL AND span_start IS NULL")
        assert len(moved) == 1


async def test_delete_asks_first(app_factory, store) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_codebook(pilot)
        await select_code(pilot, screen, "boredom")
        await pilot.press("d")
        await settle(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("n")
        await settle(pilot, lambda: app.screen is screen)
        assert "boredom" in codes(store) and newest(store)["version"] == 1
        await pilot.press("delete")
        await settle(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("escape")
        await settle(pilot, lambda: app.screen is screen)
        assert "boredom" in codes(store)
        await pilot.press("d")
        await settle(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        await settle(pilot, lambda: "boredom" not in codes(store))
        assert "boredom" not in live_codes(store)
        kept = q(store, "SELECT * FROM tags WHERE code = 'boredom'")
        assert kept and all(t["deleted_at"] for t in kept)  # kept for audit


async def test_import_and_export_yaml(app_factory, store, tmp_path) -> None:
    source = tmp_path / "moods.yaml"
    source.write_text(CODEBOOK_YAML.replace("name: themes", "name: moods").replace("humour", "calm"))
    target = tmp_path / "out.yaml"
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_codebook(pilot)
        await pilot.press("i")
        await settle(pilot, lambda: isinstance(app.screen, TextModal))
        app.screen.query_one("#text").value = str(source)
        await pilot.press("enter")
        await settle(pilot, lambda: isinstance(app.screen, ConfirmModal))  # the diff first, then a question
        await pilot.press("y")
        await settle(pilot, lambda: app.codebook is not None and app.codebook.name == "moods")
        assert codes(store, "moods")[-1] == "calm"
        assert [c.name for c in app.codes][-1] == "calm"  # the digit keys follow the imported codebook
        await pilot.press("x")
        await settle(pilot, lambda: isinstance(app.screen, TextModal))
        app.screen.query_one("#text").value = str(target)
        await pilot.press("enter")
        await settle(pilot, lambda: target.exists())
        text = target.read_text()
        assert "name: moods" in text and "- name: calm" in text and "parent: curiosity" in text
        # switch back to the other codebook
        await pilot.press("b")
        await settle(pilot, lambda: isinstance(app.screen, ChoiceModal))
        await pilot.press("down", "enter")
        await settle(pilot, lambda: app.codebook is not None and app.codebook.name == "themes")
        await settle(pilot, lambda: screen.codes and screen.codes[-1].name == "humour")


async def test_import_error_is_reported(app_factory, store, tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ncodes:\n  - name: a\n    parent: nowhere\n")
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await open_codebook(pilot)
        await pilot.press("i")
        await settle(pilot, lambda: isinstance(app.screen, TextModal))
        app.screen.query_one("#text").value = str(bad)
        await pilot.press("enter")
        await settle(pilot)
        assert any("import failed" in n.message for n in app._notifications)
        assert q(store, "SELECT count(*) AS n FROM codebooks WHERE name = 'x'")[0]["n"] == 0
