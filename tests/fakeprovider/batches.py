"""The vendors' batch APIs, on the fake provider: OpenAI files + batches, Anthropic message batches.

Routes (registered by `server.build_app` through `add_routes`)
----------------------------------------------------------------
OpenAI
  POST /v1/files                       multipart upload (``purpose=batch``) → file object
  GET  /v1/files/{id}                  file object
  GET  /v1/files/{id}/content          the file's bytes (input, output or error JSONL)
  POST /v1/batches                     ``{input_file_id, endpoint, completion_window, metadata}``
  GET  /v1/batches/{id}                batch object (polling it may end the batch, see below)
  GET  /v1/batches                     list, newest first, ``?limit&after`` (cursor pages)
  POST /v1/batches/{id}/cancel         → ``cancelling``; the next poll says ``cancelled``
Anthropic
  POST /v1/messages/batches            ``{requests: [{custom_id, params}]}``
  GET  /v1/messages/batches/{id}       batch object (``processing_status``, ``request_counts``)
  GET  /v1/messages/batches/{id}/results   JSONL, once ended
  GET  /v1/messages/batches            list, newest first, ``?limit&after_id&before_id``
  POST /v1/messages/batches/{id}/cancel    → ``canceling``; the next poll says ``ended``

Each request of a batch is answered by the code that answers a live request
(`State.plan`, then `server._openai_body` / `server._anthropic_body`), in the order of the
batch, when the batch ends: replies, tool calls, reasoning, usage and cached tokens are
those a live request would get at that moment. Live faults (`inject`) do not apply to batch
items; batch failures are set with `BatchConfig`.

When a batch ends: on a poll (`GET` of the batch) once ``delay_s`` has passed since it was
created (0 by default: the first poll ends it), unless ``hold`` is set; or at once on the
control action ``batch_finish``. A batch being ended computes every reply then and keeps only
the output bytes (one JSONL line per request), never the parsed requests.

Control (``POST /_control`` with ``{"action": ...}``, or `FakeProvider.batches` in process):

* ``batch_config``: any `BatchConfig` field (``delay_s``, ``hold``, ``errors``,
  ``expire_finished_share``, ``cancel_finished_share``, ``max_requests``, ``max_bytes``,
  ``expired_in_error_file``); fields not given are left as they are.
* ``batch_finish``: ``{id?, outcome?: "ended"|"expired", finished_share?}`` ends one batch
  (or every open one) now (a batch of more than `SYNC_END` requests ends in a worker thread:
  poll it until it is final).
* ``batch_reset``: forget batches, files, counts and config.
* ``GET /_control/batches``: config, every batch's summary, and the per-``custom_id``
  received counts summed up (``received``, ``distinct``, ``resubmitted``; ``?ids=1`` adds
  the whole ``{custom_id: count}`` map).

Errors per request (``errors``: a list, the first entry that matches wins):
``{"match": "<fnmatch of custom_id>"}`` or ``{"fraction": 0.1, "seed": 7}`` (chosen by a hash
of seed and custom_id: stable, no state), with ``status`` (default 500), optional ``type`` and
``message``. OpenAI writes such a request to the error file as ``response.status_code`` with
the error body; Anthropic reports ``result.type = "errored"``.

Expiry: with ``expire_finished_share`` set (0..1), a batch ends ``expired`` with only that
share (the first ones, in order) finished. OpenAI writes each unfinished request to the error
file (``error.code = "batch_expired"``) unless ``expired_in_error_file`` is false (then it is
in neither file); Anthropic reports ``result.type = "expired"``.

Cancellation (the vendor route): ``cancel_finished_share`` of the requests (default 0) were
finished before the cancel; OpenAI puts them in the output file and the rest in neither;
Anthropic reports the rest as ``result.type = "canceled"``.

Size limits: over ``max_requests`` (default 50,000 OpenAI / 100,000 Anthropic) or
``max_bytes`` (200 MB / 256 MB) the create call fails as the vendor's does: OpenAI 400
``invalid_request_error``; Anthropic 400 ``invalid_request_error`` for the count, 413
``request_too_large`` for the bytes.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from fnmatch import fnmatchcase
from typing import Any, Iterator

from aiohttp import web

from .core import State

__all__ = ["BatchConfig", "Batches", "add_routes", "batches_for"]

JSON = "application/json"
SYNC_END = 2000
"""Batches of up to this many requests end inside the poll that ends them; larger ones in a thread."""
log = logging.getLogger("tests.fakeprovider")
OPENAI_MAX_REQUESTS = 50_000
OPENAI_MAX_BYTES = 200 * 1024 * 1024
ANTHROPIC_MAX_REQUESTS = 100_000
ANTHROPIC_MAX_BYTES = 256 * 1024 * 1024


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, timezone.utc).isoformat().replace("+00:00", "Z")


@dataclass
class BatchConfig:
    """How the fake vendors treat batches (both vendors share it)."""

    delay_s: float = 0.0
    """Seconds a batch stays in progress after it was created (it ends on the first poll after)."""
    hold: bool = False
    """Stay in progress until ``batch_finish`` (whatever ``delay_s`` says)."""
    errors: list[dict[str, Any]] = field(default_factory=list)
    """Per-request errors: ``{match|fraction+seed, status, type?, message?}``."""
    expire_finished_share: float | None = None
    """When set, batches end ``expired`` with only this share of their requests finished."""
    cancel_finished_share: float = 0.0
    """Share of a batch's requests finished before a cancel reached it."""
    max_requests: int | None = None
    """Requests per batch accepted (None: the vendor's own limit)."""
    max_bytes: int | None = None
    """Bytes per batch accepted (None: the vendor's own limit)."""
    expired_in_error_file: bool = True
    """OpenAI: unfinished requests of an expired batch are written to the error file."""

    def update(self, d: dict[str, Any]) -> None:
        names = {f.name for f in fields(self)}
        for k, v in d.items():
            if k not in names:
                raise ValueError(f"unknown batch_config field {k!r}")
            setattr(self, k, v)


@dataclass
class _Batch:
    api: str
    id: str
    created: float
    ready_at: float
    n: int
    input: bytes
    """OpenAI: the JSONL file; Anthropic: the create call's JSON body (parsed again when it ends)."""
    metadata: dict[str, Any] | None = None
    input_file_id: str | None = None
    status: str = "in_progress"
    """OpenAI: validating/in_progress/finalizing/completed/expired/cancelling/cancelled/failed;
    Anthropic: in_progress/canceling/ended."""
    counts: dict[str, int] = field(default_factory=dict)
    output_file_id: str | None = None
    error_file_id: str | None = None
    results: bytes | None = None
    ended_at: float | None = None
    cancel_at: float | None = None
    finished_share: float | None = None
    ending: bool = False
    """A worker thread is ending the batch."""
    end_kw: dict[str, Any] | None = None
    """How `Batches.finish` asked the batch to end (outcome, share), else None."""

    def summary(self) -> dict[str, Any]:
        return {"api": self.api, "id": self.id, "status": self.status, "n": self.n, "counts": dict(self.counts),
                "metadata": self.metadata}


def _pick(seed: int, custom_id: str) -> float:
    h = hashlib.blake2b(f"{seed}\x00{custom_id}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2**64


def _iter_requests(text: str) -> Iterator[dict[str, Any]]:
    """The items of an Anthropic create body's ``requests`` array, one at a time (a 100 MB body
    is never turned into 100,000 objects at once)."""
    dec = json.JSONDecoder()
    i = text.find('"requests"')
    if i < 0:
        raise ValueError("body has no 'requests'")
    i = text.index(":", i) + 1
    n = len(text)
    while i < n and text[i] in " \t\r\n":
        i += 1
    if i >= n or text[i] != "[":
        raise ValueError("'requests' is not a list")
    i += 1
    while True:
        while i < n and text[i] in " \t\r\n,":
            i += 1
        if i >= n:
            raise ValueError("unterminated 'requests' list")
        if text[i] == "]":
            return
        item, i = dec.raw_decode(text, i)
        yield item


class Batches:
    """Batches and files of one fake provider (both vendors)."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.lock = threading.Lock()
        self.config = BatchConfig()
        self.batches: dict[str, _Batch] = {}
        self.files: dict[str, tuple[bytes, dict[str, Any]]] = {}
        self.received: Counter[str] = Counter()
        """Requests received per custom_id, over every batch created (a resubmission counts twice)."""
        self._seq = itertools.count(1)

    # ---- control ---------------------------------------------------------
    def configure(self, **kw: Any) -> BatchConfig:
        with self.lock:
            self.config.update(kw)
            return BatchConfig(**asdict(self.config))

    def reset(self) -> None:
        with self.lock:
            self.config = BatchConfig()
            self.batches.clear()
            self.files.clear()
            self.received.clear()

    def finish(self, id: str | None = None, outcome: str = "ended", finished_share: float | None = None) -> list[str]:
        """End one batch (or every open one) now: ``outcome`` ``ended`` or ``expired``."""
        if outcome not in ("ended", "expired"):
            raise ValueError("outcome must be 'ended' or 'expired'")
        with self.lock:
            targets = [self.batches[id]] if id is not None else list(self.batches.values())
        done = []
        for b in targets:
            if b.results is None and not b.ending and b.cancel_at is None:
                share = finished_share if finished_share is not None else (1.0 if outcome == "ended" else 0.0)
                b.end_kw = {"expired": outcome == "expired", "share": share}
                b.ready_at = 0.0
                self.poll(b)
                done.append(b.id)
        return done

    def snapshot(self, ids: bool = False) -> dict[str, Any]:
        with self.lock:
            out: dict[str, Any] = {
                "config": asdict(self.config),
                "batches": [b.summary() for b in self.batches.values()],
                "received": sum(self.received.values()),
                "distinct": len(self.received),
                "resubmitted": sum(1 for c in self.received.values() if c > 1),
            }
            if ids:
                out["ids"] = dict(self.received)
            return out

    def apply_action(self, action: str, a: dict[str, Any]) -> Any:
        if action == "batch_config":
            return asdict(self.configure(**a))
        if action == "batch_finish":
            return self.finish(a.get("id"), a.get("outcome", "ended"), a.get("finished_share"))
        if action == "batch_reset":
            self.reset()
            return None
        raise ValueError(f"unknown action {action!r}")

    # ---- shared ------------------------------------------------------------
    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._seq):06d}"

    def _limits(self, api: str) -> tuple[int, int]:
        c = self.config
        if api == "openai":
            return c.max_requests or OPENAI_MAX_REQUESTS, c.max_bytes or OPENAI_MAX_BYTES
        return c.max_requests or ANTHROPIC_MAX_REQUESTS, c.max_bytes or ANTHROPIC_MAX_BYTES

    def _new_batch(self, api: str, n: int, data: bytes, ids: list[str], **kw: Any) -> _Batch:
        now = time.time()
        with self.lock:
            bid = self._new_id("batch_fake" if api == "openai" else "msgbatch_fake")
            ready = now + (float("inf") if self.config.hold else self.config.delay_s)
            b = _Batch(api=api, id=bid, created=now, ready_at=ready, n=n, input=data, **kw)
            b.counts = {"processing": n}
            self.batches[bid] = b
            self.received.update(ids)
        return b

    def poll(self, b: _Batch) -> None:
        """What time does to a batch: a cancel completes; a batch whose time has come ends.
        A batch of up to `SYNC_END` requests ends within this call; a larger one in a worker
        thread (OpenAI says ``finalizing`` meanwhile), so the server keeps answering."""
        with self.lock:
            if b.results is not None or b.ending:
                return
            if b.cancel_at is not None:
                kw: dict[str, Any] = {"cancelled": True, "share": self.config.cancel_finished_share}
            elif b.end_kw is not None:
                kw = dict(b.end_kw)
            elif time.time() >= b.ready_at:
                share = self.config.expire_finished_share
                kw = {"expired": share is not None, "share": 1.0 if share is None else float(share)}
            else:
                return
            if b.n > SYNC_END:
                b.ending = True
                if b.api == "openai" and b.cancel_at is None:
                    b.status = "finalizing"
        if b.n <= SYNC_END:
            self._end(b, **kw)
        else:
            threading.Thread(target=self._end_quietly, args=(b,), kwargs=kw, name=f"fakebatch-{b.id}",
                             daemon=True).start()

    def _end_quietly(self, b: _Batch, **kw: Any) -> None:
        try:
            self._end(b, **kw)
        except Exception:  # noqa: BLE001 - a worker thread: say so, and fail the batch visibly
            log.exception("fake provider: ending batch %s failed", b.id)
            with self.lock:
                b.status = "failed" if b.api == "openai" else "ended"
                b.results = b""

    def _error_for(self, custom_id: str) -> dict[str, Any] | None:
        for e in self.config.errors:
            if "match" in e:
                if fnmatchcase(custom_id, str(e["match"])):
                    return e
            elif "fraction" in e:
                if _pick(int(e.get("seed", 0)), custom_id) < float(e["fraction"]):
                    return e
        return None

    def _end(self, b: _Batch, *, expired: bool = False, cancelled: bool = False, share: float = 1.0) -> None:
        from . import server

        with self.lock:
            if b.results is not None:
                return
            b.results = b""  # claimed: a concurrent poll does not end it twice
        finished = int(round(max(0.0, min(1.0, share)) * b.n)) if (expired or cancelled) else b.n
        items = self._items(b)
        out: list[bytes] = []
        errs: list[bytes] = []
        counts: Counter[str] = Counter()
        for i, (custom_id, body) in enumerate(items):
            if i >= finished:
                kind = "expired" if expired else "canceled"
                counts[kind] += 1
                if b.api == "anthropic":
                    out.append(_dumps({"custom_id": custom_id, "result": {"type": kind}}))
                elif expired and self.config.expired_in_error_file:
                    errs.append(_dumps({"id": f"batch_req_{b.id}_{i}", "custom_id": custom_id, "response": None,
                                        "error": {"code": "batch_expired", "message": "This request could not be "
                                                  "executed before the completion window expired."}}))
                continue
            err = self._error_for(custom_id)
            rid = f"req_fake_{b.id}_{i}"
            if err is not None:
                counts["errored"] += 1
                status = int(err.get("status", 500))
                if b.api == "openai":
                    etype = err.get("type") or server._ERROR_TYPES_OPENAI.get(
                        status, "server_error" if status >= 500 else "invalid_request_error")
                    message = err.get("message") or server._ERROR_MESSAGES.get(status, f"Fake provider error {status}")
                    errs.append(_dumps({"id": f"batch_req_{b.id}_{i}", "custom_id": custom_id,
                                        "response": {"status_code": status, "request_id": rid,
                                                     "body": {"error": {"message": message, "type": etype,
                                                                        "param": None, "code": None}}},
                                        "error": None}))
                else:
                    etype = err.get("type") or server._ERROR_TYPES_ANTHROPIC.get(
                        status, "api_error" if status >= 500 else "invalid_request_error")
                    message = err.get("message") or server._ERROR_MESSAGES.get(status, f"Fake provider error {status}")
                    out.append(_dumps({"custom_id": custom_id, "result": {
                        "type": "errored", "error": {"type": "error", "error": {"type": etype, "message": message},
                                                     "request_id": rid}}}))
                continue
            counts["succeeded"] += 1
            plan = self.state.plan(b.api, body)
            if b.api == "openai":
                out.append(_dumps({"id": f"batch_req_{b.id}_{i}", "custom_id": custom_id,
                                   "response": {"status_code": 200, "request_id": rid,
                                                "body": server._openai_body(plan)}, "error": None}))
            else:
                out.append(_dumps({"custom_id": custom_id,
                                   "result": {"type": "succeeded", "message": server._anthropic_body(plan)}}))
        now = time.time()
        with self.lock:
            b.counts = {"processing": 0, **counts}
            b.ended_at = now
            b.input = b""  # the requests are not kept once answered
            b.finished_share = finished / b.n if b.n else 1.0
            if b.api == "openai":
                if out:
                    b.output_file_id = self._store_file(b"\n".join(out) + b"\n", f"{b.id}_output.jsonl",
                                                        "batch_output")
                if errs:
                    b.error_file_id = self._store_file(b"\n".join(errs) + b"\n", f"{b.id}_error.jsonl",
                                                       "batch_output")
                b.status = "expired" if expired else "cancelled" if cancelled else "completed"
                b.results = b"-"
            else:
                b.status = "ended"
                b.results = b"\n".join(out) + b"\n" if out else b""

    def _items(self, b: _Batch) -> Iterator[tuple[str, dict[str, Any]]]:
        if b.api == "openai":
            for line in b.input.splitlines():
                if line.strip():
                    obj = json.loads(line)
                    yield obj["custom_id"], obj["body"]
        else:
            for obj in _iter_requests(b.input.decode()):
                yield obj["custom_id"], obj["params"]

    def _store_file(self, data: bytes, filename: str, purpose: str) -> str:
        fid = self._new_id("file-fake")
        self.files[fid] = (data, {"id": fid, "object": "file", "bytes": len(data), "created_at": int(time.time()),
                                  "filename": filename, "purpose": purpose, "status": "processed",
                                  "expires_at": None, "status_details": None})
        return fid

    # ---- OpenAI objects ------------------------------------------------------
    def openai_object(self, b: _Batch) -> dict[str, Any]:
        c = b.counts
        failed = c.get("errored", 0)  # requests that ran and failed; expired/cancelled ones did not run
        ts = int(b.created)
        end = int(b.ended_at) if b.ended_at is not None else None
        return {
            "id": b.id, "object": "batch", "endpoint": "/v1/chat/completions", "errors": None,
            "input_file_id": b.input_file_id, "completion_window": "24h", "status": b.status,
            "output_file_id": b.output_file_id, "error_file_id": b.error_file_id,
            "created_at": ts, "in_progress_at": ts, "expires_at": ts + 86400,
            "finalizing_at": end if b.status == "completed" else None,
            "completed_at": end if b.status == "completed" else None,
            "failed_at": None, "expired_at": end if b.status == "expired" else None,
            "cancelling_at": int(b.cancel_at) if b.cancel_at is not None else None,
            "cancelled_at": end if b.status == "cancelled" else None,
            "request_counts": {"total": b.n, "completed": c.get("succeeded", 0), "failed": failed},
            "metadata": b.metadata,
        }

    # ---- Anthropic objects ---------------------------------------------------
    def anthropic_object(self, b: _Batch, origin: str) -> dict[str, Any]:
        c = b.counts
        return {
            "id": b.id, "type": "message_batch", "processing_status": b.status,
            "request_counts": {k: c.get(k, 0) for k in ("processing", "succeeded", "errored", "canceled", "expired")},
            "ended_at": _iso(b.ended_at), "created_at": _iso(b.created), "expires_at": _iso(b.created + 86400),
            "archived_at": None, "cancel_initiated_at": _iso(b.cancel_at),
            "results_url": f"{origin}/v1/messages/batches/{b.id}/results" if b.status == "ended" else None,
        }


_KEY = web.AppKey("fakeprovider_batches", Batches)


def batches_for(state: State) -> Batches:
    """The `Batches` of a fake provider's `State` (kept on the state, made on first use)."""
    b = getattr(state, "_fake_batches", None)
    if b is None:
        with state.lock:
            b = getattr(state, "_fake_batches", None)
            if b is None:
                b = Batches(state)
                state._fake_batches = b  # type: ignore[attr-defined]
    return b


# ---------------------------------------------------------------------------- handlers


def _err(api: str, status: int, message: str, etype: str | None = None) -> web.Response:
    if api == "anthropic":
        etype = etype or ("request_too_large" if status == 413 else "not_found_error" if status == 404
                          else "invalid_request_error")
        body: dict[str, Any] = {"type": "error", "error": {"type": etype, "message": message}}
    else:
        body = {"error": {"message": message, "type": etype or "invalid_request_error", "param": None, "code": None}}
    return web.Response(status=status, body=_dumps(body), content_type=JSON)


class _Routes:
    def __init__(self, batches: Batches) -> None:
        self.b = batches

    def _auth(self, request: web.Request, api: str) -> web.Response | None:
        if not self.b.state.require_auth:
            return None
        if request.headers.get("authorization") or (api == "anthropic" and request.headers.get("x-api-key")):
            return None
        return _err(api, 401, "Missing API key (fake provider).",
                    "authentication_error" if api == "anthropic" else "invalid_request_error")

    def _log(self, request: web.Request, api: str, body: Any, status: int) -> None:
        rec = self.b.state.new_record(path=request.path, api=api, model=None, stream=False,
                                      headers={k.lower(): v for k, v in request.headers.items()}, body=body)
        rec.status, rec.outcome, rec.completed = status, "completed" if status < 400 else "error", status < 400

    # ---- OpenAI ----------------------------------------------------------------
    async def file_create(self, request: web.Request) -> web.Response:
        if (denied := self._auth(request, "openai")) is not None:
            return denied
        reader = await request.multipart()
        purpose, data, filename = None, bytearray(), "upload.jsonl"
        while (part := await reader.next()) is not None:
            if part.name == "purpose":
                purpose = (await part.read()).decode()
            elif part.name == "file":
                filename = part.filename or filename
                while chunk := await part.read_chunk(1 << 20):
                    data += chunk
        if purpose != "batch":
            return _err("openai", 400, f"purpose must be 'batch' here (fake provider), got {purpose!r}")
        _, max_bytes = self.b._limits("openai")
        if len(data) > max_bytes:
            return _err("openai", 400, f"File is too large: {len(data)} bytes, over the limit of {max_bytes}.")
        with self.b.lock:
            fid = self.b._store_file(bytes(data), filename, "batch")
            obj = self.b.files[fid][1]
        self._log(request, "openai", {"file": fid, "bytes": len(data)}, 200)
        return web.json_response(obj)

    async def file_get(self, request: web.Request) -> web.Response:
        if (denied := self._auth(request, "openai")) is not None:
            return denied
        f = self.b.files.get(request.match_info["id"])
        if f is None:
            return _err("openai", 404, "No such File object")
        return web.json_response(f[1])

    async def file_content(self, request: web.Request) -> web.StreamResponse:
        if (denied := self._auth(request, "openai")) is not None:
            return denied
        f = self.b.files.get(request.match_info["id"])
        if f is None:
            return _err("openai", 404, "No such File object")
        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/octet-stream"})
        resp.content_length = len(f[0])
        await resp.prepare(request)
        view = memoryview(f[0])
        for i in range(0, len(view), 1 << 20):
            await resp.write(view[i:i + (1 << 20)])
        await resp.write_eof()
        return resp

    async def batch_create(self, request: web.Request) -> web.Response:
        if (denied := self._auth(request, "openai")) is not None:
            return denied
        body = await request.json()
        fid = body.get("input_file_id")
        if body.get("endpoint") != "/v1/chat/completions":
            return _err("openai", 400, f"endpoint {body.get('endpoint')!r} is not served by the fake provider")
        if body.get("completion_window") != "24h":
            return _err("openai", 400, "completion_window must be '24h'")
        f = self.b.files.get(fid or "")
        if f is None:
            return _err("openai", 404, f"No such File object: {fid}")
        data = f[0]
        ids = []
        for lineno, line in enumerate(data.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                ids.append(str(obj["custom_id"]))
                if obj.get("method") != "POST" or obj.get("url") != "/v1/chat/completions":
                    raise ValueError("method must be POST and url /v1/chat/completions")
                if not isinstance(obj.get("body"), dict):
                    raise ValueError("body must be an object")
            except (ValueError, KeyError, TypeError) as exc:
                return _err("openai", 400, f"line {lineno} of the input file is not a valid request: {exc}")
        if len(set(ids)) != len(ids):
            return _err("openai", 400, "custom_id values must be unique within a batch")
        max_n, max_bytes = self.b._limits("openai")
        if len(ids) > max_n:
            return _err("openai", 400, f"The batch has {len(ids)} requests, over the limit of {max_n}.")
        if len(data) > max_bytes:
            return _err("openai", 400, f"The batch input file is {len(data)} bytes, over the limit of {max_bytes}.")
        b = self.b._new_batch("openai", len(ids), data, ids, metadata=body.get("metadata"), input_file_id=fid)
        self._log(request, "openai", {"batch": b.id, "requests": b.n, "metadata": b.metadata}, 200)
        return web.json_response({**self.b.openai_object(b), "status": "validating"})

    def _batch(self, request: web.Request, api: str) -> _Batch | None:
        b = self.b.batches.get(request.match_info["id"])
        return b if b is not None and b.api == api else None

    async def batch_get(self, request: web.Request) -> web.Response:
        if (denied := self._auth(request, "openai")) is not None:
            return denied
        b = self._batch(request, "openai")
        if b is None:
            return _err("openai", 404, "No such Batch object")
        self.b.poll(b)
        return web.json_response(self.b.openai_object(b))

    async def batch_list(self, request: web.Request) -> web.Response:
        if (denied := self._auth(request, "openai")) is not None:
            return denied
        limit = int(request.query.get("limit", "20"))
        items = [b for b in reversed(list(self.b.batches.values())) if b.api == "openai"]
        after = request.query.get("after")
        if after:
            ids = [b.id for b in items]
            items = items[ids.index(after) + 1:] if after in ids else []
        page = items[:limit]
        data = [self.b.openai_object(b) for b in page]
        return web.json_response({"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
                                  "last_id": data[-1]["id"] if data else None, "has_more": len(items) > limit})

    async def batch_cancel(self, request: web.Request) -> web.Response:
        if (denied := self._auth(request, "openai")) is not None:
            return denied
        b = self._batch(request, "openai")
        if b is None:
            return _err("openai", 404, "No such Batch object")
        if b.results is None and b.cancel_at is None:
            b.cancel_at = time.time()
            b.status = "cancelling"
        self._log(request, "openai", {"cancel": b.id}, 200)
        return web.json_response(self.b.openai_object(b))

    # ---- Anthropic ---------------------------------------------------------------
    @staticmethod
    def _origin(request: web.Request) -> str:
        return f"{request.scheme}://{request.host}"

    async def msg_batch_create(self, request: web.Request) -> web.Response:
        if (denied := self._auth(request, "anthropic")) is not None:
            return denied
        raw = await request.read()
        max_n, max_bytes = self.b._limits("anthropic")
        if len(raw) > max_bytes:
            return _err("anthropic", 413, f"Request exceeds the maximum allowed number of bytes ({max_bytes}).")
        ids: list[str] = []
        try:
            for i, item in enumerate(_iter_requests(raw.decode())):
                if not isinstance(item, dict) or not isinstance(item.get("params"), dict):
                    raise ValueError(f"requests.{i}: needs custom_id and params")
                ids.append(str(item["custom_id"]))
        except (ValueError, KeyError, UnicodeDecodeError) as exc:
            return _err("anthropic", 400, f"invalid request body: {exc}")
        if not ids:
            return _err("anthropic", 400, "requests: at least one request is needed")
        if len(set(ids)) != len(ids):
            return _err("anthropic", 400, "requests: custom_id values must be unique within a batch")
        if len(ids) > max_n:
            return _err("anthropic", 400, f"requests: {len(ids)} requests, over the limit of {max_n}")
        b = self.b._new_batch("anthropic", len(ids), raw, ids)
        self._log(request, "anthropic", {"batch": b.id, "requests": b.n}, 200)
        return web.json_response(self.b.anthropic_object(b, self._origin(request)))

    async def msg_batch_get(self, request: web.Request) -> web.Response:
        if (denied := self._auth(request, "anthropic")) is not None:
            return denied
        b = self._batch(request, "anthropic")
        if b is None:
            return _err("anthropic", 404, "batch not found")
        self.b.poll(b)
        return web.json_response(self.b.anthropic_object(b, self._origin(request)))

    async def msg_batch_results(self, request: web.Request) -> web.StreamResponse:
        if (denied := self._auth(request, "anthropic")) is not None:
            return denied
        b = self._batch(request, "anthropic")
        if b is None:
            return _err("anthropic", 404, "batch not found")
        if b.status != "ended" or b.results is None:
            return _err("anthropic", 400, f"batch {b.id} has not ended: {b.status}")
        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/binary"})
        resp.content_length = len(b.results)
        await resp.prepare(request)
        view = memoryview(b.results)
        for i in range(0, len(view), 1 << 20):
            await resp.write(view[i:i + (1 << 20)])
        await resp.write_eof()
        return resp

    async def msg_batch_list(self, request: web.Request) -> web.Response:
        if (denied := self._auth(request, "anthropic")) is not None:
            return denied
        limit = int(request.query.get("limit", "20"))
        items = [b for b in reversed(list(self.b.batches.values())) if b.api == "anthropic"]
        ids = [b.id for b in items]
        after, before = request.query.get("after_id"), request.query.get("before_id")
        if after:
            items = items[ids.index(after) + 1:] if after in ids else []
        elif before:
            items = items[:ids.index(before)] if before in ids else []
        page = items[:limit]
        data = [self.b.anthropic_object(b, self._origin(request)) for b in page]
        return web.json_response({"data": data, "has_more": len(items) > limit,
                                  "first_id": data[0]["id"] if data else None,
                                  "last_id": data[-1]["id"] if data else None})

    async def msg_batch_cancel(self, request: web.Request) -> web.Response:
        if (denied := self._auth(request, "anthropic")) is not None:
            return denied
        b = self._batch(request, "anthropic")
        if b is None:
            return _err("anthropic", 404, "batch not found")
        if b.results is None and b.cancel_at is None:
            b.cancel_at = time.time()
            b.status = "canceling"
        self._log(request, "anthropic", {"cancel": b.id}, 200)
        return web.json_response(self.b.anthropic_object(b, self._origin(request)))

    # ---- control -----------------------------------------------------------------
    async def control_batches(self, request: web.Request) -> web.Response:
        return web.json_response(self.b.snapshot(ids=request.query.get("ids") in ("1", "true")))


def add_routes(app: web.Application, state: State) -> Batches:
    """Register both vendors' batch routes on `app` (served from `state`'s replies)."""
    batches = batches_for(state)
    r = _Routes(batches)
    app.router.add_post("/v1/files", r.file_create)
    app.router.add_get("/v1/files/{id}", r.file_get)
    app.router.add_get("/v1/files/{id}/content", r.file_content)
    app.router.add_post("/v1/batches", r.batch_create)
    app.router.add_get("/v1/batches", r.batch_list)
    app.router.add_get("/v1/batches/{id}", r.batch_get)
    app.router.add_post("/v1/batches/{id}/cancel", r.batch_cancel)
    app.router.add_post("/v1/messages/batches", r.msg_batch_create)
    app.router.add_get("/v1/messages/batches", r.msg_batch_list)
    app.router.add_get("/v1/messages/batches/{id}", r.msg_batch_get)
    app.router.add_get("/v1/messages/batches/{id}/results", r.msg_batch_results)
    app.router.add_post("/v1/messages/batches/{id}/cancel", r.msg_batch_cancel)
    app.router.add_get("/_control/batches", r.control_batches)
    app[_KEY] = batches
    return batches
