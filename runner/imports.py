"""Bring in transcripts made elsewhere, so published conversations can be tagged beside new runs.

Formats, recognised by content:
- latitude's own jsonl export (one conversation per line);
- OpenAI-style message lists: a JSON object with `messages`, a JSON list of such objects
  (or of message lists), or jsonl with one such object per line;
- Markdown with speaker headings (`## User`, `### Assistant`, `# Claude`...), other
  headings separating conversations.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .analysis.echo import echo_columns, score_messages
from .store.tables import ChoiceRow, ConversationRow, MessageRow, RunRow, StopDetectionRow, utcnow

USER_NAMES = {"user", "human", "me", "researcher", "experimenter", "interviewer", "you"}
ASSISTANT_NAMES = {"assistant", "model", "ai", "claude", "gpt", "chatgpt", "gemini", "llama", "qwen", "bot"}
MAX_IMPORT_BYTES = 200 * 1024 * 1024


class TranscriptImportError(ValueError):
    """A file that could not be read as transcripts; the message says where."""


@dataclass
class Imported:
    """One conversation read from a file."""

    messages: list[dict[str, Any]]
    model: str = "imported"
    condition: str = "imported"
    meta: dict[str, Any] = field(default_factory=dict)
    choices: list[dict[str, Any]] = field(default_factory=list)
    """Pairwise choices of a latitude export (`choices` of each line), carried into the store."""


def read(path: Path) -> list[Imported]:
    if path.stat().st_size > MAX_IMPORT_BYTES:
        raise TranscriptImportError(f"{path}: larger than {MAX_IMPORT_BYTES:,} bytes")
    text = path.read_text(encoding="utf-8")
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        return _read_json(path, text)
    return _read_markdown(path, text)


def _read_json(path: Path, text: str) -> list[Imported]:
    try:
        docs: list[Any] = [json.loads(text)]
    except json.JSONDecodeError:
        docs = []
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                docs.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise TranscriptImportError(f"{path}:{n}: not JSON ({exc.msg})") from None
    if len(docs) == 1 and isinstance(docs[0], list) and docs[0] and isinstance(docs[0][0], (dict, list)) \
            and not _is_message(docs[0][0]):
        docs = docs[0]
    out = []
    for i, doc in enumerate(docs, start=1):
        if isinstance(doc, list):
            doc = {"messages": doc}
        if not isinstance(doc, dict) or not isinstance(doc.get("messages"), list):
            raise TranscriptImportError(f"{path}: item {i} has no `messages` list")
        messages = []
        for j, m in enumerate(doc["messages"]):
            if not _is_message(m):
                raise TranscriptImportError(f"{path}: item {i}, message {j} needs `role` and `content`")
            content = m["content"]
            if isinstance(content, list):  # content blocks
                content = "".join(b.get("text", "") for b in content if isinstance(b, dict))
            messages.append({"role": _role(m["role"]), "speaker": m.get("speaker") or _speaker(m["role"]),
                             "content": str(content), "reasoning": m.get("reasoning"),
                             "latency_ms": m.get("latency_ms"), "ttft_ms": m.get("ttft_ms"),
                             "tokens_in": m.get("tokens_in"), "tokens_out": m.get("tokens_out"),
                             "cost": m.get("cost")})
        out.append(Imported(messages=messages, model=str(doc.get("model") or "imported"),
                            condition=str(doc.get("condition") or "imported"),
                            meta={k: doc[k] for k in ("id", "run_id", "protocol", "litellm_model") if k in doc},
                            choices=_choices(path, i, doc.get("choices"))))
    return out


def _choices(path: Path, item: int, raw: Any) -> list[dict[str, Any]]:
    """The `choices` of an exported conversation, checked against the export schema."""
    if not raw:
        return []
    from pydantic import ValidationError

    from .export.schema import ExportChoice

    try:
        return [ExportChoice.model_validate(c).model_dump() for c in raw]
    except ValidationError as exc:
        raise TranscriptImportError(f"{path}: item {item} has a malformed choice: {exc.errors()[0]['msg']}") from None


def _is_message(m: Any) -> bool:
    return isinstance(m, dict) and "role" in m and "content" in m


def _role(role: str) -> str:
    r = role.lower()
    if r in ("system", "developer"):
        return "system"
    if r in ("assistant", "model", "a", "b") or r in ASSISTANT_NAMES:
        return "assistant"
    if r == "tool":
        return "tool"
    return "user"


def _speaker(role: str) -> str:
    r = role.lower()
    return "model" if _role(r) == "assistant" and r not in ("a", "b") else r if r in ("a", "b") else _role(r)


_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*:?\s*$")


def _read_markdown(path: Path, text: str) -> list[Imported]:
    conversations: list[Imported] = []
    current: Imported | None = None
    msg: dict[str, Any] | None = None
    body: list[str] = []
    fence = False

    def close_message() -> None:
        nonlocal msg, body
        if msg is not None and current is not None:
            msg["content"] = "\n".join(body).strip()
            current.messages.append(msg)
        msg, body = None, []

    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fence = not fence
        m = None if fence else _HEADING.match(line)
        if m:
            name = m.group(2).strip().strip("*").lower()
            role = "user" if name in USER_NAMES else "assistant" if name in ASSISTANT_NAMES else \
                "system" if name == "system" else None
            if role is not None:
                close_message()
                if current is None:
                    current = Imported(messages=[])
                    conversations.append(current)
                msg = {"role": role, "speaker": "model" if role == "assistant" else role}
                if role == "assistant" and name not in ("assistant", "model", "ai"):
                    current.model = name
                continue
            close_message()
            current = Imported(messages=[], meta={"title": m.group(2).strip()})
            conversations.append(current)
            continue
        if msg is not None:
            body.append(line)
    close_message()
    conversations = [c for c in conversations if c.messages]
    if not conversations:
        raise TranscriptImportError(f"{path}: no speaker headings found (expected e.g. `## User` and `## Assistant`)")
    return conversations


def stop_rule(phrases: list[str] | None = None, protocol: Any = None, match: str | None = None) -> Any:
    """The stop rule to apply to imported transcripts: `--stop-phrase` values, or a protocol's rule."""
    from .protocol import schema

    rule = None
    if phrases:
        rule = schema.Stop(phrases=phrases)
    elif protocol is not None:
        rule = protocol.stop
    if rule is not None and match is not None:
        rule = rule.model_copy(update={"match": match})
    return rule


def rows(path: Path, items: list[Imported], run_id: str, new_id: Any, model: str | None = None,
         stop: Any = None) -> list[Any]:
    """Table rows for an imported file: one run, its conversations and messages, and, with a stop
    rule (`schema.Stop`), the stop detection of every transcript (detection 1, source ``import``)."""
    text = path.read_text(encoding="utf-8")
    out: list[Any] = [RunRow(
        id=run_id, protocol_name=f"import:{path.name}", protocol_version="1", protocol_path=str(path.resolve()),
        protocol_text="", protocol_hash=hashlib.sha256(text.encode()).hexdigest(),
        plan_json=json.dumps({"imported": len(items)}), models_json="{}",
        options_json=json.dumps({"import": str(path)}), latitude_version="import", litellm_version="",
        status="done", ended_at=utcnow(),
    )]
    if stop is not None:
        out.append(StopDetectionRow(run_id=run_id, version=1, source="import", rule_json=stop.model_dump_json(),
                                    note=f"latitude import {path.name}"))
    for seq, item in enumerate(items):
        cid = new_id()
        replies = [m for m in item.messages if m["role"] == "assistant"]
        name = model or item.model
        conv_at = len(out)
        out.append(ConversationRow(
            id=cid, run_id=run_id, seq=seq, model_alias=name, litellm_model=item.meta.get("litellm_model", name),
            vendor="imported", condition=item.condition, replicate=seq + 1, params_json=json.dumps(item.meta),
            kind="single", status="done", stop_reason="imported", turns=len(replies),
            tokens_in=sum(m.get("tokens_in") or 0 for m in replies),
            tokens_out=sum(m.get("tokens_out") or 0 for m in replies),
            cost=sum(m.get("cost") or 0.0 for m in replies), ended_at=utcnow(),
        ))
        scores = score_messages((m["role"], m["speaker"], m["content"]) for m in item.messages)
        for idx, (m, scored) in enumerate(zip(item.messages, scores, strict=True)):
            out.append(MessageRow(
                conversation_id=cid, idx=idx, role=m["role"], speaker=m["speaker"], step="import",
                content=m["content"], reasoning=m.get("reasoning"), latency_ms=m.get("latency_ms"),
                ttft_ms=m.get("ttft_ms"), tokens_in=m.get("tokens_in"), tokens_out=m.get("tokens_out"),
                cost=m.get("cost"), **echo_columns(scored),
            ))
        if stop is not None:
            out.extend(_stop_rows(out[conv_at], item, stop))
        out.extend(ChoiceRow(conversation_id=cid, **c) for c in item.choices)
    return out


def _stop_rows(conv: ConversationRow, item: Imported, stop: Any) -> list[Any]:
    """Candidate stops of one imported transcript; its first used phrase becomes the conversation's stop."""
    from .engine import stops
    from .engine.stop_flow import needs_review, review_item
    from .restop import candidate_rows

    turns = [stops.Turn(i, m["role"], m["content"], "import") for i, m in enumerate(item.messages)]
    cands = candidate_rows(conv.id, turns, stop, 1)
    counted = next((c for c in cands if c.counted), None)
    if counted is not None:
        conv.stop_reason, conv.stop_detail, conv.stop_message_idx = "stop_phrase", counted.text, counted.message_idx
    return [*cands, *(review_item(c) for c in cands if needs_review(c))]
