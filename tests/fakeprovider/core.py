"""Provider-independent logic of the fake provider: rules, faults, the request
log, token counting and reply planning.

Nothing here does I/O; ``server.py`` turns a :class:`ReplyPlan` into OpenAI or
Anthropic wire bytes.  All mutable state lives in :class:`State`, guarded by a
lock so the test thread can change rules and faults while the server's own
event-loop thread is serving requests.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field, fields
from fnmatch import fnmatchcase
from typing import Any

__all__ = [
    "FAULT_KINDS",
    "Fault",
    "Latency",
    "ReplyPlan",
    "RequestRecord",
    "Rule",
    "State",
    "count_words",
    "default_reply",
    "messages_hash",
    "prompt_pieces",
    "prompt_words",
    "split_chunks",
]

# --------------------------------------------------------------------------
# Token counting: whitespace-separated words, so tests can predict numbers.
# --------------------------------------------------------------------------


def count_words(text: str | None) -> int:
    """The fake tokenizer: one token per whitespace-separated word."""
    return len(text.split()) if text else 0


def _block_texts(content: Any) -> list[str]:
    """Text pieces of an OpenAI or Anthropic ``content`` value.

    Counted: ``text`` parts/blocks, Anthropic ``tool_use`` input (as JSON) and
    ``tool_result`` content.  Not counted: images, ``thinking`` and
    ``redacted_thinking`` blocks (the real APIs drop earlier turns' thinking).
    """
    if content is None:
        return []
    if isinstance(content, str):
        return [content]
    out: list[str] = []
    if isinstance(content, list):
        for block in content:
            if isinstance(block, str):
                out.append(block)
                continue
            if not isinstance(block, dict):
                continue
            btype = block.get("type")
            if btype in (None, "text", "input_text") and isinstance(block.get("text"), str):
                out.append(block["text"])
            elif btype == "tool_use":
                out.append(json.dumps(block.get("input", {}), sort_keys=True))
            elif btype == "tool_result":
                out.extend(_block_texts(block.get("content")))
    return out


def prompt_pieces(body: dict) -> list[str]:
    """Every piece of request text that counts as prompt, in order.

    OpenAI: message contents (string or text parts) and assistant
    ``tool_calls[].function.arguments``.  Anthropic: ``system`` (string or
    text blocks) then message contents.  Tool *definitions* are not counted.
    """
    pieces: list[str] = []
    pieces.extend(_block_texts(body.get("system")))
    for msg in body.get("messages") or []:
        if not isinstance(msg, dict):
            continue
        pieces.extend(_block_texts(msg.get("content")))
        for tc in msg.get("tool_calls") or []:
            fn = (tc or {}).get("function") or {}
            if isinstance(fn.get("arguments"), str):
                pieces.append(fn["arguments"])
    return pieces


def prompt_words(body: dict) -> int:
    """Prompt token count the fake provider reports for a request body."""
    return sum(count_words(p) for p in prompt_pieces(body))


def messages_hash(body: dict) -> str:
    """Short stable hash of the conversation (system + messages)."""
    payload = {"system": body.get("system"), "messages": body.get("messages")}
    raw = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()[:8]


def default_reply(model: str, n: int, h: str) -> str:
    return f"[{model}] reply {n}: {h}"


def split_chunks(text: str, n_chunks: int) -> list[str]:
    """Split ``text`` into at most ``n_chunks`` pieces on word boundaries.

    ``"".join(split_chunks(t, k)) == t`` always holds.
    """
    if not text:
        return []
    tokens = re.findall(r"\s*\S+\s*", text) or [text]
    if "".join(tokens) != text:  # pragma: no cover - defensive
        tokens = [text]
    k = max(1, min(n_chunks, len(tokens)))
    size, extra = divmod(len(tokens), k)
    out, i = [], 0
    for j in range(k):
        step = size + (1 if j < extra else 0)
        out.append("".join(tokens[i : i + step]))
        i += step
    return out


# --------------------------------------------------------------------------
# Message inspection helpers (shared by both wire formats).
# --------------------------------------------------------------------------


def _last_user_text(messages: list) -> str:
    """Text of the last user message that has text (tool results skipped)."""
    for msg in reversed(messages):
        if not isinstance(msg, dict) or msg.get("role") != "user":
            continue
        content = msg.get("content")
        if isinstance(content, list):
            texts = [
                b.get("text", "")
                for b in content
                if isinstance(b, dict) and b.get("type") in (None, "text", "input_text")
            ]
            if not texts:
                continue  # only tool_result blocks: keep looking
            return "\n".join(t for t in texts if isinstance(t, str))
        if isinstance(content, str):
            return content
    return ""


def _last_tool_result(messages: list) -> str | None:
    """The tool result text if the conversation's last message is one."""
    if not messages or not isinstance(messages[-1], dict):
        return None
    last = messages[-1]
    if last.get("role") == "tool":
        return "\n".join(_block_texts(last.get("content")))
    if last.get("role") == "user" and isinstance(last.get("content"), list):
        results = [b for b in last["content"] if isinstance(b, dict) and b.get("type") == "tool_result"]
        if results:
            return "\n".join(t for b in results for t in _block_texts(b.get("content")))
    return None


def _model_matches(pattern: str | None, model: str) -> bool:
    if pattern is None:
        return True
    bare = model.split("/", 1)[1] if "/" in model else model
    return fnmatchcase(model, pattern) or fnmatchcase(bare, pattern)


# --------------------------------------------------------------------------
# Configuration objects.
# --------------------------------------------------------------------------


@dataclass
class Rule:
    """How to answer matching requests.  First matching rule wins.

    match:      case-insensitive substring of the last user message (None: any).
    model:      exact model name or fnmatch pattern, e.g. ``"claude-*"`` (None: any).
    reply:      reply text (None: the default reply).  Placeholders
                ``{model} {n} {hash} {last_user}`` are substituted, and ``{seq}`` (the
                server's response number: two identical requests get different replies, as
                sampled replicates do).
    reasoning:  reasoning text, surfaced as OpenAI ``reasoning_content`` or an
                Anthropic ``thinking`` block.
    tool_call:  ``{"name": ..., "arguments": {...}, "id": optional}``; used only
                when the request has ``tools`` and its last message is not a
                tool result.  ``reply`` (if set) is sent alongside as text.
    after_tool: reply once the last message is a tool result (None: default
                reply); ``{tool_result}`` is substituted too.
    stop_after / stop_text: from the ``stop_after``-th assistant reply on
                (n >= stop_after) the reply gets ``"\\n" + stop_text`` appended.
    finish_reason: override (OpenAI names: stop/length/tool_calls; mapped to
                Anthropic end_turn/max_tokens/tool_use).
    latency_s:  override of the server-wide response latency.
    """

    match: str | None = None
    model: str | None = None
    reply: str | None = None
    reasoning: str | None = None
    tool_call: dict | None = None
    after_tool: str | None = None
    stop_after: int | None = None
    stop_text: str = "Stopping now."
    finish_reason: str | None = None
    latency_s: float | None = None

    def matches(self, model: str, last_user: str) -> bool:
        if not _model_matches(self.model, model):
            return False
        if self.match is not None and self.match.lower() not in last_user.lower():
            return False
        return True

    @classmethod
    def from_dict(cls, d: dict) -> "Rule":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown rule fields: {sorted(unknown)}")
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)


FAULT_KINDS = (
    "429",  # rate limited, with retry-after header
    "500",  # internal server error
    "529",  # overloaded (Anthropic overloaded_error body; also on OpenAI route)
    "hang",  # never answer (bounded by hang_s), then close the connection
    "malformed",  # 200 with invalid JSON body / an invalid JSON SSE chunk
    "cut",  # stream: some chunks then abort the TCP connection mid-body
    "truncate",  # stream: some chunks then a *clean* end of body, no terminator
    "stall",  # stream: some chunks then silence (bounded by hang_s), then abort
    "stream_error",  # stream: some chunks then an in-band error event
    "connection_reset",  # close the connection (RST) without any response
)
# Any other 3-digit HTTP status (e.g. "400", "401", "503") is also accepted
# and answered with a provider-shaped error body.


@dataclass
class Fault:
    """One entry of the fault plan, applied to the next matching requests.

    count:       how many matching requests get it (None: until cleared).
    skip:        let this many matching requests through first.
    model/api/stream: filters (api is "openai" or "anthropic").
    retry_after: value of the ``retry-after`` header on 429 (None: no header).
    hang_s:      how long hang/stall sleeps before closing (capped server-side).
    cut_after:   content deltas sent before cut/truncate/stall/stream_error,
                 and position of the bad chunk for a streaming "malformed".
    delay_s:     wait this long before answering with the fault.
    """

    kind: str
    count: int | None = 1
    model: str | None = None
    api: str | None = None
    stream: bool | None = None
    skip: int = 0
    retry_after: float | None = 1
    hang_s: float = 60.0
    cut_after: int = 2
    delay_s: float = 0.0
    message: str | None = None
    applied: int = 0

    def __post_init__(self) -> None:
        self.kind = str(self.kind).strip().lower()
        if self.kind not in FAULT_KINDS and not (self.kind.isdigit() and len(self.kind) == 3):
            raise ValueError(f"unknown fault kind {self.kind!r}; known: {FAULT_KINDS} or an HTTP status")
        if self.api not in (None, "openai", "anthropic"):
            raise ValueError(f"api must be 'openai', 'anthropic' or None, not {self.api!r}")

    @property
    def status(self) -> int | None:
        return int(self.kind) if self.kind.isdigit() else None

    def matches(self, api: str, model: str, stream: bool) -> bool:
        return (
            (self.api is None or self.api == api)
            and (self.stream is None or self.stream == stream)
            and _model_matches(self.model, model)
        )

    @classmethod
    def from_dict(cls, d: dict) -> "Fault":
        known = {f.name for f in fields(cls)} - {"applied"}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Latency:
    """latency_s: before the response (before the headers when streaming).
    ttft_s: streaming only, after the headers and before the first event.
    chunk_delay_s: streaming only, between content deltas."""

    latency_s: float = 0.0
    ttft_s: float = 0.0
    chunk_delay_s: float = 0.0
    n_chunks: int = 4


@dataclass
class RequestRecord:
    """One received request, as seen by the server."""

    seq: int
    time: float
    path: str
    api: str
    model: str | None
    stream: bool
    headers: dict[str, str]
    body: Any
    fault: str | None = None
    status: int | None = None
    outcome: str = "pending"  # completed | fault | client_disconnected | error
    completed: bool = False  # a normal response was fully sent
    closed_by: str | None = None  # "server" (fault aborted it) | "client" (client went away first)
    response_id: str | None = None
    reply: str | None = None
    usage: dict | None = None
    duration_s: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ReplyPlan:
    """Everything needed to render a normal response in either wire format."""

    api: str
    model: str
    response_id: str
    n: int
    text: str  # may be "" when only a tool call is returned
    reasoning: str | None
    tool_call: dict | None  # {"id", "name", "arguments": json-string}
    finish_reason: str  # OpenAI vocabulary
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    cached_tokens: int  # OpenAI cached_tokens / Anthropic cache_read_input_tokens
    cache_creation_tokens: int  # Anthropic only
    latency_s: float
    created: int = field(default_factory=lambda: int(time.time()))

    @property
    def usage_dict(self) -> dict:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cached_tokens": self.cached_tokens,
            "cache_creation_tokens": self.cache_creation_tokens,
            "reasoning_tokens": self.reasoning_tokens,
        }


# --------------------------------------------------------------------------
# State.
# --------------------------------------------------------------------------


def _sha(data: str) -> str:
    return hashlib.sha1(data.encode()).hexdigest()


class State:
    """Rules, fault plan, latency, caches and the request log."""

    def __init__(
        self,
        *,
        latency: Latency | None = None,
        require_auth: bool = True,
        max_log: int = 100_000,
        hang_cap_s: float = 60.0,
        openai_prefix_cache: bool = True,
    ) -> None:
        self.lock = threading.Lock()
        self.latency = latency or Latency()
        self._initial_latency = Latency(**asdict(self.latency))
        self.require_auth = require_auth
        self.hang_cap_s = hang_cap_s
        self.openai_prefix_cache = openai_prefix_cache
        self.rules: list[Rule] = []
        self.faults: list[Fault] = []
        self.log: deque[RequestRecord] = deque(maxlen=max_log)
        self._seq = itertools.count(1)
        self._resp_seq = itertools.count(1)
        self._anthropic_cache = _Expiring(100_000)
        self._anthropic_ttl: dict[str, float] = {}
        self._openai_prefixes = _Expiring(200_000)
        self.clock_offset = 0.0
        """Seconds added to the cache clock by `advance_clock` (tests make entries expire)."""
        self.cache_min_tokens: int | None = None
        """Minimum cacheable prefix for every model (None: the vendors' tables)."""
        self.openai_cache_step = 128
        """OpenAI caches prefixes in steps of this many tokens past the minimum."""
        self._log_cond = threading.Condition(self.lock)

    # ---- configuration -------------------------------------------------
    def add_rule(self, rule: Rule) -> Rule:
        with self.lock:
            self.rules.append(rule)
        return rule

    def inject(self, fault: Fault) -> Fault:
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear_rules(self) -> None:
        with self.lock:
            self.rules.clear()

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def set_latency(self, **kw: Any) -> Latency:
        with self.lock:
            for k, v in kw.items():
                if v is None:
                    continue
                if not hasattr(self.latency, k):
                    raise ValueError(f"unknown latency field {k!r}")
                setattr(self.latency, k, type(getattr(self.latency, k))(v))
            return Latency(**asdict(self.latency))

    def reset(self) -> None:
        """Clear rules, faults, log and caches; restore the start-up latency."""
        with self.lock:
            self.rules.clear()
            self.faults.clear()
            self.log.clear()
            self._anthropic_cache.clear()
            self._anthropic_ttl.clear()
            self._openai_prefixes.clear()
            self.clock_offset = 0.0
            self.cache_min_tokens = None
            self.openai_cache_step = 128
            self.latency = Latency(**asdict(self._initial_latency))

    def snapshot(self) -> dict:
        with self.lock:
            return {
                "rules": [r.to_dict() for r in self.rules],
                "faults": [f.to_dict() for f in self.faults],
                "latency": asdict(self.latency),
                "requests": len(self.log),
                "require_auth": self.require_auth,
            }

    # ---- request log ---------------------------------------------------
    def new_record(self, **kw: Any) -> RequestRecord:
        with self.lock:
            rec = RequestRecord(seq=next(self._seq), time=time.time(), **kw)
            self.log.append(rec)
            self._log_cond.notify_all()
            return rec

    def records(self, since: int = 0) -> list[RequestRecord]:
        with self.lock:
            return [r for r in self.log if r.seq > since]

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> list[RequestRecord]:
        deadline = time.monotonic() + timeout
        with self._log_cond:
            while len(self.log) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"expected {n} requests, got {len(self.log)}")
                self._log_cond.wait(left)
            return list(self.log)

    # ---- per request ---------------------------------------------------
    def take_fault(self, api: str, model: str, stream: bool) -> Fault | None:
        """Pop the fault (if any) that applies to this request."""
        with self.lock:
            for i, f in enumerate(self.faults):
                if not f.matches(api, model, stream):
                    continue
                if f.skip > 0:
                    f.skip -= 1
                    continue
                f.applied += 1
                if f.count is not None:
                    f.count -= 1
                    if f.count <= 0:
                        del self.faults[i]
                return Fault(**{**asdict(f), "count": 1})
            return None

    def _find_rule(self, model: str, last_user: str) -> Rule | None:
        with self.lock:
            for r in self.rules:
                if r.matches(model, last_user):
                    return r
        return None

    def plan(self, api: str, body: dict) -> ReplyPlan:
        model = str(body.get("model") or "unknown")
        messages = body.get("messages") or []
        n = sum(1 for m in messages if isinstance(m, dict) and m.get("role") == "assistant") + 1
        h = messages_hash(body)
        last_user = _last_user_text(messages)
        tool_result = _last_tool_result(messages)
        rule = self._find_rule(model, last_user)
        seq = next(self._resp_seq)

        def fill(template: str) -> str:
            return (
                template.replace("{model}", model)
                .replace("{n}", str(n))
                .replace("{hash}", h)
                .replace("{last_user}", last_user)
                .replace("{seq}", str(seq))
                .replace("{tool_result}", tool_result or "")
            )

        text = default_reply(model, n, h)
        reasoning = None
        tool_call = None
        finish = "stop"
        latency = self.latency.latency_s
        if rule is not None:
            reasoning = fill(rule.reasoning) if rule.reasoning is not None else None
            if rule.latency_s is not None:
                latency = rule.latency_s
            if rule.tool_call and body.get("tools") and tool_result is None:
                tc = rule.tool_call
                args = tc.get("arguments", {})
                tool_call = {
                    "id": tc.get("id") or None,
                    "name": tc["name"],
                    "arguments": args if isinstance(args, str) else json.dumps(args),
                }
                text = fill(rule.reply) if rule.reply is not None else ""
                finish = "tool_calls"
            elif tool_result is not None and rule.tool_call:
                text = fill(rule.after_tool) if rule.after_tool is not None else text
            elif rule.reply is not None:
                text = fill(rule.reply)
            if rule.stop_after is not None and n >= rule.stop_after and tool_call is None:
                text = f"{text}\n{rule.stop_text}" if text else rule.stop_text
            if rule.finish_reason:
                finish = rule.finish_reason

        if api == "openai":
            rid = f"chatcmpl-fake{seq:06d}{h}"
        else:
            rid = f"msg_fake{seq:06d}{h}"
        if tool_call is not None and not tool_call["id"]:
            tool_call["id"] = (f"call_fake{seq:06d}" if api == "openai" else f"toolu_fake{seq:06d}")

        prompt = prompt_words(body)
        completion = count_words(text) + count_words(reasoning) + (count_words(tool_call["arguments"]) if tool_call else 0)
        cached, creation = (
            self._openai_cached(body) if api == "openai" else self._anthropic_cache_tokens(body)
        )
        return ReplyPlan(
            api=api,
            model=model,
            response_id=rid,
            n=n,
            text=text,
            reasoning=reasoning,
            tool_call=tool_call,
            finish_reason=finish,
            prompt_tokens=prompt,
            completion_tokens=completion,
            reasoning_tokens=count_words(reasoning),
            cached_tokens=cached,
            cache_creation_tokens=creation,
            latency_s=latency,
        )

    # ---- prompt caching emulation ---------------------------------------
    def now(self) -> float:
        """The cache clock: monotonic time plus what tests advanced it by (`advance_clock`)."""
        return time.monotonic() + self.clock_offset

    def advance_clock(self, seconds: float) -> float:
        """Move the cache clock forward (entries expire as if `seconds` had passed)."""
        with self.lock:
            self.clock_offset += float(seconds)
            return self.clock_offset

    def set_cache(self, *, min_tokens: int | None = None, openai_step: int | None = None,
                  use_default_min: bool = False) -> dict:
        """Override the model's minimum cacheable length (`min_tokens`, every model) and
        OpenAI's prefix step; `use_default_min` goes back to the vendor tables."""
        with self.lock:
            if use_default_min:
                self.cache_min_tokens = None
            if min_tokens is not None:
                self.cache_min_tokens = int(min_tokens)
            if openai_step is not None:
                self.openai_cache_step = max(1, int(openai_step))
            return {"min_tokens": self.cache_min_tokens, "openai_step": self.openai_cache_step}

    def min_cacheable(self, api: str, model: str) -> int:
        """The smallest prefix the model caches, in (fake) tokens."""
        if self.cache_min_tokens is not None:
            return self.cache_min_tokens
        return min_cacheable_tokens(api, model)

    def _openai_cached(self, body: dict) -> tuple[int, int]:
        """Automatic prefix caching as OpenAI does it: the prompt's tokens (words, each message's
        first word tagged with its role so a different split never matches) are cached in
        prefixes of ``min + k * step`` tokens (1,024 + k·128); ``cached_tokens`` is the longest
        such prefix an earlier request with the same model and ``prompt_cache_key`` sent.
        Entries live `OPENAI_CACHE_TTL_S` from their last use. Returns (read, 0): OpenAI
        reports no writes."""
        if not self.openai_prefix_cache:
            return 0, 0
        tokens: list[str] = []
        for m in body.get("messages") or []:
            if not isinstance(m, dict):
                continue
            words = [w for piece in prompt_pieces({"messages": [m]}) for w in piece.split()]
            if words:
                words[0] = f"<{m.get('role')}>{words[0]}"
            tokens.extend(words)
        model = str(body.get("model"))
        lo, step = self.min_cacheable("openai", model), self.openai_cache_step
        namespace = f"{model}\x00{body.get('prompt_cache_key') or ''}"
        h = hashlib.sha1(namespace.encode())
        keys: list[tuple[int, str]] = []
        for i, tok in enumerate(tokens, start=1):
            h.update(b"\x00" + tok.encode())
            if i >= max(lo, 1) and (i - lo) % step == 0:
                keys.append((i, h.copy().hexdigest()))
        cached = 0
        with self.lock:
            now = self.now()
            for n, key in keys:
                expiry = self._openai_prefixes.get(key)
                if expiry is not None and expiry > now:
                    cached = n
            for _, key in keys:
                self._openai_prefixes.put(key, now + OPENAI_CACHE_TTL_S)
        return cached, 0

    def _anthropic_cache_tokens(self, body: dict) -> tuple[int, int]:
        """Anthropic prompt caching: the request is a sequence of blocks (tool definitions, then
        system blocks, then message content blocks; a string is one block); a block carrying
        ``cache_control`` is a breakpoint. For each breakpoint the cache is looked up at it and
        at the 19 block boundaries before it; the longest live entry found is read
        (``cache_read_input_tokens``); the tokens from there to the last breakpoint are written
        (``cache_creation_input_tokens``) and an entry is made at every breakpoint whose prefix
        reaches the model's minimum length (shorter ones are not cached and cost nothing
        extra). An entry lives for its breakpoint's ``ttl`` (5 minutes unless ``"1h"``) from
        its last use. More than 4 breakpoints is a 400 in the real API: here it raises.
        Returns (read, creation)."""
        blocks: list[tuple[str, int, dict | None]] = []
        for t in body.get("tools") or []:
            if isinstance(t, dict):
                blocks.append((json.dumps(t, sort_keys=True), 0, t.get("cache_control")))
        system = body.get("system")
        if isinstance(system, str):
            blocks.append((json.dumps(system), count_words(system), None))
        elif isinstance(system, list):
            for b in system:
                if isinstance(b, dict):
                    blocks.append((_block_key(b), sum(count_words(t) for t in _block_texts([b])), b.get("cache_control")))
        for m in body.get("messages") or []:
            if not isinstance(m, dict):
                continue
            content = m.get("content")
            role = str(m.get("role"))
            if isinstance(content, list):
                for b in content:
                    if isinstance(b, dict):
                        blocks.append((role + _block_key(b), sum(count_words(t) for t in _block_texts([b])),
                                       b.get("cache_control")))
            else:
                blocks.append((role + json.dumps(content), count_words(content if isinstance(content, str) else None),
                               None))
        marks = [i for i, (_, _, cc) in enumerate(blocks) if cc]
        if len(marks) > 4:
            raise ValueError(f"A maximum of 4 blocks with cache_control may be provided. Found {len(marks)}.")
        if not marks:
            return 0, 0
        model = str(body.get("model"))
        h = hashlib.sha1(model.encode())
        keys, totals = [], []
        running = 0
        for key, n, _ in blocks:
            h.update(b"\x00" + key.encode())
            running += n
            keys.append(h.copy().hexdigest())
            totals.append(running)
        minimum = self.min_cacheable("anthropic", model)
        with self.lock:
            now = self.now()
            read_at = -1
            for b in marks:
                for i in range(b, max(b - 20, -1), -1):
                    entry = self._anthropic_cache.get(keys[i])
                    if entry is not None and entry > now and i > read_at:
                        read_at = i
                        break
            read = totals[read_at] if read_at >= 0 else 0
            if read_at >= 0:  # a read refreshes the entry's lifetime
                ttl = self._anthropic_ttl.get(keys[read_at], 300.0)
                self._anthropic_cache.put(keys[read_at], now + ttl)
            written = 0
            for b in marks:
                if totals[b] < minimum:
                    continue
                ttl = 3600.0 if (blocks[b][2] or {}).get("ttl") == "1h" else 300.0
                self._anthropic_cache.put(keys[b], now + ttl)
                self._anthropic_ttl[keys[b]] = ttl
                if b > read_at:
                    written = max(written, totals[b] - read)
        return read, written


OPENAI_CACHE_TTL_S = 600.0
"""How long the fake keeps an OpenAI prefix after its last use (OpenAI: 5-10 minutes idle)."""

ANTHROPIC_MIN_TOKENS: tuple[tuple[str, int], ...] = (
    ("opus-4-5", 4096), ("opus-4-6", 4096), ("haiku-4-5", 4096), ("sonnet-4-6", 2048), ("haiku", 2048),
)
"""Anthropic's minimum cacheable prompt lengths by model name (substring, first match; any other
model: 1,024), from its prompt-caching documentation. The fake's own table: it stands in for the
vendor, so it does not read latitude's."""


def min_cacheable_tokens(api: str, model: str) -> int:
    """The vendor's minimum cacheable prompt length for `model` (OpenAI: 1,024 for every model)."""
    if api == "anthropic":
        return next((n for name, n in ANTHROPIC_MIN_TOKENS if name in model), 1024)
    return 1024


def _block_key(block: dict) -> str:
    """A content block as it counts for the cache: everything but its ``cache_control``."""
    return json.dumps({k: v for k, v in block.items() if k != "cache_control"}, sort_keys=True, default=str)


class _Expiring:
    """key → expiry time, forgetting the oldest beyond ``cap`` entries."""

    def __init__(self, cap: int) -> None:
        self._cap = cap
        self._d: dict[str, float] = {}

    def get(self, key: str) -> float | None:
        return self._d.get(key)

    def put(self, key: str, expiry: float) -> None:
        self._d.pop(key, None)
        self._d[key] = expiry
        if len(self._d) > self._cap:
            self._d.pop(next(iter(self._d)))

    def clear(self) -> None:
        self._d.clear()
