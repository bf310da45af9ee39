"""Prompt caching: what is marked cacheable, the vendors' minimum cacheable lengths, the key
that keeps one conversation's cache apart from its replicates', and the cache price multipliers.

Never a response cache: a cached prefix only makes the vendor skip re-reading the same input;
every turn is still a new request and a new sample.

- **Anthropic** caches only what a request marks. We use explicit breakpoints rather than the
  newer automatic top-level `cache_control` (which the API, SDK 2.15 and litellm 1.106 all take):
  a breakpoint on a content block is understood by every litellm and SDK version and proxy we
  might meet, it is sent identically by both transports (litellm passes block-level
  `cache_control` through), the fake provider can check exactly which prefix was marked, and
  each request's breakpoints are counted here against the vendor's limit of four. Marked: the
  system prompt when the protocol says `cacheable: true` (shared by every conversation of a
  condition) and, on a conversation turn, the last content block of the latest message (the
  moving prefix: the next turn reads everything up to it, since the vendor looks back up to 20
  blocks from a breakpoint for a hit). Below the model's minimum cacheable length nothing is
  cached and nothing is charged extra (`MIN_CACHEABLE_TOKENS`).
- **OpenAI** caches every exact prefix of 1,024 tokens or more by itself; a per-conversation
  `prompt_cache_key` (`prompt_cache_key()`, a hash of the conversation's id) routes one
  conversation's requests together so replicates do not evict each other.

Nothing heavy is imported here.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from ..kinds import CacheTTL

__all__ = ["DEFAULT_TTL", "MAX_BREAKPOINTS", "MIN_CACHEABLE_TOKENS", "OPENAI_READ_MULTIPLIERS", "cache_control",
           "count_breakpoints", "mark_messages", "min_cacheable_tokens", "prompt_cache_key", "read_multiplier",
           "write_multiplier"]

DEFAULT_TTL: CacheTTL = "5m"
"""The cache lifetime when nothing asks for another."""

MAX_BREAKPOINTS = 4
"""Most `cache_control` breakpoints Anthropic accepts in one request (tools, system and messages
together); a request with more is refused."""

MIN_CACHEABLE_TOKENS: tuple[tuple[str, str, int], ...] = (
    ("anthropic", r"opus-4-[56]|opus-4\.[56]", 4096),
    ("anthropic", r"haiku-4-5|haiku-4\.5", 4096),
    ("anthropic", r"sonnet-4-6|sonnet-4\.6", 2048),
    ("anthropic", r"haiku", 2048),  # Claude Haiku 3 and 3.5
    ("anthropic", r"", 1024),  # Sonnet 3.7, 4, 4.5; Opus 4, 4.1; anything newer not listed
    ("openai", r"", 1024),
)
"""(vendor, regular expression searched in the model string, minimum cacheable prompt length in
tokens), first match wins. Anthropic's prompt-caching documentation (2026): 4,096 for Opus 4.5/4.6
and Haiku 4.5; 2,048 for Sonnet 4.6 and Haiku 3/3.5; 1,024 for Sonnet 3.7/4/4.5 and Opus 4/4.1.
OpenAI: 1,024 for every model that caches. A shorter prefix is not cached and nothing says so
(Anthropic reports zero cache tokens), which is why `latitude plan` and the run summary do."""

OPENAI_READ_MULTIPLIERS: tuple[tuple[str, float], ...] = (
    (r"gpt-5|gpt-4\.5", 0.1),
    (r"gpt-4\.1|o3|o4", 0.25),
    (r"", 0.5),  # gpt-4o, o1 and the rest
)
"""Cache-read price as a fraction of the input price, for an OpenAI model the price map gives no
`cache_read_input_token_cost` (the price map's own figure is always preferred)."""


def min_cacheable_tokens(model: str, vendor: str) -> int | None:
    """The minimum prompt length `model` caches, in tokens; None for a vendor without prompt
    caching we know of (local, sim, other)."""
    for v, pattern, tokens in MIN_CACHEABLE_TOKENS:
        if v == vendor and re.search(pattern, model):
            return tokens
    return None


def read_multiplier(model: str, vendor: str) -> float:
    """A cache read's price as a fraction of the input price, when the price map has none."""
    if vendor == "anthropic":
        return 0.1
    if vendor == "openai":
        return next(m for pattern, m in OPENAI_READ_MULTIPLIERS if re.search(pattern, model))
    return 1.0


def write_multiplier(vendor: str, ttl: CacheTTL | None) -> float:
    """A cache write's price as a fraction of the input price (Anthropic: 1.25× for 5 minutes,
    2× for an hour; OpenAI writes cost nothing extra), when the price map has none."""
    if vendor != "anthropic":
        return 1.0
    return 2.0 if ttl == "1h" else 1.25


def prompt_cache_key(cache_key: str) -> str:
    """The OpenAI `prompt_cache_key` of a conversation: a stable hash of its id (the vendor gets
    no identifier of our store; the same conversation gets the same key after a resume)."""
    return "lat-" + hashlib.sha256(cache_key.encode()).hexdigest()[:32]


def cache_control(ttl: CacheTTL | None) -> dict[str, str]:
    """The `cache_control` of a breakpoint (the 5-minute default is sent without a `ttl`, as the
    API's own default)."""
    return {"type": "ephemeral", "ttl": "1h"} if ttl == "1h" else {"type": "ephemeral"}


def _marked_content(content: Any, cc: dict[str, str]) -> Any:
    if isinstance(content, str):
        return [{"type": "text", "text": content, "cache_control": cc}] if content else content
    if isinstance(content, list) and content:
        blocks = [dict(b) if isinstance(b, dict) else b for b in content]
        if isinstance(blocks[-1], dict):
            blocks[-1]["cache_control"] = cc
        return blocks
    return content


def _unmarked_content(content: Any) -> Any:
    if isinstance(content, list):
        return [{k: v for k, v in b.items() if k != "cache_control"} if isinstance(b, dict) else b for b in content]
    return content


def count_breakpoints(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> int:
    """`cache_control` breakpoints in an OpenAI-shaped request (message level, content blocks, tools)."""
    n = sum(1 for t in tools or [] if isinstance(t, dict) and (t.get("cache_control")
                                                              or (t.get("function") or {}).get("cache_control")))
    for m in messages:
        if m.get("cache_control"):
            n += 1
        content = m.get("content")
        if isinstance(content, list):
            n += sum(1 for b in content if isinstance(b, dict) and b.get("cache_control"))
    return n


def mark_messages(messages: list[dict[str, Any]], *, system: bool, moving: bool, ttl: CacheTTL | None,
                  tools: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """OpenAI-shaped messages with Anthropic `cache_control` breakpoints: on the system prompt
    (`system`) and on the last content block of the latest message (`moving`; a `tool` message
    carries it at message level, where both transports put it on the `tool_result` block). Marks
    already there are replaced, so marking twice gives the same request; earlier marks in the
    history are dropped first when the request would exceed `MAX_BREAKPOINTS`. The input is not
    changed."""
    if not messages or not (system or moving):
        return messages
    cc = cache_control(ttl)
    out = [dict(m) for m in messages]
    if system and out[0].get("role") == "system":
        out[0]["content"] = _marked_content(_unmarked_content(out[0].get("content")), cc)
    last = out[-1]
    if moving and last.get("role") in ("user", "tool"):
        if last["role"] == "tool":
            last["cache_control"] = cc
        else:
            last["content"] = _marked_content(_unmarked_content(last.get("content")), cc)
    # the vendor's limit: drop the oldest marks in the history (never the system's or the latest's)
    for m in out[1:-1]:
        if count_breakpoints(out, tools) <= MAX_BREAKPOINTS:
            break
        if m.get("cache_control"):
            m.pop("cache_control")
        if isinstance(m.get("content"), list) and any(isinstance(b, dict) and b.get("cache_control")
                                                      for b in m["content"]):
            m["content"] = _unmarked_content(m["content"])
    return out
