"""``?``: every key of every screen, from the action registry (remapped keys included)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from tui.actions import ACTIONS, SCOPES, ActionSpec, by_id

__all__ = ["HelpScreen", "key_label"]

_PRETTY = {"question_mark": "?", "slash": "/", "equals_sign": "=", "escape": "Esc", "enter": "Enter",
           "backspace": "Backspace", "pagedown": "PgDn", "pageup": "PgUp", "space": "Space", "delete": "Del",
           "right": "→", "left": "←", "up": "↑", "down": "↓", "home": "Home", "end": "End"}


def key_label(spec: ActionSpec, keymap: dict[str, str] | None = None) -> str:
    if spec.key_display and not (keymap and spec.id in keymap):
        return spec.key_display
    keys = (keymap or {}).get(spec.id, spec.keys)
    return " ".join(_PRETTY.get(k.strip(), k.strip()) for k in keys.split(","))


class HelpScreen(ModalScreen[None]):
    """All keys, grouped by screen; Esc or ? closes."""

    BINDINGS = [by_id("modal.cancel").binding(), by_id("app.help").binding()]

    def compose(self) -> ComposeResult:
        keymap = dict(getattr(self.app, "_keymap", {}) or {})
        with VerticalScroll(id="help", classes="dialog full"):
            yield Static(Text("Keys  (ctrl+p: command palette — every action by name)", style="bold"))
            for scope, heading in SCOPES.items():
                specs = [a for a in ACTIONS if a.scope == scope
                         and not (a.id.startswith("transcript.code_") and a.id != "transcript.code_1")]
                if not specs:
                    continue
                table = Table(title=heading, title_justify="left", title_style="bold cyan", show_header=False,
                              box=None, padding=(0, 2), expand=True)
                table.add_column("keys", style="bold", width=16, no_wrap=True)
                table.add_column("action", width=40, no_wrap=True)
                table.add_column("what it does", style="dim", ratio=1)
                for spec in specs:
                    table.add_row(key_label(spec, keymap), spec.title, spec.help)
                yield Static(table)
            yield Footer()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_help(self) -> None:
        self.dismiss(None)
