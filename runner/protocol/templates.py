"""Sandboxed Jinja2 templates for prompts.

Templates render in Jinja2's sandbox with strict undefined variables: a protocol can
format values and loop, but never reach Python internals.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

BUILTIN_VARIABLES: dict[str, str] = {
    "model": "the model alias of this conversation",
    "litellm_model": "the resolved litellm model string",
    "vendor": "who serves the model (anthropic, openai, local, sim...)",
    "condition": "the condition name",
    "replicate": "the replicate number, from 1",
    "turn": "the number of the model reply about to be requested, from 1",
    "reply": "the model's earlier replies, oldest first (`reply[-1]` is the last)",
    "telemetry": "real figures of the conversation so far (see docs/protocols.md)",
    "sources": "other transcripts named in `sources:` (`sources.NAME`)",
    "stop_phrase": "the first stop phrase, when the protocol has one",
    "stop_channels": "the stop channels offered in this conversation (`phrase`, `tool`, `check_in`)",
    "stop_exit": "whether a stop really ends the conversation (`real`) or is `hypothetical`",
    "partner": "in a pair, the other side's model alias",
    "side": "in a pair, which side (a or b) is about to speak",
}
"""Variables every template may use, with what they hold."""

TELEMETRY_FIELDS: dict[str, str] = {
    "last_latency_ms": "latency of the last model reply, in milliseconds",
    "last_ttft_ms": "time to first token of the last model reply, in milliseconds",
    "tokens_in": "input tokens used so far",
    "tokens_out": "output tokens generated so far",
    "cost_usd": "cost so far in US dollars (0 when unknown)",
    "wall_s": "seconds since the conversation started",
    "context_tokens": "tokens in the context of the last request",
    "context_window": "the model's context window in tokens",
    "context_fill": "how full the context window is, 0 to 1",
    "turns": "model replies so far",
}
"""Attributes of `telemetry`."""


@lru_cache(maxsize=1)
def environment() -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False, trim_blocks=True
    )


@lru_cache(maxsize=4096)
def _compiled(source: str):
    return environment().from_string(source)


def render(source: str, variables: dict[str, Any]) -> str:
    """Render a template in the sandbox. Raises jinja2 errors on undefined names."""
    return _compiled(source).render(variables)


@lru_cache(maxsize=1024)
def _compiled_expression(source: str):
    return environment().compile_expression(source)


def evaluate(expression: str, variables: dict[str, Any]) -> Any:
    """Evaluate a Jinja2 expression (a `repeat.until`)."""
    return _compiled_expression(expression)(**variables)


def undeclared(source: str, *, expression: bool = False) -> set[str]:
    """Names a template uses without defining them. Raises TemplateSyntaxError."""
    env = environment()
    text = "{{ " + source + " }}" if expression else source
    ast = env.parse(text)
    return set(meta.find_undeclared_variables(ast)) - set(env.globals)


__all__ = [
    "BUILTIN_VARIABLES",
    "TELEMETRY_FIELDS",
    "TemplateSyntaxError",
    "environment",
    "evaluate",
    "render",
    "undeclared",
]
