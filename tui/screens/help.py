"""``?``: every key of every screen, from the action registry (remapped keys included), the
current screen's first (lazygit and k9s open their help on the keys of where you are)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.actions import ACTIONS, SCOPES, ActionSpec, by_id
from tui.widgets.footer import RankedFooter

__all__ = ["HelpScreen", "key_label", "scope_order"]

_PRETTY = {"question_mark": "?", "slash": "/", "equals_sign": "=", "escape": "Esc", "enter": "Enter",
           "backspace": "Backspace", "pagedown": "PgDn", "pageup": "PgUp", "space": "Space", "delete": "Del",
           "right": "→", "left": "←", "up": "↑", "down": "↓", "home": "Home", "end": "End"}


def key_label(spec: ActionSpec, keymap: dict[str, str] | None = None) -> str:
    if spec.key_display and not (keymap and spec.id in keymap):
        return spec.key_display
    keys = (keymap or {}).get(spec.id, spec.keys)
    return " ".join(_PRETTY.get(k.strip(), k.strip()) for k in keys.split(","))


def scope_order(current: str) -> list[str]:
    """Help sections: the current screen, the lists' keys (when it has lists), everywhere, the rest."""
    first = [current] if current in SCOPES else []
    if current in ("runs", "conversations", "codebook", "tallies"):
        first.append("list")
    if "app" not in first:
        first.append("app")
    return first + [s for s in SCOPES if s not in first]


class HelpScreen(ModalScreen[None]):
    """All keys, grouped by screen, the current one first; Esc or ? closes."""

    BINDINGS = [by_id("modal.cancel").binding(), by_id("app.help").binding()]

    def __init__(self, scope: str = "") -> None:
        super().__init__()
        self.scope = scope
        """The screen the help was opened on: its keys come first."""
        self.sections: list[str] = []
        """Scope names in the order shown (tests read it)."""

    def compose(self) -> ComposeResult:
        keymap = dict(getattr(self.app, "_keymap", {}) or {})
        with VerticalScroll(id="help", classes="dialog full"):
            yield Static(Text("Keys  (ctrl+p: command palette — every action by name)", style="bold"))
            for scope in scope_order(self.scope):
                heading = SCOPES[scope] + (" (this screen)" if scope == self.scope else "")
                specs = [a for a in ACTIONS if a.scope == scope
                         and not (a.id.startswith("transcript.code_") and a.id != "transcript.code_1")]
                if not specs:
                    continue
                self.sections.append(scope)
                table = Table(title=heading, title_justify="left", title_style="bold cyan", show_header=False,
                              box=None, padding=(0, 1), expand=True)
                # Widths share the line (ratios), so the description column survives 80 columns.
                table.add_column("keys", style="bold", min_width=6, max_width=14, ratio=1)
                table.add_column("action", min_width=12, ratio=3)
                table.add_column("what it does", style="dim", min_width=20, ratio=5)
                for spec in specs:
                    table.add_row(key_label(spec, keymap), spec.title, spec.help)
                yield Static(table)
            yield RankedFooter()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_help(self) -> None:
        self.dismiss(None)
