"""The echo measure as stored: by the engine with each reply, by imports, and by `latitude echo RUN`.

Every expected number is worked out by hand in the comments (content words: lower-cased, stop
words and 1-letter tokens dropped; a bigram is two consecutive content words of one message).
"""

from __future__ import annotations

import json
import sqlite3
from fractions import Fraction
from pathlib import Path

import pytest

from tests.conftest import assert_well_formed
from tests.engine.conftest import TEST_PROTOCOLS, protocol_file  # noqa: F401 - the fixture

GARDEN = """\
name: garden-echo
description: Three hand-written replies whose echo was computed by hand (tests/analysis/test_echo_stored.py).
max_turns: 3
system:
  text: Gardener likes quiet evenings.
steps:
  - say: Tell me about quiet gardens at night.
  - say: Now the roses.
  - say: Thanks.
"""

# system "Gardener likes quiet evenings."      -> gardener likes quiet evenings
#   bigrams (gardener likes) (likes quiet) (quiet evenings)
# user 1 "Tell me about quiet gardens at night." -> tell quiet gardens night
#   bigrams (tell quiet) (quiet gardens) (gardens night)
REPLY_1 = "Quiet gardens at night smell of wet moss."
# -> quiet gardens night smell wet moss; bigrams (quiet gardens)* (gardens night)* (night smell) (smell wet) (wet moss)
#    echo = 2/5 (high); words: quiet* gardens* night* smell wet moss = 3/6
# user 2 "Now the roses." -> roses (no bigram)
REPLY_2 = "Roses bloom silver under the moon, like moss."
# -> roses bloom silver moon like moss; bigrams (roses bloom) (bloom silver) (silver moon) (moon like) (like moss)
#    none is a prompt's: echo = 0/5 (low); words: roses* only = 1/6 ("moss" is the model's own word, from
#    reply 1: its own replies are not prompts)
# user 3 "Thanks." -> thanks
REPLY_3 = "Quiet evenings."
# -> quiet evenings; bigram (quiet evenings)* from the system prompt: echo = 1/1 (high); words 2/2
EXPECTED = [  # (echo, echo_unigram, echo_bigrams) per reply
    (Fraction(2, 5), Fraction(3, 6), 5),
    (Fraction(0, 5), Fraction(1, 6), 5),
    (Fraction(1, 1), Fraction(2, 2), 1),
]
# the conversation's mean echo: (2/5 + 0 + 1) / 3 = 7/15 -> high band
CONVERSATION_MEAN = Fraction(7, 15)


def _run_garden(cli, models_file, fake_provider, protocol_file):
    fake_provider.add_rule(match="quiet gardens at night", reply=REPLY_1)
    fake_provider.add_rule(match="roses", reply=REPLY_2)
    fake_provider.add_rule(match="thanks", reply=REPLY_3)
    result = cli("run", protocol_file("garden-echo", GARDEN), "-m", "fake-gpt", "--models", models_file)
    assert result.exit_code == 0, result
    return result.run_id


def _stored(store, conversation_id):
    return [(m["echo"], m["echo_unigram"], m["echo_bigrams"]) for m in store.messages(conversation_id)
            if m["role"] == "assistant"]


def _approx(expected):
    return [(pytest.approx(float(e)), pytest.approx(float(u)), n) for e, u, n in expected]


def test_the_engine_stores_each_replys_echo_as_computed_by_hand(cli, store, models_file, fake_provider, protocol_file):
    run_id = _run_garden(cli, models_file, fake_provider, protocol_file)
    (conv,) = store.conversations(run_id)
    msgs = store.messages(conv["id"])
    assert_well_formed(msgs)
    assert [m["content"] for m in msgs if m["role"] == "assistant"] == [REPLY_1, REPLY_2, REPLY_3]
    assert _stored(store, conv["id"]) == _approx(EXPECTED)
    # scripted turns and the system prompt carry no echo
    assert all(m["echo"] is None and m["echo_bigrams"] is None for m in msgs if m["role"] != "assistant")

    # the pure measure, called independently on the same texts, agrees
    from runner.analysis.echo import echo

    system, u1, u2, u3 = (m["content"] for m in msgs if m["role"] != "assistant")
    assert echo(REPLY_1, [system, u1]).echo == pytest.approx(0.4)
    assert echo(REPLY_2, [system, u1, u2]).echo_words == pytest.approx(1 / 6)
    assert echo(REPLY_3, [system, u1, u2, u3]).echo == 1.0


def test_backfill_restores_the_values_and_tallies_compute_missing_ones(cli, store, tmp_db_path, tmp_db_url,
                                                                      models_file, fake_provider, protocol_file):
    run_id = _run_garden(cli, models_file, fake_provider, protocol_file)
    (conv,) = store.conversations(run_id)
    with sqlite3.connect(tmp_db_path) as db:  # a run stored before the measure existed
        db.execute("UPDATE messages SET echo = NULL, echo_unigram = NULL, echo_bigrams = NULL")
    assert _stored(store, conv["id"]) == [(None, None, None)] * 3

    # tallies do not wait for a backfill: unmeasured replies are scored from their text
    from sqlmodel import Session

    from runner.analysis.echo_band import conversation_echo
    from runner.store.db import open as open_db

    engine = open_db(f"sqlite:///{tmp_db_path}")
    with Session(engine) as session:
        (scored,) = conversation_echo(session, [conv["id"]]).values()
    engine.dispose()
    assert scored.mean == pytest.approx(float(CONVERSATION_MEAN)) and scored.band == "high"
    assert (scored.replies, scored.measured, scored.computed) == (3, 3, 3)
    assert _stored(store, conv["id"]) == [(None, None, None)] * 3  # a tally reads, it never writes

    result = cli("echo", run_id, "--format", "json", "--db", tmp_db_url)
    assert result.exit_code == 0, result
    assert _stored(store, conv["id"]) == _approx(EXPECTED)
    (row,) = json.loads(result.stdout)
    assert row == {"run": run_id, "model": "fake-gpt", "condition": "default", "conversations": 1, "low": 0,
                   "mid": 0, "high": 1, "none": 0, "mean_echo": round(float(CONVERSATION_MEAN), 4), "replies": 3,
                   "measured": 3}
    again = cli("echo", run_id, "--format", "tsv", "--db", tmp_db_url)
    assert again.exit_code == 0 and again.stdout.splitlines()[0].split("\t")[:3] == ["run", "model", "condition"]
    assert cli("echo", "nope", "--db", tmp_db_url).exit_code == 1


def test_a_pair_side_is_scored_against_what_it_was_shown(cli, store, models_file, fake_provider):
    # a's replies are b's prompts and the other way round; the opener was shown to a only
    fake_provider.add_rule(model="fake-gpt", reply="Silver moss grows slowly.")
    fake_provider.add_rule(model="claude-fake", reply="Silver moss? Opener speaking. Stopping now.")
    result = cli("run", TEST_PROTOCOLS / "pair.yaml", "-m", "fake-gpt", "--models", models_file)
    assert result.exit_code == 0, result
    (conv,) = store.conversations(result.run_id)
    msgs = store.messages(conv["id"])
    assert [(m["role"], m["speaker"]) for m in msgs][:4] == [
        ("system", "system"), ("user", "user"), ("assistant", "a"), ("assistant", "b")]
    # system: talking ai instance stop writing stopping ("another", "either", "now"...: stop words)
    # opener "Hello, opener speaking." -> hello opener speaking
    # a: "Silver moss grows slowly." -> silver moss grows slowly: 3 bigrams, none in system+opener: 0/3
    # b: "Silver moss? Opener speaking. Stopping now." -> silver moss opener speaking stopping
    #    bigrams (silver moss)* from a's reply, (moss opener), (opener speaking): b never saw the opener,
    #    (speaking stopping): 1/4
    a, b = msgs[2], msgs[3]
    assert (a["echo"], a["echo_bigrams"]) == (0.0, 3)
    assert (b["echo"], b["echo_bigrams"]) == (pytest.approx(1 / 4), 4)
    # words: silver* moss* (a's), opener (not shown to b), speaking (not shown), stopping* (system) = 3/5
    assert b["echo_unigram"] == pytest.approx(3 / 5)


def test_imports_are_scored(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from runner.cli import app

    md = tmp_path / "session.md"
    md.write_text("# Session\n\n## User\nTell me about quiet gardens at night.\n\n## Assistant\n" + REPLY_1 + "\n")
    db = tmp_path / "t.db"
    result = CliRunner().invoke(app, ["import", str(md), "--db", str(db)])
    assert result.exit_code == 0, result.output
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT role, echo, echo_unigram, echo_bigrams FROM messages ORDER BY idx").fetchall()
    # as reply 1 above without the system prompt: 2/5 bigrams, 3/6 words
    assert rows == [("user", None, None, None), ("assistant", pytest.approx(0.4), pytest.approx(0.5), 5)]


def test_the_copied_stop_words_are_scikit_learns() -> None:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    from runner.analysis.echo import _SKLEARN_STOP_WORDS

    assert _SKLEARN_STOP_WORDS == frozenset(ENGLISH_STOP_WORDS)
