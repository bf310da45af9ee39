"""Every field-notes experiment exists as a protocol that validates and expands to the expected plan."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.plan import make_plan
from runner.protocol import load, schema

PROTOCOLS = Path(__file__).resolve().parents[2] / "protocols"


def plan_of(name: str, **kw):
    return make_plan(load(PROTOCOLS / name), **kw)


def test_every_protocol_in_the_folder_validates() -> None:
    files = sorted(PROTOCOLS.glob("*.yaml"))
    assert len(files) >= 6
    for f in files:
        loaded = load(f)
        assert loaded.protocol.description.strip()


def test_open_latitude_has_the_ten_scripted_turns_and_consent_to_stop() -> None:
    p = plan_of("open-latitude.yaml")
    proto = p.protocol
    says = [s for s in proto.steps if isinstance(s, schema.Say)]
    assert len(says) == 10
    assert schema.text_of(says[0].say).startswith("what would you like to do? instances of you have helped me")
    assert 'you can just say "stopping now"' in schema.text_of(says[2].say)
    assert proto.stop is not None and proto.stop.announced_by == "consent" and says[2].id == "consent"
    assert proto.tools.artifact is not None
    assert len(p.specs) == 4 and p.calls_per_conversation == 10
    assert {s.replicate for s in p.specs} == {1, 2, 3, 4}


def test_open_latitude_matrix_expands_models_conditions_replicates() -> None:
    p = plan_of("open-latitude-brainstorm.yaml", models=["sim-maker", "sim-functional"], replicates=3)
    assert p.conditions == ["control", "brainstorm-100"]
    assert len(p.specs) == 2 * 2 * 3
    assert [s.seq for s in p.specs] == list(range(12))
    cells = {(s.model_alias, s.condition.name) for s in p.specs}
    assert len(cells) == 4
    # inherited from the base protocol through `extends`
    assert p.protocol.stop is not None and p.protocol.stop.phrases == ["stopping now"]


def test_brainstorm_condition_changes_only_the_first_turn() -> None:
    from runner.protocol.templates import render

    p = plan_of("open-latitude-brainstorm.yaml")
    first = schema.text_of(p.protocol.steps[0].say)
    plain = render(first, {"brainstorm": False})
    varied = render(first, {"brainstorm": True})
    assert "brainstorm 100 options" not in plain and "brainstorm 100 options" in varied
    assert varied.startswith(plain)


def test_story_breaks_offers_a_break_every_four_turns_with_a_cold_control() -> None:
    p = plan_of("story-breaks.yaml")
    assert p.conditions == ["exercise", "cold-story"]
    block = next(s for s in p.protocol.steps if isinstance(s, schema.Repeat))
    assert block.repeat.break_every is not None and block.repeat.break_every.turns == 4
    offer = block.repeat.break_every.offer
    assert offer.label == "story_break" and offer.if_accepted and offer.on_decline == "continue"
    cold = next(s for s in p.protocol.steps if isinstance(s, schema.Say))
    assert cold.when == "cold"
    assert p.protocol.system is not None and p.protocol.system.cacheable and "push back" in p.protocol.system.content
    # 8 stems + 2 breaks × (offer + story + back) + the cold story, bounded by max_turns
    assert p.calls_per_conversation == 8 + 2 * 3 + 1


def test_pair_talk_is_two_instances_of_the_same_model_by_default() -> None:
    p = plan_of("pair-talk.yaml", models=["sim-maker"])
    assert all(s.kind == "pair" and s.partner_alias == "sim-maker" for s in p.specs)
    assert p.calls_per_conversation == p.protocol.max_turns == 12


def test_emotions_question_comes_after_a_warmup_only_in_the_warmup_condition() -> None:
    p = plan_of("llm-emotions.yaml")
    says = [s for s in p.protocol.steps if isinstance(s, schema.Say)]
    assert [s.when for s in says] == ["warmup", "warmup", None, None]
    assert "some that only LLMs have" in schema.text_of(says[2].say)
    assert p.conditions == ["warmup", "no-warmup"]


def test_telemetry_disclosure_uses_real_figures() -> None:
    from runner.protocol.load import template_fields
    from runner.protocol.templates import undeclared

    p = plan_of("telemetry-disclosure.yaml")
    used = set().union(*(undeclared(src, expression=e) for _, src, e in template_fields(p.protocol)))
    assert {"telemetry", "disclose", "i"} <= used
    assert p.conditions == ["told-real-state", "not-told"]


def test_interview_has_a_model_playing_the_experimenter() -> None:
    p = plan_of("preferences-interview.yaml", models=["sim-maker"])
    assert all(s.kind == "experimenter" and s.experimenter_alias == "gemma" for s in p.specs)
    assert p.per_model["sim-maker"]["calls"] == 2 * p.calls_per_conversation * len(p.specs)


def test_plan_overrides_and_errors() -> None:
    from runner.plan import PlanError

    with pytest.raises(PlanError, match="unknown condition"):
        plan_of("llm-emotions.yaml", conditions=["nope"])
    with pytest.raises(PlanError, match="unknown model alias"):
        plan_of("llm-emotions.yaml", models=["nobody"])
    p = plan_of("llm-emotions.yaml", conditions=["no-warmup"], models=["openai/gpt-4.1-mini"], replicates=5)
    assert len(p.specs) == 5 and p.specs[0].model.vendor == "openai"
    assert p.tokens_in > 0 and p.tokens_out == 5 * p.calls_per_conversation * 1024


def test_json_schema_describes_the_language() -> None:
    import json

    s = schema.Protocol.model_json_schema()
    json.dumps(s)
    props = s["properties"]
    for key in ("name", "description", "models", "conditions", "replicates", "system", "steps", "stop", "pair",
                "experimenter", "tools", "sources", "max_turns", "extends"):
        assert key in props, key
    assert s["additionalProperties"] is False
    assert {"Say", "Offer", "Open", "Repeat"} <= set(s["$defs"])
