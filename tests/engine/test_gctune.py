"""The collector's settings around a run (`runner.engine.gctune`): restored whatever happens."""

from __future__ import annotations

import gc

import pytest

from runner.engine import gctune


def test_paused_gc_restores_the_collector_also_on_error() -> None:
    assert gc.isenabled()
    with pytest.raises(RuntimeError):
        with gctune.paused_gc():
            assert not gc.isenabled()
            raise RuntimeError("boom")
    assert gc.isenabled()


def test_a_run_inside_a_paused_start_up_has_the_collector_on_and_skips_the_full_collection(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(gctune.gc, "collect", lambda *a: calls.append(1) or 0)
    before = gc.get_threshold()
    try:
        with gctune.paused_gc():
            with gctune.tuned_gc():
                assert gc.isenabled() and gc.get_threshold() == gctune.THRESHOLD
                assert gc.get_freeze_count() > 0
            assert not gc.isenabled()  # the teardown stays paused
            assert gc.get_threshold() == before and gc.get_freeze_count() == 0
        assert gc.isenabled()
        assert calls == []  # paused on entry: frozen without a collection
        with gctune.tuned_gc():
            pass
        assert calls == [1]  # not paused: one collection before freezing, as before
    finally:
        gc.unfreeze()
        gc.enable()
