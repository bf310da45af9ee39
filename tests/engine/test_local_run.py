"""The embedded local model through the whole engine: the README's first command, made short for CI."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from runner.cli import app

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_four_conversations_on_the_local_model_store_real_text_and_telemetry(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    result = CliRunner().invoke(app, ["run", str(ROOT / "tests/data/protocols/local-smoke.yaml"), "--db", str(db)])
    assert result.exit_code == 0, result.output
    with sqlite3.connect(db) as c:
        convs = c.execute("select id, status, litellm_model, vendor, simulated, turns, tokens_in, tokens_out "
                          "from conversations").fetchall()
        replies = c.execute("select content, latency_ms, ttft_ms, tokens_in, tokens_out, cost, request_json "
                            "from messages where role = 'assistant'").fetchall()
        second_prompts = [r[0] for r in c.execute("select content from messages where role = 'user' and idx = 2")]
    assert len(convs) == 4
    assert all(s == "done" and m == "local/gemma-3-270m" and v == "local" and sim == 0 for _, s, m, v, sim, *_ in convs)
    assert len(replies) in range(4, 9)  # a stop phrase may end a conversation after one reply
    for content, latency, ttft, tin, tout, cost, request in replies:
        assert latency > 0 and ttft is not None and 0 < ttft <= latency
        assert tin > 10 and 0 < tout <= 16  # counted by the model's tokenizer, capped by max_tokens
        assert cost == 0.0
        assert '"seed"' in request
    assert any(r[0].strip() for r in replies)
    # telemetry reached the template with the real figures of the first reply
    for prompt in second_prompts:
        m = re.match(r"Last reply was (\d+) tokens in (\d+) ms", prompt)
        assert m and 0 < int(m.group(1)) <= 16 and int(m.group(2)) > 0
