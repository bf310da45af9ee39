"""Pytest fixtures for the fake provider.

``tests/conftest.py`` pulls these in with::

    from tests.fakeprovider.fixtures import *  # noqa: F403

fake_provider                 function-scoped FakeProvider (in-process, background
                              thread), reset before and after each test.  One
                              server is shared by the whole session.
fake_provider_session         the shared session-scoped server itself (no reset).
fake_provider_process         function-scoped FakeProviderProcess: the server in a
                              subprocess (``python -m tests.fakeprovider``),
                              controlled over HTTP through ``.control``; shared
                              per session and reset between tests.

Importing this module also sets ``LITELLM_LOCAL_MODEL_COST_MAP=True`` (unless
already set) so a later ``import litellm`` does not try to fetch the model cost
map from the internet.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from .remote import FakeProviderProcess
from .server import FakeProvider

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

__all__ = ["fake_provider", "fake_provider_process", "fake_provider_session", "_fake_provider_process_session"]


@pytest.fixture(scope="session")
def fake_provider_session() -> Iterator[FakeProvider]:
    fp = FakeProvider().start()
    try:
        yield fp
    finally:
        fp.stop()


@pytest.fixture
def fake_provider(fake_provider_session: FakeProvider) -> Iterator[FakeProvider]:
    fake_provider_session.reset()
    yield fake_provider_session
    fake_provider_session.reset()


@pytest.fixture(scope="session")
def _fake_provider_process_session() -> Iterator[FakeProviderProcess]:
    proc = FakeProviderProcess().start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def fake_provider_process(_fake_provider_process_session: FakeProviderProcess) -> Iterator[FakeProviderProcess]:
    ctl = _fake_provider_process_session.control
    assert ctl is not None
    ctl.reset()
    yield _fake_provider_process_session
    ctl.reset()
