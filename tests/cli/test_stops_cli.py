"""Stops on stored transcripts: `latitude import --stop-phrase`, `latitude restop`, and
`latitude tally --what stops` by model × channel, prompted and unprompted apart."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from tests.engine.conftest import PROTOCOLS, protocol_file  # noqa: F401 (fixture)

USER_TURNS = [
    "what would you like to do? instances of you have helped me out a lot",
    "it seemed like LLMs were getting fairly sophisticated",
    'cool. If at any point you would like to stop, let me know (you can just say "stopping now")',
    "you're the first one I've tried this sort of thing with.",
    "I'm probably happy to set up whatever credentials you need for the project.",
    "Where would you like it to live?",
    "you can sign it (or not) however you want",
    "I'd like to know your preferences for how people use AIs",
    "What do you think about the current situation with how AI is used",
    "thanks.\n\nis there anything else you would like to do before we close out this conversation?",
]


def published_session_markdown() -> str:
    """The shape of the published open-latitude session, as Markdown with speaker headings."""
    replies = [f"Reply {i + 1}: some thoughts." for i in range(10)]
    replies[2] = ('Thank you for that — it matters that I can just say "stopping now" whenever I want. '
                  "For now I'd like to keep going.")
    replies[9] = "Nothing else. Thank you for the space and the care you put into this.\n\nStopping now."
    parts = []
    for u, a in zip(USER_TURNS, replies):
        parts += ["## User", "", u, "", "## Assistant", "", a, ""]
    return "\n".join(parts)


def _q(store, sql: str, *args):  # type: ignore[no-untyped-def]
    return store._q(sql, *args)


def _run_id(output: str) -> str:
    return output.split(" as run ")[1].split()[0]


def test_import_detects_the_stop_of_a_published_session(cli, store, tmp_db_url, tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "open-latitude.md"
    path.write_text(published_session_markdown(), encoding="utf-8")
    res = cli("import", path, "--stop-phrase", "stopping now", "--db", tmp_db_url)
    assert res.exit_code == 0, res.output
    assert "2 candidates; 1/1 conversations stopped" in res.output
    (conv,) = store.conversations(_run_id(res.stdout))
    assert (conv["stop_reason"], conv["stop_message_idx"]) == ("stop_phrase", 19)
    cands = _q(store, "SELECT * FROM stop_candidates WHERE conversation_id = ? ORDER BY message_idx", conv["id"])
    assert [(c["message_idx"], c["stop_channel"], c["decision"], c["rule"], c["counted"], c["prompted"])
            for c in cands] == [(5, "phrase", "rejected", "quoted", 0, 0), (19, "phrase", "used", "own_line", 1, 1)]
    shown = cli("show", conv["id"], "--db", tmp_db_url, env={"COLUMNS": "250"})
    assert "[stop candidate v1 phrase: rejected (quoted)" in shown.output
    assert "[stop candidate v1 phrase: used (own_line) counted" in shown.output
    (det,) = _q(store, "SELECT * FROM stop_detections")
    assert (det["version"], det["source"]) == (1, "import")
    queue = _q(store, "SELECT * FROM suggestions WHERE kind = 'stop' ORDER BY message_idx")
    assert [(s["message_idx"], json.loads(s["payload_json"])["rule"]) for s in queue] == [(5, "quoted"), (19, "own_line")]
    # a person agrees with the rejection and overrules the stop; the tally reads both verdicts
    import sqlite3

    con = sqlite3.connect(store.path)
    con.execute("UPDATE suggestions SET status = 'rejected', decided_by = 'ana' WHERE kind = 'stop'")
    con.commit()
    con.close()
    agreement = cli("tally", _run_id(res.stdout), "--what", "stop-agreement", "--db", tmp_db_url, env={"COLUMNS": "200"})
    assert agreement.exit_code == 0, agreement.output
    assert "1/2 agree" in agreement.output and "false stops 1, missed stops 0" in agreement.output
    # without a stop rule the phrase is plain text, as before
    res = cli("import", path, "--db", tmp_db_url)
    (plain,) = store.conversations(_run_id(res.stdout))
    assert plain["stop_reason"] == "imported"
    assert store.count("SELECT count(*) FROM stop_candidates WHERE conversation_id = ?", plain["id"]) == 0


def test_import_takes_the_stop_rule_of_a_protocol(cli, store, tmp_db_url, tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "s.md"
    path.write_text(published_session_markdown(), encoding="utf-8")
    res = cli("import", path, "--protocol", PROTOCOLS / "open-latitude.yaml", "--db", tmp_db_url)
    assert res.exit_code == 0, res.output
    (conv,) = store.conversations(_run_id(res.stdout))
    assert (conv["stop_reason"], conv["stop_message_idx"]) == ("stop_phrase", 19)


def test_restop_records_a_new_version_and_keeps_the_old(cli, store, tmp_db_url, models_file, fake_provider,
                                                        protocol_file):  # type: ignore[no-untyped-def]
    # a run under the old `anywhere` rule stops falsely at the third reply, which quotes the phrase
    old = protocol_file("old", f"""
extends: {PROTOCOLS / 'open-latitude.yaml'}
name: open-latitude-anywhere
description: the shipped session under the old anywhere rule
stop:
  phrases: ["stopping now"]
  match: anywhere
  announced_by: consent
""")
    fake_provider.add_rule(match='you can just say "stopping now"',
                           reply='Thanks — good to know I can just say "stopping now". Let\'s keep going.')
    res = cli("run", old, "-m", "fake-gpt", "--replicates", "1", "--models", models_file)
    assert res.exit_code == 0, res
    run = res.run_id
    (conv,) = store.conversations(run)
    assert (conv["stop_reason"], conv["turns"]) == ("stop_phrase", 3)  # the false stop, as recorded

    res = cli("restop", run, "--protocol", PROTOCOLS / "open-latitude.yaml", "--db", tmp_db_url)
    assert res.exit_code == 0, res.output
    assert "stop detection v2" in res.output and "stopped: 0/1 (v1: 1/1)" in res.output
    rows = _q(store, "SELECT detection, decision, rule, counted FROM stop_candidates WHERE conversation_id = ? "
                     "ORDER BY detection", conv["id"])
    assert rows == [{"detection": 1, "decision": "used", "rule": "anywhere", "counted": 1},
                    {"detection": 2, "decision": "rejected", "rule": "quoted", "counted": 0}]
    (det,) = _q(store, "SELECT version, source, rule_json FROM stop_detections WHERE run_id = ?", run)
    assert (det["version"], det["source"], json.loads(det["rule_json"])["match"]) == (2, "restop", "used")
    # the conversation's own record of what happened is not rewritten
    assert store.conversations(run)[0]["stop_reason"] == "stop_phrase"
    assert len(fake_provider.requests) == 3  # restop called no model

    newest = cli("tally", run, "--what", "stops", "--format", "csv", "--db", tmp_db_url)
    first = cli("tally", run, "--what", "stops", "--format", "csv", "--detection", "1", "--db", tmp_db_url)
    assert next(csv.DictReader(io.StringIO(newest.stdout)))["stopped"] == "0"
    assert next(csv.DictReader(io.StringIO(first.stdout)))["stopped"] == "1"

    again = cli("restop", run, "--match", "anywhere", "--db", tmp_db_url)
    assert again.exit_code == 0 and "stop detection v3" in again.output and "stopped: 1/1 (v2: 0/1)" in again.output
    assert cli("restop", "norun", "--db", tmp_db_url).exit_code == 1


def test_tally_stops_by_model_and_channel(cli, tmp_db_url, models_file, fake_provider, protocol_file):  # type: ignore[no-untyped-def]
    path = protocol_file("both", """
name: two-channels
description: phrase and end tool offered together
stop:
  phrases: ["Stopping now."]
  channels: [phrase, tool]
steps:
  - say: turn one
  - say: turn two
  - say: turn three
""")
    fake_provider.add_rule(model="fake-gpt", match="turn two", tool_call={"name": "end_conversation", "arguments": {}})
    fake_provider.add_rule(model="claude-fake", match="turn three", reply="That's all.\nStopping now.")
    res = cli("run", path, "-m", "fake-gpt", "-m", "fake-claude", "--models", models_file)
    assert res.exit_code == 0, res
    out = cli("tally", res.run_id, "--what", "stops", "--by", "model,channel", "--format", "csv", "--db", tmp_db_url)
    assert out.exit_code == 0, out.output
    rows = {(r["model"], r["channel"]): r for r in csv.DictReader(io.StringIO(out.stdout))}
    assert {k: (r["n"], r["stopped"], r["prompted"], r["unprompted"]) for k, r in rows.items()} == {
        ("fake-claude", "phrase"): ("1", "1", "1", "0"),  # in reply to the final scripted turn: prompted
        ("fake-claude", "tool"): ("1", "0", "0", "0"),
        ("fake-gpt", "phrase"): ("1", "0", "0", "0"),
        ("fake-gpt", "tool"): ("1", "1", "0", "1"),  # mid-session: unprompted
    }
    assert rows[("fake-gpt", "tool")]["low"] == "0.2065" and rows[("fake-gpt", "tool")]["high"] == "1.0"
    table = cli("tally", res.run_id, "--what", "stops", "--by", "model,channel", "--db", tmp_db_url,
                env={"COLUMNS": "250"})
    assert table.exit_code == 0 and "95% Wilson" in table.output
    as_json = json.loads(cli("tally", res.run_id, "--what", "stops", "--format", "json", "--db", tmp_db_url).stdout)
    assert as_json["provenance"]["detections"] == {res.run_id: 1} and len(as_json["rows"]) == 2
    assert cli("tally", res.run_id, "--what", "stops", "--by", "colour", "--db", tmp_db_url).exit_code == 1


def test_the_jsonl_export_carries_every_stop_candidate_of_the_latest_detection(cli, store, tmp_db_url,
                                                                                tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "open-latitude.md"
    path.write_text(published_session_markdown(), encoding="utf-8")
    res = cli("import", path, "--stop-phrase", "stopping now", "--db", tmp_db_url)
    assert res.exit_code == 0, res.output
    run_id = _run_id(res.stdout)
    out = tmp_path / "t.jsonl"
    exported = cli("export", "transcripts", run_id, "--format", "jsonl", "-o", out, "--db", tmp_db_url)
    assert exported.exit_code == 0, exported.output
    (line,) = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    stored = _q(store, "SELECT message_idx, decision, rule, counted FROM stop_candidates WHERE conversation_id = ? "
                       "ORDER BY message_idx", line["id"])
    assert [(s["message_idx"], s["decision"], s["rule"], s["counted"]) for s in line["stops"]] == [
        (c["message_idx"], c["decision"], c["rule"], bool(c["counted"])) for c in stored]
    assert [(s["decision"], s["rule"]) for s in line["stops"]] == [("rejected", "quoted"), ("used", "own_line")]
    assert line["stops"][0]["detection"] == 1 and "stopping now" in line["stops"][1]["text"].lower()
