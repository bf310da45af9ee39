"""Retry one model call (never a whole conversation), with one predicate deciding what
is retryable. Backoff is exponential with jitter and honours `retry-after`."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import Awaitable, Callable, ClassVar, Mapping, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_random_exponential

T = TypeVar("T")

RETRYABLE = frozenset({"rate_limit", "overloaded", "server", "timeout", "connection", "malformed", "stream_cut"})
"""Error kinds worth another attempt."""


class StreamCut(Exception):
    """A streamed reply ended without its final chunk: never stored, retried."""


class MalformedReply(Exception):
    """A reply that could not be read (no choices, broken JSON): never stored, retried."""


class MissingKey(Exception):
    """The models file names a key variable that is not set."""


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


_MALFORMED_TEXT = ("unterminated string", "expecting value", "expecting property name", "expecting ',' delimiter",
                   "jsondecodeerror", "json decode", "invalid json", "extra data: line")
_CUT_TEXT = ("response payload is not completed", "transferencodingerror", "clientpayloaderror",
             "incomplete chunked read", "peer closed connection without sending complete message body",
             "server disconnected")
_CONNECTION_TEXT = ("connection error", "connection reset", "connection refused", "connection aborted",
                    "errno 104", "errno 111", "broken pipe", "remoteprotocolerror", "connecterror")


def _mid_stream(exc: BaseException) -> str:
    """Kind of an error raised while a stream was being read (litellm's MidStreamFallbackError)."""
    text = f"{exc} {getattr(exc, 'original_exception', '')}".lower()
    if any(t in text for t in _MALFORMED_TEXT):
        return "malformed"
    if "timeout" in text or "timed out" in text:
        return "timeout"
    if "overloaded" in text:
        return "overloaded"
    if "rate limit" in text or "rate_limit" in text:
        return "rate_limit"
    return "stream_cut"  # some text arrived, then the stream broke


def classify(exc: BaseException) -> str:
    """The error kind of an exception raised by a model call."""
    from ..providers.native import error_kind  # the SDKs' own exceptions, decided by type

    native_kind = error_kind(exc)
    if native_kind is not None:
        return native_kind
    if type(exc).__name__ == "MidStreamFallbackError":
        return _mid_stream(exc)
    if isinstance(exc, StreamCut):
        return "stream_cut"
    if isinstance(exc, MalformedReply):
        return "malformed"
    if isinstance(exc, MissingKey):
        return "auth"
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return "timeout"
    name = type(exc).__name__
    status = getattr(exc, "status_code", None)
    text = str(exc).lower()
    if name in {"Timeout", "APITimeoutError"} or "timed out" in text or "timeout" in name.lower():
        return "timeout"
    if name == "RateLimitError" or status == 429:
        return "rate_limit"
    if status == 529 or "overloaded" in text:
        return "overloaded"
    if name in {"AuthenticationError", "PermissionDeniedError"} or status in (401, 403):
        return "auth"
    if name in {"ContextWindowExceededError"}:
        return "context_window"
    if name in {"BadRequestError", "NotFoundError", "UnprocessableEntityError", "UnsupportedParamsError"} or status in (400, 404, 422):
        if "json" in text and ("decode" in text or "expecting" in text or "parse" in text):
            return "malformed"
        return "bad_request"
    if name in {"InternalServerError", "ServiceUnavailableError", "BadGatewayError", "APIConnectionError"} or (
        status or 0
    ) >= 500:
        # litellm wraps transport failures (reset, refused, a body cut short) as 500s
        if any(t in text for t in _CUT_TEXT):
            return "stream_cut" if "payload" in text or "chunked" in text else "connection"
        if any(t in text for t in _CONNECTION_TEXT):
            return "connection"
        if any(t in text for t in _MALFORMED_TEXT):
            return "malformed"
        if name != "APIConnectionError":
            return "server"
    if name in {"APIConnectionError", "ServerDisconnectedError", "ClientConnectionError", "RemoteProtocolError",
                "ReadError", "ConnectError", "ClientPayloadError", "TransferEncodingError"}:
        if "json" in text and ("decode" in text or "expecting" in text):
            return "malformed"
        return "connection"
    if isinstance(exc, (ValueError, KeyError)) and ("json" in text or "expecting" in text):
        return "malformed"
    if name in {"APIError", "JSONDecodeError"}:
        return "malformed" if "json" in text or name == "JSONDecodeError" else "server"
    return "other"


def is_retryable(exc: BaseException) -> bool:
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
    """Run `call`, retrying retryable errors; re-raise the last error after the budget."""

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
            return await call()
    raise AssertionError("unreachable")  # pragma: no cover
