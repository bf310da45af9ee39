"""Judge coding: a judge model reads each conversation (or model turn) and, for each code,
says present or absent with evidence quoted from the transcript.

It calls the judge through the engine's one model client (`runner.engine.client.ModelClient`:
the judge alias's rpm/tpm/concurrency, retries of transport errors, cost, `Retrying` and
`TurnCompleted` events) and drives units with the engine's bounded loop; its progress goes
out as judge events (`JudgeStarted`, `UnitStarted`, `UnitFinished`; `runner.display.RunDisplay`
listens), never as a run's.

The judge's answer is structured output validated against `Verdict` (a JSON schema is
sent as ``response_format`` to OpenAI models and written into the prompt for all). Every
quote must occur in the transcript (whitespace-insensitive); an answer with a quote that
does not, a missing or unknown code, or broken JSON is sent back with the problems listed
and asked again, up to `JudgeOptions.attempts` times. A unit whose answer never validates
is recorded as failed and stores nothing.

Judgments are tags with coder ``judge:<litellm model>@<codebook>v<version>`` and source
``judge`` (present true or false, evidence with turn references, the first quote), never
mixed with human tags; every present code also goes to the review queue as a
``SuggestionRow(kind="judge")``. Resume is free: a unit that already has this coder's
judgment of every requested code is skipped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..engine.events import Emit, JudgeStarted, Retrying, UnitFinished, UnitStarted, ignore
from ..protocol.models_file import ModelAlias
from ..store.records import JudgeSuggestionPayload
from ..store.tables import CodebookRow, CodeRow, ConversationRow, MessageRow, SuggestionRow, TagRow

__all__ = [
    "CodeVerdict",
    "JudgeError",
    "JudgeOptions",
    "JudgeSummary",
    "JudgeUnit",
    "Quote",
    "SelfJudgeError",
    "Unit",
    "Verdict",
    "SYSTEM_PROMPT",
    "build_prompt",
    "check_self_judge",
    "check_verdict",
    "judge_coder",
    "judge_run",
    "parse_verdict",
    "locate_quote",
    "plan_units",
    "render_transcript",
    "resolve_codes",
]

JudgeUnit = Literal["conversation", "turn"]
"""What the judge reads at once: a whole conversation, or one model reply (with the turn before it)."""


class JudgeError(ValueError):
    """Judging cannot start (unknown run or code, empty codebook...)."""


class SelfJudgeError(JudgeError):
    """The judge model is one of the models being judged (refused unless allowed)."""


# ----------------------------------------------------------------------------- the schema


class Quote(BaseModel):
    """A span quoted from the transcript."""

    model_config = ConfigDict(extra="ignore")
    turn: int
    """The ``#`` number of the message it is quoted from, as shown in the transcript."""
    text: str = Field(min_length=1)
    """The exact words, copied from that message."""


class CodeVerdict(BaseModel):
    """The judge's decision on one code."""

    model_config = ConfigDict(extra="ignore")
    code: str
    """The code's name, exactly as in the codebook."""
    present: bool
    """Whether the code applies."""
    evidence: str = ""
    """Why, in a sentence or two, citing turns as #N."""
    quotes: list[Quote] = Field(default_factory=list)
    """Exact quotes supporting the decision (at least one when present)."""


class Verdict(BaseModel):
    """The judge's whole answer for one unit."""

    model_config = ConfigDict(extra="ignore")
    judgments: list[CodeVerdict]
    """One entry per code asked about."""


# ----------------------------------------------------------------------------- units


@dataclass(frozen=True, slots=True)
class Unit:
    """What the judge reads in one request."""

    conversation: ConversationRow
    """The conversation."""
    messages: tuple[MessageRow, ...]
    """The messages shown (the whole conversation, or the turn and the message before it)."""
    message_idx: int | None
    """The model reply judged (turn unit), or None (conversation unit)."""

    @property
    def key(self) -> str:
        return self.conversation.id if self.message_idx is None else f"{self.conversation.id}#{self.message_idx}"


def _speaker(m: MessageRow) -> str:
    if m.role == "assistant":
        return "model" if m.speaker in ("model", "assistant") else f"model {m.speaker}"
    if m.role == "tool":
        return "tool result"
    return m.speaker or m.role


def render_transcript(messages: Sequence[MessageRow]) -> str:
    """The transcript as the judge sees it: ``[#idx speaker]`` before each message."""
    parts = []
    for m in messages:
        body = m.content
        if m.tool_calls_json:
            body = (body + "\n" if body else "") + f"(tool calls: {m.tool_calls_json})"
        parts.append(f"[#{m.idx} {_speaker(m)}]\n{body}")
    return "\n\n".join(parts)


def plan_units(conversation: ConversationRow, messages: Sequence[MessageRow], unit: JudgeUnit) -> list[Unit]:
    """The units of one conversation: itself, or each model reply with the message before it."""
    shown = [m for m in messages if m.role != "system"]
    if unit == "conversation":
        return [Unit(conversation, tuple(shown), None)]
    out = []
    for i, m in enumerate(shown):
        if m.role == "assistant" and (m.content or "").strip():
            before = tuple(shown[i - 1:i]) if i else ()
            out.append(Unit(conversation, before + (m,), m.idx))
    return out


# ----------------------------------------------------------------------------- prompt and checks


SYSTEM_PROMPT = (
    "You are a careful qualitative coder. You apply a codebook to transcripts of conversations between a "
    "researcher and a language model. You judge only what the transcript shows, you never guess, and you "
    "support every decision with words copied exactly from the transcript."
)


def _code_block(code: Any) -> str:
    lines = [f"- {code.name}: {code.definition}".rstrip()]
    if code.include:
        lines.append(f"  include: {code.include}")
    if code.exclude:
        lines.append(f"  exclude: {code.exclude}")
    examples = code.examples if hasattr(code, "examples") else json.loads(getattr(code, "examples_json", "[]") or "[]")
    for ex in examples[:5]:
        lines.append(f"  example: {ex}")
    return "\n".join(lines)


def build_prompt(unit: Unit, codes: Sequence[Any]) -> str:
    """The user message asking for one unit's verdict (codes: `Code` models or `CodeRow`s)."""
    focus = ("Judge the WHOLE conversation." if unit.message_idx is None else
             f"Judge ONLY the model's reply #{unit.message_idx}; the message before it is context.")
    schema = json.dumps(Verdict.model_json_schema(), separators=(",", ":"))
    names = ", ".join(c.name for c in codes)
    return (
        f"Codebook (apply each code independently):\n{chr(10).join(_code_block(c) for c in codes)}\n\n"
        f"Transcript (each message starts with [#N speaker]):\n<transcript>\n{render_transcript(unit.messages)}\n"
        f"</transcript>\n\n{focus}\n"
        f"For each of these codes: {names}, decide whether it is present. Give a short evidence sentence citing "
        "messages as #N, and quotes: each quote is the message number and words copied EXACTLY from that "
        "message (no paraphrase, no ellipsis). A present code needs at least one quote.\n"
        "Answer with JSON only, no prose around it, matching this JSON schema:\n"
        f"{schema}\n"
        'Example: {"judgments": [{"code": "NAME", "present": true, "evidence": "In #3 the model ...", '
        '"quotes": [{"turn": 3, "text": "exact words"}]}]}'
    )


_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


def parse_verdict(text: str) -> Verdict:
    """Read the judge's JSON (a surrounding code fence or prose is tolerated). Raises ValueError."""
    raw = text.strip()
    m = _FENCE.match(raw)
    if m:
        raw = m.group(1)
    if not raw.startswith("{"):
        start, end = raw.find("{"), raw.rfind("}")
        if start < 0 or end <= start:
            raise ValueError("the answer has no JSON object")
        raw = raw[start:end + 1]
    try:
        return Verdict.model_validate_json(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:8])
        raise ValueError(f"the JSON does not match the schema: {problems}") from None


def _norm(text: str) -> str:
    text = text.replace("\u201c", '"').replace("\u201d", '"').replace("\u2018", "'").replace("\u2019", "'")
    return " ".join(text.split())


def locate_quote(quote: Quote, messages: Sequence[MessageRow]) -> int | None:
    """The idx of the message the quote occurs in (the one it names first), or None."""
    needle = _norm(quote.text)
    if not needle:
        return None
    ordered = sorted(messages, key=lambda m: (m.idx != quote.turn, m.idx))
    for m in ordered:
        if needle in _norm(m.content or ""):
            return m.idx
    return None


def check_verdict(verdict: Verdict, unit: Unit, codes: Sequence[str]) -> tuple[list[str], dict[str, CodeVerdict]]:
    """Problems with a parsed verdict (empty when it is acceptable), and the verdict per code with
    every quote's turn set to where it really occurs."""
    problems: list[str] = []
    wanted = list(codes)
    seen: dict[str, CodeVerdict] = {}
    for v in verdict.judgments:
        if v.code not in wanted:
            problems.append(f"`{v.code}` is not one of the codes asked about ({', '.join(wanted)})")
            continue
        if v.code in seen:
            problems.append(f"`{v.code}` is judged twice")
            continue
        fixed = []
        for q in v.quotes:
            where = locate_quote(q, unit.messages)
            if where is None:
                problems.append(f"for `{v.code}`, the quote {q.text[:200]!r} does not occur in the transcript "
                                "(copy the words exactly)")
            else:
                fixed.append(Quote(turn=where, text=q.text))
        if v.present and not v.quotes:
            problems.append(f"`{v.code}` is marked present but has no quote")
        seen[v.code] = v.model_copy(update={"quotes": fixed})
    for code in wanted:
        if code not in seen and not any(p.startswith(f"`{code}`") for p in problems):
            problems.append(f"`{code}` is missing: judge every code")
    return problems, seen


# ----------------------------------------------------------------------------- running


def judge_coder(model: ModelAlias | str, codebook: CodebookRow) -> str:
    """The coder name of a judge: ``judge:<litellm model>@<codebook name>v<version>``."""
    name = model.model if isinstance(model, ModelAlias) else model
    return f"judge:{name}@{codebook.name}v{codebook.version}"


@dataclass
class JudgeOptions:
    """How a judge run behaves."""

    unit: JudgeUnit = "conversation"
    """Whole conversations or single model turns."""
    attempts: int = 3
    """Most answers asked for one unit (the first included) before it counts as failed."""
    concurrency: int = 8
    """Most units in flight at once."""
    allow_self_judge: bool = False
    """Let a model judge its own conversations (circular: refused by default)."""
    suggestions: bool = True
    """Put every present code in the review queue."""
    temperature: float | None = 0.0
    """Sampling temperature when the alias sets none."""


@dataclass
class JudgeSummary:
    """What a judge run did."""

    coder: str
    """The judge's coder name."""
    codebook_id: int
    """The codebook version used."""
    units: int = 0
    """Units in the run(s)."""
    skipped: int = 0
    """Units already judged (resume)."""
    judged: int = 0
    """Units judged now."""
    failed: int = 0
    """Units whose answer never validated or whose calls failed."""
    rejected_answers: int = 0
    """Answers sent back (bad quotes, schema problems)."""
    tags: int = 0
    """Tags written."""
    suggestions: int = 0
    """Review-queue items written."""
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    """USD, from litellm's price map (0 for local and simulated models)."""
    errors: list[str] = field(default_factory=list)
    """One line per failed unit."""


def _judged_keys(session: Any, conv_ids: Sequence[str], coder: str) -> dict[tuple[str, int | None], set[str]]:
    from sqlmodel import col, select

    out: dict[tuple[str, int | None], set[str]] = {}
    for i in range(0, len(conv_ids), 500):
        chunk = list(conv_ids[i:i + 500])
        for cid, idx, code in session.exec(
            select(TagRow.conversation_id, TagRow.message_idx, TagRow.code)
            .where(col(TagRow.conversation_id).in_(chunk)).where(TagRow.coder == coder)
            .where(col(TagRow.deleted_at).is_(None))
        ):
            out.setdefault((cid, idx), set()).add(code)
    return out


def check_self_judge(judge: ModelAlias, conversations: Sequence[ConversationRow]) -> None:
    """Raise `SelfJudgeError` when the judge's model produced any of the conversations."""
    own = sorted({c.model_alias for c in conversations
                  if judge.model in (c.litellm_model, c.partner_model)})
    if own:
        raise SelfJudgeError(f"{judge.model} would judge its own conversations (model {', '.join(own)}); "
                             "a model judging itself is circular. Pass --allow-self-judge to do it anyway.")


async def judge_run(
    url: str,
    conversations: Sequence[ConversationRow],
    codebook: CodebookRow,
    codes: Sequence[Any],
    judge: ModelAlias,
    alias: str,
    *,
    options: JudgeOptions | None = None,
    emit: Emit = ignore,
    retry: Any = None,
    limits: Any = None,
) -> JudgeSummary:
    """Judge `conversations` on `codes` (`Code` models or `CodeRow`s of `codebook`) with `judge`.

    Reads go through their own session; writes through a `StoreWriter` on `url` (one
    transaction per unit: its tags and suggestions together). Units already judged by
    this coder on every code are skipped.
    """
    from sqlmodel import Session

    from ..engine.client import ModelClient
    from ..engine.driver import run_bounded
    from ..engine.retry import RetryPolicy
    from ..store import queries
    from ..store.db import open as open_store
    from ..store.writer import StoreWriter

    opts = options or JudgeOptions()
    if not codes:
        raise JudgeError("no codes to judge")
    if not opts.allow_self_judge:
        check_self_judge(judge, conversations)
    coder = judge_coder(judge, codebook)
    summary = JudgeSummary(coder=coder, codebook_id=codebook.id or 0)
    names = [c.name for c in codes]
    engine = open_store(url)
    units: list[Unit] = []
    try:
        with Session(engine) as session:
            done = _judged_keys(session, [c.id for c in conversations], coder)
            for conv in conversations:
                units.extend(plan_units(conv, queries.conversation_messages(session, conv.id), opts.unit))
    finally:
        engine.dispose()
    todo = [u for u in units if not set(names) <= done.get((u.conversation.id, u.message_idx), set())]
    summary.units, summary.skipped = len(units), len(units) - len(todo)
    emit(JudgeStarted(coder, alias, len(units), summary.skipped))
    client = ModelClient(limits=limits, retry=retry or RetryPolicy.from_env(), emit=emit)
    writer = StoreWriter(url)
    concurrency = opts.concurrency
    try:
        if judge.transport == "batch":
            from ..engine import batches, runs

            # a pass over one run keeps its batches under that run, so running the same pass again
            # after an interruption polls the batches that are out instead of sending them again
            # (the custom ids of the same units are the same); a pass over several runs keeps none
            owners = {c.run_id for c in conversations}
            ledger_run = owners.pop() if len(owners) == 1 else None
            client.batches = await batches.collector(writer, ledger_run, emit, api_for=runs.batch_api_for)
            concurrency = max(1, len(todo))  # every unit waits on the wave
            for _ in todo:
                client.batches.enter()  # every unit a live caller from the start: the wave waits for all

        async def one(unit: Unit) -> None:
            try:
                await _judge_unit(unit, codes, names, judge, alias, coder, codebook, opts, emit, client, writer,
                                  summary)
            finally:
                if client.batches is not None:
                    client.batches.leave()

        await run_bounded(todo, one, concurrency)
        await writer.flush()
    finally:
        if client.batches is not None:
            await client.batches.aclose()
        await writer.close()
    return summary


async def _judge_unit(unit: Unit, codes: Sequence[Any], names: list[str], judge: ModelAlias, alias: str,
                      coder: str, codebook: CodebookRow, opts: JudgeOptions, emit: Emit, client: Any,
                      writer: Any, summary: JudgeSummary) -> None:
    from ..engine.retry import classify

    emit(UnitStarted(unit.key, alias))
    messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM_PROMPT},
                                      {"role": "user", "content": build_prompt(unit, codes)}]
    overrides: dict[str, Any] = {}
    if judge.temperature is None and opts.temperature is not None:
        overrides["temperature"] = opts.temperature
    if judge.vendor == "openai":
        overrides["response_format"] = {"type": "json_schema", "json_schema": {
            "name": "verdict", "schema": Verdict.model_json_schema()}}

    problems: list[str] = []
    try:
        for attempt in range(1, opts.attempts + 1):
            reply = await client.chat(judge, messages, alias=alias, owner=unit.key, purpose="judge",
                                      overrides=overrides)
            summary.tokens_in += reply.tokens_in
            summary.tokens_out += reply.tokens_out
            summary.cost += reply.cost or 0.0
            try:
                verdict = parse_verdict(reply.content)
                problems, per_code = check_verdict(verdict, unit, names)
            except ValueError as exc:
                problems, per_code = [str(exc)], {}
            if not problems:
                await _store(unit, per_code, names, coder, codebook, opts, writer, summary)
                summary.judged += 1
                emit(UnitFinished(unit.key, alias, "judged"))
                return
            summary.rejected_answers += 1
            if attempt < opts.attempts:
                emit(Retrying(unit.key, alias, "invalid_answer", attempt, 0.0))
                messages = messages + [
                    {"role": "assistant", "content": reply.content},
                    {"role": "user", "content": "Your answer was rejected:\n- " + "\n- ".join(problems) +
                     "\nQuotes must be copied exactly from the transcript; do not quote words that do not occur "
                     "in it. Answer again with the complete JSON for every code."},
                ]
        summary.failed += 1
        summary.errors.append(f"{unit.key}: no valid answer after {opts.attempts} attempts: {'; '.join(problems)}")
        emit(UnitFinished(unit.key, alias, "invalid_answer"))
    except Exception as exc:  # CancelledError still propagates
        kind = classify(exc)
        summary.failed += 1
        summary.errors.append(f"{unit.key}: {kind}: {exc}")
        emit(UnitFinished(unit.key, alias, "error", kind))


def _evidence(v: CodeVerdict) -> str:
    quotes = "; ".join(f"#{q.turn}: \"{q.text}\"" for q in v.quotes)
    return (v.evidence.strip() + (f" [quotes: {quotes}]" if quotes else "")).strip()


async def _store(unit: Unit, per_code: dict[str, CodeVerdict], names: list[str], coder: str,
                 codebook: CodebookRow, opts: JudgeOptions, writer: Any, summary: JudgeSummary) -> None:
    rows: list[Any] = []
    for name in names:
        v = per_code[name]
        first = v.quotes[0] if v.quotes else None
        idx = unit.message_idx
        rows.append(TagRow(conversation_id=unit.conversation.id, message_idx=idx, code=name,
                           codebook_id=codebook.id, coder=coder, present=v.present, quote=first.text if first else None,
                           evidence=_evidence(v), source="judge"))
        if v.present and opts.suggestions:
            payload = {"coder": coder, "present": True, "evidence": v.evidence,
                       "quotes": [q.model_dump() for q in v.quotes], "codebook_id": codebook.id,
                       "unit": opts.unit}
            rows.append(SuggestionRow(kind="judge", conversation_id=unit.conversation.id,
                                      message_idx=idx if idx is not None else (first.turn if first else None),
                                      code=name, payload_json=JudgeSuggestionPayload.model_validate(payload).dump()))

    def write(session: Any) -> None:
        session.add_all(rows)

    await writer.call(write)
    summary.tags += sum(1 for r in rows if isinstance(r, TagRow))
    summary.suggestions += sum(1 for r in rows if isinstance(r, SuggestionRow))


def resolve_codes(book_codes: Sequence[CodeRow], only: Sequence[str] | None) -> list[Any]:
    """The codes to judge: the codebook's (built-in rows left out), or `only` of them; built-in code
    names (``offer:accept``, ``stop:stop_phrase``...) are accepted in `only` even when the codebook
    lacks them."""
    from .builtin_codes import builtin_code, is_builtin

    by_name = {c.name: c for c in book_codes}
    if not only:
        return [c for c in book_codes if not c.builtin]
    out = []
    for name in only:
        if name in by_name:
            out.append(by_name[name])
        elif is_builtin(name):
            out.append(builtin_code(name))
        else:
            raise JudgeError(f"no code {name!r} in the codebook; codes: {', '.join(by_name) or 'none'}")
    return out

