"""Retry one model call (never a whole conversation), with one predicate deciding what
is retryable. Backoff is exponential with jitter and honours `retry-after`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Awaitable, Callable, TypeVar

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
    min_wait_s: float = 0.5


def classify(exc: BaseException) -> str:
    """The error kind of an exception raised by a model call."""
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
    if name in {"InternalServerError", "ServiceUnavailableError", "BadGatewayError"} or (status or 0) >= 500:
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
            wait_random_exponential(multiplier=policy.min_wait_s, max=policy.max_wait_s), policy.max_wait_s
        ),
        stop=stop_after_attempt(policy.attempts),
        before_sleep=before_sleep,
        reraise=True,
    ):
        with attempt:
            return await call()
    raise AssertionError("unreachable")  # pragma: no cover
