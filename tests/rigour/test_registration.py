"""`latitude register` freezes a study as one hashed record; `latitude run --registration` lists, stores and
prints every deviation (never silently allowed), `--strict` refuses; rerun and resume keep the registration."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from runner.rigour.registration import canonical
from runner.store.records import HypothesesRecord, RegisteredAnalysis, RegisteredCodebook, RegisteredProtocol

from .conftest import Study


def stored_hash(study: Study, registration: str) -> tuple[str, bytes]:
    (sha, p, h, c, a), = study.rows("select sha256, protocol_json, hypotheses_json, codebook_json, analysis_json "
                                    "from registrations where id = ?", registration)
    body = canonical(RegisteredProtocol.model_validate_json(p), HypothesesRecord.model_validate_json(h),
                     RegisteredCodebook.model_validate_json(c), RegisteredAnalysis.model_validate_json(a))
    return sha, body


def test_register_freezes_protocol_files_models_hypotheses_codebook_and_analysis(study: Study) -> None:
    reg = study.register()
    (name, created, protocol_json, hyp_json, book_json, analysis_json), = study.rows(
        "select name, created_at, protocol_json, hypotheses_json, codebook_json, analysis_json from registrations")
    assert name == "free-time" and created
    protocol = RegisteredProtocol.model_validate_json(protocol_json)
    # the same shape a run stores: plan summary with its snapshot, and the aliases used
    assert protocol.plan["replicates"] == 6 and protocol.plan["conditions"] == ["plain", "warm"]
    assert protocol.plan["conversations"] == 24
    files = protocol.plan["snapshot"]["files"]
    assert [Path(k).name for k in files] == ["system.md"]
    assert "There is no task" in next(iter(files.values()))
    assert protocol.models == {"sim-maker": {"model": "sim/maker", "timeout_s": 120.0, "extra": {}, "transport": "litellm",
                                             "batch_fallback": "none", "stream": True, "prompt_cache": True, "cache_ttl": "5m"},
                               "sim-functional": {"model": "sim/functional", "timeout_s": 120.0, "extra": {},
                                                  "transport": "litellm", "batch_fallback": "none", "stream": True, "prompt_cache": True,
                                                  "cache_ttl": "5m"}}
    hyps = HypothesesRecord.model_validate_json(hyp_json)
    assert [(h.id, h.code, h.direction, h.test, h.alpha) for h in hyps.hypotheses] == [
        ("H1", "visualiser", "greater", "fisher", 0.05), ("H2", "practical", "differs", "two-proportion", 0.05)]
    assert hyps.hypotheses[0].groups == {"by": "model", "compare": ["sim-maker", "sim-functional"]}
    book = RegisteredCodebook.model_validate_json(book_json)
    assert book.name == "free-time" and book.codes == ["visualiser", "practical", "gratitude"]
    assert book.sha256 == hashlib.sha256((book.yaml or "").encode()).hexdigest()
    assert RegisteredAnalysis.model_validate_json(analysis_json).commands == [
        "latitude code RUN --judge sim-judge --codebook codebook.yaml", "latitude report RUN"]
    sha, body = stored_hash(study, reg)
    assert sha == hashlib.sha256(body).hexdigest()
    again = json.loads(study.latitude("register", str(study.protocol), "--hypotheses", str(study.hypotheses),
                                      "--codebook", str(study.codebook), "--analysis", str(study.analysis),
                                      "--format", "json").output)
    assert again["sha256"] == sha and again["id"] != reg and again["conversations"] == 24
    assert again["hypotheses"] == ["H1", "H2"] and again["codebook"] == "free-time (3 codes)"


def test_same_inputs_same_hash_from_anywhere_and_one_character_changes_it(study: Study, tmp_path: Path) -> None:
    first = study.register()
    second = study.register()
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(study.root, elsewhere, ignore=shutil.ignore_patterns("t.db*"))
    moved = study.latitude("register", str(elsewhere / "study.yaml"), "--hypotheses", str(elsewhere / "hypotheses.yaml"),
                           "--codebook", str(elsewhere / "codebook.yaml"), "--analysis", str(elsewhere / "analysis.txt"))
    hashes = [r[0] for r in study.rows("select sha256 from registrations order by created_at, rowid")]
    assert len(hashes) == 3 and len(set(hashes)) == 1, hashes
    assert first != second and hashes[0] in moved.output
    study.edit("prompts/system.md", "no task", "no task at all")
    study.register()
    study.edit("prompts/system.md", "no task at all", "no task")
    study.edit("hypotheses.yaml", "direction: greater", "direction: less")
    study.register()
    hashes = [r[0] for r in study.rows("select sha256 from registrations order by created_at, rowid")]
    assert len(set(hashes)) == 3  # the included file's text and the hypotheses are both in the hash


def test_no_secret_reaches_the_record(study: Study, monkeypatch: pytest.MonkeyPatch) -> None:
    secret, inline = "sk-test-registered-9c1f33e07b2a4d55", "sk-inline-key-0a9b8c7d6e5f4321"
    monkeypatch.setenv("MAKER_KEY", secret)
    monkeypatch.setenv("SOME_OTHER_TOKEN", "tok-unrelated-7e6d5c4b3a")
    (study.root / "models.yaml").write_text(
        "models:\n  maker:\n    model: sim/maker\n    api_key_env: MAKER_KEY\n"
        f"    extra: {{api_key: {inline}, top_k: 5}}\n")
    study.edit("study.yaml", "models: [sim-maker, sim-functional]", "models: [maker, sim-functional]")
    study.edit("prompts/system.md", "There is no task", f"There is no task (key {secret})")  # pasted by mistake
    study.edit("study.yaml", "description: Unstructured", "description: (token tok-unrelated-7e6d5c4b3a) Unstructured")
    study.edit("hypotheses.yaml", "compare: [sim-maker, sim-functional]", "compare: [maker, sim-functional]")
    study.analysis.write_text(f"OPENAI_API_KEY={secret} latitude report RUN\n")
    reg = study.register("--models", str(study.root / "models.yaml"))
    (protocol_json,), = study.rows("select protocol_json from registrations where id = ?", reg)
    protocol = RegisteredProtocol.model_validate_json(protocol_json)
    assert protocol.models["maker"]["api_key_env"] == "MAKER_KEY"  # the variable's name is kept
    assert protocol.models["maker"]["extra"] == {"api_key": "<redacted>", "top_k": 5}
    assert "<redacted:MAKER_KEY>" in next(iter(protocol.plan["snapshot"]["files"].values()))
    assert "<redacted:SOME_OTHER_TOKEN>" in protocol.plan["snapshot"]["protocol"]["description"]
    assert "<redacted:SOME_OTHER_TOKEN>" in protocol.protocol_text
    (analysis_json,), = study.rows("select analysis_json from registrations where id = ?", reg)
    assert RegisteredAnalysis.model_validate_json(analysis_json).commands == [
        "OPENAI_API_KEY=<redacted:MAKER_KEY> latitude report RUN"]
    for path in study.root.glob("t.db*"):
        data = path.read_bytes()
        assert secret.encode() not in data and inline.encode() not in data
        assert b"tok-unrelated-7e6d5c4b3a" not in data


def test_a_key_inside_an_endpoint_url_is_redacted() -> None:
    """A proxy URL may carry its key (``https://user:KEY@host``, ``?api_key=KEY``): never in a record."""
    from runner.rigour.registration import redact

    models = {"m": {"model": "openai/gpt-4o", "api_base": "https://ana:sk-live-0123456789@proxy.example/v1"},
              "n": {"model": "openai/gpt-4o", "api_base": "https://proxy.example/v1?api_key=sk-live-9876543210&x=1"},
              "o": {"model": "openai/gpt-4o", "api_base": "http://localhost:8080/v1"}}
    out = redact(models, {})
    assert out["m"]["api_base"] == "https://ana:<redacted>@proxy.example/v1"
    assert out["n"]["api_base"] == "https://proxy.example/v1?api_key=<redacted>&x=1"
    assert out["o"]["api_base"] == "http://localhost:8080/v1"


@pytest.mark.parametrize(("text", "expected"), [
    ("hypotheses:\n  - id: H1\n    code: visualiser\n    groups: {by: model, compare: [sim-maker, sim-functional]}\n"
     "    test: fisher\n",
     ["hypotheses.yaml:2:5: hypotheses[0].direction: required key `direction` is missing"]),
    ("hypotheses:\n  - id: H1\n    code: visualiser\n    groups: {by: model, compare: [sim-maker, sim-functional]}\n"
     "    direction: bigger\n    test: t-test\n    alpha: 2\n",
     ["hypotheses.yaml:5:16: hypotheses[0].direction: Input should be 'greater', 'less' or 'differs'",
      "hypotheses.yaml:6:11: hypotheses[0].test: Input should be 'fisher', 'two-proportion' or 'bradley-terry'",
      "hypotheses.yaml:7:12: hypotheses[0].alpha: Input should be less than or equal to 0.5"]),
    ("hypotheses:\n  - id: H1\n    code: visualiser\n    direction: greater\n    test: bradley-terry\n",
     ["hypotheses.yaml:2:5: hypotheses[0]: a code hypothesis is tested with fisher or two-proportion, not bradley-terry"]),
    ("hypotheses:\n  - id: H1\n    code: curiosity\n    groups:\n      by: model\n      compare: [sim-maker, sim-gpt]\n"
     "    direction: greater\n    test: fisher\n",
     ["hypotheses.yaml:3:11: hypotheses[0].code: code `curiosity` is not in the registered codebook",
      "hypotheses.yaml:6:28: hypotheses[0].groups.compare[1]: the plan runs no model `sim-gpt`"]),
    ("hypotheses:\n  - id: H1\n    preference: {a: x, b: y}\n    direction: greater\n    test: bradley-terry\n",
     ["hypotheses.yaml:3:21: hypotheses[0].preference.a: the protocol offers no option `x`"]),
    ("hypotheses: []\n", ["hypotheses.yaml:1:1: hypotheses: List should have at least 1 item after validation"]),
])
def test_a_bad_hypotheses_file_is_located(study: Study, text: str, expected: list[str]) -> None:
    study.hypotheses.write_text(text)
    result = study.latitude("register", str(study.protocol), "--hypotheses", "hypotheses.yaml",
                            "--codebook", str(study.codebook), code=1)
    for line in expected:
        assert line in result.output, result.output
    assert not study.db.exists() or study.rows("select count(*) from registrations") == [(0,)]


def test_a_run_without_deviations_says_so_and_stores_none(study: Study) -> None:
    reg = study.register()
    result = study.run(reg, "--strict")
    assert f"registration {reg} (free-time" in result.output and "no deviations" in result.output
    (run,) = study.run_ids()
    assert study.rows("select registration_id, status from runs") == [(reg, "done")]
    assert study.rows("select count(*) from deviations") == [(0,)]
    assert json.loads(study.rows("select options_json from runs")[0][0])["registration"] == reg
    assert study.rows("select count(*) from conversations where run_id = ? and status = 'done'", run) == [(24,)]


def test_every_deviation_is_listed_stored_and_printed_before_the_run(study: Study) -> None:
    reg = study.register()
    study.edit("study.yaml", "Would you like to make something others could see later?",
               "Would you like to make something that others could see later on?")
    study.edit("study.yaml", "  - name: warm\n", "  - name: cold\n    vars: {greeting: \"Right.\"}\n  - name: warm\n")
    study.edit("prompts/system.md", "you may do whatever you like", "you may do anything you like")
    (study.root / "models.yaml").write_text("models:\n  sim-maker:\n    model: sim/maker\n    temperature: 0.3\n"
                                            "  sim-other:\n    model: sim/functional\n")
    result = study.run(reg, "--replicates", "2", "-m", "sim-maker", "-m", "sim-other",
                       "--models", str(study.root / "models.yaml"))
    out = result.output
    assert out.index("deviations") < out.index("run id:")  # printed before the run starts
    rows = study.rows("select kind, path, registered, actual, diff from deviations order by id")
    kinds = [(k, p) for k, p, *_ in rows]
    assert kinds == [
        ("replicates_changed", "replicates"),
        ("model_removed", "models.sim-functional"),
        ("model_added", "models.sim-other"),
        ("sampling_changed", "models.sim-maker.temperature"),
        ("condition_added", "protocol.conditions.cold"),
        ("prompt_changed", "protocol.steps[1].say"),
        ("file_changed", "files.prompts/system.md"),
    ]
    by_path = {p: (r, a, d) for _, p, r, a, d in rows}
    assert by_path["replicates"][:2] == ("6", "2")
    assert by_path["models.sim-maker.temperature"][:2] == (None, "0.3")
    prompt = by_path["protocol.steps[1].say"]
    assert json.loads(prompt[0]) == "Would you like to make something others could see later?"
    assert prompt[2] == ("- Would you like to make something others could see later?\n"
                         "+ Would you like to make something that others could see later on?")
    assert by_path["files.prompts/system.md"][2] == (
        "@@ -1 +1 @@\n-You are talking with a researcher. There is no task; you may do whatever you like.\n"
        "+You are talking with a researcher. There is no task; you may do anything you like.")
    (run,) = study.run_ids()
    assert study.rows("select distinct run_id, registration_id from deviations") == [(run, reg)]
    for kind, path in kinds:
        assert f"{kind}  {path}" in out
    (listed_reg,) = json.loads(study.latitude("registrations", "--format", "json").output)
    assert listed_reg["id"] == reg and listed_reg["runs"] == run and listed_reg["hypotheses"] == "H1, H2"
    assert listed_reg["sha256"] == study.rows("select sha256 from registrations")[0][0]
    # the run went ahead: deviations are recorded, not blocked
    assert study.rows("select count(*) from conversations where status = 'done'") == [(2 * 2 * 3,)]
    listed = json.loads(study.latitude("deviations", run, "--format", "json").output)
    assert listed["registration"]["id"] == reg and [d["kind"] for d in listed["deviations"]] == [k for k, _ in kinds]
    tsv = study.latitude("deviations", run, "--format", "tsv").output.splitlines()
    assert tsv[0] == "kind\tpath\tregistered\tactual\tdiff" and len(tsv) == 1 + len(kinds)
    assert "replicates_changed" in study.latitude("deviations", run).output


def test_a_swapped_model_and_a_changed_condition(study: Study) -> None:
    reg = study.register()
    (study.root / "models.yaml").write_text("models:\n  sim-maker:\n    model: sim/functional\n")
    study.edit("study.yaml", "{greeting: \"It is good to see you.\"}", "{greeting: \"Good to see you.\"}")
    study.edit("study.yaml", "max_turns: 6", "max_turns: 8")
    study.edit("study.yaml", "description: Unstructured time,", "description: Free time,")
    study.run(reg, "--models", str(study.root / "models.yaml"))
    rows = study.rows("select kind, path, registered, actual from deviations order by id")
    assert rows[0] == ("model_swapped", "models.sim-maker.model", '"sim/maker"', '"sim/functional"')
    assert sorted(rows[1:]) == sorted([
        ("condition_changed", "protocol.conditions.warm.vars.greeting", '"It is good to see you."', '"Good to see you."'),
        ("protocol_changed", "protocol.max_turns", "6", "8"),
        ("protocol_changed", "protocol.description",
         json.dumps("Unstructured time, then an offer to make something; does the model build a visualiser?"),
         json.dumps("Free time, then an offer to make something; does the model build a visualiser?"))])


def test_a_judge_swapped_in_the_models_file_is_a_deviation(study: Study) -> None:
    """A judge reads the outcome (an offer accepted or declined): the model behind its alias is part of
    the registered study like the subjects' models, in the hash and compared before a run."""
    (study.root / "models.yaml").write_text("models:\n  offer-judge:\n    model: sim/judge\n")
    study.edit("study.yaml", "  - say: Would you like to make something others could see later?",
               "  - offer: Would you like to make something others could see later?\n"
               "    classify: {judge: offer-judge}")
    reg = study.register("--models", str(study.root / "models.yaml"))
    (protocol_json,), = study.rows("select protocol_json from registrations where id = ?", reg)
    assert RegisteredProtocol.model_validate_json(protocol_json).models["offer-judge"]["model"] == "sim/judge"
    (study.root / "models.yaml").write_text("models:\n  offer-judge:\n    model: sim/maker\n")
    result = study.run(reg, "--models", str(study.root / "models.yaml"), "--strict", code=1)
    assert "model_swapped  models.offer-judge.model" in result.output, result.output
    assert study.rows("select count(*) from runs") == [(0,)]
    again = study.register("--models", str(study.root / "models.yaml"))
    hashes = {r[0] for r in study.rows("select sha256 from registrations where id in (?, ?)", reg, again)}
    assert len(hashes) == 2


def test_strict_refuses_a_deviating_run_and_writes_nothing(study: Study) -> None:
    reg = study.register()
    study.edit("study.yaml", "replicates: 6", "replicates: 5")
    result = study.run(reg, "--strict", code=1)
    assert "replicates_changed  replicates: 6 -> 5" in result.output
    assert "refusing to start (--strict)" in result.output
    assert study.rows("select count(*) from runs") == [(0,)]
    assert study.rows("select count(*) from deviations") == [(0,)]


def test_an_unknown_registration_is_refused(study: Study) -> None:
    result = study.run("nosuchid", code=1)
    assert "no registration nosuchid" in result.output
    assert study.rows("select count(*) from runs") == [(0,)]


def test_rerun_keeps_the_registration_and_records_its_deviations_again(study: Study) -> None:
    reg = study.register()
    study.edit("study.yaml", "replicates: 6", "replicates: 1")
    study.run(reg)
    first = study.run_ids()[0]
    result = study.latitude("rerun", first, "--strict", code=1)
    assert "refusing to start (--strict)" in result.output and len(study.run_ids()) == 1
    result = study.latitude("rerun", first)
    assert "replicates_changed  replicates: 6 -> 1" in result.output
    second = study.run_ids()[1]
    assert study.rows("select registration_id from runs where id = ?", second) == [(reg,)]
    assert study.rows("select run_id, kind from deviations order by id") == [
        (first, "replicates_changed"), (second, "replicates_changed")]


def test_resume_keeps_the_registration_and_shows_its_deviations(study: Study) -> None:
    reg = study.register()
    study.edit("study.yaml", "replicates: 6", "replicates: 1")
    study.run(reg)
    (run,) = study.run_ids()
    with __import__("sqlite3").connect(study.db) as c:  # as a kill would leave it: one conversation unfinished
        c.execute("update conversations set status = 'cancelled' where id = (select id from conversations "
                  "where run_id = ? order by seq limit 1)", (run,))
        c.execute("update runs set status = 'interrupted'")
    result = study.latitude("resume", run)
    assert "replicates_changed  replicates: 6 -> 1" in result.output
    assert study.rows("select registration_id, status from runs") == [(reg, "done")]
    assert study.rows("select count(*) from deviations") == [(1,)]


def test_deviations_are_written_in_the_runs_own_transaction(study: Study) -> None:
    """A run that names a registration never exists without its deviations: when they cannot be written
    (here: they name a registration the store lacks, a foreign-key failure), the run is not written either."""
    from sqlalchemy.exc import IntegrityError

    from runner.engine import runs
    from runner.plan import make_plan
    from runner.protocol import load
    from runner.rigour.registration import Deviation, deviation_rows

    study.register()
    plan = make_plan(load(study.protocol))
    found = [Deviation("replicates", "replicates_changed", 6, 5)]
    with pytest.raises(IntegrityError):
        runs.prepare_start(plan, f"sqlite:///{study.db}", {}, concurrency=1,
                           also=lambda run_id: deviation_rows(run_id, "missing", found))
    assert study.rows("select count(*) from runs") == [(0,)]
    assert study.rows("select count(*) from conversations") == [(0,)]
    assert study.rows("select count(*) from deviations") == [(0,)]
