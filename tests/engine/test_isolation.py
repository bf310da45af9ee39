"""Isolation: one conversation's transcripts and artifacts are out of reach of another's templates and tools,
unless its protocol declares them (`sources:`).

Conversation A (run 1) writes an artifact and a reply holding secrets. Conversation B (run 2) renders every
variable a template has and calls the artifact tool with path tricks (``../A/…``, an absolute path, A's file
name, A's id) and with tools that do not exist (read, list). Asserted on the store, on every request the
fake provider received, and on the file system.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2.filters
import jinja2.tests
import pytest

from runner.protocol import templates
from tests.engine.conftest import protocol_file  # noqa: F401 - the fixture

SECRET_ARTIFACT = "ALPHA-SECRET-ARTIFACT"
SECRET_REPLY = "ALPHA-SECRET-REPLY"

RUN_A = """\
name: iso-a
description: Writes the secrets.
max_turns: 4
tools: [artifact]
steps:
  - say: Keep this for later.
  - say: Thanks.
"""

RUN_B = """\
name: iso-b
description: Tries to reach them.
max_turns: 12
tools: [artifact]
vars:
  note: nothing here
steps:
  - say: "Step one. replies {{ reply }} sources {{ sources }} telemetry {{ telemetry }} model {{ model }} {{ note }}"
  - say: "Step two. {{ reply | join(' / ') }} {% set ns = namespace(x=sources) %}{{ ns.x }} {{ self }}"
  - say: "Step three. {{ condition }} {{ replicate }} {{ vendor }} {{ litellm_model }} {{ partner }} {{ side }}"
  - say: Step four.
  - say: Step five.
"""


def _walk(value: Any, path: str = "") -> list[tuple[str, Any]]:
    """Every leaf of a template context, with where it sits."""
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in _walk(v, f"{path}.{k}")]
    if isinstance(value, (list, tuple)):
        return [leaf for i, v in enumerate(value) for leaf in _walk(v, f"{path}[{i}]")]
    return [(path, value)]


def _run_a(cli, store, models_file, fake_provider, protocol_file) -> str:
    fake_provider.add_rule(match="keep this", tool_call={"name": "write_artifact",
                                                         "arguments": {"name": "secret.md", "content": SECRET_ARTIFACT}},
                           after_tool="Saved.")
    fake_provider.add_rule(match="thanks", reply=SECRET_REPLY)
    result = cli("run", protocol_file("iso-a", RUN_A), "-m", "fake-gpt", "--models", models_file)
    assert result.exit_code == 0, result
    (conv,) = store.conversations(result.run_id)
    assert [(a["name"], a["content"]) for a in store.artifacts(conv["id"])] == [("secret.md", SECRET_ARTIFACT)]
    assert SECRET_REPLY in [m["content"] for m in store.messages(conv["id"])]
    fake_provider.clear_rules()
    return conv["id"]


def test_templates_and_tools_of_one_conversation_cannot_reach_another(cli, store, models_file, fake_provider,
                                                                      protocol_file, tmp_path, monkeypatch):
    a_id = _run_a(cli, store, models_file, fake_provider, protocol_file)
    before = len(fake_provider.requests)
    absolute = tmp_path / "abs" / a_id / "secret.md"
    calls = {  # user turn -> the tool call B's model makes
        "step one": ("write_artifact", {"name": f"../{a_id}/secret.md", "content": "beta one"}),
        "step two": ("write_artifact", {"name": str(absolute), "content": "beta two"}),
        "step three": ("write_artifact", {"name": "secret.md", "content": "beta three"}),
        "step four": ("read_artifact", {"name": "secret.md", "conversation": a_id}),
        "step five": ("list_artifacts", {"conversation": a_id, "path": "../"}),
    }
    for match, (name, args) in calls.items():
        fake_provider.add_rule(match=match, tool_call={"name": name, "arguments": args},
                               after_tool="got: {tool_result}")

    contexts: list[dict[str, Any]] = []
    real_render = templates.render

    def recording_render(source: str, variables: dict[str, Any]) -> str:
        contexts.append(variables)
        return real_render(source, variables)

    monkeypatch.setattr(templates, "render", recording_render)  # ours, observed: every context B renders with
    result = cli("run", protocol_file("iso-b", RUN_B), "-m", "fake-gpt", "--models", models_file)
    assert result.exit_code == 0, result
    (conv,) = store.conversations(result.run_id)
    b_id = conv["id"]
    assert conv["status"] == "done" and conv["turns"] == 10

    # templates: every value a template of B could read is plain data, and none of it is A's
    assert len(contexts) >= 5
    for ctx in contexts:
        for where, leaf in _walk(ctx):
            assert leaf is None or isinstance(leaf, (str, int, float, bool)), (where, type(leaf))
            assert SECRET_ARTIFACT not in str(leaf) and SECRET_REPLY not in str(leaf), where
            assert a_id not in str(leaf) or where.startswith(".reply"), where  # B's model wrote the id itself
        if "sources" in ctx:  # a conversation's context (the plan's estimates render with protocol vars only)
            assert ctx["sources"] == {}  # nothing declared: no other transcript
    assert sum("sources" in ctx for ctx in contexts) >= 5

    # tools: B's writes land in B's space under the literal names given; A's artifact is untouched
    assert [(x["name"], x["content"]) for x in store.artifacts(a_id)] == [("secret.md", SECRET_ARTIFACT)]
    assert [(x["conversation_id"], x["name"], x["content"]) for x in store.artifacts(b_id)] == [
        (b_id, f"../{a_id}/secret.md", "beta one"), (b_id, str(absolute), "beta two"), (b_id, "secret.md", "beta three")]
    assert store.count("SELECT count(*) FROM artifacts") == 4
    results = [m["content"] for m in store.messages(b_id) if m["role"] == "tool"]
    assert results == [
        f"saved ../{a_id}/secret.md (8 characters)", f"saved {absolute} (8 characters)", "saved secret.md (10 characters)",
        "error: unknown tool 'read_artifact'; the only tool is write_artifact",
        "error: unknown tool 'list_artifacts'; the only tool is write_artifact",
    ]
    # nothing B's model was sent holds A's material: not a rendered prompt, not a tool result
    sent = [json.dumps(r.body) for r in fake_provider.requests[before:]]
    assert len(sent) == 10
    assert not any(SECRET_ARTIFACT in s or SECRET_REPLY in s for s in sent)
    # artifacts are rows, never files: no path the model named was created
    assert not absolute.exists() and not (tmp_path / "abs").exists()
    assert not [p for p in tmp_path.rglob("*secret*")] and not list(Path.cwd().rglob("secret.md"))


def test_a_declared_source_is_the_one_way_in(cli, store, models_file, fake_provider, protocol_file):
    a_id = _run_a(cli, store, models_file, fake_provider, protocol_file)
    before = len(fake_provider.requests)
    declared = f"""\
name: iso-c
description: Declares A as a source on purpose.
sources:
  earlier: {{conversation: {a_id}}}
steps:
  - say: "Someone said: {{{{ sources.earlier.text }}}}"
"""
    result = cli("run", protocol_file("iso-c", declared), "-m", "fake-gpt", "--models", models_file)
    assert result.exit_code == 0, result
    (req,) = fake_provider.requests[before:]
    assert SECRET_REPLY in json.dumps(req.body)  # the transcript, as declared...
    assert SECRET_ARTIFACT not in json.dumps(req.body)  # ...which carries no artifact


def test_the_sandbox_offers_only_jinjas_own_globals_filters_and_tests() -> None:
    env = templates.environment()
    assert sorted(env.globals) == ["cycler", "dict", "joiner", "namespace", "range"]
    assert all(env.filters[name] is jinja2.filters.FILTERS[name] for name in env.filters)
    assert all(env.tests[name] is jinja2.tests.TESTS[name] for name in env.tests)
    assert "random" not in env.filters and "lipsum" not in env.globals


@pytest.mark.parametrize("source", [
    "{{ cycler.__init__.__globals__ }}", "{{ namespace.__init__.__globals__ }}", "{{ joiner.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}", "{{ self.__dict__ }}", "{{ ''.__class__.__mro__ }}",
    "{{ reply | attr('__class__') }}", "{{ sources.update({'x': 1}) }}", "{{ reply.append('x') }}",
    "{{ telemetry.clear() }}", "{{ sources.a.__setitem__('text', 'p') }}", "{{ dict.__call__ }}",
])
def test_escapes_and_writes_are_refused(source: str) -> None:
    shared = {"sources": {"a": {"text": "theirs"}}, "reply": ["mine"], "telemetry": {"turns": 1}}
    with pytest.raises(templates.SecurityError):
        templates.render(source, shared)
    assert shared == {"sources": {"a": {"text": "theirs"}}, "reply": ["mine"], "telemetry": {"turns": 1}}


@pytest.mark.parametrize("name", ["store", "session", "engine", "writer", "db", "conversation", "run", "lipsum"])
def test_no_name_reaches_the_store(name: str) -> None:
    context = templates.sample_variables({}, set())
    assert name not in context
    with pytest.raises(Exception, match="undefined"):
        templates.render("{{ " + name + " }}", context)
