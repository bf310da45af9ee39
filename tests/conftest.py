"""Shared fixtures: the fake provider (real HTTP on 127.0.0.1), a temporary SQLite
store, a models file pointing `fake-gpt` / `fake-claude` at the fake provider, and
made-up API keys in the environment.

Nothing here patches litellm: every model call goes over HTTP to the fake provider.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_TELEMETRY", "False")

if importlib.util.find_spec("tests.fakeprovider.fixtures") is not None:
    from tests.fakeprovider.fixtures import *  # noqa: F403

FAKE_OPENAI_KEY = "sk-test-fake-openai-5f1c9e0d7a2b4c68"
"""Made-up key; distinctive so a leak is easy to find in bytes."""
FAKE_ANTHROPIC_KEY = "sk-test-fake-anthropic-93be71d04c2a8f15"

FAST_RETRY_ENV = {
    "LATITUDE_RETRY_MIN_WAIT_S": "0.01",
    "LATITUDE_RETRY_MAX_WAIT_S": "0.05",
}
"""Backoff short enough for tests (a provider's retry-after is still honoured)."""


def models_yaml(fp: Any, **overrides: Any) -> str:
    """A models file for the fake provider `fp` (anything with `.openai_base` / `.anthropic_base`).

    `overrides` are extra fields for both aliases (e.g. ``timeout_s=0.5``).
    """
    extra = "".join(f"    {k}: {v}\n" for k, v in overrides.items())
    return (
        "models:\n"
        "  fake-gpt:\n"
        "    model: openai/fake-gpt\n"
        f"    api_base: {fp.openai_base}\n"
        "    api_key_env: FAKE_OPENAI_KEY\n"
        f"{extra}"
        "  fake-claude:\n"
        "    model: anthropic/claude-fake\n"
        f"    api_base: {fp.anthropic_base}\n"
        "    api_key_env: FAKE_ANTHROPIC_KEY\n"
        f"{extra}"
    )


@pytest.fixture
def fake_keys(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Made-up keys in the environment, and short retry waits."""
    keys = {"FAKE_OPENAI_KEY": FAKE_OPENAI_KEY, "FAKE_ANTHROPIC_KEY": FAKE_ANTHROPIC_KEY}
    for name, value in {**keys, **FAST_RETRY_ENV}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("LATITUDE_DB", raising=False)
    return keys


@pytest.fixture
def tmp_db_url(tmp_path: Path) -> str:
    """A SQLite store URL in the test's temporary directory (created on first use)."""
    return f"sqlite:///{tmp_path / 'transcripts.db'}"


@pytest.fixture
def tmp_db_path(tmp_db_url: str) -> Path:
    return Path(tmp_db_url.removeprefix("sqlite:///"))


@pytest.fixture
def write_models(tmp_path: Path, fake_keys: dict[str, str]) -> Callable[..., Path]:
    """``write_models(fp, name="models.yaml", **overrides)`` writes a models file for `fp`."""

    def write(fp: Any, name: str = "models.yaml", **overrides: Any) -> Path:
        path = tmp_path / name
        path.write_text(models_yaml(fp, **overrides), encoding="utf-8")
        return path

    return write


@pytest.fixture
def models_file(fake_provider: Any, write_models: Callable[..., Path]) -> Path:
    """A models file pointing `fake-gpt` and `fake-claude` at the in-process fake provider."""
    return write_models(fake_provider)


# ----------------------------------------------------------------------------- CLI and store


class CliResult:
    """What one CLI invocation did: exit code, output streams, and the run id it printed."""

    def __init__(self, exit_code: int, stdout: str, stderr: str, exception: BaseException | None = None):
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr
        self.exception = exception

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def run_id(self) -> str:
        import re

        m = re.search(r"run id: ([0-9a-f]{12})", self.stdout)
        assert m, f"no run id printed:\n{self.output}"
        return m.group(1)

    def __repr__(self) -> str:
        return f"CliResult(exit_code={self.exit_code}, output={self.output[-2000:]!r}, exception={self.exception!r})"


@pytest.fixture
def cli(tmp_db_url: str) -> Callable[..., CliResult]:
    """``cli("run", PROTOCOL, "-m", "fake-gpt", ...)`` runs `latitude` in-process with Typer's
    CliRunner against the test's store (``--db`` is added unless given)."""
    from typer.testing import CliRunner

    from runner.cli import app

    def invoke(*args: Any, db: str | None = tmp_db_url, **kw: Any) -> CliResult:
        argv = [str(a) for a in args]
        if db is not None and "--db" not in argv and argv and argv[0] in ("run", "resume", "runs", "show", "export"):
            argv += ["--db", db]
        result = CliRunner().invoke(app, argv, catch_exceptions=True, **kw)
        exc = result.exception if not isinstance(result.exception, SystemExit) else None
        return CliResult(result.exit_code, result.stdout, result.stderr, exc)

    return invoke


class StoreView:
    """Read-only look at a SQLite store file, with plain sqlite3 (the engine's own reads are not trusted)."""

    def __init__(self, path: Path):
        self.path = path

    def _q(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        import sqlite3

        con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
        con.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in con.execute(sql, params)]
        finally:
            con.close()

    def run(self, run_id: str) -> dict[str, Any]:
        (row,) = self._q("SELECT * FROM runs WHERE id = ?", run_id)
        return row

    def conversations(self, run_id: str) -> list[dict[str, Any]]:
        return self._q("SELECT * FROM conversations WHERE run_id = ? ORDER BY seq", run_id)

    def messages(self, conversation_id: str) -> list[dict[str, Any]]:
        return self._q("SELECT * FROM messages WHERE conversation_id = ? ORDER BY idx", conversation_id)

    def offers(self, conversation_id: str) -> list[dict[str, Any]]:
        return self._q("SELECT * FROM offers WHERE conversation_id = ? ORDER BY offer_message_idx, id",
                       conversation_id)

    def artifacts(self, conversation_id: str) -> list[dict[str, Any]]:
        return self._q("SELECT * FROM artifacts WHERE conversation_id = ? ORDER BY message_idx, id", conversation_id)

    def count(self, sql: str, *params: Any) -> int:
        return int(next(iter(self._q(sql, *params)[0].values())))


@pytest.fixture
def store(tmp_db_path: Path) -> StoreView:
    return StoreView(tmp_db_path)


def assert_well_formed(messages: list[dict[str, Any]]) -> None:
    """idx runs 0..n-1 with no gap or duplicate."""
    assert [m["idx"] for m in messages] == list(range(len(messages)))
