"""Engine test helpers: protocols written on the fly next to the test's store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PROTOCOLS = REPO / "protocols"
TEST_PROTOCOLS = REPO / "tests" / "data" / "protocols"


@pytest.fixture
def protocol_file(tmp_path: Path) -> Callable[[str, str], Path]:
    """``protocol_file("name", yaml_text)`` writes a protocol into the test's directory."""

    def write(name: str, text: str) -> Path:
        path = tmp_path / f"{name}.yaml"
        path.write_text(text, encoding="utf-8")
        return path

    return write
