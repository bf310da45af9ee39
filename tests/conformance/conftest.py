"""Conformance helpers: one fresh fake provider per transport variant (so response and
request ids line up), a models file per variant, and the stored records of a run."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import StoreView
from tests.fakeprovider import FakeProvider

OPENAI_MODEL = "openai/gpt-4o-mini"
"""A model the price map knows, so cost is compared too."""
ANTHROPIC_MODEL = "anthropic/claude-sonnet-4-5"


@dataclass(frozen=True)
class Variant:
    """One way of sending the same requests."""

    transport: str
    """`litellm` or `native`."""
    stream: bool
    """Whether the reply is streamed."""

    @property
    def name(self) -> str:
        return f"{self.transport}-{'stream' if self.stream else 'body'}"


LITELLM = Variant("litellm", True)
NATIVE = Variant("native", True)
NATIVE_BODY = Variant("native", False)
VARIANTS = (LITELLM, NATIVE, NATIVE_BODY)


def models_text(fp: FakeProvider, v: Variant, **extra: Any) -> str:
    fields = "".join(f"    {k}: {val}\n" for k, val in {"transport": v.transport, "stream": str(v.stream).lower(),
                                                          **extra}.items())
    return (
        "models:\n"
        f"  gpt:\n    model: {OPENAI_MODEL}\n    api_base: {fp.openai_base}\n    api_key_env: FAKE_OPENAI_KEY\n{fields}"
        f"  claude:\n    model: {ANTHROPIC_MODEL}\n    api_base: {fp.anthropic_base}\n"
        f"    api_key_env: FAKE_ANTHROPIC_KEY\n{fields}"
    )


@pytest.fixture
def servers() -> Iterator[dict[Variant, FakeProvider]]:
    """A fresh fake provider per variant: the same requests get the same ids on each."""
    fps = {v: FakeProvider().start() for v in VARIANTS}
    try:
        yield fps
    finally:
        for fp in fps.values():
            fp.stop()


_COMPARED = ("role", "speaker", "content", "reasoning", "tool_calls_json", "finish_reason", "tokens_in", "tokens_out",
             "cached_tokens", "cost", "request_id", "cache_write_tokens", "cache_ttl", "input_cost",
             "input_cost_uncached")


def _request(raw: str | None) -> Any:
    if not raw:
        return None
    data = json.loads(raw)
    data.get("params", {}).pop("api_base", None)  # each variant has its own server
    if data.get("prompt_cache_key"):  # a hash of the conversation id, which each run draws afresh
        data["prompt_cache_key"] = "lat-<conversation>"
    return data


def _tool_calls(raw: str | None) -> Any:
    calls = json.loads(raw) if raw else None
    for c in calls or []:  # arguments compared as JSON: a body and a stream may space them apart
        c["function"]["arguments"] = json.loads(c["function"]["arguments"] or "{}")
    return calls


def records(db: Path, run_id: str) -> list[dict[str, Any]]:
    """What the run stored, per conversation: outcome and every message's compared fields."""
    view = StoreView(db)
    out = []
    for conv in view.conversations(run_id):
        msgs = []
        for m in view.messages(conv["id"]):
            row = {k: m[k] for k in _COMPARED if k in m}
            row["tool_calls_json"] = _tool_calls(m.get("tool_calls_json"))
            row["request"] = _request(m.get("request_json"))
            msgs.append(row)
        out.append({"status": conv["status"], "stop_reason": conv["stop_reason"], "turns": conv["turns"],
                    "messages": msgs})
    return out


@pytest.fixture
def run_variant(cli, tmp_path: Path, fake_keys, servers) -> Callable[..., tuple[Any, list[dict[str, Any]]]]:
    """``run_variant(variant, protocol, alias, replicates=1, **alias_fields)`` → (CLI result, records)."""

    def run(v: Variant, protocol: Path, alias: str, replicates: int = 1, **extra: Any):
        fp = servers[v]
        models = tmp_path / f"models-{v.name}.yaml"
        models.write_text(models_text(fp, v, **extra), encoding="utf-8")
        db = tmp_path / f"{v.name}.db"
        result = cli("run", protocol, "-m", alias, "--replicates", str(replicates), "--concurrency", "1",
                     "--models", models, db=f"sqlite:///{db}")
        return result, records(db, result.run_id)

    return run
