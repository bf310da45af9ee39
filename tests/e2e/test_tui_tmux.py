"""`latitude tui` in a real terminal: a tmux session at 120×40, keys sent, the screen captured.

Needs tmux. Locally the test is skipped without it; under CI (``CI`` set) it FAILS, so a CI
image without tmux is red (``apt-get install -y tmux``).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.data.tui_fixtures import TuiStore, tui_store

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def _need_tmux() -> str:
    tmux = shutil.which("tmux")
    if tmux is None:
        if os.environ.get("CI"):
            pytest.fail("tmux is not installed: the CI image needs `apt-get install -y tmux`", pytrace=False)
        pytest.skip("tmux is not installed (apt-get install -y tmux)")
    return tmux


class Terminal:
    """A tmux session running one command."""

    def __init__(self, tmux: str, name: str) -> None:
        self.tmux = tmux
        self.name = name

    def run(self, *args: str) -> str:
        return subprocess.run([self.tmux, *args], capture_output=True, text=True, check=True).stdout

    def keys(self, *keys: str) -> None:
        for key in keys:
            self.run("send-keys", "-t", self.name, key)

    def screen(self) -> str:
        return self.run("capture-pane", "-t", self.name, "-p")

    def alive(self) -> bool:
        return subprocess.run([self.tmux, "has-session", "-t", self.name], capture_output=True).returncode == 0

    def try_screen(self) -> str | None:
        """The screen, or None when the session has ended (it may end at any moment: no check-then-act)."""
        done = subprocess.run([self.tmux, "capture-pane", "-t", self.name, "-p"], capture_output=True, text=True)
        return done.stdout if done.returncode == 0 else None

    def wait_for(self, what: str | Callable[[str], bool], timeout: float = 120.0) -> str:
        """Poll the screen (a real terminal has no events to wait on) until ``what`` shows.

        The timeout only bounds a failure; a loaded machine just takes longer to get there."""
        check = what if callable(what) else (lambda s: what in s)
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            shown = self.try_screen()
            if shown is not None:
                screen = shown
            if check(screen):
                return screen
            if shown is None and not self.alive():
                if check(screen):
                    return screen
                raise AssertionError(f"the app exited before {what!r} showed; last screen:\n{screen}")
            time.sleep(0.1)
        size = subprocess.run([self.tmux, "display", "-p", "-t", self.name, "#{window_width}x#{window_height}"],
                              capture_output=True, text=True).stdout.strip()
        raise AssertionError(f"{what!r} never showed on the {size} terminal; last screen:\n{screen}")


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[tuple[Terminal, TuiStore]]:
    tmux = _need_tmux()
    fx = tui_store(tmp_path / "store.db")
    name = f"latitude-e2e-{uuid.uuid4().hex[:8]}"
    # COLUMNS/LINES from the calling environment would override the pane's size in Textual
    env = f"cd {REPO} && unset COLUMNS LINES && TERM=xterm-256color LATITUDE_CODER= exec {sys.executable} " \
          f"-m runner tui --db {fx.path} --coder e2e"
    subprocess.run([tmux, "new-session", "-d", "-s", name, "-x", "120", "-y", "40", env], check=True)
    term = Terminal(tmux, name)
    try:
        yield term, fx
    finally:
        subprocess.run([tmux, "kill-session", "-t", name], capture_output=True)


def _tags(fx: TuiStore) -> list[tuple]:
    con = sqlite3.connect(f"file:{fx.path}?mode=ro", uri=True, timeout=30)
    try:
        return con.execute("SELECT conversation_id, message_idx, code FROM tags WHERE coder = 'e2e' "
                           "AND deleted_at IS NULL ORDER BY id").fetchall()
    finally:
        con.close()


def _cursor_on(screen: str, header: str) -> bool:
    """The transcript's focused turn (drawn with a full block) is the one whose header starts so."""
    return any(line.lstrip().startswith(f"\u2588 {header}") for line in screen.splitlines())


def test_browse_tag_and_quit_in_a_real_terminal(terminal) -> None:
    term, fx = terminal
    screen = term.wait_for(lambda s: "run000000001" in s and "coder: e2e" in s)
    assert "run000000002" in screen and "2026-01-05 10:00" in screen
    term.keys("Down", "Enter")
    screen = term.wait_for(lambda s: "14 conversations" in s and "experimenter_" in s)
    assert "claude-sonnet" in screen and "stop_phrase" in screen

    # the hostile conversation: escapes shown as text, never interpreted
    term.keys("Down", "Down", "Down", "Enter")
    # wait for the transcript itself (its turn headers), not text the list also shows, and for its
    # cursor on the first user turn: a key sent earlier would go to the previous screen
    screen = term.wait_for(lambda s: "4/14" in s and "not markup" in s and "#2 gpt-4o" in s
                           and _cursor_on(s, "#1 user"))
    assert "\\x1b[31mnot red\\x1b[0m" in screen and "[bold red]not markup[/]" in screen
    styled = term.run("capture-pane", "-t", term.name, "-p", "-e")
    line = next(ln for ln in styled.splitlines() if "not markup" in ln)
    assert "\x1b[31m" not in line.split("Look:")[1]  # no red from the model's own escape

    # tag the model's reply with code 1, then the whole conversation with code 2
    term.keys("j")
    term.wait_for(lambda s: _cursor_on(s, "#2 gpt-4o"))
    term.keys("1")
    term.wait_for(lambda s: "+ curiosity on #2" in s)
    term.keys("m")
    # the code bar (under the header, which may wrap to two lines) names the conversation as target
    term.wait_for(lambda s: any(ln.strip().startswith("conversation ") for ln in s.splitlines()[1:4]))
    term.keys("2")
    term.wait_for(lambda s: "+ boredom on conversation" in s)
    assert _tags(fx) == [(fx.hostile, 2, "curiosity"), (fx.hostile, None, "boredom")]

    # next conversation without going back; the footer shows the keys; ? lists them all
    term.keys("n")
    term.wait_for(lambda s: "5/14" in s and "claude-sonnet" in s)
    assert "1-9 Toggle code" in term.screen()
    term.keys("?")
    screen = term.wait_for("Keys  (ctrl+p")
    # the current screen's keys come first (issue 14): the transcript's, not the runs screen's
    heading = next((ln for ln in screen.splitlines() if "(this screen)" in ln), "")
    assert "Transcript" in heading and "tag: Toggle code" in screen, screen
    term.keys("Escape")
    term.wait_for(lambda s: "Keys  (ctrl+p" not in s)  # (a key sent right after Esc would read as Alt+key)

    term.keys("C-q")
    term.wait_for(lambda _s: not term.alive())
