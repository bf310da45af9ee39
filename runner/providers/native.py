"""The native transport: OpenAI chat completions and Anthropic messages, on the wire.

`chat()` takes the arguments of `runner.engine.providers.chat` and returns the same
`Reply`. It serves `openai/...` aliases (and any OpenAI-compatible server — vLLM, SGLang,
a proxy — through `api_base`) and `anthropic/...` aliases.

What comes from the official SDKs: the base URL (`AsyncOpenAI(...).base_url`, the
`ANTHROPIC_BASE_URL` / `OPENAI_BASE_URL` defaults), the auth and version headers
(`default_headers`, `auth_headers`; for OpenAI computed as the SDK computes them without
importing it, `_openai_config`, which hands over to the SDK in any case it does not
reproduce; the SDK client is then built on the first error), and every exception (`client._make_status_error_from_response`,
the same call the SDKs make on an HTTP error, and their `APITimeoutError` /
`APIConnectionError` / `APIError`). What does not: the request itself and the reading of
the reply. The SDKs' per-event parsing (a typed pydantic object per chunk) costs more CPU
than the whole budget of a streamed chunk, so the body is posted with one pooled aiohttp
session per (wire format, base URL, key) and the SSE lines are parsed with `json.loads`.

Faults are decided where they happen, never by synthesising a finish: a stream that ends
without its finish (`finish_reason` / `stop_reason`) raises `StreamCut`; a body or event
that is not JSON raises `MalformedReply`; an HTTP error raises the SDK's status error
(`RateLimitError` carries `retry-after` in `exc.response.headers`); an in-band `error`
event raises the SDK's error for it; timeouts and resets raise `APITimeoutError` and
`APIConnectionError`. `error_kind()` maps all of these to the retry kinds by type.

Keys come from the environment only (`api_key_env`) and never leave the request headers.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import sys
import time
import weakref
from dataclasses import dataclass
from typing import Any, Literal

from ..kinds import CacheTTL, ErrorKind
from ..protocol.models_file import ModelAlias
from . import prices
from .base import MalformedReply, Reply, StreamCut, api_key, audit, cache_plan, request_params

WireFormat = Literal["openai", "anthropic"]
"""The two wire formats the native transport speaks."""


MAX_CONNECTIONS = int(os.environ.get("LATITUDE_NATIVE_MAX_CONNECTIONS", "10000"))
"""Most open connections per pooled session (one session per wire format, base URL and key).
Sized for thousands of requests in flight; litellm's default is 500 per host."""

ANTHROPIC_DEFAULT_MAX_TOKENS = 4096
"""`max_tokens` sent to Anthropic for a model the price map does not know (litellm's default too)."""


def anthropic_default_max_tokens(model: str) -> int:
    """`max_tokens` sent to Anthropic when the alias sets none (Anthropic requires one): the
    model's `max_output_tokens` from the price map, as litellm sends, else 4096."""
    info = prices.model_info(model) or {}
    return int(info.get("max_output_tokens") or info.get("max_tokens") or ANTHROPIC_DEFAULT_MAX_TOKENS)

_ANTHROPIC_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
                     "refusal": "content_filter", "compaction": "length", "pause_turn": "stop"}
"""Anthropic `stop_reason` → the OpenAI finish reason stored (litellm's `map_finish_reason`)."""


def wire_format(model: ModelAlias) -> WireFormat:
    """Which wire format an alias speaks natively (ValueError for any other vendor)."""
    prefix = model.model.split("/", 1)[0]
    if prefix in ("openai", "anthropic"):
        return prefix  # type: ignore[return-value]
    raise ValueError(f"the native transport serves openai/ and anthropic/ models, not {model.model}")


def _wire_model(model: ModelAlias) -> str:
    return model.model.split("/", 1)[1]


# ----------------------------------------------------------------------------- endpoints


@dataclass
class _Endpoint:
    wire: WireFormat
    url: str
    """Full URL of the completions endpoint."""
    headers: dict[str, str]
    """Headers of every request (auth included): never logged, never stored."""
    session: Any
    """The pooled `aiohttp.ClientSession`."""
    sdk_args: tuple[str | None, str | None] = (None, None)
    """(key, base URL) the SDK client is built from, when it is first needed."""
    _sdk: Any = None
    _httpx: Any = None

    @property
    def sdk(self) -> Any:
        """The SDK's async client: exception mapping only (its own HTTP pool is never opened).
        Built on first use: an OpenAI endpoint without an error never imports the SDK (~1 s)."""
        if self._sdk is None:
            self._sdk, self._httpx = _sdk_client(self.wire, *self.sdk_args)
        return self._sdk

    @property
    def httpx(self) -> Any:
        """The httpx module the SDK's exceptions carry requests and responses of (`httpx` / `httpx2`)."""
        if self._httpx is None:
            self.sdk
        return self._httpx

    def request(self) -> Any:
        return self.httpx.Request("POST", self.url)


_pools: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str, str], _Endpoint]]" = (
    weakref.WeakKeyDictionary()
)


_closers: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any]" = weakref.WeakKeyDictionary()


def _sdk_client(wire: WireFormat, key: str | None, base: str | None) -> tuple[Any, Any]:
    if wire == "openai":
        import httpx
        import openai

        return openai.AsyncOpenAI(api_key=key or "none", base_url=base, max_retries=0), httpx
    import anthropic
    import httpx2

    return anthropic.AsyncAnthropic(api_key=key or "none", base_url=base, max_retries=0), httpx2


_OPENAI_SDK_ENV = ("OPENAI_CUSTOM_HEADERS", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID")
"""Environment variables that change the openai SDK's headers: when one is set, the SDK computes them."""

_SIMPLE_URL = re.compile(r"^https?://[a-z0-9.-]+(:(?!80$|443$|80/|443/)[0-9]{1,5})?(/[A-Za-z0-9._~-]+)*/?$")
"""A base URL the openai SDK's `httpx.URL` leaves as it is (lower-case host, no default port, plain path)."""


def _openai_config(key: str | None, base: str | None) -> tuple[str, dict[str, str]] | None:
    """What `AsyncOpenAI(api_key=key or "none", base_url=base)` would give for the URL and
    headers (`base_url`, `default_headers`, `auth_headers`), computed as the SDK computes them
    but without importing it; None whenever something falls outside the cases reproduced here
    (an SDK header variable set, an unusual URL, an uncommon platform): then the SDK answers.
    `tests/conformance/test_native_endpoint.py` holds both equal."""
    import platform
    from importlib.metadata import version

    if any(name in os.environ for name in _OPENAI_SDK_ENV):
        return None
    if base is None:
        base = os.environ.get("OPENAI_BASE_URL") or None
        base = "https://api.openai.com/v1" if base is None and "OPENAI_BASE_URL" not in os.environ else base
    if base is None or not _SIMPLE_URL.match(base):
        return None
    system, machine = platform.system().lower(), platform.machine().lower()
    if system == "darwin" and "iphone" not in platform.platform().lower() and "ipad" not in platform.platform().lower():
        os_name = "MacOS"
    elif system == "linux" and "android" not in platform.platform().lower():
        import distro

        if distro.id() in ("freebsd", "openbsd"):
            return None
        os_name = "Linux"
    else:
        return None
    arch = {"arm64": "arm64", "aarch64": "arm64", "x86_64": "x64"}.get(machine)
    if arch is None:
        return None
    sdk_version = version("openai")
    headers = {
        "Accept": "application/json", "Content-Type": "application/json",
        "User-Agent": f"AsyncOpenAI/Python {sdk_version}", "X-Stainless-Lang": "python",
        "X-Stainless-Package-Version": sdk_version, "X-Stainless-OS": os_name, "X-Stainless-Arch": arch,
        "X-Stainless-Runtime": platform.python_implementation(), "X-Stainless-Runtime-Version": platform.python_version(),
        "X-Stainless-Async": "async:asyncio", "Authorization": f"Bearer {key or 'none'}",
    }
    return base.rstrip("/") + "/chat/completions", headers


def _endpoint(model: ModelAlias, wire: WireFormat, key: str | None) -> _Endpoint:
    loop = asyncio.get_running_loop()
    pool = _pools.get(loop)
    if pool is None:
        pool = _pools[loop] = {}
        closer = _close_at_shutdown(pool)
        _closers[loop] = closer  # held, so only the loop's shutdown finalises it
        loop.create_task(closer.__anext__())
    ident = (wire, model.api_base or "", hashlib.sha256((key or "").encode()).hexdigest())
    ep = pool.get(ident)
    if ep is None:
        import aiohttp

        sdk = hx = None
        known = _openai_config(key, model.api_base) if wire == "openai" else None
        if known is not None:
            url, headers = known
        else:
            sdk, hx = _sdk_client(wire, key, model.api_base)
            base = str(sdk.base_url).rstrip("/")
            url = base + ("/chat/completions" if wire == "openai" else "/v1/messages")
            headers = {k: v for k, v in {**sdk.default_headers, **sdk.auth_headers}.items() if isinstance(v, str)}
        if not key:
            headers = {k: v for k, v in headers.items() if k.lower() not in ("authorization", "x-api-key")}
        headers["Accept"] = "application/json"
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS, limit_per_host=0, keepalive_timeout=30),
            auto_decompress=True, raise_for_status=False,
        )
        ep = pool[ident] = _Endpoint(wire, url, headers, session, (key, model.api_base), sdk, hx)
    return ep


async def _close_at_shutdown(pool: dict[tuple[str, str, str], _Endpoint]) -> Any:
    """An async generator parked at its first `yield`: `asyncio.run` (and any loop that calls
    `shutdown_asyncgens`) closes it on the way out, which closes this loop's sessions."""
    try:
        yield None
        await asyncio.Event().wait()  # pragma: no cover - never resumed
    finally:
        for ep in list(pool.values()):
            await ep.session.close()
        pool.clear()


async def aclose() -> None:
    """Close the running loop's pooled sessions now (they also close when the loop shuts down)."""
    pool = _pools.get(asyncio.get_running_loop())
    for ep in list((pool or {}).values()):
        await ep.session.close()
    if pool:
        pool.clear()


# ----------------------------------------------------------------------------- requests


def _openai_body(model: ModelAlias, params: dict[str, Any], messages: list[dict[str, Any]],
                 tools: list[dict[str, Any]] | None, stream: bool, *, cacheable_system: bool = False,
                 cache_key: str | None = None, cache_ttl: CacheTTL | None = None) -> dict[str, Any]:
    """The chat-completions body; `cache_key` (a conversation's) adds its `prompt_cache_key`
    (`base.cache_plan`). OpenAI caches by itself: nothing is marked."""
    messages, cache = cache_plan(model, messages, tools, cacheable_system=cacheable_system, cache_key=cache_key,
                                 cache_ttl=cache_ttl)
    if any(m.get("content", "") is None for m in messages):  # an assistant turn of tool calls only
        messages = [{k: v for k, v in m.items() if not (k == "content" and v is None)} for m in messages]
    body: dict[str, Any] = {"model": _wire_model(model), "messages": messages}
    for k, v in params.items():
        if k in ("api_base", "model_path", "thinking"):
            continue
        body[k] = v
    if tools:
        body["tools"] = tools
    if cache.get("prompt_cache_key"):
        body["prompt_cache_key"] = cache["prompt_cache_key"]
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def _text_blocks(content: Any) -> list[dict[str, Any]]:
    if content is None or content == "":
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [dict(b) for b in content]


def anthropic_messages(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]] | None, list[dict[str, Any]]]:
    """OpenAI-shaped messages → Anthropic (`system`, `messages`): text as blocks, assistant
    `tool_calls` as `tool_use` blocks, `tool` messages as `tool_result` blocks of a user turn,
    consecutive turns of one role merged (the shapes litellm sends)."""
    system: list[dict[str, Any]] | None = None
    out: list[dict[str, Any]] = []
    for m in messages:
        role = m["role"]
        if role == "system":
            system = (system or []) + _text_blocks(m.get("content"))
            continue
        if role == "tool":
            result = {"type": "tool_result", "tool_use_id": m.get("tool_call_id"), "content": m.get("content") or ""}
            if m.get("cache_control"):
                result["cache_control"] = m["cache_control"]  # a breakpoint on a tool result (litellm's shape)
            role, blocks = "user", [result]
        elif role == "assistant":
            blocks = _text_blocks(m.get("content"))
            for call in m.get("tool_calls") or []:
                fn = call.get("function") or {}
                args = fn.get("arguments") or "{}"
                blocks.append({"type": "tool_use", "id": call.get("id"), "name": fn.get("name"),
                               "input": json.loads(args) if isinstance(args, str) else args})
        else:
            blocks = _text_blocks(m.get("content"))
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    return system, out


def _anthropic_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for t in tools:
        fn = t.get("function", t)
        tool: dict[str, Any] = {"name": fn["name"], "input_schema": fn.get("parameters") or {"type": "object"},
                                "type": "custom"}
        if fn.get("description"):
            tool["description"] = fn["description"]
        out.append(tool)
    return out


def _anthropic_body(model: ModelAlias, params: dict[str, Any], messages: list[dict[str, Any]],
                    tools: list[dict[str, Any]] | None, stream: bool, *, cacheable_system: bool = False,
                    cache_key: str | None = None, cache_ttl: CacheTTL | None = None) -> dict[str, Any]:
    """The messages body, with `cache_control` breakpoints on the system prompt (`cacheable_system`)
    and on the latest turn of a conversation (`cache_key` given), at `cache_ttl` or the alias's
    lifetime (`base.cache_plan`)."""
    messages, _ = cache_plan(model, messages, tools, cacheable_system=cacheable_system, cache_key=cache_key,
                             cache_ttl=cache_ttl)
    system, turns = anthropic_messages(messages)
    body: dict[str, Any] = {"model": _wire_model(model), "messages": turns}
    if tools:
        body["tools"] = _anthropic_tools(tools)
    if system:
        body["system"] = system
    body["max_tokens"] = params.get("max_tokens") or anthropic_default_max_tokens(model.model)
    for k, v in params.items():
        if k in ("api_base", "model_path", "max_tokens", "seed", "reasoning_effort"):
            continue  # Anthropic takes no seed; reasoning_effort aliases stay on litellm (models_file)
        body[k] = v
    if stream:
        body["stream"] = True
    return body


# ----------------------------------------------------------------------------- the call


async def chat(
    model: ModelAlias,
    messages: list[dict[str, Any]],
    *,
    overrides: dict[str, Any] | None = None,
    tools: list[dict[str, Any]] | None = None,
    cacheable_system: bool = False,
    cache_key: str | None = None,
    cache_ttl: CacheTTL | None = None,
) -> Reply:
    """One completion (streamed unless the alias says `stream: false`). Raises on any failure."""
    import aiohttp

    wire = wire_format(model)
    params = request_params(model, overrides)
    key = api_key(model)
    stream = getattr(model, "stream", True)
    build = _openai_body if wire == "openai" else _anthropic_body
    body = build(model, params, messages, tools, stream, cacheable_system=cacheable_system, cache_key=cache_key,
                 cache_ttl=cache_ttl)
    cache = body_cache_audit(body)
    ep = _endpoint(model, wire, key)
    timeout = aiohttp.ClientTimeout(total=None, connect=None, sock_connect=model.timeout_s, sock_read=model.timeout_s)
    data = json.dumps(body, ensure_ascii=False).encode()
    started = time.perf_counter()
    try:
        async with ep.session.post(ep.url, data=data, headers=ep.headers, timeout=timeout) as resp:
            if resp.status >= 400:
                raw = await resp.read()
                raise _status_error(ep, resp.status, resp.headers, raw)
            request_id = resp.headers.get("request-id") or resp.headers.get("x-request-id")
            if not stream:
                got = _read_body(ep, await resp.read(), model)
            elif wire == "openai":
                got = await _read_openai_stream(ep, resp, started, model)
            else:
                got = await _read_anthropic_stream(ep, resp, started, model)
    except (StreamCut, MalformedReply):
        raise
    except aiohttp.ClientPayloadError as exc:  # the body broke off: the reply was cut
        raise StreamCut(f"stream from {model.model} was cut: {exc}") from exc
    except (asyncio.TimeoutError, TimeoutError) as exc:  # aiohttp's ServerTimeoutError included
        raise _sdk(ep).APITimeoutError(request=ep.request()) from exc
    except aiohttp.ClientError as exc:  # reset, refused, disconnected before a response
        raise _sdk(ep).APIConnectionError(message=f"Connection error: {type(exc).__name__}", request=ep.request()) from exc
    latency = (time.perf_counter() - started) * 1000
    content, reasoning, tool_calls, finish, usage, ttft, body_id = got
    # An empty reply is returned as it came (the model's behaviour): the client records it.
    tokens_in, tokens_out, cached, written = usage
    ttl = cache.get("cache_ttl")
    return Reply(
        content=content,
        reasoning=reasoning or None,
        tool_calls=tool_calls,
        finish_reason=finish,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        cached_tokens=cached,
        cost=cost(model, tokens_in, tokens_out, cached, written, ttl),
        latency_ms=latency,
        ttft_ms=ttft,
        request_id=request_id or body_id,
        request=audit(model, params, messages, tools, cache),
        cache_write_tokens=written,
        cache_ttl=ttl,
    )


def body_cache_audit(body: dict[str, Any]) -> dict[str, Any]:
    """What a wire body asks of the prompt cache, for the request audit: Anthropic breakpoints
    (counted in tools, system and messages) and their lifetime; OpenAI's `prompt_cache_key`."""
    if body.get("prompt_cache_key"):
        return {"prompt_cache_key": body["prompt_cache_key"]}
    marks = [t.get("cache_control") for t in body.get("tools") or [] if isinstance(t, dict)]
    system = body.get("system")
    if isinstance(system, list):
        marks += [b.get("cache_control") for b in system if isinstance(b, dict)]
    for m in body.get("messages") or []:
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, list):
            marks += [b.get("cache_control") for b in content if isinstance(b, dict)]
    marks = [cc for cc in marks if cc]
    if not marks:
        return {}
    return {"cache_ttl": "1h" if any(cc.get("ttl") == "1h" for cc in marks) else "5m",
            "cache_breakpoints": len(marks)}


def with_cache_control(messages: list[dict[str, Any]], model: ModelAlias) -> list[dict[str, Any]]:
    """Mark a system prompt cacheable where the vendor takes `cache_control` (Anthropic), as
    the litellm transport does."""
    from .litellm_ import with_cache_control as mark  # a plain function: litellm itself is not imported

    return mark(messages, model)


# ----------------------------------------------------------------------------- the Provider interface


def cost(model: ModelAlias, tokens_in: int, tokens_out: int, cached: int = 0, cache_write: int = 0,
         cache_ttl: CacheTTL | None = None) -> float | None:
    """USD cost from litellm's bundled price map, read as data (`prices`), cache reads and writes
    at their own prices; None when unknown."""
    return prices.cost(model.model, tokens_in, tokens_out, cached, cache_write, cache_ttl)


def context_window(model: ModelAlias) -> int | None:
    """Input context window: the alias override, or the price map's."""
    return model.context_window or prices.context_window(model.model)


def price_per_token(model: ModelAlias) -> tuple[float, float] | None:
    """(input, output) USD per token, for plan estimates."""
    return prices.price_per_token(model.model)


def deterministic(model: ModelAlias, overrides: dict[str, Any] | None = None) -> bool:
    """A vendor's reply can differ when asked again (even with a seed: vendors do not promise it)."""
    return False


def _sdk(ep: _Endpoint) -> Any:
    return sys.modules[type(ep.sdk).__module__.split(".", 1)[0]]


def _status_error(ep: _Endpoint, status: int, headers: Any, raw: bytes) -> Exception:
    """The SDK's own exception for an HTTP error (the class its client would raise)."""
    response = ep.httpx.Response(status, headers=list(headers.items()), content=raw, request=ep.request())
    return ep.sdk._make_status_error_from_response(response)


def _in_band_error(ep: _Endpoint, payload: dict[str, Any]) -> Exception:
    """An `error` event inside a 200 stream, raised as the SDK's stream reader raises it."""
    if ep.wire == "anthropic":
        response = ep.httpx.Response(200, content=json.dumps(payload).encode(), request=ep.request())
        return ep.sdk._make_status_error(f"{payload}", body=payload, response=response)
    error = payload.get("error")
    message = error.get("message") if isinstance(error, dict) else None
    return _sdk(ep).APIError(message=message or "An error occurred during streaming", request=ep.request(), body=error)


def _loads(ep: _Endpoint, raw: bytes | str, model: ModelAlias) -> Any:
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise MalformedReply(f"unreadable JSON from {model.model}: {exc}") from exc


_Parsed = tuple[str, str, list[dict[str, Any]], str, tuple[int, int, int, int], "float | None", "str | None"]


def _calls(slots: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"id": c["id"] or f"call_{i}", "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
            for i, c in sorted(slots.items())]


def _openai_usage(u: dict[str, Any] | None) -> tuple[int, int, int, int]:
    """(prompt, completion, cache reads, cache writes); OpenAI reports no writes (they cost nothing extra)."""
    if not u:
        return 0, 0, 0, 0
    details = u.get("prompt_tokens_details") or {}
    return (int(u.get("prompt_tokens") or 0), int(u.get("completion_tokens") or 0),
            int(details.get("cached_tokens") or 0), 0)


def _anthropic_usage(u: dict[str, Any]) -> tuple[int, int, int, int]:
    """Anthropic usage as litellm reports it: prompt = input + cache writes + cache reads; cached =
    cache reads; and the cache writes."""
    read = int(u.get("cache_read_input_tokens") or 0)
    write = int(u.get("cache_creation_input_tokens") or 0)
    return int(u.get("input_tokens") or 0) + read + write, int(u.get("output_tokens") or 0), read, write


def _read_body(ep: _Endpoint, raw: bytes, model: ModelAlias) -> _Parsed:
    return parse_body(ep.wire, _loads(ep, raw, model), model)


def parse_body(wire: WireFormat, obj: Any, model: ModelAlias, what: str = "reply") -> _Parsed:
    """An unstreamed reply body (a chat completion, or an Anthropic message) as the stored fields:
    (content, reasoning, tool calls, finish reason, usage, ttft, id). The live transport and the
    batch results (`batch_openai`, `batch_anthropic`) read bodies here, so both store the same."""
    if not isinstance(obj, dict):
        raise MalformedReply(f"{what} from {model.model} is not a JSON object")
    if wire == "openai":
        choices = obj.get("choices") or []
        if not choices:
            raise MalformedReply(f"{what} from {model.model} has no choices")
        msg = choices[0].get("message") or {}
        finish = choices[0].get("finish_reason")
        if not finish:
            raise StreamCut(f"{what} from {model.model} has no finish reason")
        calls = [{"id": c.get("id"), "type": "function",
                  "function": {"name": (c.get("function") or {}).get("name") or "",
                               "arguments": (c.get("function") or {}).get("arguments") or ""}}
                 for c in msg.get("tool_calls") or []]
        reasoning = msg.get("reasoning_content") or msg.get("reasoning") or ""
        return (msg.get("content") or "", reasoning, calls, finish, _openai_usage(obj.get("usage")), None, obj.get("id"))
    text, thought, calls = [], [], []
    for block in obj.get("content") or []:
        kind = block.get("type")
        if kind == "text":
            text.append(block.get("text") or "")
        elif kind == "thinking":
            thought.append(block.get("thinking") or "")
        elif kind == "tool_use":
            calls.append({"id": block.get("id"), "type": "function",
                          "function": {"name": block.get("name") or "", "arguments": json.dumps(block.get("input") or {})}})
    stop = obj.get("stop_reason")
    if not stop:
        raise StreamCut(f"{what} from {model.model} has no stop reason")
    return ("".join(text), "".join(thought), calls, _ANTHROPIC_FINISH.get(stop, "stop"),
            _anthropic_usage(obj.get("usage") or {}), None, obj.get("id"))


async def _read_openai_stream(ep: _Endpoint, resp: Any, started: float, model: ModelAlias) -> _Parsed:
    parts: list[str] = []
    thoughts: list[str] = []
    slots: dict[int, dict[str, Any]] = {}
    finish: str | None = None
    usage: dict[str, Any] | None = None
    ttft: float | None = None
    body_id: str | None = None
    loads = json.loads
    async for line in resp.content:
        if not line.startswith(b"data:"):
            continue
        payload = line[5:].strip()
        if payload == b"[DONE]":
            break
        try:
            obj = loads(payload)
        except ValueError as exc:
            raise MalformedReply(f"unreadable stream event from {model.model}: {exc}") from exc
        if "error" in obj and obj["error"]:
            raise _in_band_error(ep, obj)
        body_id = body_id or obj.get("id")
        u = obj.get("usage")
        if u:
            usage = u
        choices = obj.get("choices")
        if not choices:
            continue
        choice = choices[0]
        delta = choice.get("delta") or {}
        text = delta.get("content")
        if text:
            if ttft is None:
                ttft = (time.perf_counter() - started) * 1000
            parts.append(text)
        thought = delta.get("reasoning_content") or delta.get("reasoning")
        if thought:
            if ttft is None:
                ttft = (time.perf_counter() - started) * 1000
            thoughts.append(thought)
        for tc in delta.get("tool_calls") or ():
            slot = slots.setdefault(tc.get("index") or 0, {"id": None, "name": "", "arguments": ""})
            slot["id"] = tc.get("id") or slot["id"]
            fn = tc.get("function")
            if fn:
                slot["name"] += fn.get("name") or ""
                slot["arguments"] += fn.get("arguments") or ""
        if choice.get("finish_reason"):
            finish = choice["finish_reason"]
    if finish is None:
        raise StreamCut(f"stream from {model.model} ended without a finish reason")
    return "".join(parts), "".join(thoughts), _calls(slots), finish, _openai_usage(usage), ttft, body_id


async def _read_anthropic_stream(ep: _Endpoint, resp: Any, started: float, model: ModelAlias) -> _Parsed:
    parts: list[str] = []
    thoughts: list[str] = []
    slots: dict[int, dict[str, Any]] = {}
    stop: str | None = None
    usage: dict[str, Any] = {}
    ttft: float | None = None
    body_id: str | None = None
    loads = json.loads
    async for line in resp.content:
        if not line.startswith(b"data:"):
            continue
        try:
            obj = loads(line[5:])
        except ValueError as exc:
            raise MalformedReply(f"unreadable stream event from {model.model}: {exc}") from exc
        kind = obj.get("type")
        if kind == "content_block_delta":
            delta = obj["delta"]
            dk = delta.get("type")
            if dk == "text_delta":
                if ttft is None:
                    ttft = (time.perf_counter() - started) * 1000
                parts.append(delta.get("text") or "")
            elif dk == "thinking_delta":
                if ttft is None:
                    ttft = (time.perf_counter() - started) * 1000
                thoughts.append(delta.get("thinking") or "")
            elif dk == "input_json_delta":
                slot = slots.get(obj.get("index", 0))
                if slot is not None:
                    slot["arguments"] += delta.get("partial_json") or ""
        elif kind == "content_block_start":
            block = obj.get("content_block") or {}
            if block.get("type") == "tool_use":
                slots[obj.get("index", 0)] = {"id": block.get("id"), "name": block.get("name") or "", "arguments": ""}
            elif block.get("type") == "text" and block.get("text"):
                parts.append(block["text"])
        elif kind == "message_start":
            msg = obj.get("message") or {}
            body_id = msg.get("id")
            usage.update({k: v for k, v in (msg.get("usage") or {}).items() if v is not None})
        elif kind == "message_delta":
            stop = (obj.get("delta") or {}).get("stop_reason") or stop
            usage.update({k: v for k, v in (obj.get("usage") or {}).items() if v is not None})
        elif kind == "message_stop":
            break
        elif kind == "error":
            raise _in_band_error(ep, obj)
    if stop is None:
        raise StreamCut(f"stream from {model.model} ended without a stop reason")
    calls = _calls({i: s for i, s in slots.items()})
    for c in calls:  # a tool call with no argument deltas has the empty object, as Anthropic means it
        c["function"]["arguments"] = c["function"]["arguments"] or "{}"
    return ("".join(parts), "".join(thoughts), calls, _ANTHROPIC_FINISH.get(stop, "stop"), _anthropic_usage(usage),
            ttft, body_id)


# ----------------------------------------------------------------------------- error kinds


def _body_type(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            return str(inner.get("type") or inner.get("code") or "")
    return ""


def error_kind(exc: BaseException) -> ErrorKind | None:
    """The retry kind of an exception the native transport raised, decided by its type (and,
    for an error inside a 200 stream, the `error.type` of its body); None for any exception
    that is not the SDKs' own (litellm's exceptions subclass the openai SDK's, so they are
    left to `runner.engine.retry.classify`, which knows litellm's quirks) and for an SDK
    error these rules cannot decide."""
    family = type(exc).__module__.split(".", 1)[0]
    if family not in ("openai", "anthropic"):
        return None
    sdk = sys.modules[family]
    if isinstance(exc, sdk.APITimeoutError):
        return "timeout"
    if isinstance(exc, sdk.APIConnectionError):
        return "connection"
    if isinstance(exc, sdk.RateLimitError):
        return "rate_limit"
    if isinstance(exc, (sdk.AuthenticationError, sdk.PermissionDeniedError)):
        return "auth"
    etype = _body_type(exc)
    if isinstance(exc, sdk.APIStatusError):
        status = exc.status_code
        if status == 529 or etype == "overloaded_error" or (family == "anthropic" and isinstance(exc, sdk.OverloadedError)):
            return "overloaded"
        if status >= 500:
            return "server"
        if status < 400:  # an error event inside a 200 stream: its body's type, else the generic rules
            return _in_band_kind(etype)
        if etype == "context_length_exceeded" or getattr(exc, "code", None) == "context_length_exceeded":
            return "context_window"
        return "bad_request"
    if isinstance(exc, sdk.APIError):  # OpenAI's in-band stream error
        return _in_band_kind(etype)
    return None


def _in_band_kind(etype: str) -> ErrorKind | None:
    """An error event's `error.type` (`overloaded_error`, `rate_limit_error`, `server_error`, …);
    None when it has none (the retry module's generic rules then read the message)."""
    if not etype:
        return None
    if "overloaded" in etype:
        return "overloaded"
    if "rate_limit" in etype:
        return "rate_limit"
    return "server"


__all__ = ["ANTHROPIC_DEFAULT_MAX_TOKENS", "MAX_CONNECTIONS", "WireFormat", "aclose", "anthropic_messages",
           "body_cache_audit", "chat",
           "context_window", "cost", "deterministic", "error_kind", "price_per_token", "wire_format"]
