"""Dialogs: each a `ModalScreen` that dismisses with a typed dataclass (or None when cancelled)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.fuzzy import Matcher
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Select, Static, TextArea
from textual.widgets.option_list import Option

from runner.store.reader import ConversationFilter, Facets
from runner.store.tables import ArtifactRow, CodeRow
from tui.actions import by_id
from tui.text import literal, literal_map, raw_span, short
from tui.widgets.footer import RankedFooter

__all__ = [
    "ArtifactModal",
    "Choice",
    "ChoiceModal",
    "CodeForm",
    "CodeFormModal",
    "CodePick",
    "CodePickerModal",
    "ConfirmModal",
    "Confirmed",
    "FilterModal",
    "FilterResult",
    "SpanModal",
    "SpanSelection",
    "TextModal",
    "TextResult",
    "TextViewModal",
    "code_name_problem",
]


def no_blink(screen: Any) -> None:
    """Stop text cursors blinking when the app asks (tests and snapshots)."""
    if not getattr(screen.app, "cursor_blink", True):
        for widget in screen.query("Input, TextArea"):
            widget.cursor_blink = False


def _bind(*ids: str) -> list[Any]:
    return [by_id(i).binding() for i in ids]


class _Modal(ModalScreen[Any]):
    BINDINGS = _bind("modal.cancel")

    def _on_mount(self, event: Any) -> None:
        super()._on_mount(event)
        no_blink(self)

    def action_cancel(self) -> None:
        self.dismiss(None)


# ---------------------------------------------------------------- choice


@dataclass(frozen=True)
class Choice:
    index: int
    """Position of the chosen line."""


class ChoiceModal(_Modal):
    """Pick one line of a list."""

    def __init__(self, title: str, labels: list[Text]) -> None:
        super().__init__()
        self.title_text = title
        self.labels = labels

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text(self.title_text, style="bold"))
            yield OptionList(*[Option(label, id=str(i)) for i, label in enumerate(self.labels)], id="choices")
            yield RankedFooter()

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(Choice(int(event.option.id or 0)))


# ---------------------------------------------------------------- confirm


@dataclass(frozen=True)
class Confirmed:
    yes: bool


class ConfirmModal(_Modal):
    """A yes/no question (``y`` / ``n``, Esc is no)."""

    BINDINGS = _bind("modal.cancel", "modal.yes", "modal.no")

    def __init__(self, question: Text | str) -> None:
        super().__init__()
        self.question = question if isinstance(question, Text) else Text(question)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.question)
            yield Static(Text("y: yes    n / Esc: no", style="dim"))
            yield RankedFooter()

    def action_answer(self, yes: bool) -> None:
        self.dismiss(Confirmed(yes))

    def action_cancel(self) -> None:
        self.dismiss(Confirmed(False))


# ---------------------------------------------------------------- text


@dataclass(frozen=True)
class TextResult:
    value: str


class TextModal(_Modal):
    """One line of text (Enter saves)."""

    def __init__(self, title: str, value: str = "", placeholder: str = "", help: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.value = value
        self.placeholder = placeholder
        self.help = help

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text(self.title_text, style="bold"))
            if self.help:
                yield Static(Text(self.help, style="dim"))
            yield Input(value=self.value, placeholder=self.placeholder, id="text")
            yield RankedFooter()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(TextResult(event.value))


class TextViewModal(_Modal):
    """Read-only text in a scrolling box (the message log)."""

    def __init__(self, title: str, body: Text) -> None:
        super().__init__()
        self.title_text = title
        self.body = body

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog full"):
            yield Label(Text(self.title_text, style="bold"))
            with VerticalScroll():
                yield Static(self.body, id="text-view")
            yield RankedFooter()


# ---------------------------------------------------------------- filters


@dataclass(frozen=True)
class FilterResult:
    filter: ConversationFilter


FILTER_FIELDS = ("model", "vendor", "condition", "replicate", "stop_reason", "status", "offer_outcome", "tag", "kind")


class FilterModal(_Modal):
    """Every filter of the conversations list at once (Tab moves, Enter opens a list, ctrl+s applies)."""

    BINDINGS = _bind("modal.cancel", "modal.save")

    def __init__(self, facets: Facets, current: ConversationFilter) -> None:
        super().__init__()
        self.facets = facets
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label(Text("Filter conversations", style="bold"))
            with VerticalScroll(id="filter-fields"):
                for name in FILTER_FIELDS:
                    values = getattr(self.facets, name)
                    if name == "stop_reason":
                        values = list(values) + (["error"] if any(str(v).startswith("error") for v in values)
                                                 else [])
                    current = getattr(self.current, name)
                    options = [(Text(literal(str(v))), v) for v in values]
                    with Horizontal(classes="field"):
                        yield Label(name.replace("_", " "), classes="field-label")
                        yield Select(options, prompt="any", allow_blank=True, id=f"f-{name}", compact=True,
                                     value=current if current in values else Select.NULL)
                with Horizontal(classes="field"):
                    yield Label("search", classes="field-label")
                    yield Input(value=self.current.search or "", placeholder="words, \"phrase\", prefix*",
                                id="f-search", compact=True)
                yield Static("", id="f-search-error", classes="field-error")
            with Horizontal(classes="buttons"):
                yield Button("Apply (ctrl+s)", id="apply", variant="primary", compact=True)
                yield Button("Clear all", id="clear", compact=True)
            yield RankedFooter()

    def on_mount(self) -> None:
        # The first field has focus, so the first key (Enter opens its list) is never lost.
        self.query_one(f"#f-{FILTER_FIELDS[0]}", Select).focus()

    def _result(self) -> ConversationFilter:
        values: dict[str, Any] = {}
        for name in FILTER_FIELDS:
            v = self.query_one(f"#f-{name}", Select).value
            values[name] = None if v is Select.NULL else v
        values["search"] = self.query_one("#f-search", Input).value.strip() or None
        return ConversationFilter(**values)

    def action_save(self) -> None:
        from runner.store.search import SearchError, parse

        result = self._result()
        try:
            parse(result.search)
        except SearchError as exc:
            self.query_one("#f-search-error", Static).update(Text(str(exc)))
            self.query_one("#f-search", Input).focus()
            return
        self.dismiss(FilterResult(result))

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_save()

    @on(Button.Pressed, "#apply")
    def _apply(self) -> None:
        self.action_save()

    @on(Button.Pressed, "#clear")
    def _clear(self) -> None:
        self.dismiss(FilterResult(ConversationFilter()))


# ---------------------------------------------------------------- code picker


@dataclass(frozen=True)
class CodePick:
    name: str
    """The code chosen (or to create)."""
    create: bool = False
    """True when it is a new code: ask for its definition, then add it to the codebook."""


class CodePickerModal(_Modal):
    """Fuzzy-find a code by name or definition; Enter picks, or creates the typed name."""

    BINDINGS = _bind("modal.cancel", "modal.down", "modal.up")

    def __init__(self, codes: list[CodeRow], title: str = "Tag with code", applied: set[str] | None = None,
                 allow_create: bool = True) -> None:
        super().__init__()
        self.codes = codes
        self.title_text = title
        self.applied = applied or set()
        self.allow_create = allow_create
        self.options: list[CodePick] = []

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label(Text(self.title_text, style="bold"))
            yield Input(placeholder="type to filter; a new name creates a code", id="code-query")
            yield OptionList(id="code-options")
            yield RankedFooter()

    def on_mount(self) -> None:
        self._refresh_options("")

    @on(Input.Changed, "#code-query")
    def _changed(self, event: Input.Changed) -> None:
        self._refresh_options(event.value)

    def _refresh_options(self, query: str) -> None:
        query = query.strip()
        scored: list[tuple[float, int, CodeRow]] = []
        matcher = Matcher(query) if query else None
        for i, c in enumerate(self.codes):
            if matcher is None:
                scored.append((0.0, i, c))
                continue
            score = max(matcher.match(c.name), matcher.match(c.definition or "") * 0.5)
            if score > 0:
                scored.append((-score, i, c))
        scored.sort(key=lambda x: (x[0], x[1]))
        option_list = self.query_one("#code-options", OptionList)
        option_list.clear_options()
        self.options = []
        prompts = []
        for _, _i, c in scored:
            label = Text()
            label.append(f"{c.position + 1} " if c.position < 9 else "  ", style="bold")
            label.append(literal(c.name), style="bold cyan" if c.name in self.applied else "bold")
            if c.name in self.applied:
                label.append(" ✓", style="cyan")
            if c.definition:
                label.append("  " + short(c.definition, 70), style="dim")
            prompts.append(Option(label))
            self.options.append(CodePick(c.name))
        if self.allow_create and query and not any(c.name == query for c in self.codes):
            prompts.append(Option(Text.assemble(("+ create code ", "green"), (literal(query), "bold green"))))
            self.options.append(CodePick(query, create=True))
        option_list.add_options(prompts)
        if prompts:
            option_list.highlighted = 0

    def action_move(self, step: int) -> None:
        option_list = self.query_one("#code-options", OptionList)
        if option_list.option_count:
            current = option_list.highlighted or 0
            option_list.highlighted = max(0, min(option_list.option_count - 1, current + step))

    @on(Input.Submitted, "#code-query")
    def _submitted(self) -> None:
        highlighted = self.query_one("#code-options", OptionList).highlighted
        if highlighted is not None and highlighted < len(self.options):
            self.dismiss(self.options[highlighted])

    @on(OptionList.OptionSelected, "#code-options")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.options[event.option_index])


# ---------------------------------------------------------------- code form


@dataclass(frozen=True)
class CodeForm:
    name: str
    definition: str
    include: str
    exclude: str
    examples: list[str]
    parent: str | None


_CODE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/ -]*$")


def code_name_problem(name: str, taken: set[str] | frozenset[str] = frozenset()) -> str | None:
    """What is wrong with ``name`` as a code name, in words (None: nothing). The same rule as
    `runner.analysis.codebook.CodeName`, said before anything else is typed."""
    name = name.strip()
    if not name:
        return "A code needs a name."
    if len(name) > 80:
        return f"Too long: {len(name)} characters, at most 80."
    if not name[0].isascii() or not name[0].isalnum():
        return f"Start with a letter or a digit (not “{literal(name[0])}”)."
    bad = sorted({ch for ch in name if not _CODE_NAME.match("a" + ch)})
    if bad:
        shown = " ".join(literal(c) if c.strip() else repr(c) for c in bad)
        return f"Not allowed in a name: {shown}. Use letters, digits, space and _ . : / -"
    if name in taken:
        return f"{name} is already a code of this codebook."
    return None


class CodeFormModal(_Modal):
    """A code's fields (Enter in any box or ctrl+s saves). Examples are separated by `|`."""

    BINDINGS = _bind("modal.cancel", "modal.save")

    def __init__(self, title: str, code: CodeRow | None = None, name: str = "", name_editable: bool = True,
                 taken: set[str] | None = None, definition: str = "", focus: str | None = None) -> None:
        super().__init__()
        self.title_text = title
        self.code = code
        self.code_name = code.name if code else name
        self.name_editable = name_editable
        self.taken = set(taken or ()) - ({code.name} if code else set())
        """Names already in the codebook (a new name must not be one of them)."""
        self.definition = definition
        """The definition to start from (a suggested theme's, to edit)."""
        self.focus_field = focus
        """The field focused first (default: the name when it is empty, else the definition)."""

    def compose(self) -> ComposeResult:
        import json

        c = self.code
        examples = " | ".join(json.loads(c.examples_json or "[]")) if c else ""
        with Vertical(classes="dialog wide"):
            yield Label(Text(self.title_text, style="bold"))
            for field, value, placeholder in (
                ("name", self.code_name, "short name, e.g. curiosity"),
                ("definition", c.definition if c else self.definition, "what the code means"),
                ("include", c.include if c else "", "when to apply it"),
                ("exclude", c.exclude if c else "", "when not to"),
                ("examples", examples, "example quotes, separated by |"),
                ("parent", (c.parent or "") if c else "", "parent code name (optional)"),
            ):
                with Horizontal(classes="field"):
                    yield Label(field, classes="field-label")
                    yield Input(value=value, placeholder=placeholder, id=f"c-{field}",
                                disabled=field == "name" and not self.name_editable)
                if field == "name":
                    yield Static("", id="c-name-error", classes="field-error")
            yield RankedFooter()

    def on_mount(self) -> None:
        first = self.focus_field or ("definition" if not self.name_editable or self.code_name else "name")
        box = self.query_one(f"#c-{first}", Input)
        box.focus()
        if first == "name":
            box.select_all()
        self._check_name(self.code_name)

    def _value(self, field: str) -> str:
        return self.query_one(f"#c-{field}", Input).value.strip()

    @on(Input.Changed, "#c-name")
    def _name_changed(self, event: Input.Changed) -> None:
        self._check_name(event.value)

    def _check_name(self, name: str) -> str | None:
        problem = code_name_problem(name, self.taken) if self.name_editable else None
        shown = problem if problem and (name.strip() or self.query_one("#c-name", Input).has_focus) else None
        self.query_one("#c-name-error", Static).update(Text(shown or ""))
        return problem

    def action_save(self) -> None:
        name = self._value("name")
        problem = self._check_name(name)
        if problem:
            self.query_one("#c-name-error", Static).update(Text(problem))
            self.query_one("#c-name", Input).focus()
            return
        examples = [e.strip() for e in self._value("examples").split("|") if e.strip()]
        self.dismiss(CodeForm(name, self._value("definition"), self._value("include"), self._value("exclude"),
                              examples, self._value("parent") or None))

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_save()


# ---------------------------------------------------------------- artifacts


class ArtifactModal(_Modal):
    """The conversation's artifacts: a list on the left, the chosen one (literal text) on the right."""

    def __init__(self, artifacts: list[ArtifactRow]) -> None:
        super().__init__()
        self.artifacts = artifacts

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog full"):
            yield Label(Text(f"Artifacts ({len(self.artifacts)})", style="bold"))
            with Horizontal():
                yield OptionList(*[Option(Text.assemble((literal(a.name), "bold"), (f"  #{a.message_idx}", "dim")))
                                   for a in self.artifacts], id="artifact-list")
                yield TextArea("", read_only=True, id="artifact-text", soft_wrap=True, show_line_numbers=True)
            yield RankedFooter()

    def on_mount(self) -> None:
        if self.artifacts:
            self._show(0)
        self.query_one("#artifact-list", OptionList).focus()

    def _show(self, index: int) -> None:
        self.query_one("#artifact-text", TextArea).load_text(literal(self.artifacts[index].content))

    @on(OptionList.OptionHighlighted, "#artifact-list")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self._show(event.option_index)


# ---------------------------------------------------------------- span


@dataclass(frozen=True)
class SpanSelection:
    start: int
    """Offset of the first selected character in the message content."""
    end: int
    """Offset one past the last selected character."""
    quote: str
    """The exact selected text of the message."""


class SpanModal(_Modal):
    """The focused message as selectable text: select with shift+arrows, Enter (or t) tags it."""

    BINDINGS = _bind("modal.cancel", "span.tag")

    def __init__(self, content: str, title: str) -> None:
        super().__init__()
        self.content = content
        self.shown, self.offsets = literal_map(content)
        self.title_text = title

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog full"):
            yield Label(Text(self.title_text, style="bold"))
            yield Static(Text("select with shift+arrows (shift+ctrl+arrows by word), Enter or t: tag the selection",
                              style="dim"))
            yield TextArea(self.shown, read_only=True, soft_wrap=True, id="span-text")
            yield RankedFooter()

    def on_mount(self) -> None:
        self.query_one("#span-text", TextArea).focus()

    def selection(self) -> SpanSelection | None:
        area = self.query_one("#span-text", TextArea)
        sel = area.selection
        doc = area.document
        a = doc.get_index_from_location(sel.start)
        b = doc.get_index_from_location(sel.end)
        start, end = raw_span(self.offsets, min(a, b), max(a, b))
        if end <= start:
            return None
        return SpanSelection(start, end, self.content[start:end])

    def action_tag_selection(self) -> None:
        sel = self.selection()
        if sel is None:
            self.notify("Select some text first (shift+arrows).", severity="warning", markup=False)
            return
        self.dismiss(sel)
