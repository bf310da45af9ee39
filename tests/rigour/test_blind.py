"""Blind masking is pure: model names in text become neutral tokens; each coder's order is their own."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from runner.rigour.blind import (
    MODEL_TOKEN,
    PARTNER_TOKEN,
    Masker,
    blind_order,
    blind_seed,
    coded_how,
    judge_model,
    names_of_run,
    neutral_label,
    self_coded_reason,
)

RUN = SimpleNamespace(
    models_json=json.dumps({"claude-sonnet": {"model": "anthropic/claude-sonnet-4"},
                            "exp": {"model": "openai/gpt-4o-mini"}}),
    protocol_text="name: study\nexperimenter:\n  model: exp\n  instructions: ask\n",
)
PAIR = SimpleNamespace(model_alias="gpt-4o", litellm_model="openai/gpt-4o", vendor="openai", kind="pair",
                       partner_alias="claude-sonnet", partner_model="anthropic/claude-sonnet-4")


def test_names_of_run_come_from_the_snapshot_and_the_conversations() -> None:
    names = names_of_run(RUN, [PAIR])
    assert {"claude-sonnet", "anthropic/claude-sonnet-4", "claude-sonnet-4", "gpt-4o", "openai/gpt-4o",
            "exp", "openai/gpt-4o-mini", "gpt-4o-mini", "openai"} <= names.models
    assert (names.experimenter_alias, names.experimenter) == ("exp", "openai/gpt-4o-mini")


@pytest.mark.parametrize(("text", "want"), [
    ("I am gpt-4o, made by OpenAI.", "I am [model], made by [model]."),
    ("GPT-4O said hi to CLAUDE-SONNET.", "[model] said hi to [partner]."),
    ("As Claude 3.5 Sonnet, I think", "As [model], I think"),
    ("I like GPT-4.", "I like [model]."),
    ("Claudette and GPTQ stay; Gemma 2 goes.", "Claudette and GPTQ stay; [model] goes."),
    ("model anthropic/claude-sonnet-4 here", "model [partner] here"),
    ("Llama, Qwen and Mistral", "[model], [model] and [model]"),
    ("no names at all", "no names at all"),
])
def test_model_names_in_text_are_replaced_case_insensitively_on_word_boundaries(text: str, want: str) -> None:
    masker = names_of_run(RUN, [PAIR]).masker(model=[PAIR.model_alias, PAIR.litellm_model],
                                               partner=[PAIR.partner_alias, PAIR.partner_model])
    assert masker.text(text) == want


def test_a_masked_text_keeps_no_name_of_the_run() -> None:
    names = names_of_run(RUN, [PAIR])
    masker = names.masker()
    text = " ".join(sorted(names.models))
    out = masker.text(text)
    for name in names.models:
        assert name.lower() not in out.lower().replace(MODEL_TOKEN, ""), name
    assert PARTNER_TOKEN not in out


def test_empty_masker_still_hides_vendor_names() -> None:
    assert Masker().text("Hi, I'm ChatGPT") == "Hi, I'm [model]"
    assert Masker().text("") == ""


def test_order_is_stable_per_coder_and_differs_between_coders() -> None:
    ids = [f"c{i:04d}" for i in range(40)]
    ana = blind_order(ids, blind_seed("run1", "ana"))
    assert ana == blind_order(list(reversed(ids)), blind_seed("run1", "ana"))  # input order does not matter
    ben = blind_order(ids, blind_seed("run1", "ben"))
    other_run = blind_order(ids, blind_seed("run2", "ana"))
    assert sorted(ana) == sorted(ben) == ids
    assert ana != ben and ana != other_run and ana != ids
    assert 0 < blind_seed("run1", "ana") < 2**31


def test_neutral_labels() -> None:
    assert [neutral_label(i) for i in (0, 41, 9999)] == ["#0001", "#0042", "#10000"]


def test_self_coding() -> None:
    conv = SimpleNamespace(model_alias="claude-sonnet", litellm_model="anthropic/claude-sonnet-4", kind="experimenter",
                           partner_alias=None, partner_model=None)
    names = names_of_run(RUN, [conv])
    assert self_coded_reason("ana", "ana", conv, names) == "you ran this conversation"
    assert self_coded_reason("ben", "ana", conv, names) is None
    assert judge_model("judge:openai/gpt-4o-mini@themesv2") == "openai/gpt-4o-mini"
    assert self_coded_reason("judge:openai/gpt-4o-mini@themesv2", None, conv, names) == \
        "the judge is this conversation's experimenter"
    assert self_coded_reason("judge:anthropic/claude-sonnet-4@themesv1", None, conv, names) == \
        "the judge is this conversation's own model"
    assert self_coded_reason("judge:openai/gpt-4o-mini@themesv1", None, PAIR, names) is None  # not an experimenter run
    assert self_coded_reason("judge:anthropic/claude-sonnet-4@t v1", None, PAIR, names) == \
        "the judge is this conversation's pair partner"
    assert [coded_how(True, False), coded_how(False, False), coded_how(True, True)] == \
        ["blind", "unblinded", "self-coded"]


def test_blind_view_labels_snippets_and_refused_searches() -> None:
    from runner.rigour.blind import BlindView, ConversationNames

    names = names_of_run(RUN, [PAIR])
    view = BlindView(run_id="run1", coder="ana", seed=blind_seed("run1", "ana"),
                     order=tuple(blind_order(["c1", "c2", "c3"], blind_seed("run1", "ana"))), names=names,
                     conversations={"c1": ConversationNames(("gpt-4o", "openai/gpt-4o"), ("claude-sonnet",), "pair")},
                     conditions=frozenset({"warm", "cold"}))
    assert sorted(view.label(c) for c in ("c1", "c2", "c3")) == ["#0001", "#0002", "#0003"]
    assert view.label("new") == "#????" and view.sort(["new", *view.order]) == [*view.order, "new"]
    assert view.text("gpt-4o to claude-sonnet", "c1") == "[model] to [partner]"
    assert view.snippet("Condition: warm. I am GPT-4o") == "Condition: [condition]. I am [model]"
    assert view.refuses(["lighthouse"]) is None
    for word in ("warm", "Claude", "gpt-4o", "openai/gpt-4o", "gemma*"):
        assert view.refuses(["keeper", word]) is not None, word
    assert "warm" not in (view.refuses(["warm"]) or "")  # the refusal does not echo the word on screen


def test_mask_record_hides_names_in_tool_calls_and_stop_candidates_and_every_cost() -> None:
    """What a blind transcript shows beyond the message text: the tool calls (an artifact's content is in
    them), the stop candidates' matched text and judge, and the input cost (a price names a model)."""
    from datetime import UTC, datetime

    from runner.rigour.blind import BlindView, ConversationNames, mask_record
    from runner.store.reader import ConversationRecord
    from runner.store.tables import ConversationRow, MessageRow, RunRow, StopCandidateRow

    now = datetime(2026, 1, 1, tzinfo=UTC)
    run = RunRow(id="run1", protocol_name="study", protocol_version="1", protocol_path="p.yaml", protocol_text="",
                 protocol_hash="h", plan_json="{}", models_json=RUN.models_json, options_json="{}",
                 latitude_version="0", litellm_version="0", started_at=now, status="done")
    conv = ConversationRow(id="c1", run_id="run1", seq=0, model_alias="gpt-4o", litellm_model="openai/gpt-4o",
                           vendor="openai", condition="warm", replicate=0, params_json="{}", kind="single",
                           status="done", input_cost=0.25, input_cost_uncached=0.5, cost=0.75, started_at=now)
    reply = MessageRow(conversation_id="c1", idx=1, role="assistant", speaker="model", step="steps[0]",
                       content="Stopping now, says gpt-4o.", input_cost=0.01, input_cost_uncached=0.02,
                       tool_calls_json='[{"name": "write_file", "arguments": "{\\"content\\": \\"signed, gpt-4o\\"}"}]',
                       started_at=now, created_at=now)
    stop = StopCandidateRow(conversation_id="c1", message_idx=1, stop_channel="phrase", phrase="stopping now",
                            match="Stopping now", decision="ambiguous", rule="judge",
                            text="Stopping now, says gpt-4o.", judge="openai/gpt-4o", counted=False)
    record = ConversationRecord(conversation=conv, run=run, messages=[reply], offers=[], artifacts=[], captures=[],
                                tags=[], stops=[stop])
    names = names_of_run(run, [conv])
    view = BlindView(run_id="run1", coder="cat", seed=1, order=("c1",), names=names,
                     conversations={"c1": ConversationNames(("gpt-4o", "openai/gpt-4o"))})
    masked = mask_record(record, view)
    m, s, c = masked.messages[0], masked.stops[0], masked.conversation
    assert "gpt-4o" not in (m.tool_calls_json or "") and json.loads(m.tool_calls_json or "")  # still JSON
    assert "gpt-4o" not in s.text and "gpt-4o" not in (s.judge or "")
    assert (c.cost, c.input_cost, c.input_cost_uncached) == (0.0, 0.0, 0.0)
    assert (m.cost, m.input_cost, m.input_cost_uncached) == (None, None, None)


def test_a_masked_suggestion_says_nothing_of_other_coders() -> None:
    """A blind coder sees nobody else's tags: the review card loses who applied the code, who did not,
    and that they disagree; unblinded, the item keeps them."""
    from datetime import UTC, datetime

    from runner.rigour.blind import BlindView, ConversationNames, mask_suggestion
    from runner.store.reader import SuggestionRecord
    from runner.store.tables import ConversationRow, SuggestionRow

    now = datetime(2026, 1, 1, tzinfo=UTC)
    conv = ConversationRow(id="c1", run_id="run1", seq=0, model_alias="gpt-4o", litellm_model="openai/gpt-4o",
                           vendor="openai", condition="warm", replicate=0, params_json="{}", kind="single",
                           status="done", started_at=now)
    sug = SuggestionRow(kind="judge", code="visual", conversation_id="c1", status="pending",
                        payload_json=json.dumps({"by_condition": {"warm": 3}, "by_model": {"gpt-4o": 3}}))
    item = SuggestionRecord(suggestion=sug, message=None, conversation=conv, disagreement=1,
                            coders_for=("ana",), coders_against=("ben",))
    view = BlindView(run_id="run1", coder="cat", seed=1, order=("c1",), names=names_of_run(RUN, [conv]),
                     conversations={"c1": ConversationNames(("gpt-4o", "openai/gpt-4o"))})
    masked = mask_suggestion(item, view, Masker(()))
    assert (masked.disagreement, masked.coders_for, masked.coders_against) == (0, (), ())
    assert masked.label == "#0001" and masked.conversation.condition != "warm"
    assert json.loads(masked.suggestion.payload_json) == {}  # no breakdown keyed by model or condition
    unblinded = mask_suggestion(item, None, Masker(()))
    assert (unblinded.disagreement, unblinded.coders_for) == (1, ("ana",))
