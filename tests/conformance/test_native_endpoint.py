"""The native transport's OpenAI endpoint (URL and headers) is computed without importing the
openai SDK (`native._openai_config`); these tests hold it equal to what the SDK's own client
gives (`base_url`, `default_headers`, `auth_headers`), and check that it hands over to the SDK
whenever it cannot be sure, and that the SDK still supplies every exception."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runner.providers import native


def _sdk_config(key: str | None, base: str | None) -> tuple[str, dict[str, str]]:
    """The URL and headers as `native._endpoint` reads them off the SDK client (inside a loop, as there)."""

    async def read() -> tuple[str, dict[str, str]]:
        sdk, _ = native._sdk_client("openai", key, base)
        url = str(sdk.base_url).rstrip("/") + "/chat/completions"
        return url, {k: v for k, v in {**sdk.default_headers, **sdk.auth_headers}.items() if isinstance(v, str)}

    return asyncio.run(read())


@pytest.mark.parametrize(("key", "base"), [
    ("sk-test-1234", None),
    ("sk-test-1234", "http://127.0.0.1:8765/v1"),
    (None, "http://localhost:8000/v1/"),
    ("k", "https://api.example.com"),
    ("k", "https://proxy.example.org:8443/openai/v1"),
])
def test_endpoint_without_the_sdk_equals_the_sdks(key, base, monkeypatch) -> None:
    for name in (*native._OPENAI_SDK_ENV, "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    assert native._openai_config(key, base) == _sdk_config(key, base)


def test_base_url_from_the_environment(monkeypatch) -> None:
    for name in native._OPENAI_SDK_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9999/v1")
    got = native._openai_config("k", None)
    assert got is not None and got[0] == "http://127.0.0.1:9999/v1/chat/completions"
    assert got == _sdk_config("k", None)


@pytest.mark.parametrize(("env", "base"), [
    ({"OPENAI_ORG_ID": "org-1"}, None),
    ({"OPENAI_PROJECT_ID": "proj-1"}, None),
    ({"OPENAI_CUSTOM_HEADERS": "X-Team: a"}, None),
    ({"OPENAI_BASE_URL": ""}, None),
    ({}, "http://Example.COM/v1"),
    ({}, "http://127.0.0.1:80/v1"),
    ({}, "http://127.0.0.1:8000/v1?x=1"),
    ({}, ""),
])
def test_hands_over_to_the_sdk_when_unsure(env, base, monkeypatch) -> None:
    for name in (*native._OPENAI_SDK_ENV, "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert native._openai_config("k", base) is None


def test_errors_are_still_the_sdks_and_a_clean_run_never_imports_it(fake_provider, fake_keys) -> None:
    """In a fresh interpreter: a clean OpenAI call imports no openai SDK; a 429 then raises the
    SDK's RateLimitError (built on first need) with its retry-after."""
    fake_provider.inject("429", retry_after=7, skip=1)  # the second request
    code = f"""
import asyncio, os, sys
from runner.protocol.models_file import ModelAlias
from runner.providers import native
m = ModelAlias(model="openai/gpt-4o-mini", api_base={fake_provider.openai_base!r}, api_key_env="FAKE_OPENAI_KEY",
               transport="native", timeout_s=30)
async def main():
    reply = await native.chat(m, [{{"role": "user", "content": "hello"}}])
    print("clean", bool(reply.content), "openai" in sys.modules)
    try:
        await native.chat(m, [{{"role": "user", "content": "hello"}}])
    except Exception as exc:
        print("error", type(exc).__module__.split(".")[0], type(exc).__name__, exc.response.headers.get("retry-after"))
asyncio.run(main())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ},
                         cwd=Path(__file__).resolve().parents[2], timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "clean True False" in out.stdout, out.stdout
    assert "error openai RateLimitError 7" in out.stdout, out.stdout
