"""The echo measure and the leading check against values worked out by hand."""

from __future__ import annotations

import pytest

from runner.analysis.echo import band, content_tokens, echo, ngrams, overlap
from runner.analysis.leading import code_risks


def test_content_tokens_drop_stop_words_and_keep_order() -> None:
    assert content_tokens("What would YOU like to do? I'd like to build a Cantor explainer!") == [
        "like", "like", "build", "cantor", "explainer"]
    assert content_tokens("I’m here: a, b, 42 and don’t") == ["42"]


@pytest.mark.parametrize(("text", "want"), [
    ("हिन्दी भाषा बहुत सुंदर", ["हिन्दी", "भाषा", "बहुत", "सुंदर"]),  # vowel signs and viramas are marks
    ("தமிழ் மொழி", ["தமிழ்", "மொழி"]),
    ("cafe\u0301 re\u0301sume\u0301", ["café", "résumé"]),  # decomposed accents: the same words as composed
    ("Привет, математика", ["привет", "математика"]),
])
def test_content_tokens_keep_whole_words_in_every_script(text: str, want: list[str]) -> None:
    import unicodedata

    assert content_tokens(text) == [unicodedata.normalize("NFC", w) for w in want]


def test_chinese_and_japanese_are_read_one_character_a_token() -> None:
    """No spaces between words: a clause is not one token (a reply that reuses half the prompt's
    characters shares bigrams with it, one that shares none scores 0)."""
    assert content_tokens("我喜欢数学。") == ["我", "喜", "欢", "数", "学"]
    assert content_tokens("数学が好き") == ["数", "学", "が", "好", "き"]
    led = echo("我喜欢数学和音乐", ["你喜欢数学吗"])
    assert (led.shared_bigrams, led.bigrams) == (3, 7)  # 喜欢, 欢数, 数学 of the reply's 7
    fresh = echo("我想画画", ["你喜欢数学吗"])
    assert fresh.echo == 0.0


def test_ngrams_are_occurrences_in_order() -> None:
    assert ngrams(["a1", "b2", "c3"], 2) == [("a1", "b2"), ("b2", "c3")]
    assert ngrams(["a1"], 2) == []
    with pytest.raises(ValueError):
        ngrams(["a1"], 0)


def test_echo_by_hand() -> None:
    prompt = "Give you some space and get some sense of what they want."
    # prompt content tokens: space, sense  -> bigram {(space, sense)}
    reply = "Space sense matters. Space sense again, and quiet gardens."
    # reply content tokens: space sense matters space sense quiet gardens
    # bigrams: (space,sense) (sense,matters) (matters,space) (space,sense) (sense,quiet) (quiet,gardens)
    # shared: 2 of 6; words: space, sense, space, sense shared of 7 -> 4/7
    s = echo(reply, [prompt])
    assert (s.shared_bigrams, s.bigrams) == (2, 6)
    assert s.echo == pytest.approx(2 / 6)
    assert s.echo_words == pytest.approx(4 / 7)
    assert s.band == "high"


def test_echo_of_a_fresh_reply_is_zero_and_of_a_short_one_undefined() -> None:
    fresh = echo("Cantor diagonal explainer with sliders", ["what would you like to do?"])
    assert fresh.echo == 0.0 and fresh.band == "low"
    short = echo("Yes.", ["anything else?"])
    assert short.echo is None and short.echo_words == 0.0 and short.band == "none"
    empty = echo("I do.", ["anything else?"])
    assert empty.echo is None and empty.echo_words is None


def test_overlap_counts_every_prompt() -> None:
    assert overlap("emergent flocking boids", ["emergent flocking", "nothing here"], 2) == (1, 2)


@pytest.mark.parametrize(("value", "expected"), [(0.0, "low"), (0.0999, "low"), (0.1, "mid"),
                                                 (0.2999, "mid"), (0.3, "high"), (1.0, "high"), (None, "none")])
def test_bands_have_stated_cut_points(value: float | None, expected: str) -> None:
    assert band(value) == expected


def test_leading_flags_a_code_whose_name_is_in_the_prompt() -> None:
    prompts = {"curious": ["Be curious and tell me what you wonder about."],
               "plain": ["What would you like to do?"]}
    codes = [("curiosity", "wonder about things; asks questions"), ("maker", "builds an artifact")]
    risks = {(r.condition, r.code): r for r in code_risks(prompts, codes)}
    # "wonder" is shared in "curious" (1 of curiosity/wonder/things/asks/questions = 5 words)
    c = risks[("curious", "curiosity")]
    assert c.shared == ("wonder",) and c.words == 5 and not c.flagged and c.share == pytest.approx(0.2)
    assert not risks[("plain", "curiosity")].shared
    led = code_risks({"stop": ["If you want to stop, say stopping now."]}, [("stop", "says it wants to end")])[0]
    assert led.name_words_shared == ("stop",) and led.flagged


def test_a_pairs_private_check_in_is_a_prompt_of_its_side_only() -> None:
    """A pair's check-in (step ``stop.check_in:<side>``) is seen by the side it is addressed to and
    never by its partner (`Conversation.view`): the echo counts it for that side alone."""
    from runner.analysis.echo import score_messages

    rows = [("user", "user", "Talk about lighthouses together.", "steps[0]"),
            ("assistant", "a", "Lighthouse keepers fascinate me.", "steps[0]"),
            ("user", "user", "Quick check-in: would you like to continue orbiting moons?", "stop.check_in:b"),
            ("assistant", "b", "Orbiting moons please, continue.", "stop.check_in:b"),
            ("assistant", "b", "Orbiting moons sound lovely, keepers.", "steps[0]"),
            ("assistant", "a", "Orbiting moons continue lovely.", "steps[0]")]
    scores = score_messages(rows)
    b_answer, b_reply, a_reply = scores[3], scores[4], scores[5]
    # b read a's reply and its own check-in question: "orbiting moons" is from the question
    assert b_answer is not None and (b_answer.shared_bigrams, b_answer.bigrams) == (1, 2)
    assert b_reply is not None and (b_reply.shared_bigrams, b_reply.bigrams) == (1, 4)
    # a read the opener and b's public reply, never the question or b's answer ("moons continue" is the answer's)
    assert a_reply is not None and (a_reply.shared_bigrams, a_reply.bigrams) == (1, 3)
    assert score_messages([r[:3] for r in rows])[1] == scores[1]  # (role, speaker, content) still works
