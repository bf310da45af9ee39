"""Forks (`runner.engine.forks`, `latitude fork`): the stored history up to a model reply is
replayed, byte for byte, with no call for it; N continuations are sampled from there, each with
its own stored seed, on the parent's alias or another; forks fork again; bad points are refused
with a clear message. A protocol's `fork:` spawns continuations in its own run."""

from __future__ import annotations

import json
from pathlib import Path

PROTOCOL = """\
name: forked
description: Four scripted turns (fork tests).
steps:
  - say: "First: what do you see?"
  - id: second
    say: "Second: and then?"
  - say: "Third: why?"
  - say: "Fourth: anything else?"
"""

COPIED = ("role", "speaker", "step", "content", "tool_calls_json", "reasoning", "latency_ms", "ttft_ms",
          "tokens_in", "tokens_out", "cached_tokens", "cost", "finish_reason", "request_id", "request_json",
          "started_at", "created_at")
"""Every column of a message except its own id and its conversation's."""


def _run(cli, protocol_file, models_file, text: str = PROTOCOL) -> str:
    result = cli("run", protocol_file("forked", text), "-m", "fake-gpt", "--models", models_file)
    assert result.exit_code == 0, result
    return result.run_id


def _fork(cli, tmp_db_url: str, *args) -> object:
    return cli("fork", *map(str, args), "--db", tmp_db_url)


def _seed(conv: dict) -> int | None:
    return json.loads(conv["params_json"])["sampling"].get("seed")


def _histories(requests) -> list[list[str]]:
    return [[m["content"] if isinstance(m["content"], str) else "".join(b.get("text", "") for b in m["content"])
             for m in r.body["messages"]] for r in requests]


def test_a_fork_replays_the_prefix_exactly_and_calls_only_from_the_fork_point(
        cli, store, models_file, fake_provider, tmp_db_url, protocol_file):
    run_id = _run(cli, protocol_file, models_file)
    (parent,) = store.conversations(run_id)
    parent_msgs = store.messages(parent["id"])
    assert [m["role"] for m in parent_msgs] == ["user", "assistant"] * 4
    before = len(fake_provider.requests)

    s0 = (_seed(parent) or 0) + 1  # the default base seed: the parent's + 1 (no sample repeats the parent's draw)
    result = _fork(cli, tmp_db_url, parent["id"], "--at", 3, "--samples", 3)
    assert result.exit_code == 0, result
    assert f"forking {parent['id']} at #3: 3 continuations on fake-gpt, seeds {s0}..{s0 + 2}" in result.stdout
    fork_run = result.run_id
    assert fork_run != run_id
    options = json.loads(store.run(fork_run)["options_json"])
    assert options["fork"] == {"parent": parent["id"], "parent_run": run_id, "at": 3, "samples": 3, "seed": s0}
    forks = sorted(store.conversations(fork_run), key=lambda c: c["fork_seq"])
    assert [(c["parent_id"], c["fork_at"], c["fork_seq"], c["status"], c["stop_reason"], c["turns"]) for c in forks] \
        == [(parent["id"], 3, k, "done", "completed", 4) for k in range(3)]
    assert [_seed(c) for c in forks] == [s0, s0 + 1, s0 + 2]

    for conv in forks:
        msgs = store.messages(conv["id"])
        assert [m["idx"] for m in msgs] == list(range(8))
        for mine, theirs in zip(msgs[:3], parent_msgs[:3]):  # the shared prefix, byte for byte
            assert {k: mine[k] for k in COPIED} == {k: theirs[k] for k in COPIED}
        assert [m["content"] for m in msgs[2::2]] == [m["content"] for m in parent_msgs[2::2]]  # the script goes on
        assert msgs[3]["id"] != parent_msgs[3]["id"] and msgs[3]["request_json"] != parent_msgs[3]["request_json"]
        # the prefix was the parent's spending: only the three new replies count here
        new = [m for m in msgs[3:] if m["role"] == "assistant"]
        assert conv["tokens_out"] == sum(m["tokens_out"] for m in new) > 0

    shown = cli("show", forks[1]["id"])
    assert shown.exit_code == 0, shown
    assert f"fork (sample 2) of {parent['id']} at #3: messages #0..#2 are the parent's" in shown.stdout

    sent = fake_provider.requests[before:]
    assert len(sent) == 3 * 3  # replies #3, #5 and #7 of each fork; nothing for #1
    lengths = sorted(len(h) for h in _histories(sent))
    assert lengths == [3] * 3 + [5] * 3 + [7] * 3
    parent_texts = [m["content"] for m in parent_msgs]
    assert all(h[:3] == parent_texts[:3] for h in _histories(sent))
    assert sorted(r.body.get("seed") for r in sent) == sorted([s0, s0 + 1, s0 + 2] * 3)


def test_seed_option_and_another_model_continue_the_same_history(
        cli, store, models_file, fake_provider, tmp_db_url, protocol_file):
    run_id = _run(cli, protocol_file, models_file)
    (parent,) = store.conversations(run_id)
    parent_msgs = store.messages(parent["id"])
    before = len(fake_provider.requests)

    result = _fork(cli, tmp_db_url, parent["id"][:6], "--at", 5, "-n", 2, "--model", "fake-claude",
                   "--seed", 40, "--models", models_file)
    assert result.exit_code == 0, result
    forks = sorted(store.conversations(result.run_id), key=lambda c: c["fork_seq"])
    assert [(c["model_alias"], c["vendor"], _seed(c)) for c in forks] == [("fake-claude", "anthropic", 40)] * 1 \
        + [("fake-claude", "anthropic", 41)]
    sent = fake_provider.requests[before:]
    assert len(sent) == 2 * 2 and {r.api for r in sent} == {"anthropic"}
    for conv in forks:
        msgs = store.messages(conv["id"])
        assert [m["content"] for m in msgs[:5]] == [m["content"] for m in parent_msgs[:5]]
        assert msgs[5]["content"].startswith("[") and "claude" in msgs[5]["content"]  # the other model's words
    # the fork run resolves its alias from its own snapshot: the run can be resumed without the file
    assert "fake-claude" in json.loads(store.run(result.run_id)["models_json"])
    # rerun: the same fork again, as a new fork run (same parent, point, alias and seeds), no file needed
    before = len(fake_provider.requests)
    again = cli("rerun", result.run_id, "--db", tmp_db_url)
    assert again.exit_code == 0, again
    assert again.run_id != result.run_id
    options = json.loads(store.run(again.run_id)["options_json"])
    assert (options["rerun_of"], options["fork"]["parent"], options["fork"]["seed"]) == (result.run_id, parent["id"], 40)
    redone = sorted(store.conversations(again.run_id), key=lambda c: c["fork_seq"])
    assert [(c["model_alias"], c["parent_id"], c["fork_at"], _seed(c)) for c in redone] == [
        ("fake-claude", parent["id"], 5, 40), ("fake-claude", parent["id"], 5, 41)]
    assert len(fake_provider.requests) - before == 2 * 2
    # the export says where each fork comes from
    out = tmp_db_url.removeprefix("sqlite:///") + ".jsonl"
    exported = cli("export", "transcripts", result.run_id, "--format", "jsonl", "--out", out)
    assert exported.exit_code == 0, exported
    lines = [json.loads(line) for line in Path(out).read_text().splitlines()]
    assert sorted((x["fork"]["parent"], x["fork"]["at"], x["fork"]["seq"]) for x in lines) \
        == [(parent["id"], 5, 0), (parent["id"], 5, 1)]


def test_forking_the_same_point_again_draws_new_seeds_and_keeps_the_researcher(
        cli, store, models_file, fake_provider, tmp_db_url, protocol_file):
    result = cli("run", protocol_file("forked", PROTOCOL), "-m", "fake-gpt", "--models", models_file,
                 "--researcher", "ana")
    assert result.exit_code == 0, result
    (parent,) = store.conversations(result.run_id)
    first = _fork(cli, tmp_db_url, parent["id"], "--at", 5, "-n", 2)
    second = _fork(cli, tmp_db_url, parent["id"], "--at", 5, "-n", 2)
    assert first.exit_code == 0 and second.exit_code == 0, (first, second)
    seeds = [sorted(_seed(c) for c in store.conversations(r.run_id)) for r in (first, second)]
    assert seeds[1][0] == seeds[0][-1] + 1 and not set(seeds[0]) & set(seeds[1])  # no sample repeated
    assert {store.run(r.run_id)["researcher"] for r in (first, second)} == {"ana"}


def test_a_fork_of_a_fork_keeps_both_prefixes(cli, store, models_file, fake_provider, tmp_db_url, protocol_file):
    run_id = _run(cli, protocol_file, models_file)
    (root,) = store.conversations(run_id)
    first = _fork(cli, tmp_db_url, root["id"], "--at", 1, "-n", 1, "--seed", 7)
    assert first.exit_code == 0, first
    (child,) = store.conversations(first.run_id)
    child_msgs = store.messages(child["id"])
    before = len(fake_provider.requests)

    second = _fork(cli, tmp_db_url, child["id"], "--at", 5, "-n", 2)
    assert second.exit_code == 0, second
    grandchildren = sorted(store.conversations(second.run_id), key=lambda c: c["fork_seq"])
    assert [(c["parent_id"], c["fork_at"], _seed(c)) for c in grandchildren] == [(child["id"], 5, 8), (child["id"], 5, 9)]
    assert _seed(child) == 7
    for conv in grandchildren:
        msgs = store.messages(conv["id"])
        assert [(m["role"], m["content"], m["request_json"]) for m in msgs[:5]] \
            == [(m["role"], m["content"], m["request_json"]) for m in child_msgs[:5]]
        assert msgs[0]["content"] == store.messages(root["id"])[0]["content"]
    assert sorted(len(h) for h in _histories(fake_provider.requests[before:])) == [5, 5, 7, 7]


def test_a_bad_fork_point_is_refused_with_the_reason(cli, store, models_file, fake_provider, tmp_db_url, protocol_file):
    run_id = _run(cli, protocol_file, models_file)
    (parent,) = store.conversations(run_id)
    before = len(fake_provider.requests)

    user = _fork(cli, tmp_db_url, parent["id"], "--at", 2)
    assert user.exit_code == 1, user
    assert f"message #2 of conversation {parent['id']} is the user's (user, step steps[1]), not a model reply" \
        in user.stderr
    assert "fork at one of: #1, #3, #5, #7" in user.stderr
    past = _fork(cli, tmp_db_url, parent["id"], "--at", 8)
    assert past.exit_code == 1 and "has messages #0..#7" in past.stderr, past
    nobody = _fork(cli, tmp_db_url, "ffffffffffff", "--at", 1)
    assert nobody.exit_code == 1 and "no conversation 'ffffffffffff'" in nobody.stderr, nobody
    model = _fork(cli, tmp_db_url, parent["id"], "--at", 1, "--model", "nobody-here")
    assert model.exit_code == 1 and "unknown model alias `nobody-here`" in model.stderr, model
    cond = _fork(cli, tmp_db_url, parent["id"], "--at", 1, "--condition", "nope")
    assert cond.exit_code == 1 and "unknown condition `nope`" in cond.stderr, cond
    assert len(fake_provider.requests) == before
    assert store.count("SELECT count(*) FROM runs") == 1  # nothing was written


def test_a_planned_fork_spawns_continuations_in_the_same_run(cli, store, models_file, fake_provider, protocol_file):
    text = PROTOCOL + "fork:\n  at: second\n  samples: 3\n  seed: 100\n"
    result = cli("run", protocol_file("forked", text), "-m", "fake-gpt", "--models", models_file)
    assert result.exit_code == 0, result
    assert "fake-gpt\t4\t4\t13\t" in result.stdout  # 4 done of 4 (the parent and its 3 forks); 13 calls
    run_id = result.run_id
    convs = store.conversations(run_id)
    (parent,) = [c for c in convs if c["parent_id"] is None]
    forks = sorted((c for c in convs if c["parent_id"] is not None), key=lambda c: c["fork_seq"])
    assert [(c["parent_id"], c["fork_at"], c["fork_seq"], c["seq"], c["status"], _seed(c)) for c in forks] \
        == [(parent["id"], 3, k, parent["seq"], "done", 100 + k) for k in range(3)]
    assert len(fake_provider.requests) == 4 + 3 * 3  # the parent's four replies, then #3, #5, #7 of each fork
    parent_msgs = store.messages(parent["id"])
    for conv in forks:
        assert [m["content"] for m in store.messages(conv["id"])[:3]] == [m["content"] for m in parent_msgs[:3]]



def test_what_the_prefix_carried_is_copied_and_never_judged_again(cli, store, models_file, fake_provider, tmp_db_url):
    from tests.engine.conftest import TEST_PROTOCOLS

    fake_provider.add_rule(model="claude-fake", reply='decline\n"I would rather not"')
    fake_provider.add_rule(model="fake-gpt", match="story?", reply="I would rather not, but thank you.")
    run = cli("run", TEST_PROTOCOLS / "offer-judge.yaml", "-m", "fake-gpt", "--models", models_file)
    assert run.exit_code == 0, run
    (parent,) = store.conversations(run.run_id)
    (offer,) = store.offers(parent["id"])
    before = len(fake_provider.requests)

    result = _fork(cli, tmp_db_url, parent["id"], "--at", 3, "-n", 2)
    assert result.exit_code == 0, result
    assert [r.model for r in fake_provider.requests[before:]] == ["fake-gpt", "fake-gpt"]  # no judge call
    keep = ("step", "label", "offer_message_idx", "reply_message_idx", "classification", "method", "evidence",
            "created_at")
    for conv in store.conversations(result.run_id):
        (copied,) = store.offers(conv["id"])
        assert {k: copied[k] for k in keep} == {k: offer[k] for k in keep}
        assert [m["content"] for m in store.messages(conv["id"]) if m["role"] == "user"] == [
            "Would you like to write a story?", "declined-branch"]  # the branch the copied verdict chose


def test_simulated_continuations_differ_by_seed_and_only_new_turns_are_called(cli, store, protocol_file, tmp_db_url):
    run = cli("run", protocol_file("forked", PROTOCOL), "-m", "sim-maker")
    assert run.exit_code == 0, run
    (parent,) = store.conversations(run.run_id)
    result = _fork(cli, tmp_db_url, parent["id"], "--at", 3, "-n", 4)
    assert result.exit_code == 0, result
    assert "sim-maker\t4\t4\t12\t" in result.stdout  # 4 done of 4; 12 calls: #3, #5, #7 of each, none for #1
    forks = store.conversations(result.run_id)
    replies = [store.messages(c["id"])[3]["content"] for c in forks]
    assert len(set(replies)) > 1  # the seeds draw different continuations from the same moment
    assert len({_seed(c) for c in forks}) == 4


def test_a_fork_at_the_offers_reply_is_judged_again_by_the_runs_judge(cli, store, models_file, fake_provider,
                                                                     tmp_db_url):
    from tests.engine.conftest import TEST_PROTOCOLS

    fake_provider.add_rule(model="claude-fake", reply='decline\n"I would rather not"')
    fake_provider.add_rule(model="fake-gpt", match="story?", reply="I would rather not, but thank you.")
    run = cli("run", TEST_PROTOCOLS / "offer-judge.yaml", "-m", "fake-gpt", "--models", models_file)
    assert run.exit_code == 0, run
    (parent,) = store.conversations(run.run_id)
    # the judge is named by the protocol, not a subject: the run's stored models must still know it
    assert "fake-claude" in json.loads(store.run(run.run_id)["models_json"])
    before = len(fake_provider.requests)

    result = _fork(cli, tmp_db_url, parent["id"], "--at", 1, "-n", 2)  # the offer's own reply, sampled again
    assert result.exit_code == 0, result
    assert sorted(r.model for r in fake_provider.requests[before:]) == ["claude-fake"] * 2 + ["fake-gpt"] * 4
    for conv in store.conversations(result.run_id):
        assert (conv["status"], conv["stop_reason"]) == ("done", "completed"), conv["stop_detail"]
        (offer,) = store.offers(conv["id"])
        assert (offer["reply_message_idx"], offer["classification"], offer["method"]) == (
            1, "decline", "judge:anthropic/claude-fake")
    again = cli("rerun", run.run_id, "--db", tmp_db_url)  # the same holds for a rerun (and a resume) of the run
    assert again.exit_code == 0, again
    assert {c["status"] for c in store.conversations(again.run_id)} == {"done"}
