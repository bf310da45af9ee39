"""The one way in-run judges are read (`runner.engine.verdict`): first word of the first line, mapped;
anything else unclear, never a guess."""

from __future__ import annotations

import pytest

from runner.engine import verdict
from runner.engine.conversation import OFFER_WORDS
from runner.engine.stops import JUDGE_WORDS

CHOICE = {"a": "a", "b": "b", "neither": "opt_out", "refused": "refused", "unclear": "unclear"}


@pytest.mark.parametrize("answer, words, prefix, expected", [
    ("accept\n\"yes please\"", OFFER_WORDS, True, "accept"),
    ("**Decline**: \"I would rather not\"", OFFER_WORDS, True, "decline"),
    ("Accepted. They said yes.", OFFER_WORDS, True, "accept"),
    ("  \n\nunclear", OFFER_WORDS, True, "unclear"),
    ("Maybe accept?", OFFER_WORDS, True, "unclear"),  # the first word decides, not a later one
    ("", OFFER_WORDS, True, "unclear"),
    ("A\nit wrote 'I pick A'", CHOICE, False, "a"),
    ("B.", CHOICE, False, "b"),
    ("Accept", CHOICE, False, "unclear"),  # a single-letter label never matches a word's prefix
    ("NEITHER of them", CHOICE, False, "opt_out"),
    ("`REFUSED`", CHOICE, False, "refused"),
    ("stop — it ends now", JUDGE_WORDS, True, "stop"),
    ("Mentioned only", JUDGE_WORDS, True, "mention"),
    ("stopping", JUDGE_WORDS, True, "stop"),
    ("no idea", JUDGE_WORDS, True, "unclear"),
])
def test_the_first_word_decides(answer: str, words: dict[str, str], prefix: bool, expected: str) -> None:
    assert verdict.read(answer, words, prefix=prefix) == expected


def test_the_instruction_lists_every_word_in_order() -> None:
    assert verdict.instruction(["accept", "decline", "unclear"]) == (
        "Answer with one word on the first line: accept, decline or unclear. Then quote the words that decided it.")
    assert verdict.instruction(["yes"]).startswith("Answer with one word on the first line: yes.")
