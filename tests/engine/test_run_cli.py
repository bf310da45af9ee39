"""The run-facing CLI: exit codes, secrets kept out of every output, model text shown literally."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from tests.conftest import FAKE_ANTHROPIC_KEY, FAKE_OPENAI_KEY, models_yaml
from tests.engine.conftest import TEST_PROTOCOLS

OTHER_KEY = "cred-test-fake-77c0e2b9a1d4e5f6"
"""Held by a variable whose name does not look like a key (`FAKE_GPT_CREDENTIAL`)."""


# ----------------------------------------------------------------------------- exit codes


def test_success_exits_0_and_prints_the_run_id(cli, store, models_file, fake_provider):
    result = cli("run", TEST_PROTOCOLS / "two-turns.yaml", "-m", "fake-gpt", "--models", models_file)
    assert result.exit_code == 0, result
    assert store.run(result.run_id)["status"] == "done"


def test_invalid_protocol_exits_1(cli, tmp_path, models_file, fake_provider):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ndescription: x\nsteps:\n  - say: hello {{ nope }}\n  - shout: hi\n")
    result = cli("run", bad, "-m", "fake-gpt", "--models", models_file)
    assert result.exit_code == 1, result
    assert "bad.yaml:" in result.stderr
    assert fake_provider.requests == []


def test_unknown_model_exits_1(cli, models_file, fake_provider):
    result = cli("run", TEST_PROTOCOLS / "two-turns.yaml", "-m", "no-such-alias", "--models", models_file)
    assert result.exit_code == 1, result
    assert "no-such-alias" in result.stderr
    assert fake_provider.requests == []


def test_errored_conversation_exits_2(cli, store, models_file, fake_provider):
    fake_provider.inject("401", count=1, model="fake-gpt")
    result = cli("run", TEST_PROTOCOLS / "two-turns.yaml", "-m", "fake-gpt", "-m", "fake-claude",
                 "--models", models_file)
    assert result.exit_code == 2, result
    statuses = {c["model_alias"]: (c["status"], c["stop_reason"]) for c in store.conversations(result.run_id)}
    assert statuses == {"fake-gpt": ("error", "error:auth"), "fake-claude": ("done", "completed")}
    assert store.run(result.run_id)["status"] == "done"


def test_bad_retry_setting_exits_1(cli, models_file, fake_provider, monkeypatch):
    monkeypatch.setenv("LATITUDE_RETRY_ATTEMPTS", "lots")
    result = cli("run", TEST_PROTOCOLS / "two-turns.yaml", "-m", "fake-gpt", "--models", models_file)
    assert result.exit_code == 1, result
    assert "LATITUDE_RETRY_ATTEMPTS" in result.stderr
    assert fake_provider.requests == []


# ----------------------------------------------------------------------------- secrets


@pytest.fixture
def secret_models(tmp_path: Path, fake_provider, fake_keys, monkeypatch) -> Path:
    monkeypatch.setenv("FAKE_GPT_CREDENTIAL", OTHER_KEY)
    monkeypatch.setenv("LATITUDE_RETRY_ATTEMPTS", "2")
    path = tmp_path / "models.yaml"
    path.write_text(
        models_yaml(fake_provider)
        + "  fake-gpt-2:\n"
        + "    model: openai/fake-gpt-2\n"
        + f"    api_base: {fake_provider.openai_base}\n"
        + "    api_key_env: FAKE_GPT_CREDENTIAL\n"
    )
    return path


def test_keys_appear_in_no_output(cli, store, tmp_db_path, secret_models, fake_provider, capfd, caplog):
    caplog.set_level(logging.WARNING)
    captured: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            captured.append(self.format(record))

    keep = Keep(level=logging.DEBUG)
    loggers = [logging.getLogger(n) for n in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "httpx", "runner")]
    for lg in loggers:
        lg.addHandler(keep)
    # errors whose text carries the keys, the way a provider may echo a bad key or a header
    echo = f"Incorrect API key provided: {FAKE_OPENAI_KEY} / {FAKE_ANTHROPIC_KEY} / {OTHER_KEY}"
    try:
        fake_provider.inject("401", count=1, model="fake-gpt", message=echo)
        fake_provider.inject("500", count=2, model="claude-fake", message=echo)
        fake_provider.inject("500", count=2, model="fake-gpt-2", message=echo)
        run = cli("run", TEST_PROTOCOLS / "two-turns.yaml", "-m", "fake-gpt", "-m", "fake-claude",
                  "-m", "fake-gpt-2", "--replicates", "2", "--concurrency", "1", "--models", secret_models)
        assert run.exit_code == 2, run
        run_id = run.run_id
        convs = store.conversations(run_id)
        errored = [c for c in convs if c["status"] == "error"]
        assert sorted(c["stop_reason"] for c in errored) == ["error:auth", "error:server", "error:server"]
        for c in errored:
            assert "Incorrect API key provided: " in c["stop_detail"]
            assert OTHER_KEY not in c["stop_detail"] and "***" in c["stop_detail"]
        assert sum(c["status"] == "done" for c in convs) == 3
        exports = [cli("export", "transcripts", run_id, "--format", f) for f in ("jsonl", "md")]
        assert all(e.exit_code == 0 for e in exports), exports
        assert len(exports[0].stdout.splitlines()) == 6
        models = cli("models", "--models", secret_models, env={"COLUMNS": "200"})
        assert models.exit_code == 0, models
    finally:
        for lg in loggers:
            lg.removeHandler(keep)
    out, err = capfd.readouterr()
    texts = {
        "run output": run.output, "jsonl export": exports[0].output, "md export": exports[1].output,
        "models": models.output, "captured fds": out + err, "log records": "\n".join(captured) + caplog.text,
    }
    blobs = {p.name: p.read_bytes() for p in tmp_db_path.parent.glob(tmp_db_path.name + "*")}
    assert tmp_db_path.name in blobs
    for key in (FAKE_OPENAI_KEY, FAKE_ANTHROPIC_KEY, OTHER_KEY):
        for name, text in texts.items():
            assert key not in text, f"{key} leaked into {name}"
        for name, blob in blobs.items():
            assert key.encode() not in blob, f"{key} leaked into {name}"
    # the server did get the keys (they were sent, just never kept)
    sent = {r.headers.get("authorization", "") + r.headers.get("x-api-key", "") for r in fake_provider.requests}
    assert any(FAKE_OPENAI_KEY in s for s in sent) and any(OTHER_KEY in s for s in sent)
    # `latitude models` says whether each key is set, never its value
    rows = {line.split("│")[1].strip(): line for line in models.stdout.splitlines() if line.count("│") > 3}
    for alias, var in (("fake-gpt", "FAKE_OPENAI_KEY"), ("fake-claude", "FAKE_ANTHROPIC_KEY"),
                       ("fake-gpt-2", "FAKE_GPT_CREDENTIAL")):
        assert var in rows[alias] and "yes" in rows[alias]


def test_models_shows_an_unset_key(cli, secret_models, monkeypatch):
    monkeypatch.delenv("FAKE_ANTHROPIC_KEY")
    result = cli("models", "--models", secret_models)
    assert result.exit_code == 0, result
    row = next(line for line in result.stdout.splitlines() if "fake-claude" in line)
    assert "NO" in row and FAKE_OPENAI_KEY not in result.output


# ----------------------------------------------------------------------------- literal display


def test_show_renders_markup_and_escapes_literally(cli, store, models_file, fake_provider):
    nasty = "[bold red]x[/] and \x1b[31mred\x1b[0m and [link=http://example.com]click[/link]"
    fake_provider.add_rule(reply=nasty)
    run = cli("run", TEST_PROTOCOLS / "two-turns.yaml", "-m", "fake-claude", "--models", models_file)
    assert run.exit_code == 0, run
    (conv,) = store.conversations(run.run_id)
    assert store.messages(conv["id"])[1]["content"] == nasty  # stored exactly as received
    shown = cli("show", conv["id"])
    assert shown.exit_code == 0, shown
    assert "[bold red]x[/]" in shown.stdout and "[link=http://example.com]click[/link]" in shown.stdout
    assert "\x1b" not in shown.stdout and "\\x1b[31mred" in shown.stdout
    md = cli("export", "transcripts", run.run_id, "--format", "md")
    assert "[bold red]x[/]" in md.stdout
    line = json.loads(cli("export", "transcripts", run.run_id, "--format", "jsonl").stdout)
    assert line["messages"][1]["content"] == nasty
