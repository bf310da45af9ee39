"""A registered study on the simulator: the files of `docs/rigour-study/`, copied per test so a test can
edit them (a deviation on purpose), and a CLI runner."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from runner.cli import app

ROOT = Path(__file__).resolve().parents[2]
STUDY = ROOT / "docs" / "rigour-study"


class Study:
    """The study's files in a temporary directory, its store, and the CLI."""

    def __init__(self, root: Path):
        self.root = root
        self.db = root / "t.db"
        self.protocol = root / "study.yaml"
        self.hypotheses = root / "hypotheses.yaml"
        self.codebook = root / "codebook.yaml"
        self.analysis = root / "analysis.txt"
        self.cli = CliRunner()

    def latitude(self, *args: str, code: int | None = 0) -> Any:
        result = self.cli.invoke(app, [*args, "--db", str(self.db)])
        if code is not None:
            assert result.exit_code == code, (result.output, result.exception)
        return result

    def register(self, *extra: str) -> str:
        """Register the study; returns the registration id."""
        result = self.latitude("register", str(self.protocol), "--hypotheses", str(self.hypotheses),
                               "--codebook", str(self.codebook), "--analysis", str(self.analysis), *extra)
        line = next(x for x in result.output.splitlines() if x.startswith("registration id: "))
        return line.removeprefix("registration id: ").strip()

    def run(self, registration: str, *extra: str, code: int | None = 0) -> Any:
        return self.latitude("run", str(self.protocol), "--registration", registration, *extra, code=code)

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db) as c:
            return c.execute(sql, params).fetchall()

    def run_ids(self) -> list[str]:
        return [r[0] for r in self.rows("select id from runs order by started_at, rowid")]

    def edit(self, name: str, old: str, new: str) -> None:
        path = self.root / name
        text = path.read_text()
        assert old in text, f"{old!r} not in {name}"
        path.write_text(text.replace(old, new))


@pytest.fixture
def study(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Study:
    root = tmp_path / "study"
    shutil.copytree(STUDY, root)
    monkeypatch.delenv("LATITUDE_DB", raising=False)
    monkeypatch.chdir(root)  # no stray ./models.yaml is read
    return Study(root)
