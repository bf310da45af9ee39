"""`runner.engine.eventloop`: a run is driven on uvloop where it is installed, on asyncio's own
loop when asked (`LATITUDE_EVENT_LOOP=asyncio`) or where uvloop has no build."""

from __future__ import annotations

import asyncio
import sys

import pytest

from runner.engine import eventloop


async def _loop_module() -> str:
    await asyncio.sleep(0)
    return type(asyncio.get_running_loop()).__module__


def test_uvloop_by_default_where_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("uvloop")
    monkeypatch.delenv(eventloop.ENV, raising=False)
    assert eventloop.loop_kind() == "uvloop"
    assert eventloop.run(_loop_module()).startswith("uvloop")


def test_asyncio_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(eventloop.ENV, "asyncio")
    assert eventloop.loop_kind() == "asyncio"
    assert eventloop.run(_loop_module()).startswith("asyncio")


def test_asyncio_where_uvloop_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(eventloop.ENV, raising=False)
    monkeypatch.setitem(sys.modules, "uvloop", None)  # `import uvloop` raises ImportError (as on Windows)
    assert eventloop.loop_kind() == "asyncio"
    assert eventloop.run(_loop_module()).startswith("asyncio")


def test_an_unknown_loop_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(eventloop.ENV, "trio")
    with pytest.raises(ValueError, match="LATITUDE_EVENT_LOOP"):
        eventloop.loop_kind()


@pytest.mark.parametrize("kind", ["asyncio", "uvloop"])
def test_run_returns_and_raises_as_asyncio_run(kind: eventloop.LoopKind) -> None:
    if kind == "uvloop":
        pytest.importorskip("uvloop")

    async def fails() -> None:
        raise KeyError("x")

    assert eventloop.run(asyncio.sleep(0, result=7), kind) == 7
    with pytest.raises(KeyError):
        eventloop.run(fails(), kind)
