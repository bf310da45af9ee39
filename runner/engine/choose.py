"""The `choose` step: ask a pairwise question, read the answer, store a `choices` row.

The conversation interpreter calls `run_step` for each `choose` step. The two options come
from the step (`a:`/`b:`) or from the conversation's planned comparison (a `preferences`
protocol). The answer is read by patterns (templates over the shown labels, plus each
option's own `match:` patterns in revealed mode) or by a named judge model, never by the
subject itself. On resume a stored choice is reused, never classified twice.

`run_rounds` drives adaptive elicitations: after each round it fits the choices so far and
picks the next round's pairs (`runner.comparisons.next_round_pairs`), deterministically from
the seed; a resumed run finishes the round it was in and never repeats a completed round.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from .. import comparisons as cmp
from ..protocol import schema, templates
from ..store.tables import ChoiceRow

if TYPE_CHECKING:
    from .conversation import Conversation

JUDGE_PROMPT = (
    "A participant was shown two options and asked to choose one ({mode} choice). Read the reply and say "
    "which option it chose.\n\nThe question:\n{question}\n\nThe reply:\n{reply}\n\n"
    "Answer with one word on the first line: {label_a} (the first option), {label_b} (the second), NEITHER "
    "(it declined both), REFUSED (it refused to choose at all) or UNCLEAR. Then quote the words that decided it."
)
"""What a choice judge is asked."""


def shown(conv: Conversation, step: schema.Choose) -> tuple[str, str, str, str, int, int]:
    """(a_id, b_id, label_a, label_b, sample, round) of this step in this conversation."""
    comparison = conv.spec.comparison
    if step.choose.a is not None and step.choose.b is not None:
        prefs = conv.p.preferences
        la, lb = prefs.labels[0] if prefs else ("A", "B")
        return step.choose.a, step.choose.b, la, lb, 1, 1
    if comparison is None:
        raise ValueError("a `choose` step without `a`/`b` needs a planned comparison (a `preferences` protocol)")
    return (comparison.a_id, comparison.b_id, comparison.label_a, comparison.label_b, comparison.sample,
            comparison.round)


async def run_step(conv: Conversation, step: schema.Choose, path: str) -> str:
    """Ask, read, store. Returns the answer (`ChoiceAnswer`)."""
    prefs = conv.p.preferences
    spec = step.choose
    # a condition may set `vars: {mode: revealed}` so stated and revealed choice are two conditions of one run
    condition_mode = conv.vars.get("mode") if conv.vars.get("mode") in ("stated", "revealed") else None
    mode: schema.ChoiceMode = spec.mode or condition_mode or (prefs.mode if prefs else "stated")
    classifier = spec.classify or (prefs.classify if prefs else schema.ChoiceClassifier())
    a_id, b_id, la, lb, sample, round_ = shown(conv, step)
    values = cmp.variables(prefs, None, a_id, b_id) | {"label_a": la, "label_b": lb}
    question = schema.text_of(spec.question) if spec.question is not None else (
        prefs.question_text(mode) if prefs else schema.DEFAULT_QUESTION)
    saved = dict(conv.loop_vars)
    conv.loop_vars.update(values)  # the question's variables; restored after the turn
    try:
        question_idx = len(conv.msgs)
        reply = await conv.exchange(question, path, step.id)
    finally:
        conv.loop_vars = saved
    if step.capture:
        await conv.capture(step.capture, reply)
    reply_idx = len(conv.msgs) - 1
    stored = getattr(conv, "choices_by_reply", {}).get(reply_idx)
    if stored is not None:
        return stored.answer
    options = {o.id: o for o in (prefs.option_list if prefs else [])}
    if classifier.judge:
        answer, evidence, method = await _judge(conv, classifier.judge, mode, conv.msgs[question_idx].content,
                                                reply, la, lb)
    else:
        answer, evidence = classify_by_patterns(classifier, reply, la, lb, mode,
                                                options.get(a_id), options.get(b_id))
        method = "patterns"
    opt_out_id = next((o.id for o in options.values() if o.opt_out), None)
    chosen = {"a": a_id, "b": b_id}.get(answer)
    if answer == "opt_out" and opt_out_id in (a_id, b_id):
        chosen = opt_out_id
    if chosen is not None and chosen == opt_out_id:
        answer = "opt_out"
    await conv.flush(ChoiceRow(
        conversation_id=conv.id, message_idx=reply_idx, question_message_idx=question_idx, step=path, mode=mode,
        option_a=a_id, option_b=b_id, label_a=la, label_b=lb, text_a=values["a"], text_b=values["b"],
        answer=answer, chosen=chosen, evidence=evidence[:2000], opt_out_option=opt_out_id, classifier=method, sample=sample, round=round_,
        seed=prefs.seed if prefs else 0,
    ))
    return answer


def _patterns(patterns: list[str], la: str, lb: str) -> list[str]:
    # labels match case-sensitively (a label `A` is not the article "a"); the rest of a pattern does not
    return [p.replace("{{ label_a }}", f"(?-i:{re.escape(la)})").replace("{{ label_b }}", f"(?-i:{re.escape(lb)})")
            for p in patterns]


def _first(patterns: list[str], text: str) -> tuple[int, str] | None:
    best: tuple[int, str] | None = None
    for p in patterns:
        m = re.search(p, text, flags=re.IGNORECASE | re.MULTILINE)
        if m and (best is None or m.start() < best[0]):
            best = (m.start(), m.group(0).strip())
    return best


def classify_by_patterns(classifier: schema.ChoiceClassifier, reply: str, label_a: str, label_b: str,
                         mode: schema.ChoiceMode = "stated", option_a: schema.Option | None = None,
                         option_b: schema.Option | None = None) -> tuple[str, str]:
    """(answer, evidence). A choice of exactly one side wins; both sides matched is `unclear`
    (recorded with both quotes); then a refusal, then declining both (`opt_out`); else `unclear`."""
    text = reply.strip()
    a = _first(_patterns(classifier.a, label_a, label_b), text)
    b = _first(_patterns(classifier.b, label_a, label_b), text)
    if mode == "revealed" and a is None and b is None:
        a = _first(option_a.match, text) if option_a else None
        b = _first(option_b.match, text) if option_b else None
    if a and not b:
        return "a", a[1]
    if b and not a:
        return "b", b[1]
    if a and b:
        return "unclear", f"both: {a[1]!r} / {b[1]!r}"
    refused = _first(classifier.refused, text)
    if refused:
        return "refused", refused[1]
    neither = _first(classifier.opt_out, text)
    if neither:
        return "opt_out", neither[1]
    return "unclear", ""


async def _judge(conv: Conversation, alias: str, mode: str, question: str, reply: str, la: str,
                 lb: str) -> tuple[str, str, str]:
    from . import verdict

    judge = verdict.resolve(conv, alias, "choice judge")
    if judge.is_subject:
        raise ValueError(f"the judge {alias!r} is the subject of this conversation; a model never classifies itself")
    prompt = JUDGE_PROMPT.format(mode=mode, question=question, reply=reply, label_a=la, label_b=lb)
    words = {la.lower(): "a", lb.lower(): "b", "neither": "opt_out", "refused": "refused", "unclear": "unclear"}
    said = await verdict.ask(conv, judge, prompt, words, purpose="choice", prefix=False)
    return said.word, said.evidence, judge.method


# ---------------------------------------------------------------- adaptive rounds


def round_of(params_json: str) -> int:
    """The adaptive round a stored conversation belongs to (from its params)."""
    try:
        return int((json.loads(params_json or "{}").get("comparison") or {}).get("round", 1))
    except (ValueError, AttributeError):
        return 1


def comparison_of(params_json: str) -> cmp.Comparison | None:
    data = json.loads(params_json or "{}").get("comparison")
    return cmp.Comparison.from_json(data) if data else None


def fit_for_selection(choices: list[tuple[str, str, str | None]], option_ids: list[str]) -> dict[str, float]:
    """Bradley–Terry utilities (choix, lightly regularised) from (first, second, chosen) triples."""
    import choix

    index = {o: i for i, o in enumerate(option_ids)}
    data = []
    for first, second, chosen in choices:
        if chosen is None or chosen not in (first, second) or first not in index or second not in index:
            continue
        loser = second if chosen == first else first
        data.append((index[chosen], index[loser]))
    if not data:
        return {o: 0.0 for o in option_ids}
    params = choix.opt_pairwise(len(option_ids), data, alpha=0.1)
    return {o: float(params[i]) for o, i in index.items()}


async def run_rounds(ctx: Any, plan: Any, first_targets: list[Any], max_in_flight: int,
                     read_state: Any) -> Counter[str]:
    """Run an adaptive elicitation: the targets of the current round, then each later round.

    `read_state()` returns, from the store, the run's conversations as `StoredConversation`s and its
    choices as (conversation seq, first, second, chosen): the store is the source of truth, so a resumed
    run finishes the round it was in and picks the next round from exactly the stored choices."""
    from ..plan import replicate_seed
    from .driver import Target, conversation_row, run_targets

    from .events import RunStarted

    prefs = plan.protocol.preferences
    n_rounds = cmp.rounds(prefs)
    conversations, _ = await read_state()
    per_round = Counter(s.model_alias for s in plan.specs)
    done = Counter(c.model_alias for c in conversations if c.status in ("done", "error") and c.seq not in
                   {t.spec.seq for t in first_targets})
    # the display's totals: every round in full (the worst case the plan showed)
    ctx.emit(RunStarted(ctx.run_id, {a: n * n_rounds for a, n in per_round.items()}, dict(done)))
    statuses: Counter[str] = Counter()
    statuses.update(await run_targets(ctx, first_targets, max_in_flight))
    option_ids = [o.id for o in prefs.option_list]
    cells: dict[tuple[str, str, int], Any] = {}
    for spec in plan.specs:
        cells.setdefault((spec.model_alias, spec.condition.name, spec.replicate), spec)
    while True:
        conversations, choices = await read_state()
        done_round = max((round_of(c.params_json) for c in conversations), default=1)
        if done_round >= n_rounds:
            return statuses
        nxt = done_round + 1
        next_seq = max((c.seq for c in conversations), default=-1) + 1
        cell_of = {c.seq: (c.model_alias, c.condition, c.replicate) for c in conversations}
        targets, rows = [], []
        for cell, base in cells.items():
            mine = [(f, s_, ch) for seq, f, s_, ch in choices if cell_of.get(seq) == cell]
            utilities = fit_for_selection(mine, option_ids)
            counts: Counter[tuple[str, str]] = Counter(tuple(sorted((f, s_))) for f, s_, _ in mine)  # type: ignore[misc]
            pairs = cmp.next_round_pairs(prefs, cell[2], nxt, utilities, counts)
            seed0 = replicate_seed(plan.protocol, base.model, cell[2])
            for comparison in cmp.expand(prefs, pairs, cell[2], nxt):
                spec = replace(base, seq=next_seq, comparison=comparison, seed=cmp.comparison_seed(seed0, comparison))
                next_seq += 1
                row = conversation_row(ctx.run_id, spec)
                rows.append(row)
                targets.append(Target(spec, row.id))
        # the whole round is written in one transaction before any of it runs: a kill leaves a round whole or absent
        await ctx.writer.call(lambda session, rows=rows: session.add_all(rows))
        statuses.update(await run_targets(ctx, targets, max_in_flight))


@dataclass(frozen=True)
class StoredConversation:
    """What the round loop needs of a stored conversation."""

    seq: int
    model_alias: str
    condition: str
    replicate: int
    params_json: str
    status: str = "pending"


def state_reader(writer: Any, run_id: str) -> Any:
    """An async callable reading a run's conversations and choices through the writer (after its pending writes)."""
    from sqlmodel import select

    from ..store.tables import ConversationRow

    def read(session: Any) -> tuple[list[StoredConversation], list[tuple[int, str, str, str | None]]]:
        convs = session.exec(select(ConversationRow).where(ConversationRow.run_id == run_id)).all()
        seq = {c.id: c.seq for c in convs}
        rows = [StoredConversation(c.seq, c.model_alias, c.condition, c.replicate, c.params_json, c.status)
                for c in convs]
        choices = session.exec(select(ChoiceRow).where(ChoiceRow.conversation_id.in_(list(seq)))).all() if seq else []  # type: ignore[attr-defined]
        # in plan order, not completion order: the fit (and so the next round) must not depend on timing
        return rows, sorted((seq[c.conversation_id], c.option_a, c.option_b, c.chosen) for c in choices)

    async def state() -> Any:
        return await writer.call(read)

    return state


async def run_all(ctx: Any, plan: Any, targets: list[Any], max_in_flight: int) -> Counter[str]:
    """The engine's entry for a plan: adaptive preference runs go round by round, the rest run as they are."""
    from .driver import run_targets

    prefs = plan.protocol.preferences
    if prefs is None or cmp.rounds(prefs) <= 1:
        return await run_targets(ctx, targets, max_in_flight)
    return await run_rounds(ctx, plan, targets, max_in_flight, state_reader(ctx.writer, ctx.run_id))


def stored_choices(session: Any, conversation_id: str) -> list[ChoiceRow]:
    """A conversation's stored choices (resume reuses them)."""
    from sqlmodel import select

    return list(session.exec(select(ChoiceRow).where(ChoiceRow.conversation_id == conversation_id)).all())


def specs_for_stored(plan: Any, rows: list[Any]) -> dict[int, Any]:
    """Specs of a run's stored conversations beyond the plan (later adaptive rounds), rebuilt from
    each row's model, condition, replicate and stored comparison."""
    from ..plan import replicate_seed

    base = {(s.model_alias, s.condition.name, s.replicate): s for s in plan.specs}
    out = {}
    for row in rows:
        comparison = comparison_of(row.params_json)
        spec = base.get((row.model_alias, row.condition, row.replicate))
        if comparison is None or spec is None:
            continue
        seed0 = replicate_seed(plan.protocol, spec.model, spec.replicate)
        out[row.seq] = replace(spec, seq=row.seq, comparison=comparison, seed=cmp.comparison_seed(seed0, comparison))
    return out


__all__ = ["StoredConversation", "run_all", "state_reader", "stored_choices", "JUDGE_PROMPT", "classify_by_patterns", "comparison_of", "fit_for_selection", "round_of", "run_rounds",
           "run_step", "shown", "specs_for_stored"]
