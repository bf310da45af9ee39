"""Error kinds are decided from the exception types litellm, the SDKs and the transports raise
(`runner.engine.retry.classify`); each case, including every last-resort text match, is here.

The exceptions are the libraries' own classes, built the way the libraries build them."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import anthropic
import httpx
import jinja2.exceptions
import litellm
import openai
import pytest

from runner.engine.retry import RETRYABLE, classify, is_retryable
from runner.kinds import ERROR_KINDS
from runner.providers import MalformedReply, MissingKey, ProviderBadRequest, StreamCut
from runner.providers import local, sim
from runner.providers.batch_wire import BatchItemFailed

REQUEST = httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")


def response(status: int) -> httpx.Response:
    return httpx.Response(status, request=REQUEST)


def lm(cls: type, message: str = "boom", **kw: object) -> BaseException:
    """A litellm exception as litellm raises it."""
    return cls(message=message, llm_provider="openai", model="gpt-x", **kw)


def caused(exc: BaseException, cause: BaseException) -> BaseException:
    exc.__cause__ = cause
    return exc


def mid_stream(message: str, original: BaseException | None = None) -> BaseException:
    return litellm.exceptions.MidStreamFallbackError(message=message, model="gpt-x", llm_provider="openai",
                                                     original_exception=original)


def status_error(cls: type, status: int, message: str = "error") -> BaseException:
    return cls(message, response=response(status), body=None)


CASES: list[tuple[str, BaseException, str]] = [
    # ours and the in-process providers'
    ("stream cut", StreamCut("no finish"), "stream_cut"),
    ("malformed reply", MalformedReply("no choices"), "malformed"),
    ("missing key", MissingKey("FOO not set"), "auth"),
    ("bad request in process", ProviderBadRequest("unknown persona"), "bad_request"),
    ("local model missing", local.LocalModelError("no file"), "bad_request"),
    ("sim rate limit", sim.SimRateLimitError("slow down"), "rate_limit"),
    ("sim overloaded", sim.SimOverloadedError("busy"), "overloaded"),
    ("sim server", sim.SimServerError("oops"), "server"),
    ("sim timeout", sim.SimTimeoutError("late"), "timeout"),
    ("sim connection", sim.SimConnectionError("reset"), "connection"),
    ("sim malformed", sim.SimMalformedError("bad json"), "malformed"),
    ("asyncio timeout", asyncio.TimeoutError(), "timeout"),
    # litellm's types
    ("litellm rate limit", lm(litellm.RateLimitError), "rate_limit"),
    ("litellm timeout", litellm.Timeout(message="late", model="gpt-x", llm_provider="openai"), "timeout"),
    ("litellm auth", lm(litellm.AuthenticationError), "auth"),
    ("litellm permission", lm(litellm.PermissionDeniedError, response=response(403)), "auth"),
    ("litellm bad request", litellm.BadRequestError(message="bad", model="gpt-x", llm_provider="openai"),
     "bad_request"),
    ("litellm not found", litellm.NotFoundError(message="no model", model="gpt-x", llm_provider="openai"),
     "bad_request"),
    ("litellm context window", litellm.ContextWindowExceededError(message="too long", model="gpt-x",
                                                                  llm_provider="openai"), "context_window"),
    ("litellm service unavailable", lm(litellm.ServiceUnavailableError), "server"),
    ("litellm internal server error", lm(litellm.InternalServerError), "server"),
    ("litellm connection error, cause aiohttp payload", caused(lm(litellm.APIConnectionError),
                                                               aiohttp.ClientPayloadError("cut")), "stream_cut"),
    ("litellm connection error, cause httpx read timeout",
     caused(lm(litellm.APIConnectionError), httpx.ReadTimeout("late", request=REQUEST)), "timeout"),
    ("litellm connection error, cause connection reset", caused(lm(litellm.APIConnectionError),
                                                                ConnectionResetError(104, "reset")), "connection"),
    ("litellm connection error, cause json", caused(lm(litellm.APIConnectionError),
                                                    json.JSONDecodeError("Expecting value", "x", 0)), "malformed"),
    ("litellm connection error, nothing more", lm(litellm.APIConnectionError), "connection"),
    ("mid-stream, cause json", mid_stream("broke", json.JSONDecodeError("Expecting value", "x", 0)), "malformed"),
    ("mid-stream, cause read timeout", mid_stream("broke", caused(lm(litellm.APIConnectionError),
                                                                  httpx.ReadTimeout("late", request=REQUEST))),
     "timeout"),
    ("mid-stream, nothing more", mid_stream("the stream broke"), "stream_cut"),
    # the SDKs' types (the native transport raises these)
    ("openai rate limit", status_error(openai.RateLimitError, 429), "rate_limit"),
    ("openai auth", status_error(openai.AuthenticationError, 401), "auth"),
    ("openai bad request", status_error(openai.BadRequestError, 400), "bad_request"),
    ("openai server", status_error(openai.InternalServerError, 500), "server"),
    ("openai 529", status_error(openai.APIStatusError, 529), "overloaded"),
    ("openai timeout", openai.APITimeoutError(request=REQUEST), "timeout"),
    ("openai connection", caused(openai.APIConnectionError(request=REQUEST), ConnectionResetError(104, "reset")),
     "connection"),
    ("anthropic overloaded", status_error(anthropic.OverloadedError, 529), "overloaded"),
    ("anthropic rate limit", status_error(anthropic.RateLimitError, 429), "rate_limit"),
    ("anthropic permission", status_error(anthropic.PermissionDeniedError, 403), "auth"),
    ("anthropic timeout", anthropic.APITimeoutError(request=REQUEST), "timeout"),
    ("anthropic error event in a 200 stream", anthropic.APIError("Overloaded", REQUEST, body=None), "overloaded"),
    ("openai response validation", openai.APIResponseValidationError(response=response(200), body=None),
     "malformed"),
    # transports, anywhere in the chain
    ("aiohttp disconnected", aiohttp.ServerDisconnectedError(), "connection"),
    ("aiohttp payload", aiohttp.ClientPayloadError("cut"), "stream_cut"),
    ("httpx connect", httpx.ConnectError("refused", request=REQUEST), "connection"),
    ("json decode", json.JSONDecodeError("Expecting value", "x", 0), "malformed"),
    ("wrapped reset", caused(RuntimeError("while reading"), ConnectionResetError(104, "reset")), "connection"),
    # a request inside a vendor batch (runner.providers.batch_openai / batch_anthropic)
    ("batch expired", BatchItemFailed("expired", "window ended", code="batch_expired"), "batch_expired"),
    ("batch cancelled", BatchItemFailed("cancelled", "batch cancelled"), "batch_cancelled"),
    ("batch errored 400 invalid request", BatchItemFailed("errored", "bad", 400, error_type="invalid_request_error"),
     "bad_request"),
    ("batch errored 500 server error", BatchItemFailed("errored", "oops", 500, error_type="server_error"), "server"),
    ("batch errored 529 overloaded", BatchItemFailed("errored", "busy", 529, error_type="overloaded_error"),
     "overloaded"),
    ("batch errored overloaded, no status", BatchItemFailed("errored", "busy", error_type="overloaded_error"),
     "overloaded"),
    ("batch errored api_error, no status", BatchItemFailed("errored", "oops", error_type="api_error"), "server"),
    ("batch errored 429", BatchItemFailed("errored", "slow", 429, error_type="rate_limit_error"), "rate_limit"),
    ("batch errored 401", BatchItemFailed("errored", "key", 401, error_type="authentication_error"), "auth"),
    ("batch errored context length", BatchItemFailed("errored", "too long", 400, error_type="invalid_request_error",
                                                     code="context_length_exceeded"), "context_window"),
    ("batch errored, nothing known", BatchItemFailed("errored", "missing from the results"), "server"),
    # templates, and what nothing decides
    ("template", jinja2.exceptions.SecurityError("unsafe"), "template"),
    ("anything else", RuntimeError("surprise"), "other"),
]


@pytest.mark.parametrize(("exc", "kind"), [(e, k) for _, e, k in CASES], ids=[n for n, _, _ in CASES])
def test_kind_from_the_exception_type(exc: BaseException, kind: str) -> None:
    assert classify(exc) == kind
    assert kind in ERROR_KINDS
    assert is_retryable(exc) == (kind in RETRYABLE)


# litellm reports some transport failures only in words (a 500 whose body was cut, a reset, broken
# JSON): the documented last resort. One case per phrase family.
TEXT_CASES = [
    ("Response payload is not completed", "stream_cut"),
    ("ClientPayloadError: TransferEncodingError: 400", "stream_cut"),
    ("peer closed connection without sending complete message body (incomplete chunked read)", "stream_cut"),
    ("Server disconnected", "connection"),
    ("Connection reset by peer [Errno 104]", "connection"),
    ("Connection refused [Errno 111]", "connection"),
    ("Expecting ',' delimiter: line 1 column 94 (char 93)", "malformed"),
    ("Unterminated string starting at: line 1", "malformed"),
    ("Overloaded", "overloaded"),
    ("nothing recognisable", "server"),
]


@pytest.mark.parametrize(("message", "kind"), TEXT_CASES)
def test_last_resort_text_of_a_litellm_500(message: str, kind: str) -> None:
    assert classify(lm(litellm.InternalServerError, message)) == kind


def test_the_status_a_bad_request_carries_decides() -> None:
    # litellm raises BadRequestError for a 401 it does not map ("Missing API key")
    exc = litellm.BadRequestError(message="Missing API key", model="gpt-x", llm_provider="openai")
    exc.status_code = 401
    assert classify(exc) == "auth"


def test_an_error_inside_a_200_stream_is_read_from_its_message() -> None:
    assert classify(mid_stream("overloaded_error: Overloaded")) == "overloaded"
    assert classify(mid_stream("rate_limit_error")) == "rate_limit"
    assert classify(mid_stream("Request timed out")) == "timeout"
