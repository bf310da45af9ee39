"""Retry one model call (never a whole conversation), with one predicate deciding what
is retryable. Backoff is exponential with jitter and honours `retry-after`."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable, ClassVar, Mapping, TypeVar

if TYPE_CHECKING:  # tenacity is imported at the first failure (most runs never retry)
    from tenacity import RetryCallState

T = TypeVar("T")

from ..kinds import RETRYABLE, ErrorKind
from ..providers.base import MalformedReply, MissingKey, ProviderBadRequest, StreamCut
from ..providers.batch_wire import BatchItemFailed

__all__ = ["RETRYABLE", "MalformedReply", "MissingKey", "RetryPolicy", "StreamCut", "call_with_retry", "classify",
           "is_retryable", "retry_after"]


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6
    """Most attempts for one call, the first included."""
    max_wait_s: float = 60.0
    """Cap of the exponential backoff between attempts."""
    min_wait_s: float = 0.5
    """Multiplier of the exponential backoff (the first wait is up to this long)."""
    max_retry_after_s: float = 300.0
    """Cap of a wait the provider asked for with `retry-after` (honoured up to this)."""

    ENV: ClassVar[dict[str, str]] = {
        "attempts": "LATITUDE_RETRY_ATTEMPTS",
        "max_wait_s": "LATITUDE_RETRY_MAX_WAIT_S",
        "min_wait_s": "LATITUDE_RETRY_MIN_WAIT_S",
        "max_retry_after_s": "LATITUDE_RETRY_MAX_RETRY_AFTER_S",
    }
    """Environment variables overriding each field (`from_env`)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "RetryPolicy":
        """The default policy with any `LATITUDE_RETRY_*` variables applied."""
        env = os.environ if environ is None else environ
        values: dict[str, float | int] = {}
        for name, var in cls.ENV.items():
            raw = env.get(var)
            if raw:
                try:
                    values[name] = int(raw) if name == "attempts" else float(raw)
                except ValueError:
                    raise ValueError(f"{var}={raw!r} is not a number") from None
        policy = cls(**values)  # type: ignore[arg-type]
        if policy.attempts < 1 or min(policy.max_wait_s, policy.min_wait_s, policy.max_retry_after_s) < 0:
            raise ValueError(f"invalid retry policy from the environment: {policy}")
        return policy


# ---------------------------------------------------------------------------- error kinds
#
# Decided from the exception's type, in this order: our own exceptions and the in-process
# providers' (`StreamCut`, `SimFault.kind`...); litellm's types (they subclass the openai
# SDK's); the openai and anthropic SDKs' types; the HTTP status code an API error carries;
# the transport's types anywhere in the exception's chain (aiohttp, httpx, OS errors, JSON
# decoding). SDK modules are looked up in `sys.modules` only: an exception of a library
# that was never imported cannot be one of its types, and nothing heavy is imported here.
#
# Text matching is the last resort, for the one case the types cannot decide: litellm wraps
# a transport failure met while reading a body (a reset, a cut chunked body, broken JSON,
# an `overloaded_error` event inside a 200 stream) as an `InternalServerError`,
# `APIConnectionError` or `MidStreamFallbackError` whose only trace of the cause is its
# message. Each phrase below is covered by a test in tests/engine/test_classify.py.

_MALFORMED_TEXT = ("unterminated string", "expecting value", "expecting property name", "expecting ',' delimiter",
                   "jsondecodeerror", "json decode", "invalid json", "extra data: line")
_CUT_TEXT = ("response payload is not completed", "transferencodingerror", "clientpayloaderror",
             "incomplete chunked read", "peer closed connection without sending complete message body",
             "server disconnected")
_CONNECTION_TEXT = ("connection error", "connection reset", "connection refused", "connection aborted",
                    "errno 104", "errno 111", "broken pipe", "remoteprotocolerror", "connecterror")


def _is(exc: BaseException, module: str, *names: str) -> bool:
    """isinstance against `module.name` types, if that module was imported."""
    m = sys.modules.get(module)
    if m is None:
        return False
    types = tuple(t for t in (getattr(m, n, None) for n in names) if isinstance(t, type))
    return bool(types) and isinstance(exc, types)


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and its causes (`__cause__`, `__context__`, litellm's `original_exception`)."""
    out: list[BaseException] = []
    todo: list[Any] = [exc]
    while todo and len(out) < 12:
        e = todo.pop(0)
        if not isinstance(e, BaseException) or any(e is seen for seen in out):
            continue
        out.append(e)
        todo += [getattr(e, "original_exception", None), e.__cause__, e.__context__]
    return out


def _transport_kind(exc: BaseException) -> ErrorKind | None:
    """The kind of a transport-level exception (aiohttp, httpx, the OS, JSON decoding), or None."""
    if isinstance(exc, json.JSONDecodeError):
        return "malformed"
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return "timeout"
    if _is(exc, "aiohttp", "ClientPayloadError"):
        return "stream_cut"
    if _is(exc, "httpx", "RemoteProtocolError") and "peer closed" in str(exc).lower():
        return "stream_cut"
    if _is(exc, "aiohttp", "ServerTimeoutError") or _is(exc, "httpx", "TimeoutException"):
        return "timeout"
    if _is(exc, "aiohttp", "ServerDisconnectedError", "ClientConnectionError", "ClientOSError") or _is(
            exc, "httpx", "TransportError"):
        return "connection"
    if isinstance(exc, (ConnectionError, BrokenPipeError)):
        return "connection"
    return None


def _by_text(text: str) -> ErrorKind | None:
    """Last resort (see above): a transport failure litellm reported only in words."""
    if any(t in text for t in _CUT_TEXT):
        return "stream_cut" if "payload" in text or "chunked" in text else "connection"
    if any(t in text for t in _CONNECTION_TEXT):
        return "connection"
    if any(t in text for t in _MALFORMED_TEXT):
        return "malformed"
    return None


def _mid_stream(exc: BaseException) -> ErrorKind:
    """Kind of an error raised while a stream was being read (litellm's MidStreamFallbackError):
    some text may have arrived, then the stream broke."""
    for e in _chain(exc)[1:]:
        kind = _transport_kind(e)
        if kind in ("malformed", "timeout"):
            return kind
    text = f"{exc} {getattr(exc, 'original_exception', '')}".lower()
    if any(t in text for t in _MALFORMED_TEXT):
        return "malformed"
    if "timeout" in text or "timed out" in text:
        return "timeout"
    if "overloaded" in text:
        return "overloaded"
    if "rate limit" in text or "rate_limit" in text:
        return "rate_limit"
    return "stream_cut"


def _status_kind(status: int | None, text: str) -> ErrorKind | None:
    """The kind an HTTP status says (an API error's `status_code`)."""
    if status is None:
        return None
    if status == 429:
        return "rate_limit"
    if status == 529:
        return "overloaded"
    if status in (401, 403):
        return "auth"
    if status == 408:
        return "timeout"
    if status in (400, 404, 409, 413, 422):
        if "json" in text and ("decode" in text or "expecting" in text or "parse" in text):
            return "malformed"
        return "bad_request"
    if status >= 500:
        if "overloaded" in text:
            return "overloaded"
        return _by_text(text) or "server"
    return None


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def _after_connection_error(exc: BaseException, text: str) -> ErrorKind:
    """A client's catch-all for a failure before (or while) reading a response."""
    for e in _chain(exc)[1:]:
        kind = _transport_kind(e)
        if kind is not None:
            return kind
    if "timed out" in text or "timeout" in text:
        return "timeout"
    if "overloaded" in text:
        return "overloaded"
    if "json" in text and ("decode" in text or "expecting" in text):
        return "malformed"
    return _by_text(text) or "connection"


def _batch_item_kind(exc: BatchItemFailed) -> ErrorKind:
    """A request inside a vendor batch that did not succeed: expired and cancelled ones never
    ran (retried); an errored one is decided like the live error it was, by its vendor error
    type and HTTP status."""
    if exc.kind == "expired":
        return "batch_expired"
    if exc.kind == "cancelled":
        return "batch_cancelled"
    etype = (exc.error_type or "").lower()
    if "overloaded" in etype:
        return "overloaded"
    if "rate_limit" in etype:
        return "rate_limit"
    if exc.code == "context_length_exceeded" or etype == "context_length_exceeded":
        return "context_window"
    kind = _status_kind(exc.status, str(exc).lower())
    if kind is not None:
        return kind
    if etype in ("api_error", "server_error", "timeout_error"):
        return "server"
    if etype in ("authentication_error", "permission_error"):
        return "auth"
    if etype:
        return "bad_request"
    return "server"  # neither a status nor a type: the vendor lost the request, it never ran


def classify(exc: BaseException) -> ErrorKind:
    """The error kind of an exception raised by a model call (see the order above)."""
    # ours, and the in-process providers'
    if isinstance(exc, BatchItemFailed):
        return _batch_item_kind(exc)
    if isinstance(exc, StreamCut):
        return "stream_cut"
    if isinstance(exc, MalformedReply):
        return "malformed"
    if isinstance(exc, MissingKey):
        return "auth"
    if _is(exc, "runner.providers.sim", "SimFault") and getattr(exc, "kind", None) in RETRYABLE:
        return exc.kind  # type: ignore[attr-defined, no-any-return]
    if isinstance(exc, ProviderBadRequest):
        return "bad_request"
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return "timeout"
    text = str(exc).lower()
    # litellm (its exceptions subclass the openai SDK's, so it goes first)
    if _is(exc, "litellm.exceptions", "MidStreamFallbackError"):
        return _mid_stream(exc)
    if _is(exc, "litellm.exceptions", "ContextWindowExceededError"):
        return "context_window"
    if _is(exc, "litellm.exceptions", "Timeout"):
        return "timeout"
    if _is(exc, "litellm.exceptions", "RateLimitError"):
        return "rate_limit"
    if _is(exc, "litellm.exceptions", "AuthenticationError", "PermissionDeniedError"):
        return "auth"
    if _is(exc, "litellm.exceptions", "BadRequestError", "NotFoundError", "UnprocessableEntityError", "UnsupportedParamsError"):
        # litellm raises BadRequestError for some statuses it does not map (a 401 among them):
        # the status it carries decides
        return _status_kind(_status(exc) or 400, text) or "bad_request"
    if _is(exc, "litellm.exceptions", "APIConnectionError"):
        return _after_connection_error(exc, text)
    if _is(exc, "litellm.exceptions", "ServiceUnavailableError", "InternalServerError", "BadGatewayError"):
        return _status_kind(_status(exc) or 500, text) or "server"
    # the SDKs' own types (the native transport raises these), decided in the native module:
    # by type, and for an error event inside a 200 stream by the `error.type` of its body
    from ..providers.native import error_kind

    native_kind = error_kind(exc)
    if native_kind is not None:
        return native_kind
    # the SDKs (the native transport raises these)
    if _is(exc, "openai", "APITimeoutError") or _is(exc, "anthropic", "APITimeoutError"):
        return "timeout"
    if _is(exc, "anthropic", "OverloadedError"):
        return "overloaded"
    if _is(exc, "openai", "APIConnectionError") or _is(exc, "anthropic", "APIConnectionError"):
        return _after_connection_error(exc, text)
    if _is(exc, "openai", "APIStatusError") or _is(exc, "anthropic", "APIStatusError"):
        return _status_kind(getattr(exc, "status_code", None), text) or "other"
    if _is(exc, "openai", "APIResponseValidationError") or _is(exc, "anthropic", "APIResponseValidationError"):
        return "malformed"
    if _is(exc, "openai", "APIError") or _is(exc, "anthropic", "APIError"):
        # an error event inside a 200 stream: no status, only its message
        if "overloaded" in text:
            return "overloaded"
        if "rate limit" in text or "rate_limit" in text:
            return "rate_limit"
        return _by_text(text) or ("malformed" if "json" in text else "server")
    # anything else carrying an HTTP status (another SDK, a wrapper)
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        kind = _status_kind(status, text)
        if kind is not None:
            return kind
    for e in _chain(exc):
        kind = _transport_kind(e)
        if kind is not None:
            return kind
    if exc.__class__.__module__.startswith("jinja2"):
        return "template"
    return "other"


def is_retryable(exc: BaseException) -> bool:
    """Whether another attempt may help (the one predicate the retry loop asks)."""
    return classify(exc) in RETRYABLE


def retry_after(exc: BaseException) -> float | None:
    """Seconds the provider asked us to wait, if it said."""
    headers_sources = [
        getattr(exc, "litellm_response_headers", None),
        getattr(getattr(exc, "response", None), "headers", None),
        getattr(exc, "headers", None),
    ]
    for headers in headers_sources:
        if not headers:
            continue
        try:
            value = headers.get("retry-after") or headers.get("Retry-After")
        except Exception:
            continue
        if value is None:
            continue
        try:
            return max(0.0, float(value))
        except (TypeError, ValueError):
            continue
    return None


class _WaitRetryAfterOr:
    def __init__(self, fallback: Callable[[RetryCallState], float], cap: float):
        self.fallback = fallback
        self.cap = cap

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        asked = retry_after(exc) if exc else None
        if asked is not None:
            return min(asked, self.cap)
        return self.fallback(state)


async def call_with_retry(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    on_retry: Callable[[str, int, float], None] | None = None,
) -> T:
    """Run `call`, retrying retryable errors; re-raise the last error after the budget.

    The first attempt runs outside tenacity (building its loop costs ~0.1 ms a call, and nearly
    every call succeeds at once); a failure is handed to the tenacity loop as its first attempt's
    outcome, so what follows (retry predicate, waits, events, attempt numbers) is unchanged."""
    try:
        return await call()
    except Exception as exc:
        failed: list[BaseException] = [exc]
    from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_random_exponential

    async def attempt_call() -> T:
        if failed:
            raise failed.pop()
        return await call()

    def before_sleep(state: RetryCallState) -> None:
        if on_retry and state.outcome is not None:
            exc = state.outcome.exception()
            wait = state.next_action.sleep if state.next_action else 0.0
            on_retry(classify(exc) if exc else "other", state.attempt_number, wait)

    async for attempt in AsyncRetrying(
        retry=retry_if_exception(is_retryable),
        wait=_WaitRetryAfterOr(
            wait_random_exponential(multiplier=policy.min_wait_s, max=policy.max_wait_s), policy.max_retry_after_s
        ),
        stop=stop_after_attempt(policy.attempts),
        before_sleep=before_sleep,
        reraise=True,
    ):
        with attempt:
            return await attempt_call()
    raise AssertionError("unreachable")  # pragma: no cover
