"""The latitude terminal UI: `make_app()` builds it, for the CLI and for the tests alike.

Reads go through a `StoreReader` in thread workers; writes (tags, codebook, review)
through `tui.coding.Coding`, in order, on their own thread. Nothing here blocks the UI.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from textual import on, work
from textual.app import App
from textual.worker import Worker, WorkerState, get_current_worker

from runner.store.db import default_url, normalize_url
from runner.store.db import open as open_store
from runner.store.reader import StoreReader
from runner.store.tables import CodebookRow, CodeRow
from tui.actions import bindings
from tui.coding import Coding, RemovedCode
from tui.commands import ActionCommands
from tui.messages import CodebookChanged, CodebookLoaded, StatusPosted, StoreChanged

__all__ = ["LatitudeApp", "default_coder", "make_app"]

T = TypeVar("T")


def default_coder() -> str:
    """``LATITUDE_CODER``, else the login name."""
    name = os.environ.get("LATITUDE_CODER")
    if name:
        return name
    try:
        return getpass.getuser()
    except Exception:  # pragma: no cover - no login name (containers)
        return "coder"


class LatitudeApp(App[None]):
    """Browse runs and transcripts, tag, review and tally."""

    CSS_PATH = "app.tcss"
    TITLE = "latitude"
    COMMANDS = {ActionCommands}
    BINDINGS = bindings("app")
    ENABLE_COMMAND_PALETTE = True

    def __init__(self, reader: StoreReader, coding: Coding, *, keymap: Mapping[str, str] | None = None,
                 cursor_blink: bool = True, blind: bool = False, store_names: Any = None) -> None:
        super().__init__()
        self.blind = blind
        """The coder is blind (``--blind``, or a standing setting in the store): every screen hides models,
        vendors and conditions of the runs they have not unblinded (`runner.rigour.blind`)."""
        self._blind_views: dict[str, Any] = {}
        self._store_names = store_names
        self.cursor_blink = cursor_blink
        """Blink text cursors (off for tests and snapshots, so screenshots are stable)."""
        self.reader = reader
        """Read-only store access; every call blocks, so call it from thread workers."""
        self.coding = coding
        """Ordered writes (tags, codebook, review decisions)."""
        self.coder = coding.coder
        """Who is coding: recorded on every tag and decision."""
        self.codebook: CodebookRow | None = None
        """The codebook version the digit keys and the picker use (the newest of its name)."""
        self.codebook_name: str | None = None
        """The chosen codebook name (None: the one changed last)."""
        self.codes: list[CodeRow] = []
        """Codes of `codebook` in position order; the first nine are the digits 1-9."""
        self.codebook_names: list[str] = []
        self.current_run: str | None = None
        """The run last opened (the tallies' default scope)."""
        self._initial_keymap = dict(keymap or {})
        self._fingerprint: tuple[Any, ...] | None = None
        self.status_log: list[tuple[str, str]] = []
        """Every status message of the session, ``(severity, text)``, oldest first (ctrl+l shows them)."""

    # ------------------------------------------------------------ status

    def notify(self, message: str, *, title: str = "", severity: Any = "information", timeout: float | None = None,
               markup: bool = True) -> None:
        """Say it on the status line of the screen (one line that updates, never a pile of toasts).

        Thread-safe, like `App.notify`. Errors are also toasted: they must not go unseen.
        A screen without a status line (a dialog) gets the ordinary toast."""
        self.post_message(StatusPosted(f"{title}: {message}" if title and title != "error" else message,
                                       str(severity), timeout, markup))

    @on(StatusPosted)
    def _status_posted(self, message: StatusPosted) -> None:
        from tui.widgets.status_line import StatusLine

        repeat = 1
        if self.status_log and self.status_log[-1] == (message.severity, message.text):
            repeat = getattr(self, "_status_repeat", 1) + 1
        self._status_repeat = repeat
        self.status_log.append((message.severity, message.text))
        del self.status_log[:-500]
        lines = list(self.screen.query(StatusLine))
        for line in lines:
            line.say(message.text, message.severity, repeat)
        if not lines or message.severity == "error":
            super().notify(message.text, severity=message.severity,  # type: ignore[arg-type]
                           timeout=message.timeout, markup=message.markup)

    def action_message_log(self) -> None:
        from rich.text import Text

        from tui.screens.modals import TextViewModal
        from tui.widgets.status_line import SEVERITY_STYLE

        body = Text()
        for severity, text in self.status_log or [("information", "No messages yet.")]:
            body.append(text + "\n", style=SEVERITY_STYLE.get(severity, ""))
        self.push_screen(TextViewModal(f"Messages of this session ({len(self.status_log)})", body))

    # ------------------------------------------------------------ lifecycle

    def on_mount(self) -> None:
        if self._initial_keymap:
            self.set_keymap(self._initial_keymap)
        from tui.screens.runs import RunsScreen

        self.push_screen(RunsScreen())
        self.reload_codebook()
        self._fingerprint: tuple[Any, ...] | None = None
        # the baseline is read now, not at the first tick: a change made in the first second would
        # otherwise become the baseline and never show
        self.poll_store()
        self.set_interval(self.POLL_SECONDS, self.poll_store)

    POLL_SECONDS = 1.0
    """How often the store is checked for changes made elsewhere (another TUI, a run, the CLI)."""

    _PARTS = ("runs", "messages", "tags", "codebooks")

    @work(thread=True, exclusive=True, group="store-poll", exit_on_error=False)
    def poll_store(self) -> None:
        """Compare the store's fingerprint with the last one; tell every screen what changed."""
        new = self.reader.fingerprint()
        old, self._fingerprint = self._fingerprint, new
        if old is None or old == new:
            return
        what = frozenset(name for name, a, b in zip(self._PARTS, old, new, strict=True) if a != b)
        self.post_message(StoreChanged(what))

    @on(StoreChanged)
    def _store_changed(self, message: StoreChanged) -> None:
        if "codebooks" in message.what:
            self.reload_codebook()
        if "runs" in message.what and self.blind:
            self._store_names = None  # a new run's names are hidden too (read again on next use)
        for screen in self.screen_stack:
            screen.post_message(StoreChanged(message.what))

    def on_unmount(self) -> None:
        self.coding.close()
        self.reader.close()

    @on(Worker.StateChanged)
    def _worker_failed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            text = f"{event.worker.name or 'worker'}: {event.worker.error}"
            if self.blind:  # an error's text may quote a model or condition name
                text = self._store_names.masker().text(text) if self._store_names is not None else \
                    f"{event.worker.name or 'worker'} failed (its message is hidden while blind)"
            self.notify(text, title="error", severity="error", markup=False, timeout=8)

    # ------------------------------------------------------------ data

    @work(thread=True, exclusive=True, group="codebook-load", exit_on_error=False)
    def reload_codebook(self, name: str | None = None) -> None:
        """Read the active codebook (``name``, else the chosen one, else the newest) and tell every screen."""
        wanted = name or self.codebook_name
        book = self.reader.latest_codebook(wanted)
        if book is None and wanted is not None:
            book = self.reader.latest_codebook(None)
        codes = self.reader.codes(book.id) if book is not None and book.id is not None else []
        counts = self.reader.tag_counts([c.name for c in codes]) if codes else {}
        names = self.reader.codebook_names()
        if get_current_worker().is_cancelled:
            return  # a newer read replaced this one (a switch of codebook): never show a stale result
        self.post_message(CodebookLoaded(book, codes, counts, names))

    @on(CodebookLoaded)
    def _codebook_loaded(self, message: CodebookLoaded) -> None:
        self.codebook = message.codebook
        self.codebook_name = message.codebook.name if message.codebook else None
        self.codes = message.codes
        self.codebook_names = message.names
        for screen in self.screen_stack:
            screen.post_message(CodebookLoaded(message.codebook, message.codes, message.counts, message.names))

    @on(CodebookChanged)
    def _codebook_changed(self, message: CodebookChanged) -> None:
        if message.notice:
            self.notify(message.notice, markup=False)
        self.reload_codebook(message.codebook.name if message.codebook else None)

    def write(self, op: Callable[[Any], T], on_done: Callable[[T], Any] | None = None, *,
              what: str = "write") -> Worker[None]:
        """Queue a write (in order) and call ``on_done(result)`` on the UI thread when it is committed.
        The callbacks run in the order the writes were queued, whatever order their waiting threads
        wake in (a loaded machine wakes them in any order)."""
        import threading

        future = self.coding.submit(op)
        if not hasattr(self, "_write_turn"):
            self._write_turn = threading.Condition()
            self._write_seq = 0
            self._write_next = 0
        seq, self._write_seq = self._write_seq, self._write_seq + 1

        def wait() -> None:
            try:
                result = future.result()
                failed: Exception | None = None
            except Exception as exc:
                failed = exc
            with self._write_turn:
                # bounded: a write whose worker never ran (the app closing) must not hold the rest
                self._write_turn.wait_for(lambda: self._write_next >= seq, timeout=30)
            try:
                if failed is not None:
                    self.call_from_thread(self.notify, f"{what} failed: {failed}", title="error", severity="error",
                                          markup=False, timeout=8)
                    if isinstance(failed, RemovedCode):
                        self.call_from_thread(self.reload_codebook)  # show the codes as they are now
                elif on_done is not None:
                    self.call_from_thread(on_done, result)
            finally:
                with self._write_turn:
                    self._write_next += 1
                    self._write_turn.notify_all()

        return self.run_worker(wait, name=what, group="coding", thread=True, exit_on_error=False)

    # ------------------------------------------------------------ blind coding

    def blind_view(self, run_id: str | None) -> Any:
        """The coder's `BlindView` of ``run_id``, or None when they see it unblinded. Blocks on first use
        (it may write the coder's seeded order): call it from thread workers, or after a worker read it."""
        if not self.blind or not run_id:
            return None
        if run_id not in self._blind_views:
            self._blind_views[run_id] = self.coding.submit(self.coding.blind_view(run_id)).result()
        return self._blind_views[run_id]

    def cached_blind_view(self, run_id: str | None) -> Any:
        """`blind_view` when already read (UI thread); a blind app with no view yet gets the store-wide one."""
        if not self.blind or not run_id:
            return None
        return self._blind_views.get(run_id, None)

    def mask(self, text: str | None, run_id: str | None = None, conversation_id: str | None = None) -> str:
        """``text`` as this coder may see it: model names replaced while blind (the run's own view when
        known, else every name in the store)."""
        if not self.blind:
            return text or ""
        if run_id is not None and run_id in self._blind_views:
            view = self._blind_views[run_id]
            return view.text(text, conversation_id) if view is not None else (text or "")
        return self.store_masker().text(text)

    def store_masker(self) -> Any:
        """The masker of every model name in the store (screens that are not about one run). Blocks on
        first use after a new run: call it from thread workers where possible."""
        if self._store_names is None:
            self._store_names = self.coding.submit(self.coding.store_names()).result()
        return self._store_names.masker()

    def is_blind_to(self, run_id: str | None) -> bool:
        """Whether the screens hide this run's identities (cached view, else the standing setting)."""
        if not self.blind:
            return False
        if run_id is not None and run_id in self._blind_views:
            return self._blind_views[run_id] is not None
        return True

    def action_unblind(self) -> None:
        from rich.text import Text

        from tui.screens.modals import Confirmed, ConfirmModal

        run_id = getattr(self.screen, "run_id", None) or self.current_run
        if not self.blind or run_id is None:
            self.notify("You are not coding blind." if not self.blind else "Open a run first: unblinding is per run.",
                        markup=False)
            return
        if not self.is_blind_to(run_id):
            self.notify(f"You already see run {run_id} unblinded.", markup=False)
            return

        def done(answer: Confirmed | None) -> None:
            if answer is None or not answer.yes:
                return

            def unblinded(at: Any) -> None:
                self._blind_views[run_id] = None
                self.notify(f"Unblinded run {run_id} (recorded: {self.coder}, {at:%Y-%m-%d %H:%M} UTC). "
                            "Tags you make on it from now are not blind.", markup=False)
                for screen in self.screen_stack:
                    changed = getattr(screen, "blind_changed", None)
                    if changed is not None:
                        changed()  # read again, unmasked

            self.write(self.coding.unblind(run_id), unblinded, what="unblind")

        question = Text.assemble("Unblind run ", (run_id, "bold red"), "? You will see its models, vendors and "
                                 "conditions. This is recorded (who, when, which run) and cannot be undone; "
                                 "tags made after it are not blind.")
        self.push_screen(ConfirmModal(question), done)

    # ------------------------------------------------------------ navigation

    def _show(self, screen_type: type, make: Callable[[], Any]) -> None:
        for i, screen in enumerate(self.screen_stack):
            if isinstance(screen, screen_type):
                while len(self.screen_stack) > i + 1:
                    self.pop_screen()
                return
        self.push_screen(make())

    def action_help(self) -> None:
        from tui.screens.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss(None)
        else:
            self.push_screen(HelpScreen(getattr(self.screen, "SCOPE", "") or "modal"))

    def action_runs(self) -> None:
        from tui.screens.runs import RunsScreen

        self._show(RunsScreen, RunsScreen)

    def action_codebook(self) -> None:
        from tui.screens.codebook import CodebookScreen

        self._show(CodebookScreen, CodebookScreen)

    def action_review(self) -> None:
        from tui.screens.review import ReviewScreen

        self._show(ReviewScreen, ReviewScreen)

    def action_tallies(self, run_id: str | None = None) -> None:
        from tui.screens.tallies import TalliesScreen

        self._show(TalliesScreen, lambda: TalliesScreen(run_id or self.current_run))

    def action_preferences(self, run_id: str | None = None) -> None:
        from tui.screens.preferences import PreferencesScreen

        self._show(PreferencesScreen, lambda: PreferencesScreen(run_id or self.current_run))


def make_app(db_url: str | None = None, coder: str | None = None, *, keymap: Mapping[str, str] | None = None,
             migrate: bool = True, cursor_blink: bool = True, blind: bool = False) -> LatitudeApp:
    """The app over the store at ``db_url`` (default: ``LATITUDE_DB`` or ./transcripts.db), coding as
    ``coder`` (default: ``LATITUDE_CODER`` or the login name). ``keymap`` maps binding ids to keys.
    ``blind`` makes the coder blind to every run they have not unblinded, and records it in the store
    (they stay blind in later sessions until they unblind a run)."""
    url = normalize_url(db_url or default_url())
    if migrate:
        open_store(url).dispose()
    coding = Coding(url, coder or default_coder())
    if blind:
        coding.submit(coding.go_blind()).result()
    is_blind = coding.submit(coding.blind_default()).result()
    names = coding.submit(coding.store_names()).result() if is_blind else None
    return LatitudeApp(StoreReader(url), coding, keymap=keymap, cursor_blink=cursor_blink, blind=is_blind,
                       store_names=names)
