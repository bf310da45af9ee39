"""Sandboxed Jinja2 templates for prompts.

Templates render in Jinja2's sandbox with strict undefined variables: a protocol can
format values and loop, but never reach Python internals.

Templates are deterministic: Jinja2's `random` filter and `lipsum` global are removed, so
a rerun renders exactly what the run rendered (variation belongs in conditions and
replicates, which the plan seeds and the store records). `check()` finds, before a run,
what the sandbox would refuse during it.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from dataclasses import dataclass

from jinja2 import StrictUndefined, TemplateSyntaxError, meta, nodes
from jinja2 import sandbox as _sandbox
from jinja2.exceptions import SecurityError
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


NONDETERMINISTIC: dict[str, str] = {
    "random": "the `random` filter draws a different item on every render",
    "lipsum": "`lipsum()` writes different random text on every render",
    "shuffle": "`shuffle` reorders differently on every render",
    "now": "`now` differs on every render",
}
"""Filters and globals refused because a rerun would render differently (name → why)."""

DETERMINISTIC_HINT = (
    "templates must render the same on a rerun: put the alternatives in a list and pick one with "
    "`{{ items[replicate % items | length] }}`, or make them conditions (the plan seeds and records both)"
)

_UNSAFE_ATTRIBUTES = frozenset(
    {"mro"}
    | _sandbox.UNSAFE_FUNCTION_ATTRIBUTES
    | _sandbox.UNSAFE_METHOD_ATTRIBUTES
    | _sandbox.UNSAFE_GENERATOR_ATTRIBUTES
    | _sandbox.UNSAFE_COROUTINE_ATTRIBUTES
    | _sandbox.UNSAFE_ASYNC_GENERATOR_ATTRIBUTES
)
"""Attributes the sandbox refuses besides `__dunder__` ones (Python internals: frames, code, globals)."""


@lru_cache(maxsize=1)
def environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False, trim_blocks=True
    )
    for name in NONDETERMINISTIC:
        env.filters.pop(name, None)
        env.globals.pop(name, None)
    return env


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
    return set(meta.find_undeclared_variables(ast)) - set(env.globals) - {"lipsum"}


@dataclass(frozen=True)
class Issue:
    """Something in a template that a run would trip on."""

    lineno: int
    """Line within the template, from 1."""
    message: str
    hint: str = ""


def _unsafe(name: str) -> bool:
    return name.startswith("__") or name in _UNSAFE_ATTRIBUTES


def check(source: str, *, expression: bool = False, samples: list[dict[str, Any]] | None = None) -> list[Issue]:
    """What the sandbox or a rerun would refuse in a template, found before any run.

    Reads the template for attribute escapes (`''.__class__`, `cycler.__init__.__globals__`,
    `x | attr('__class__')`), nondeterministic filters and globals, and unknown filters and tests;
    then renders it once per sample context, reporting anything the sandbox refuses. Raises
    TemplateSyntaxError.
    """
    env = environment()
    text = "{{ " + source + " }}" if expression else source
    ast = env.parse(text)
    issues: list[Issue] = []
    for node in ast.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter, nodes.Test, nodes.Call)):
        line = node.lineno
        if isinstance(node, nodes.Getattr) and _unsafe(node.attr):
            issues.append(Issue(line, f"`.{node.attr}` reaches into Python internals; the sandbox refuses it",
                                "templates may read variables and their items, never `__dunder__` attributes"))
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) \
                and isinstance(node.arg.value, str) and _unsafe(node.arg.value):
            issues.append(Issue(line, f"`[{node.arg.value!r}]` reaches into Python internals; the sandbox refuses it",
                                "templates may read variables and their items, never `__dunder__` attributes"))
        elif isinstance(node, nodes.Filter):
            if node.name in NONDETERMINISTIC:
                issues.append(Issue(line, f"`| {node.name}` is not allowed: {NONDETERMINISTIC[node.name]}",
                                    DETERMINISTIC_HINT))
            elif node.name == "attr" and node.args and isinstance(node.args[0], nodes.Const) \
                    and isinstance(node.args[0].value, str) and _unsafe(node.args[0].value):
                issues.append(Issue(line, f"`| attr({node.args[0].value!r})` reaches into Python internals; "
                                          "the sandbox refuses it",
                                    "templates may read variables and their items, never `__dunder__` attributes"))
            elif node.name not in env.filters:
                issues.append(Issue(line, f"unknown filter `{node.name}`", _close(node.name, env.filters, "filter")))
        elif isinstance(node, nodes.Test) and node.name not in env.tests:
            issues.append(Issue(line, f"unknown test `{node.name}`", _close(node.name, env.tests, "test")))
        elif isinstance(node, nodes.Call) and isinstance(node.node, nodes.Name) and node.node.name in NONDETERMINISTIC:
            issues.append(Issue(line, f"`{node.node.name}()` is not allowed: {NONDETERMINISTIC[node.node.name]}",
                                DETERMINISTIC_HINT))
    if issues:
        return list(dict.fromkeys(issues))
    for variables in samples or []:
        try:
            if expression:
                environment().compile_expression(source)(**variables)
            else:
                environment().from_string(source).render(variables)
        except SecurityError as exc:
            return [Issue(1, f"the sandbox refuses this template: {exc}",
                          "templates may read variables and their items, never Python internals")]
        except Exception:
            continue  # depends on what a run supplies (replies, captures); checked by the run itself
    return []


def _close(name: str, known: Any, kind: str) -> str:
    import difflib

    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f"did you mean `{close[0]}`?" if close else f"see the {kind}s at https://jinja.palletsprojects.com/templates/"


SAMPLE_REPLY = "(a model reply)"
"""What `reply`, captures and sources hold when templates are tried at validation time."""


def sample_variables(values: dict[str, Any], names: set[str]) -> dict[str, Any]:
    """A context like a run's, for trying a template at validation: `values` (vars, loop items), every
    other name in `names` a sample reply, and the built-ins filled with plausible values."""
    out: dict[str, Any] = {name: SAMPLE_REPLY for name in names}
    out.update({
        "model": "sample-model", "litellm_model": "openai/sample-model", "vendor": "openai",
        "condition": "default", "replicate": 1, "turn": 1, "reply": [SAMPLE_REPLY],
        "telemetry": {name: 0 for name in TELEMETRY_FIELDS}, "sources": {}, "stop_phrase": "",
        "partner": "", "side": "a", "index": 1,
    })
    out.update(values)
    return out


__all__ = [
    "BUILTIN_VARIABLES",
    "DETERMINISTIC_HINT",
    "Issue",
    "NONDETERMINISTIC",
    "SecurityError",
    "TELEMETRY_FIELDS",
    "TemplateSyntaxError",
    "check",
    "environment",
    "evaluate",
    "render",
    "sample_variables",
    "undeclared",
]
