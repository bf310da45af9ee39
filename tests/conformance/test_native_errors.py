"""The native transport's exceptions, fault by fault: which SDK type each raises (or
latitude's StreamCut / MalformedReply), the retry kind decided from that type, and
`retry-after`. Calls go over HTTP to the fake provider; nothing is patched."""

from __future__ import annotations

import anthropic
import openai
import pytest

from runner.engine.retry import MalformedReply, StreamCut, classify, is_retryable, retry_after
from runner.protocol.models_file import ModelAlias
from runner.providers import native
from tests.conftest import FAKE_ANTHROPIC_KEY, FAKE_OPENAI_KEY

# fault -> (exception type, kind) per wire format, streamed

# A hang must outlast the request timeout, and a clean request on a loaded 2-core machine must fit
# well inside it: 3 s against a 10 s hang (0.5 s let a slow clean reply time out under load).
FAULT_TIMEOUT_S = 3.0
HANG_S = 10

STREAMED = {
    "429": ((openai.RateLimitError, "rate_limit"), (anthropic.RateLimitError, "rate_limit")),
    "500": ((openai.InternalServerError, "server"), (anthropic.InternalServerError, "server")),
    "529": ((openai.InternalServerError, "overloaded"), (anthropic.OverloadedError, "overloaded")),
    "hang": ((openai.APITimeoutError, "timeout"), (anthropic.APITimeoutError, "timeout")),
    "stall": ((openai.APITimeoutError, "timeout"), (anthropic.APITimeoutError, "timeout")),
    "connection_reset": ((openai.APIConnectionError, "connection"), (anthropic.APIConnectionError, "connection")),
    "malformed": ((MalformedReply, "malformed"), (MalformedReply, "malformed")),
    "cut": ((StreamCut, "stream_cut"), (StreamCut, "stream_cut")),
    "truncate": ((StreamCut, "stream_cut"), (StreamCut, "stream_cut")),
    "stream_error": ((openai.APIError, "server"), (anthropic.APIStatusError, "overloaded")),
}
BODY = {
    "malformed": ((MalformedReply, "malformed"), (MalformedReply, "malformed")),
    "cut": ((StreamCut, "stream_cut"), (StreamCut, "stream_cut")),
    "401": ((openai.AuthenticationError, "auth"), (anthropic.AuthenticationError, "auth")),
    "400": ((openai.BadRequestError, "bad_request"), (anthropic.BadRequestError, "bad_request")),
}


def _alias(fp, api: str, stream: bool = True) -> ModelAlias:
    if api == "openai":
        return ModelAlias(model="openai/gpt-4o-mini", api_base=fp.openai_base, api_key_env="FAKE_OPENAI_KEY",
                          transport="native", stream=stream, timeout_s=FAULT_TIMEOUT_S)
    return ModelAlias(model="anthropic/claude-sonnet-4-5", api_base=fp.anthropic_base, api_key_env="FAKE_ANTHROPIC_KEY",
                      transport="native", stream=stream, timeout_s=FAULT_TIMEOUT_S)


async def _raised(fp, api: str, kind: str, stream: bool) -> BaseException:
    fp.inject(kind, count=1, retry_after=7, hang_s=HANG_S, cut_after=1)
    with pytest.raises(Exception) as info:
        await native.chat(_alias(fp, api, stream), [{"role": "user", "content": "hello"}])
    return info.value


@pytest.mark.parametrize("api", ["openai", "anthropic"])
@pytest.mark.parametrize("kind", list(STREAMED))
async def test_streamed_fault_raises_its_type(fake_provider, fake_keys, api, kind):
    want_type, want_kind = STREAMED[kind][0 if api == "openai" else 1]
    exc = await _raised(fake_provider, api, kind, stream=True)
    assert isinstance(exc, want_type), repr(exc)
    assert type(exc).__module__.split(".")[0] in ("openai", "anthropic", "runner")  # never litellm's
    assert classify(exc) == want_kind
    assert is_retryable(exc)
    assert len(fake_provider.requests) == 1  # no hidden retry
    if kind == "429":
        assert retry_after(exc) == 7.0
    if kind == "529":
        assert exc.status_code == 529  # litellm reports Anthropic's 529 as a 500


@pytest.mark.parametrize("api", ["openai", "anthropic"])
@pytest.mark.parametrize("kind", list(BODY))
async def test_body_fault_raises_its_type(fake_provider, fake_keys, api, kind):
    want_type, want_kind = BODY[kind][0 if api == "openai" else 1]
    exc = await _raised(fake_provider, api, kind, stream=False)
    assert isinstance(exc, want_type), repr(exc)
    assert classify(exc) == want_kind


async def test_keys_stay_in_headers(fake_provider, fake_keys):
    for api in ("openai", "anthropic"):
        exc = await _raised(fake_provider, api, "401", stream=True)
        assert FAKE_OPENAI_KEY not in f"{exc!r} {exc}" and FAKE_ANTHROPIC_KEY not in f"{exc!r} {exc}"


def test_litellm_exceptions_are_left_to_the_litellm_rules():
    """litellm's exceptions subclass the openai SDK's: the native rules must not claim them."""
    import httpx
    import litellm

    lite = litellm.InternalServerError("litellm.InternalServerError: Connection error.", llm_provider="openai",
                                       model="gpt-4o-mini")
    assert native.error_kind(lite) is None
    assert classify(lite) == "connection"  # litellm's reset-as-500, read from its text as before
    sdk = openai.InternalServerError("Error code: 500", response=httpx.Response(500, request=httpx.Request("POST", "http://x")),
                                     body=None)
    assert native.error_kind(sdk) == "server"


def test_native_default_only_for_openai_and_anthropic_strings():
    from runner.protocol.models_file import NATIVE_BY_DEFAULT, BUILTIN_ALIASES

    want = "native" if NATIVE_BY_DEFAULT else "litellm"
    assert ModelAlias(model="openai/gpt-4.1").transport == want
    assert ModelAlias(model="anthropic/claude-sonnet-4-5").transport == want
    assert ModelAlias(model="anthropic/claude-sonnet-4-5", reasoning_effort="low").transport == "litellm"
    assert ModelAlias(model="gemini/gemini-2.5-pro").transport == "litellm"
    assert ModelAlias(model="openai/gpt-4.1", transport="litellm").transport == "litellm"
    assert all(a.transport == "litellm" for a in BUILTIN_ALIASES.values())
    with pytest.raises(ValueError, match="native serves"):
        ModelAlias(model="gemini/gemini-2.5-pro", transport="native")


def test_a_native_run_never_imports_litellm(fake_provider, fake_keys, tmp_path):
    """`latitude run` as a whole process, every alias native: the run completes, prices and
    context windows come from the price map read as data, and litellm is never imported."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    models = tmp_path / "models.yaml"
    models.write_text(
        "models:\n"
        f"  gpt: {{model: openai/gpt-4o-mini, api_base: '{fake_provider.openai_base}', api_key_env: FAKE_OPENAI_KEY}}\n"
        f"  claude: {{model: anthropic/claude-sonnet-4-5, api_base: '{fake_provider.anthropic_base}', "
        "api_key_env: FAKE_ANTHROPIC_KEY}\n", encoding="utf-8")
    protocol = Path(__file__).resolve().parents[1] / "data" / "protocols" / "two-turns.yaml"
    code = ("import sys\nfrom runner.cli import app\ntry:\n    app()\nfinally:\n"
            "    print('LITELLM_IMPORTED=' + str('litellm' in sys.modules), file=sys.stderr)\n")
    db = tmp_path / "run.db"
    proc = subprocess.run(
        [sys.executable, "-c", code, "run", str(protocol), "-m", "gpt", "-m", "claude", "--models", str(models),
         "--db", f"sqlite:///{db}"],
        capture_output=True, text=True, env={**os.environ}, timeout=600, cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "LITELLM_IMPORTED=False" in proc.stderr
    import sqlite3

    con = sqlite3.connect(db)
    rows = con.execute("select cost, request_json from messages where role = 'assistant'").fetchall()
    con.close()
    assert len(rows) == 4 and all(cost and cost > 0 for cost, _ in rows)  # priced without litellm
    import json

    assert sorted({json.loads(r)["context_window"] for _, r in rows}) == [128000, 200000]  # from the price map
