"""The codebook: codes with definition, include/exclude rules, examples and parent;
add, edit, rename, merge (tags follow), delete (asks first); YAML import and export.

Every change makes a new codebook version (`runner.analysis.codebook`); the digit keys of
the transcript follow the newest version.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import DataTable, Static

from runner.analysis.codebook import Code
from runner.store.tables import CodebookRow, CodeRow
from tui.actions import bindings
from tui.messages import CodebookChanged, CodebookLoaded, StoreChanged
from tui.screens.base import BaseScreen
from tui.text import literal, short
from tui.widgets.table import Table
from tui.widgets.footer import RankedFooter
from tui.widgets.status_line import StatusLine

__all__ = ["CodebookScreen"]


def import_diff(old: list[CodeRow], new: list[Code], counts: dict[str, int]) -> Text:
    """What importing ``new`` over the stored codes ``old`` changes, in words (added, removed with the
    tags that stop counting, changed fields, unchanged)."""
    before = {c.name: c for c in old}
    after = {c.name: c for c in new}
    added = [n for n in after if n not in before]
    removed = [n for n in before if n not in after]
    changed: list[tuple[str, list[str]]] = []
    for name in after:
        if name in before:
            o, n = before[name], after[name]
            fields = [f for f, a, b in (("definition", o.definition, n.definition), ("include", o.include, n.include),
                                        ("exclude", o.exclude, n.exclude), ("parent", o.parent, n.parent),
                                        ("examples", json.loads(o.examples_json or "[]"), n.examples)) if (a or None) != (b or None)]
            if fields:
                changed.append((name, fields))
    out = Text()
    out.append(f"{len(old)} codes now, {len(new)} after.\n")
    if added:
        out.append(f"+ {len(added)} new: ", style="bold green")
        out.append(", ".join(literal(n) for n in added) + "\n")
    if removed:
        tags = sum(counts.get(n, 0) for n in removed)
        out.append(f"− {len(removed)} removed: ", style="bold red")
        out.append(", ".join(literal(n) for n in removed))
        out.append(f" ({tags:,} live tag(s) stop counting)\n" if tags else "\n", style="red")
    if changed:
        out.append(f"~ {len(changed)} changed: ", style="bold yellow")
        out.append("; ".join(f"{literal(n)} ({', '.join(f)})" for n, f in changed) + "\n")
    same = len(after) - len(added) - len(changed)
    out.append(f"= {same} unchanged", style="dim")
    return out


class CodebookScreen(BaseScreen):
    """The active codebook's newest version."""

    SCOPE = "codebook"
    AUTO_FOCUS = "#codes"
    BINDINGS = bindings("codebook")

    def __init__(self) -> None:
        super().__init__()
        self.codes: list[CodeRow] = []
        self.counts: dict[str, int] = {}
        self.loaded = False

    def compose(self) -> ComposeResult:
        yield Static(id="codebook-title", classes="title")
        with Horizontal(id="codebook-body"):
            yield Table(id="codes", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="code-detail-scroll"):
                yield Static(id="code-detail")
        yield StatusLine()
        yield RankedFooter()

    def on_mount(self) -> None:
        self.query_one("#codes", DataTable).add_columns("key", "code", "parent", "tags", "definition")
        self.start_loading("#codes")
        self.lapp.reload_codebook()

    @on(StoreChanged)
    def _store_changed(self, message: StoreChanged) -> None:
        if self.is_current and "tags" in message.what:
            self.lapp.reload_codebook()  # the tag counts

    @on(CodebookLoaded)
    def _loaded(self, message: CodebookLoaded) -> None:
        self.stop_loading("#codes")
        self.codes = message.codes
        self.counts = message.counts
        self.query_one("#codes", Table).sync([
            (c.name, (Text(str(c.position + 1) if c.position < 9 else "", style="bold"),
                      Text(literal(c.name), style="bold"), Text(literal(c.parent or "")),
                      Text(f"{message.counts.get(c.name, 0):,}", justify="right"),
                      Text(short(self.lapp.mask(c.definition), 60), style="dim")))
            for c in message.codes
        ])
        self._render_title(message.codebook, message.names)
        self._render_detail()
        self.loaded = True

    def _render_title(self, book: CodebookRow | None, names: list[str]) -> None:
        if book is None:
            title = Text("No codebook yet. a: add a code (starts one), i: import a YAML codebook.", style="bold")
        else:
            title = Text.assemble(("codebook ", "dim"), (literal(book.name), "bold"), f" v{book.version}",
                                  (f"  — {literal(book.note)}" if book.note else "", "dim"),
                                  (f" by {literal(book.created_by)}" if book.created_by else "", "dim"),
                                  f"   {len(self.codes)} codes")
            others = [n for n in names if n != book.name]
            if others:
                title.append("   other codebooks: " + ", ".join(literal(n) for n in others) + " (b)", style="dim")
        self.query_one("#codebook-title", Static).update(title)

    def selected(self) -> CodeRow | None:
        table = self.query_one("#codes", DataTable)
        if table.row_count == 0 or not self.codes:
            return None
        row = table.cursor_row
        return self.codes[row] if 0 <= row < len(self.codes) else None

    @on(DataTable.RowHighlighted, "#codes")
    def _highlighted(self) -> None:
        self._render_detail()

    def _render_detail(self) -> None:
        c = self.selected()
        detail = self.query_one("#code-detail", Static)
        if c is None:
            detail.update("")
            return
        parts: list[Any] = [Text(literal(c.name), style="bold cyan")]
        if c.builtin:
            parts.append(Text("built-in code (filled in by latitude)", style="magenta"))
        for label, value in (("definition", c.definition), ("include", c.include), ("exclude", c.exclude),
                             ("parent", c.parent or "")):
            if value:
                parts.append(Text.assemble((f"{label}: ", "bold"), literal(self.lapp.mask(value))))
        examples = json.loads(c.examples_json or "[]")
        if examples:
            parts.append(Text("examples:", style="bold"))
            parts.extend(Text(f"  “{literal(self.lapp.mask(e))}”", style="italic") for e in examples)
        parts.append(Text(f"{self.counts.get(c.name, 0):,} live tags", style="dim"))
        detail.update(Text("\n").join(parts))

    # ---------------------------------------------------------------- writes

    def _book(self) -> str | None:
        return self.lapp.codebook.name if self.lapp.codebook else None

    def _changed(self, notice: str) -> Any:
        def done(row: CodebookRow) -> None:
            self.app.post_message(CodebookChanged(row, notice))

        return done

    def action_add(self) -> None:
        from tui.screens.modals import CodeForm, CodeFormModal

        def done(form: CodeForm | None) -> None:
            if form is None:
                return
            try:
                code = Code(name=form.name, definition=form.definition, include=form.include, exclude=form.exclude,
                            examples=form.examples, parent=form.parent)
            except ValueError as exc:
                self.notify(f"Not a valid code: {exc}", severity="error", markup=False)
                return
            self.lapp.write(self.lapp.coding.create_code(self._book(), code), self._changed(f"added {form.name}"),
                            what="add code")

        self.app.push_screen(CodeFormModal("Add a code", taken={c.name for c in self.codes}), done)

    def action_edit(self) -> None:
        from tui.screens.modals import CodeForm, CodeFormModal

        code, book = self.selected(), self._book()
        if code is None or book is None:
            return

        def done(form: CodeForm | None) -> None:
            if form is None:
                return
            self.lapp.write(self.lapp.coding.edit_code(book, code.name, definition=form.definition,
                                                       include=form.include, exclude=form.exclude,
                                                       examples=form.examples, parent=form.parent),
                            self._changed(f"edited {code.name}"), what="edit code")

        self.app.push_screen(CodeFormModal(f"Edit {code.name}", code, name_editable=False), done)

    def action_rename(self) -> None:
        from tui.screens.modals import TextModal, TextResult

        code, book = self.selected(), self._book()
        if code is None or book is None:
            return

        def done(result: TextResult | None) -> None:
            new = (result.value.strip() if result else "")
            if not new or new == code.name:
                return
            self.lapp.write(self.lapp.coding.rename_code(book, code.name, new),
                            self._changed(f"renamed {code.name} → {new} (tags follow)"), what="rename")

        self.app.push_screen(TextModal(f"Rename {code.name} to", code.name,
                                       help="Its tags follow the new name."), done)

    def action_merge(self) -> None:
        from tui.screens.modals import CodePick, CodePickerModal, Confirmed, ConfirmModal

        code, book = self.selected(), self._book()
        if code is None or book is None:
            return
        others = [c for c in self.codes if c.name != code.name]
        if not others:
            self.notify("No other code to merge into.", markup=False)
            return

        def confirmed(target: str, answer: Confirmed | None) -> None:
            if answer is not None and answer.yes:
                self.lapp.write(self.lapp.coding.merge_codes(book, code.name, target),
                                self._changed(f"merged {code.name} into {target}"), what="merge")

        def picked(pick: CodePick | None) -> None:
            if pick is None:
                return
            n = self.counts.get(code.name, 0)
            question = Text.assemble("Merge ", (literal(code.name), "bold"), " into ", (literal(pick.name), "bold"),
                                     f"? Its {n:,} tag(s) move to {literal(pick.name)}; {literal(code.name)} "
                                     "leaves the codebook.")
            self.app.push_screen(ConfirmModal(question), lambda a: confirmed(pick.name, a))

        self.app.push_screen(CodePickerModal(others, f"Merge {code.name} into…", allow_create=False), picked)

    def action_delete(self) -> None:
        from tui.screens.modals import Confirmed, ConfirmModal

        code, book = self.selected(), self._book()
        if code is None or book is None:
            return
        n = self.counts.get(code.name, 0)

        def done(answer: Confirmed | None) -> None:
            if answer is not None and answer.yes:
                self.lapp.write(self.lapp.coding.delete_code(book, code.name),
                                self._changed(f"deleted {code.name}"), what="delete code")

        question = Text.assemble("Delete ", (literal(code.name), "bold red"),
                                 f"? Its {n:,} tag(s) stop counting (they are kept for audit).")
        self.app.push_screen(ConfirmModal(question), done)

    def action_import_yaml(self) -> None:
        from tui.screens.modals import TextModal, TextResult

        def done(result: TextResult | None) -> None:
            if result is None or not result.value.strip():
                return
            path = Path(result.value.strip()).expanduser()
            if not path.is_file():
                self.notify(f"No file {path}", severity="error", markup=False)
                return
            self.preview_import(path)

        self.app.push_screen(TextModal("Import a codebook YAML file", placeholder="path/to/codebook.yaml",
                                       help="You will see what changes before anything is stored."), done)

    @work(thread=True, exclusive=True, group="codebook-import", exit_on_error=False)
    def preview_import(self, path: Path) -> None:
        """Read and check the file, compare it with the stored codebook of the same name, and ask."""
        from runner.analysis.codebook import read_codebook

        try:
            book = read_codebook(path)
        except Exception as exc:
            self.app.call_from_thread(self.notify, f"import failed: {exc}", title="error", severity="error",
                                      markup=False, timeout=8)
            return
        current = self.reader.latest_codebook(book.name)
        old = self.reader.codes(current.id) if current is not None and current.id is not None else []
        counts = self.reader.tag_counts([c.name for c in old]) if old else {}
        diff = import_diff(old, book.codes, counts)
        self.app.call_from_thread(self._confirm_import, path, book.name, current, diff)

    def _confirm_import(self, path: Path, name: str, current: CodebookRow | None, diff: Text) -> None:
        from tui.screens.modals import Confirmed, ConfirmModal

        head = Text.assemble(("Import ", "bold"), literal(path.name), " into codebook ", (literal(name), "bold"),
                             f" (v{current.version} → v{current.version + 1})" if current else " (new, v1)", "\n\n")

        def answered(answer: Confirmed | None) -> None:
            if answer is not None and answer.yes:
                self.lapp.write(self.lapp.coding.import_codebook(path), self._changed(f"imported {path.name}"),
                                what="import")
            else:
                self.notify(f"Import of {path.name} cancelled: nothing changed.", markup=False)

        self.app.push_screen(ConfirmModal(head + diff + Text("\n\nApply this import?", style="bold")), answered)

    def action_export_yaml(self) -> None:
        from tui.screens.modals import TextModal, TextResult

        book = self.lapp.codebook
        if book is None or book.id is None:
            self.notify("No codebook to export yet.", markup=False)
            return
        book_id = book.id

        def done(result: TextResult | None) -> None:
            if result is None or not result.value.strip():
                return
            path = Path(result.value.strip()).expanduser()

            def written(text: str) -> None:
                self.save_file(path, text)

            self.lapp.write(self.lapp.coding.export_codebook(book_id), written, what="export")

        self.app.push_screen(TextModal("Export the codebook to", f"{book.name}.yaml"), done)

    @work(thread=True, group="codebook-export", exit_on_error=False)
    def save_file(self, path: Path, text: str) -> None:
        path.write_text(text, encoding="utf-8")
        self.app.call_from_thread(self.notify, f"wrote {path}", markup=False)

    def action_switch(self) -> None:
        from tui.screens.modals import Choice, ChoiceModal

        names = self.lapp.codebook_names
        if len(names) < 2:
            self.notify("There is only one codebook." if names else "No codebook yet.", markup=False)
            return

        def done(choice: Choice | None) -> None:
            if choice is not None:
                self.lapp.codebook_name = names[choice.index]
                self.lapp.reload_codebook(names[choice.index])

        self.app.push_screen(ChoiceModal("Use which codebook?", [Text(literal(n)) for n in names]), done)

    def action_back(self) -> None:
        self.app.pop_screen()
