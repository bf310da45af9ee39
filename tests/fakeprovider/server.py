"""The aiohttp application and the threaded :class:`FakeProvider` wrapper.

Routes
------
POST /v1/chat/completions, /chat/completions   OpenAI chat completions
POST /v1/messages, /messages                   Anthropic messages
POST /_control                                 {"action": ..., ...} or {"actions": [...]}
POST /_control/reset | /_control/faults | /_control/rules | /_control/latency
GET  /_control/requests?since=SEQ              request log (JSON list)
GET  /_control/state                           rules, pending faults, latency
GET  /_control/health                          "ok"
OpenAI files + batches, Anthropic message batches, GET /_control/batches: see batches.py
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import socket
import struct
import threading
import time
from dataclasses import asdict
from typing import Any

from aiohttp import web

from .batches import Batches, add_routes, batches_for
from .core import Fault, Latency, ReplyPlan, RequestRecord, Rule, State, split_chunks

__all__ = ["FakeProvider", "build_app", "raise_fd_limit"]

log = logging.getLogger("tests.fakeprovider")

JSON = "application/json"
STATE_KEY = web.AppKey("fakeprovider_state", State)
_ANTHROPIC_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}
_ERROR_TYPES_OPENAI = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "invalid_request_error",
    404: "invalid_request_error",
    429: "requests",
    500: "server_error",
    503: "server_error",
    529: "overloaded_error",
}
_ERROR_TYPES_ANTHROPIC = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_ERROR_MESSAGES = {
    429: "Rate limit reached (fake provider). Please try again later.",
    500: "The server had an error while processing your request (fake provider).",
    529: "Overloaded",
    401: "Missing API key (fake provider).",
}


def raise_fd_limit(target: int = 65536) -> None:
    """Raise the soft open-files limit (2,000 connections need 2,000+ fds)."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = target if hard == resource.RLIM_INFINITY else min(target, hard)
        if soft != resource.RLIM_INFINITY and soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ValueError, OSError):  # pragma: no cover - platform dependent
        pass


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _fmt_seconds(s: float) -> str:
    return str(int(s)) if float(s).is_integer() else str(s)


# ---------------------------------------------------------------------------
# Error bodies
# ---------------------------------------------------------------------------


def _rid_headers(rid: str) -> dict[str, str]:
    return {"x-request-id": rid, "request-id": rid}


def _error_response(api: str, status: int, fault: Fault | None, rid: str) -> web.Response:
    message = (fault.message if fault and fault.message else None) or _ERROR_MESSAGES.get(
        status, f"Fake provider error {status}"
    )
    headers = _rid_headers(rid)
    if status == 429 and fault is not None and fault.retry_after is not None:
        headers["retry-after"] = _fmt_seconds(fault.retry_after)
    if api == "anthropic":
        etype = _ERROR_TYPES_ANTHROPIC.get(status, "api_error" if status >= 500 else "invalid_request_error")
        body = {"type": "error", "error": {"type": etype, "message": message}}
    else:
        etype = _ERROR_TYPES_OPENAI.get(status, "server_error" if status >= 500 else "invalid_request_error")
        code = {429: "rate_limit_exceeded", 401: "invalid_api_key"}.get(status)
        body = {"error": {"message": message, "type": etype, "param": None, "code": code}}
    return web.Response(status=status, body=_dumps(body), content_type=JSON, headers=headers)


# ---------------------------------------------------------------------------
# Normal responses: OpenAI
# ---------------------------------------------------------------------------


def _openai_usage(p: ReplyPlan) -> dict:
    return {
        "prompt_tokens": p.prompt_tokens,
        "completion_tokens": p.completion_tokens,
        "total_tokens": p.prompt_tokens + p.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": p.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": p.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _openai_body(p: ReplyPlan) -> dict:
    message: dict[str, Any] = {"role": "assistant", "content": p.text or None, "refusal": None}
    if p.reasoning is not None:
        message["reasoning_content"] = p.reasoning
    if p.tool_call is not None:
        message["tool_calls"] = [
            {
                "id": p.tool_call["id"],
                "type": "function",
                "function": {"name": p.tool_call["name"], "arguments": p.tool_call["arguments"]},
            }
        ]
    return {
        "id": p.response_id,
        "object": "chat.completion",
        "created": p.created,
        "model": p.model,
        "system_fingerprint": "fp_fake",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": p.finish_reason}],
        "usage": _openai_usage(p),
    }


def _openai_events(p: ReplyPlan, n_chunks: int, include_usage: bool) -> list[tuple[bytes, bool]]:
    """SSE events as (bytes, is_content_delta)."""

    def chunk(delta: dict, finish: str | None = None) -> bytes:
        obj: dict[str, Any] = {
            "id": p.response_id,
            "object": "chat.completion.chunk",
            "created": p.created,
            "model": p.model,
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage:
            obj["usage"] = None
        return b"data: " + _dumps(obj) + b"\n\n"

    events: list[tuple[bytes, bool]] = [(chunk({"role": "assistant", "content": "", "refusal": None}), False)]
    for piece in split_chunks(p.reasoning or "", n_chunks):
        events.append((chunk({"reasoning_content": piece}), True))
    for piece in split_chunks(p.text, n_chunks):
        events.append((chunk({"content": piece}), True))
    if p.tool_call is not None:
        tc = p.tool_call
        start = {"index": 0, "id": tc["id"], "type": "function", "function": {"name": tc["name"], "arguments": ""}}
        events.append((chunk({"tool_calls": [start]}), True))
        for piece in split_chunks(tc["arguments"], n_chunks):
            events.append((chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}), True))
    events.append((chunk({}, p.finish_reason), False))
    if include_usage:
        obj = {
            "id": p.response_id,
            "object": "chat.completion.chunk",
            "created": p.created,
            "model": p.model,
            "system_fingerprint": "fp_fake",
            "choices": [],
            "usage": _openai_usage(p),
        }
        events.append((b"data: " + _dumps(obj) + b"\n\n", False))
    events.append((b"data: [DONE]\n\n", False))
    return events


_OPENAI_BAD_CHUNK = b'data: {"id": "chatcmpl-broken", "choices": [{"index": 0, "delta": {"content": "oops\n\n'
_OPENAI_BAD_BODY = b'{"id": "chatcmpl-broken", "object": "chat.completion", "choices": [{"index": 0, "message": {"content": "trunc'


def _openai_stream_error(message: str) -> bytes:
    return b"data: " + _dumps({"error": {"message": message, "type": "server_error", "param": None, "code": None}}) + b"\n\n"


# ---------------------------------------------------------------------------
# Normal responses: Anthropic
# ---------------------------------------------------------------------------


def _anthropic_usage(p: ReplyPlan, output_tokens: int) -> dict:
    return {
        "input_tokens": p.prompt_tokens - p.cached_tokens - p.cache_creation_tokens,
        "cache_creation_input_tokens": p.cache_creation_tokens,
        "cache_read_input_tokens": p.cached_tokens,
        "output_tokens": output_tokens,
    }


def _signature(p: ReplyPlan) -> str:
    return "fakesig_" + p.response_id


def _anthropic_blocks(p: ReplyPlan) -> list[dict]:
    blocks: list[dict] = []
    if p.reasoning is not None:
        blocks.append({"type": "thinking", "thinking": p.reasoning, "signature": _signature(p)})
    if p.text or p.tool_call is None:
        blocks.append({"type": "text", "text": p.text})
    if p.tool_call is not None:
        blocks.append(
            {
                "type": "tool_use",
                "id": p.tool_call["id"],
                "name": p.tool_call["name"],
                "input": json.loads(p.tool_call["arguments"] or "{}"),
            }
        )
    return blocks


def _anthropic_body(p: ReplyPlan) -> dict:
    return {
        "id": p.response_id,
        "type": "message",
        "role": "assistant",
        "model": p.model,
        "content": _anthropic_blocks(p),
        "stop_reason": _ANTHROPIC_STOP.get(p.finish_reason, p.finish_reason),
        "stop_sequence": None,
        "usage": _anthropic_usage(p, p.completion_tokens),
    }


def _sse(event: str, data: dict) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + _dumps(data) + b"\n\n"


def _anthropic_events(p: ReplyPlan, n_chunks: int) -> list[tuple[bytes, bool]]:
    start_msg = {
        "id": p.response_id,
        "type": "message",
        "role": "assistant",
        "model": p.model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": _anthropic_usage(p, 1),
    }
    ev: list[tuple[bytes, bool]] = [
        (_sse("message_start", {"type": "message_start", "message": start_msg}), False),
        (_sse("ping", {"type": "ping"}), False),
    ]
    index = 0

    def block(start: dict, deltas: list[dict]) -> None:
        nonlocal index
        ev.append((_sse("content_block_start", {"type": "content_block_start", "index": index, "content_block": start}), False))
        for d in deltas:
            ev.append((_sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d}), True))
        ev.append((_sse("content_block_stop", {"type": "content_block_stop", "index": index}), False))
        index += 1

    if p.reasoning is not None:
        deltas = [{"type": "thinking_delta", "thinking": t} for t in split_chunks(p.reasoning, n_chunks)]
        deltas.append({"type": "signature_delta", "signature": _signature(p)})
        block({"type": "thinking", "thinking": "", "signature": ""}, deltas)
    if p.text or p.tool_call is None:
        block({"type": "text", "text": ""}, [{"type": "text_delta", "text": t} for t in split_chunks(p.text, n_chunks)])
    if p.tool_call is not None:
        tc = p.tool_call
        block(
            {"type": "tool_use", "id": tc["id"], "name": tc["name"], "input": {}},
            [{"type": "input_json_delta", "partial_json": t} for t in split_chunks(tc["arguments"], n_chunks)],
        )
    ev.append(
        (
            _sse(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": _ANTHROPIC_STOP.get(p.finish_reason, p.finish_reason), "stop_sequence": None},
                    "usage": {"output_tokens": p.completion_tokens},
                },
            ),
            False,
        )
    )
    ev.append((_sse("message_stop", {"type": "message_stop"}), False))
    return ev


_ANTHROPIC_BAD_CHUNK = (
    b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, '
    b'"delta": {"type": "text_delta", "text": "oops\n\n'
)
_ANTHROPIC_BAD_BODY = b'{"id": "msg_broken", "type": "message", "content": [{"type": "text", "text": "trunc'


def _anthropic_stream_error(message: str) -> bytes:
    return _sse("error", {"type": "error", "error": {"type": "overloaded_error", "message": message}})


def _fault_position(events: list[tuple[bytes, bool]], cut_after: int) -> int:
    """Index of the event before which a mid-stream fault fires: right after
    the ``cut_after``-th content delta (before the first one if 0), or after
    the last delta when there are fewer."""
    content_idx = [i for i, (_, c) in enumerate(events) if c]
    if not content_idx:
        return max(0, len(events) - 1)
    if cut_after <= 0:
        return content_idx[0]
    k = min(cut_after, len(content_idx))
    return content_idx[k - 1] + 1


# ---------------------------------------------------------------------------
# Handlers
# ---------------------------------------------------------------------------


def _abort(request: web.Request, rec: RequestRecord, rst: bool = False) -> None:
    rec.closed_by = "server"
    transport = request.transport
    if transport is None or transport.is_closing():
        return
    if rst:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:  # pragma: no cover
                pass
    transport.abort()


async def _wait_for_cancel(request: web.Request) -> None:
    """After aborting the transport, park until aiohttp cancels the handler."""
    await asyncio.sleep(5)
    raise asyncio.CancelledError()


class _Handlers:
    def __init__(self, state: State) -> None:
        self.state = state

    # ---- provider routes ---------------------------------------------------
    async def openai(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, "openai")

    async def anthropic(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, "anthropic")

    async def _handle(self, request: web.Request, api: str) -> web.StreamResponse:
        t0 = time.monotonic()
        state = self.state
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else {}
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
        except ValueError as exc:
            rec = state.new_record(
                path=request.path, api=api, model=None, stream=False, headers={k.lower(): v for k, v in request.headers.items()}, body=raw.decode("utf-8", "replace")
            )
            rec.status, rec.outcome, rec.duration_s = 400, "error", time.monotonic() - t0
            err = Fault(kind="400", message=f"Invalid JSON body: {exc}")
            return _error_response(api, 400, err, "req_fake_invalid")
        model = str(body.get("model") or "")
        stream = bool(body.get("stream"))
        rec = state.new_record(
            path=request.path, api=api, model=model, stream=stream, headers={k.lower(): v for k, v in request.headers.items()}, body=body
        )
        try:
            return await self._serve(request, api, body, model, stream, rec)
        except asyncio.CancelledError:
            if rec.closed_by is None:
                rec.closed_by = "client"
            if rec.outcome in ("pending", "streaming"):
                rec.outcome = "client_disconnected"
            raise
        except ConnectionError as exc:
            # Writing to a connection the client already closed: end quietly
            # (aiohttp treats CancelledError from a handler as a disconnect).
            if rec.closed_by is None:
                rec.closed_by = "client"
            if rec.outcome in ("pending", "streaming"):
                rec.outcome = "client_disconnected"
            log.debug("connection error while serving %s: %s", rec.seq, exc)
            raise asyncio.CancelledError() from exc
        finally:
            rec.duration_s = time.monotonic() - t0

    async def _serve(
        self, request: web.Request, api: str, body: dict, model: str, stream: bool, rec: RequestRecord
    ) -> web.StreamResponse:
        state = self.state
        rid = f"req_fake{rec.seq:06d}"
        if state.require_auth:
            has_key = bool(request.headers.get("authorization")) or (
                api == "anthropic" and bool(request.headers.get("x-api-key"))
            )
            if not has_key:
                rec.status, rec.outcome = 401, "error"
                return _error_response(api, 401, None, rid)

        fault = state.take_fault(api, model, stream)
        if fault is not None:
            rec.fault = fault.kind
            if fault.delay_s > 0:
                await asyncio.sleep(fault.delay_s)
            cap = state.hang_cap_s
            if fault.status is not None:
                rec.status, rec.outcome = fault.status, "fault"
                return _error_response(api, fault.status, fault, rid)
            if fault.kind == "connection_reset":
                rec.outcome = "fault"
                _abort(request, rec, rst=True)
                await _wait_for_cancel(request)
            if fault.kind == "hang":
                rec.outcome = "fault"
                await asyncio.sleep(min(fault.hang_s, cap))
                _abort(request, rec)
                await _wait_for_cancel(request)
            if fault.kind == "malformed" and not stream:
                rec.status, rec.outcome = 200, "fault"
                bad = _OPENAI_BAD_BODY if api == "openai" else _ANTHROPIC_BAD_BODY
                return web.Response(status=200, body=bad, content_type=JSON, headers=_rid_headers(rid))
            if fault.kind in ("cut", "truncate", "stall", "stream_error") and not stream:
                # Non-streaming variant: promise a body, send half of it, drop.
                plan = state.plan(api, body)
                await self._sleep(plan.latency_s)
                full = _dumps(_openai_body(plan) if api == "openai" else _anthropic_body(plan))
                rec.response_id = plan.response_id
                resp = web.StreamResponse(status=200, headers={"Content-Type": JSON, **_rid_headers(rid)})
                resp.content_length = len(full)
                await resp.prepare(request)
                await resp.write(full[: len(full) // 2])
                rec.status, rec.outcome = 200, "fault"
                if fault.kind == "stall":
                    await asyncio.sleep(min(fault.hang_s, cap))
                _abort(request, rec)
                await _wait_for_cancel(request)

        plan = state.plan(api, body)
        rec.response_id, rec.reply, rec.usage = plan.response_id, plan.text, plan.usage_dict
        await self._sleep(plan.latency_s)
        if not stream:
            payload = _openai_body(plan) if api == "openai" else _anthropic_body(plan)
            rec.status, rec.outcome, rec.completed = 200, "completed", True
            return web.Response(status=200, body=_dumps(payload), content_type=JSON, headers=_rid_headers(rid))
        return await self._stream(request, api, body, plan, fault, rec, rid)

    @staticmethod
    async def _sleep(s: float) -> None:
        if s and s > 0:
            await asyncio.sleep(s)

    async def _stream(
        self,
        request: web.Request,
        api: str,
        body: dict,
        plan: ReplyPlan,
        fault: Fault | None,
        rec: RequestRecord,
        rid: str,
    ) -> web.StreamResponse:
        lat: Latency = self.state.latency
        n_chunks = max(1, lat.n_chunks)
        if api == "openai":
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            events = _openai_events(plan, n_chunks, include_usage)
        else:
            events = _anthropic_events(plan, n_chunks)

        resp = web.StreamResponse(
            status=200,
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                **_rid_headers(rid),
            },
        )
        await resp.prepare(request)
        rec.status, rec.outcome = 200, "streaming"
        await self._sleep(lat.ttft_s)

        pos = _fault_position(events, fault.cut_after) if fault is not None else -1
        first_content = True
        for i, (data, is_content) in enumerate(events):
            if i == pos:
                assert fault is not None
                if await self._stream_fault(request, api, resp, fault, rec):
                    return resp
            if is_content:
                if not first_content:
                    await self._sleep(lat.chunk_delay_s)
                first_content = False
            await resp.write(data)
        await resp.write_eof()
        if rec.outcome == "streaming":
            rec.outcome, rec.completed = "completed", True
        return resp

    async def _stream_fault(
        self, request: web.Request, api: str, resp: web.StreamResponse, fault: Fault, rec: RequestRecord
    ) -> bool:
        """Apply a mid-stream fault.  Returns True if the stream ends here."""
        rec.outcome = "fault"
        k = fault.kind
        if k == "malformed":
            await resp.write(_OPENAI_BAD_CHUNK if api == "openai" else _ANTHROPIC_BAD_CHUNK)
            return False  # carry on with the rest of the stream
        if k == "truncate":
            await resp.write_eof()
            return True
        if k == "stream_error":
            msg = fault.message or "Overloaded"
            await resp.write(_openai_stream_error(msg) if api == "openai" else _anthropic_stream_error(msg))
            await resp.write_eof()
            return True
        if k == "stall":
            await asyncio.sleep(min(fault.hang_s, self.state.hang_cap_s))
        _abort(request, rec)  # cut, and stall once its sleep is over
        await _wait_for_cancel(request)
        return True  # pragma: no cover - _wait_for_cancel raises

    # ---- control routes ----------------------------------------------------
    async def control(self, request: web.Request) -> web.Response:
        try:
            payload = await request.json()
        except ValueError:
            return web.json_response({"error": "invalid JSON"}, status=400)
        actions = payload.get("actions") if isinstance(payload, dict) and "actions" in payload else [payload]
        results = []
        try:
            for a in actions:
                results.append(self._apply_action(dict(a)))
        except (ValueError, TypeError, KeyError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"ok": True, "results": results})

    def _apply_action(self, a: dict) -> Any:
        action = a.pop("action", None)
        if action == "reset":
            self.state.reset()
            batches_for(self.state).reset()
            return None
        if action and action.startswith("batch_"):  # batches.py: batch_config, batch_finish, batch_reset
            return batches_for(self.state).apply_action(action, a)
        if action == "inject":
            return self.state.inject(Fault.from_dict(a)).to_dict()
        if action == "add_rule":
            return self.state.add_rule(Rule.from_dict(a)).to_dict()
        if action == "set_latency":
            return asdict(self.state.set_latency(**a))
        if action == "clear_faults":
            self.state.clear_faults()
            return None
        if action == "clear_rules":
            self.state.clear_rules()
            return None
        raise ValueError(f"unknown action {action!r}")

    async def control_reset(self, request: web.Request) -> web.Response:
        self.state.reset()
        batches_for(self.state).reset()
        return web.json_response({"ok": True})

    async def _control_list(self, request: web.Request, action: str) -> web.Response:
        try:
            payload = await request.json()
        except ValueError:
            return web.json_response({"error": "invalid JSON"}, status=400)
        items = payload if isinstance(payload, list) else [payload]
        try:
            results = [self._apply_action({**dict(i), "action": action}) for i in items]
        except (ValueError, TypeError, KeyError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"ok": True, "results": results})

    async def control_faults(self, request: web.Request) -> web.Response:
        return await self._control_list(request, "inject")

    async def control_rules(self, request: web.Request) -> web.Response:
        return await self._control_list(request, "add_rule")

    async def control_latency(self, request: web.Request) -> web.Response:
        return await self._control_list(request, "set_latency")

    async def control_requests(self, request: web.Request) -> web.Response:
        since = int(request.query.get("since", "0"))
        recs = self.state.records(since)
        if "limit" in request.query:
            recs = recs[: int(request.query["limit"])]
        return web.Response(body=_dumps([r.to_dict() for r in recs]), content_type=JSON)

    async def control_state(self, request: web.Request) -> web.Response:
        return web.json_response(self.state.snapshot())

    async def health(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")


def build_app(state: State) -> web.Application:
    h = _Handlers(state)
    app = web.Application(client_max_size=300 * 1024 * 1024)  # a batch upload is up to 256 MB
    app.router.add_post("/v1/chat/completions", h.openai)
    app.router.add_post("/chat/completions", h.openai)
    app.router.add_post("/v1/messages", h.anthropic)
    app.router.add_post("/messages", h.anthropic)
    app.router.add_post("/_control", h.control)
    app.router.add_post("/_control/reset", h.control_reset)
    app.router.add_post("/_control/faults", h.control_faults)
    app.router.add_post("/_control/rules", h.control_rules)
    app.router.add_post("/_control/latency", h.control_latency)
    app.router.add_get("/_control/requests", h.control_requests)
    app.router.add_get("/_control/state", h.control_state)
    app.router.add_get("/_control/health", h.health)
    app[STATE_KEY] = state
    add_routes(app, state)  # the vendors' batch APIs (batches.py)
    return app


async def start_site(state: State, host: str, port: int, backlog: int) -> tuple[web.AppRunner, int]:
    """Start serving ``state`` on host:port (0 = pick a free port)."""
    runner = web.AppRunner(
        build_app(state),
        access_log=None,
        handler_cancellation=True,  # client gone => handler cancelled (hang/latency end)
        shutdown_timeout=0.5,
        keepalive_timeout=75,
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=backlog, reuse_address=True)
    await site.start()
    server = site._server  # noqa: SLF001 - only way to learn the bound port
    assert server is not None and server.sockets
    bound = server.sockets[0].getsockname()[1]
    return runner, bound


class FakeProvider:
    """A fake OpenAI + Anthropic endpoint running in a background thread.

    >>> with FakeProvider() as fp:
    ...     fp.add_rule(match="hello", reply="Hi there")
    ...     fp.inject("429", retry_after=2)
    ...     litellm.completion(model="openai/x", api_base=fp.openai_base, api_key="sk-x", ...)
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        latency_s: float = 0.0,
        ttft_s: float = 0.0,
        chunk_delay_s: float = 0.0,
        n_chunks: int = 4,
        require_auth: bool = True,
        openai_prefix_cache: bool = True,
        hang_cap_s: float = 60.0,
        max_log: int = 100_000,
        backlog: int = 4096,
    ) -> None:
        self.host = host
        self._want_port = port
        self.port: int | None = None
        self.backlog = backlog
        self.state = State(
            latency=Latency(latency_s=latency_s, ttft_s=ttft_s, chunk_delay_s=chunk_delay_s, n_chunks=n_chunks),
            require_auth=require_auth,
            max_log=max_log,
            hang_cap_s=hang_cap_s,
            openai_prefix_cache=openai_prefix_cache,
        )
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None

    # ---- lifecycle ---------------------------------------------------------
    def start(self) -> "FakeProvider":
        if self._thread is not None:
            return self
        raise_fd_limit()
        ready = threading.Event()
        error: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                self._runner, self.port = loop.run_until_complete(
                    start_site(self.state, self.host, self._want_port, self.backlog)
                )
            except BaseException as exc:  # noqa: BLE001 - reported to start()
                error.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name="fakeprovider", daemon=True)
        self._thread.start()
        ready.wait(30)
        if error:
            self._thread = None
            raise error[0]
        if self.port is None:
            raise RuntimeError("fake provider did not start within 30 s")
        return self

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        loop, runner = self._loop, self._runner
        if runner is not None:
            fut = asyncio.run_coroutine_threadsafe(runner.cleanup(), loop)
            try:
                fut.result(10)
            except Exception:  # noqa: BLE001 - best effort
                log.debug("fake provider cleanup failed", exc_info=True)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(10)
        self._thread = None
        self._loop = None
        self._runner = None

    def __enter__(self) -> "FakeProvider":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- addresses -----------------------------------------------------------
    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("FakeProvider not started")
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base(self) -> str:
        """``api_base`` for litellm ``openai/...`` models (ends in /v1)."""
        return self.url + "/v1"

    @property
    def anthropic_base(self) -> str:
        """``api_base`` for litellm ``anthropic/...`` models: the bare URL;
        litellm appends ``/v1/messages`` itself."""
        return self.url

    # ---- configuration -------------------------------------------------------
    def add_rule(self, rule: Rule | None = None, /, **kw: Any) -> Rule:
        """``add_rule(Rule(...))`` or ``add_rule(match=..., reply=...)``."""
        if rule is None:
            rule = Rule(**kw)
        elif kw:
            raise TypeError("pass either a Rule or keyword arguments")
        return self.state.add_rule(rule)

    def inject(
        self,
        kind: str | int,
        count: int | None = 1,
        model: str | None = None,
        retry_after: float | None = 1,
        **kw: Any,
    ) -> Fault:
        """Queue a fault for the next ``count`` matching requests.  Extra
        keywords: api, stream, skip, hang_s, cut_after, delay_s, message."""
        return self.state.inject(Fault(kind=str(kind), count=count, model=model, retry_after=retry_after, **kw))

    def set_latency(
        self,
        latency_s: float | None = None,
        ttft_s: float | None = None,
        chunk_delay_s: float | None = None,
        n_chunks: int | None = None,
    ) -> Latency:
        return self.state.set_latency(
            latency_s=latency_s, ttft_s=ttft_s, chunk_delay_s=chunk_delay_s, n_chunks=n_chunks
        )

    def clear_faults(self) -> None:
        self.state.clear_faults()

    def clear_rules(self) -> None:
        self.state.clear_rules()

    @property
    def pending_faults(self) -> list[Fault]:
        with self.state.lock:
            return [Fault(**{**f.to_dict()}) for f in self.state.faults]

    def reset(self) -> None:
        """Clear rules, faults, the request log and the caches; restore latency; forget batches."""
        self.state.reset()
        batches_for(self.state).reset()

    @property
    def batches(self) -> Batches:
        """The batch APIs' state and controls (`configure`, `finish`, `snapshot`, `received`)."""
        return batches_for(self.state)

    @property
    def requests(self) -> list[RequestRecord]:
        """Snapshot of the request log (oldest first)."""
        return self.state.records()

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> list[RequestRecord]:
        """Block until at least ``n`` requests were received."""
        return self.state.wait_for_requests(n, timeout)
