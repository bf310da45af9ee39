"""The one registry of actions: it feeds the key bindings, the footer, the command palette
and the help screen (the Harlequin habit), so the four can never disagree.

Each `ActionSpec` has a stable id ``screen.action`` (Posting's habit: keys can be remapped
by id with ``make_app(keymap={"transcript.next": "j"})``), the key(s), the short footer
label, the palette title ``area: Verb object`` and the help text (also the tooltip).

A screen takes its bindings with ``BINDINGS = bindings("transcript")``; the method run is
``action_<action>`` on that screen (or on the app for scope ``app``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from textual.binding import Binding

__all__ = ["ACTIONS", "SCOPES", "ActionSpec", "bindings", "by_id", "for_scope"]


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """One thing a person can do, wherever it is offered."""

    id: str
    """Stable binding id, ``<scope>.<name>`` (``transcript.next``); the keymap refers to it."""
    keys: str
    """Textual key names, comma-separated for alternatives (``"n,right"``)."""
    action: str
    """The action string run (``next``, ``toggle_code(1)``)."""
    label: str
    """Short footer label."""
    title: str
    """Command palette title, ``area: Verb object``."""
    help: str
    """One sentence for the help screen and the tooltip."""
    show: bool = True
    """Shown in the footer."""
    priority: bool = False
    """Checked before the focused widget's own bindings. Avoid: a priority key runs before keys typed
    ahead of it that are still queued for the focused widget (``↓ ↓ Enter`` would open the wrong row)."""
    key_display: str | None = None
    """How the key is shown (``1-9``)."""
    palette: bool = True
    """Listed in the command palette."""
    rank: int = 5
    """Footer priority (0 first): on a narrow terminal the footer keeps the items of lowest rank that
    fit, so ``?`` (0) and Esc (1) always survive."""

    @property
    def scope(self) -> str:
        return self.id.split(".", 1)[0]

    def binding(self) -> Binding:
        return Binding(self.keys, self.action, self.label, show=self.show, key_display=self.key_display,
                       priority=self.priority, tooltip=self.help, id=self.id)


SCOPES: dict[str, str] = {
    "app": "Everywhere",
    "list": "Every list",
    "runs": "Runs",
    "conversations": "Conversations",
    "transcript": "Transcript",
    "codebook": "Codebook",
    "review": "Review queue",
    "tallies": "Tallies",
    "compare": "Compare",
    "forks": "Forks",
    "preferences": "Preferences",
    "modal": "Dialogs",
    "span": "Span selection",
}
"""Scopes in help-screen order, with their headings."""


def _codes() -> Iterator[ActionSpec]:
    for i in range(1, 10):
        yield ActionSpec(
            f"transcript.code_{i}", str(i), f"toggle_code({i})", "Toggle code", f"tag: Toggle code {i}",
            f"Toggle code {i} of the codebook on the focused turn (or the conversation, in conversation mode).",
            show=i == 1, key_display="1-9" if i == 1 else None, rank=2,
        )


ACTIONS: tuple[ActionSpec, ...] = (
    # -- everywhere
    ActionSpec("app.help", "question_mark", "help", "Keys", "help: Show all keys",
               "List every key: this screen's first, then the lists', then every other screen's.", rank=0),
    ActionSpec("app.palette", "ctrl+p", "command_palette", "Palette", "help: Open command palette",
               "Search every action by name.", show=False, palette=False),
    ActionSpec("app.runs", "f2", "runs", "Runs", "view: Runs", "Go back to the list of runs.", rank=8),
    ActionSpec("app.codebook", "f3", "codebook", "Codebook", "view: Codebook",
               "Open the codebook: codes, rename, merge, delete, import and export.", rank=8),
    ActionSpec("app.review", "f4", "review", "Review", "view: Review queue",
               "Open the review queue of judge and theme suggestions.", rank=8),
    ActionSpec("app.tallies", "f5", "tallies", "Tallies", "view: Tallies",
               "Open the tallies: code by model (or condition, vendor, protocol) with Wilson intervals.", rank=8),
    ActionSpec("app.log", "ctrl+l", "message_log", "Log", "view: Message log",
               "Every status message of this session, newest last (the status line shows only the latest).",
               show=False),
    ActionSpec("app.preferences", "f6", "preferences", "Preferences", "view: Preferences",
               "Open the preferences of the current run: options ranked with 95% interval bars.", show=False),
    ActionSpec("app.quit", "ctrl+q", "quit", "Quit", "app: Quit", "Leave latitude.", show=False),
    ActionSpec("app.unblind", "U", "unblind", "Unblind", "blind: Unblind this run",
               "Show the models, vendors and conditions of the current run (asks first; recorded: who, when, "
               "which run; tags made after it are not blind).", show=False),
    # -- every list (tables)
    ActionSpec("list.first", "home,g", "jump(0)", "First", "list: Go to first row", "Jump to the first row of the list.",
               show=False, palette=False),
    ActionSpec("list.last", "end,G", "jump(-1)", "Last", "list: Go to last row",
               "Jump to the last row of the list (a paged list reads on from there).", show=False, palette=False),
    # -- runs
    ActionSpec("runs.open", "enter", "open", "Open", "view: Conversations of run",
               "Open the conversations of the highlighted run.", rank=2),
    ActionSpec("runs.refresh", "r", "refresh", "Refresh", "runs: Refresh", "Read the runs again now."),
    ActionSpec("runs.tallies", "t", "tallies", "Tallies", "view: Tallies of run",
               "Tallies of the highlighted run."),
    # -- conversations
    ActionSpec("conversations.open", "enter", "open", "Open", "view: Transcript",
               "Read the highlighted conversation.", rank=2),
    ActionSpec("conversations.search", "slash", "search", "Search", "search: Message text",
               "Full-text search over whole conversations: words (anywhere in it), \"phrases\", prefix*, OR, "
               "-exclude (nowhere in it).", rank=2),
    ActionSpec("conversations.filter", "f", "filter", "Filter", "filter: Edit filters",
               "Filter on model, vendor, condition, replicate, stop reason, status, offer outcome, tag.", rank=3),
    ActionSpec("conversations.column_left", "left,h", "column(-1)", "Column ←", "go: Previous column",
               "Move the column cursor (the underlined header) left.", show=False, palette=False),
    ActionSpec("conversations.column_right", "right,l", "column(1)", "Column →", "go: Next column",
               "Move the column cursor (the underlined header) right.", show=False, palette=False),
    ActionSpec("conversations.filter_cell", "equals_sign", "filter_cell", "By cell", "filter: By value under cursor",
               "Keep only conversations with the value of the cell under the cursor (row × underlined column; "
               "←/→ move the column).", rank=4),
    ActionSpec("conversations.clear", "backspace", "clear_filters", "Clear", "filter: Clear all",
               "Remove every filter and the search."),
    ActionSpec("conversations.mark", "c", "mark", "Compare", "view: Compare marked with highlighted",
               "Mark the highlighted conversation; on a second one, open both side by side."),
    ActionSpec("conversations.refresh", "r", "refresh", "Refresh", "conversations: Refresh",
               "Read the list again now (a live run refreshes by itself)."),
    ActionSpec("conversations.back", "escape", "back", "Back", "view: Back to runs",
               "Close the search box, or go back to the runs.", rank=1),
    # -- transcript
    ActionSpec("transcript.next", "n,right", "next", "Next", "go: Next conversation",
               "The next conversation in the current filter, without going back to the list.", rank=2),
    ActionSpec("transcript.next_uncoded", "N", "next_uncoded", "Next uncoded", "go: Next conversation uncoded by me",
               "The next conversation in the current filter that you have not tagged yet.", rank=3),
    ActionSpec("transcript.prev", "p,left", "prev", "Prev", "go: Previous conversation",
               "The previous conversation in the current filter."),
    ActionSpec("transcript.down", "j,down", "cursor(1)", "Turn ↓", "go: Next turn", "Focus the next turn.",
               show=False),
    ActionSpec("transcript.up", "k,up", "cursor(-1)", "Turn ↑", "go: Previous turn", "Focus the previous turn.",
               show=False),
    ActionSpec("transcript.first", "home,g", "cursor_to(0)", "First", "go: First turn", "Focus the first turn.",
               show=False),
    ActionSpec("transcript.last", "end,G", "cursor_to(-1)", "Last", "go: Last turn", "Focus the last turn.",
               show=False),
    ActionSpec("transcript.page_down", "pagedown,space", "page(1)", "Page ↓", "go: Page down",
               "Scroll the transcript one page down.", show=False),
    ActionSpec("transcript.page_up", "pageup", "page(-1)", "Page ↑", "go: Page up",
               "Scroll the transcript one page up.", show=False),
    *_codes(),
    ActionSpec("transcript.mode", "m", "mode", "Mode", "tag: Switch turn / conversation mode",
               "Digits and the picker tag the focused turn, or the whole conversation."),
    ActionSpec("transcript.pick", "t", "pick", "Add code", "tag: Add code",
               "Fuzzy-find any code to toggle, or create a new one with a definition."),
    ActionSpec("transcript.span", "v", "span", "Span", "tag: Tag selected span",
               "Select text in the focused message with shift+arrows and tag the quote."),
    ActionSpec("transcript.note", "a", "note", "Note", "tag: Note on a tag",
               "Write a note on one of your tags on the focused turn or conversation."),
    ActionSpec("transcript.reviewed", "x", "reviewed", "Reviewed", "tag: Mark conversation reviewed",
               "Mark (or unmark) the conversation as read by you: codes you did not apply count as absent, "
               "not as uncoded.", show=False),
    ActionSpec("transcript.undo", "u,ctrl+z", "undo", "Undo", "tag: Undo last decision",
               "Revert your last tag decision (add, remove or note); repeat to go further back."),
    ActionSpec("transcript.system", "s", "toggle_system", "System", "view: Toggle system prompt",
               "Expand or collapse the system prompt.", show=False),
    ActionSpec("transcript.reasoning", "r", "toggle_reasoning", "Reasoning", "view: Toggle reasoning",
               "Expand or collapse the reasoning text of the focused turn (R: all turns)."),
    ActionSpec("transcript.reasoning_all", "R", "toggle_reasoning_all", "All reasoning",
               "view: Toggle all reasoning", "Expand or collapse the reasoning of every turn.", show=False),
    ActionSpec("transcript.artifacts", "o", "artifacts", "Artifacts", "view: Artifacts",
               "View the artifacts of the conversation."),
    ActionSpec("transcript.telemetry", "i", "telemetry", "Telemetry", "view: Toggle telemetry panel",
               "Show or hide per-turn latency, time to first token, tokens, cost and context fill.", show=False),
    ActionSpec("transcript.compare", "c", "compare", "Compare", "view: Compare with another model",
               "This conversation side by side with the same condition and replicate of another model."),
    ActionSpec("transcript.forks", "f", "forks", "Forks", "view: Forks of this point",
               "List the continuations sampled from the same point as this fork, or the forks made of this "
               "conversation, with each one's reply at the fork point."),
    ActionSpec("transcript.back", "escape", "back", "Back", "view: Back to conversations",
               "Go back to the conversations list (at this conversation).", rank=1),
    # -- codebook
    ActionSpec("codebook.add", "a", "add", "Add", "codebook: Add code", "Add a code with a definition."),
    ActionSpec("codebook.edit", "e", "edit", "Edit", "codebook: Edit code",
               "Edit the definition, include and exclude rules, examples and parent of the code."),
    ActionSpec("codebook.rename", "r", "rename", "Rename", "codebook: Rename code",
               "Rename the highlighted code; its tags follow."),
    ActionSpec("codebook.merge", "m", "merge", "Merge", "codebook: Merge code into another",
               "Fold the highlighted code into another one; its tags move there."),
    ActionSpec("codebook.delete", "d,delete", "delete", "Delete", "codebook: Delete code",
               "Delete the highlighted code (asks first); its tags are kept for audit but no longer count."),
    ActionSpec("codebook.import", "i", "import_yaml", "Import", "codebook: Import YAML",
               "Read a codebook YAML file into the store (a new version)."),
    ActionSpec("codebook.export", "x", "export_yaml", "Export", "codebook: Export YAML",
               "Write the codebook to a YAML file."),
    ActionSpec("codebook.switch", "b", "switch", "Codebook", "codebook: Switch codebook",
               "Choose which codebook the digit keys and the picker use."),
    ActionSpec("codebook.back", "escape", "back", "Back", "view: Back", "Close the codebook.", rank=1),
    # -- review
    ActionSpec("review.accept", "a", "decide('accepted')", "Accept", "review: Accept suggestion",
               "Accept: a judge's code becomes your tag; a theme becomes a code of the codebook."),
    ActionSpec("review.reject", "r", "decide('rejected')", "Reject", "review: Reject suggestion",
               "Reject the suggestion."),
    ActionSpec("review.skip", "s", "decide('skipped')", "Skip", "review: Skip suggestion",
               "Leave it for later (skipped items come back after the pending ones)."),
    ActionSpec("review.undo", "u,ctrl+z", "undo", "Undo", "review: Undo last decision",
               "Put the last decided suggestion back in the queue and revert what accepting it did."),
    ActionSpec("review.open", "o", "open", "Transcript", "view: Transcript of suggestion",
               "Read the conversation the suggestion is about."),
    ActionSpec("review.back", "escape", "back", "Back", "view: Back", "Close the review queue.", rank=1),
    # -- tallies
    ActionSpec("tallies.by", "b", "cycle_by", "By", "tallies: Switch breakdown",
               "Break down by model, condition, vendor or protocol."),
    ActionSpec("tallies.coder", "c", "cycle_coder", "Coder", "tallies: Switch coder",
               "Count one person's codes, the judge's, the consensus of people, or the built-in codes."),
    ActionSpec("tallies.scope", "a", "toggle_scope", "All runs", "tallies: Switch run / all runs",
               "Tally the current run only, or every run in the store."),
    ActionSpec("tallies.back", "escape", "back", "Back", "view: Back", "Close the tallies.", rank=1),
    # -- preferences
    ActionSpec("preferences.open", "enter", "open", "Open", "preferences: Open option or comparison",
               "Open the highlighted option's comparisons, or the highlighted comparison's transcript."),
    ActionSpec("preferences.unclear", "u", "unclear", "Unclear only", "preferences: Show unclear answers",
               "List only the unclear, refused and unanswered comparisons, to review their classification."),
    ActionSpec("preferences.back", "escape", "back", "Back", "view: Back", "Back to the ranking, or close."),
    # -- compare
    ActionSpec("compare.down", "j,down", "scroll(1)", "Down", "go: Next turn (both)", "Move both sides one turn down.",
               show=False),
    ActionSpec("compare.up", "k,up", "scroll(-1)", "Up", "go: Previous turn (both)", "Move both sides one turn up.",
               show=False),
    ActionSpec("compare.model", "m", "other('model', 1)", "Other model", "compare: Next model on the right",
               "Show the same condition and replicate of the next model on the right."),
    ActionSpec("compare.replicate", "r", "other('replicate', 1)", "Other replicate",
               "compare: Next replicate on the right", "Show the next replicate of the right-hand model."),
    ActionSpec("compare.swap", "w", "swap", "Swap", "compare: Swap sides", "Swap the two transcripts."),
    ActionSpec("compare.fork", "f", "other('fork', 1)", "Other fork", "compare: Next fork on the right",
               "Show the next continuation of the same fork point on the right."),
    # -- forks
    ActionSpec("forks.open", "enter", "open", "Open", "view: Transcript of fork",
               "Open the highlighted fork's transcript.", rank=2),
    ActionSpec("forks.compare", "c", "compare", "Compare", "view: Compare forks side by side",
               "The highlighted fork side by side with the next one of the same point (f there: the next)."),
    ActionSpec("forks.back", "escape", "back", "Back", "view: Back", "Close the list of forks.", rank=1),
    ActionSpec("compare.back", "escape", "back", "Back", "view: Back", "Close the comparison.", rank=1),
    # -- dialogs (pickers, forms, confirmations)
    ActionSpec("modal.cancel", "escape", "cancel", "Cancel", "dialog: Cancel", "Close the dialog without a change.", rank=1,
               palette=False),
    ActionSpec("modal.save", "ctrl+s", "save", "Save", "dialog: Save", "Apply the dialog (Enter in a text box too).",
               palette=False),
    ActionSpec("modal.down", "down", "move(1)", "Down", "dialog: Next choice", "Highlight the next choice.",
               show=False, palette=False),
    ActionSpec("modal.up", "up", "move(-1)", "Up", "dialog: Previous choice", "Highlight the previous choice.",
               show=False, palette=False),
    ActionSpec("modal.yes", "y", "answer(True)", "Yes", "dialog: Yes", "Confirm.", palette=False),
    ActionSpec("modal.no", "n", "answer(False)", "No", "dialog: No", "Do not.", palette=False),
    ActionSpec("span.tag", "enter,t", "tag_selection", "Tag selection", "tag: Tag selected span",
               "Tag the selected text with a code (select with shift+arrows, shift+ctrl+arrows by word).",
               palette=False),
)
"""Every action, in help-screen order."""

_BY_ID = {a.id: a for a in ACTIONS}
assert len(_BY_ID) == len(ACTIONS), "duplicate action ids"


def by_id(action_id: str) -> ActionSpec:
    return _BY_ID[action_id]


def for_scope(scope: str) -> list[ActionSpec]:
    return [a for a in ACTIONS if a.scope == scope]


def bindings(scope: str) -> list[Binding]:
    """The `Binding`s of one scope, for a screen's (or the app's) ``BINDINGS``."""
    return [a.binding() for a in for_scope(scope)]
