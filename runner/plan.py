"""models × conditions × replicates → one `ConversationSpec` per conversation.

The plan is pure: no model is called and nothing is written. `latitude plan` prints it
with the worst-case number of calls and tokens before anything is spent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from . import comparisons as cmp
from .protocol import schema, templates
from .protocol.load import Loaded
from .protocol.models_file import ModelAlias, resolve_model

ConversationKind = Literal["single", "pair", "experimenter"]
"""Who is on the user side: a script, another instance, or a model playing the experimenter."""

DEFAULT_REPLY_TOKENS = 1024
"""Reply length assumed for the worst case when a model sets no `max_tokens`."""


class PlanError(ValueError):
    """A plan that cannot be made (no models, an unknown condition...)."""


@dataclass(frozen=True)
class ConversationSpec:
    """One conversation to run."""

    seq: int
    """Position in the plan (stable: resume and exports order by it)."""
    model_alias: str
    model: ModelAlias
    condition: schema.Condition
    replicate: int
    """From 1."""
    kind: ConversationKind
    partner_alias: str | None = None
    """Pair runs: side b's alias (side a is `model_alias`)."""
    partner: ModelAlias | None = None
    experimenter_alias: str | None = None
    experimenter: ModelAlias | None = None
    seed: int | None = None
    """Sampling seed sent with every call: the configured seed plus `replicate - 1`, so replicates are
    independent samples yet reproducible. Vendors without a configured seed get none; embedded models
    (local, sim) always get one."""
    comparison: cmp.Comparison | None = None
    """Preference protocols: the two options this conversation shows, their order and labels (seeded)."""


@dataclass
class Plan:
    """The expanded matrix and what it may cost."""

    loaded: Loaded
    specs: list[ConversationSpec]
    models: list[str]
    conditions: list[str]
    replicates: int
    calls_per_conversation: int
    """Worst case: every offer takes its longest branch, no one stops early."""
    tokens_in: int = 0
    """Worst-case input tokens over the whole plan (prompts re-sent with their history)."""
    tokens_out: int = 0
    per_model: dict[str, dict[str, Any]] = field(default_factory=dict)
    preferences: dict[str, Any] | None = None
    """Preference protocols: options, pairs, comparisons per round, rounds, and the worst-case totals."""
    cache_prefixes: list[dict[str, Any]] = field(default_factory=list)
    """Per model alias × condition: the shared prefix (system prompt + first user turn) estimated
    at ~4 characters a token, the model's minimum cacheable length, and whether the prefix reaches
    it (`prefix_cacheable`). Vendors without prompt caching are left out."""

    @property
    def protocol(self) -> schema.Protocol:
        return self.loaded.protocol

    @property
    def worst_case_calls(self) -> int:
        return sum(m["calls"] for m in self.per_model.values())

    def summary(self) -> dict[str, Any]:
        """A JSON-able description stored with the run."""
        return {
            "protocol": self.protocol.name,
            "version": self.protocol.version,
            "models": {a: self.loaded.models[a].model if a in self.loaded.models else a for a in self.models},
            "conditions": self.conditions,
            "replicates": self.replicates,
            "conversations": len(self.specs),
            "calls_per_conversation": self.calls_per_conversation,
            "per_model": self.per_model,
            "preferences": self.preferences,
            "snapshot": self.loaded.snapshot(),
        }


def make_plan(
    loaded: Loaded,
    *,
    models: list[str] | None = None,
    conditions: list[str] | None = None,
    replicates: int | None = None,
) -> Plan:
    """Expand a loaded protocol. `models`, `conditions` and `replicates` override the protocol's."""
    protocol = loaded.protocol
    aliases = loaded.models
    model_names = list(models or protocol.models)
    if not model_names:
        raise PlanError("no models: list them under `models:` in the protocol or pass --model")
    resolved: dict[str, ModelAlias] = {}
    for name in model_names:
        m = resolve_model(name, aliases)
        if m is None:
            raise PlanError(f"unknown model alias `{name}`; known: {', '.join(sorted(aliases))}")
        resolved[name] = m
    by_name = {c.name: c for c in protocol.conditions}
    wanted = list(conditions or by_name)
    unknown = [c for c in wanted if c not in by_name]
    if unknown:
        raise PlanError(f"unknown condition `{unknown[0]}`; the protocol has: {', '.join(by_name)}")
    n_rep = replicates or protocol.replicates
    if n_rep < 1:
        raise PlanError("replicates must be at least 1")

    kind: ConversationKind = "pair" if protocol.pair else "experimenter" if protocol.experimenter else "single"
    exp_alias = protocol.experimenter.model if protocol.experimenter else None
    exp_model = resolve_model(exp_alias, aliases) if exp_alias else None

    specs: list[ConversationSpec] = []
    for alias in model_names:
        partner_alias = partner = None
        if protocol.pair:
            side_a = protocol.pair.a or alias
            partner_alias = protocol.pair.b or alias
            alias_here = side_a
            partner = resolve_model(partner_alias, aliases)
        else:
            alias_here = alias
        model = resolve_model(alias_here, aliases)
        assert model is not None
        for cname in wanted:
            for rep in range(1, n_rep + 1):
                if protocol.preferences is not None:
                    base_seed = replicate_seed(protocol, model, rep)
                    for comparison in cmp.first_round(protocol.preferences, rep):
                        specs.append(ConversationSpec(
                            seq=len(specs), model_alias=alias_here, model=model, condition=by_name[cname],
                            replicate=rep, kind=kind, partner_alias=partner_alias, partner=partner,
                            experimenter_alias=exp_alias, experimenter=exp_model,
                            seed=cmp.comparison_seed(base_seed, comparison), comparison=comparison))
                    continue
                specs.append(
                    ConversationSpec(
                        seq=len(specs), model_alias=alias_here, model=model, condition=by_name[cname],
                        replicate=rep, kind=kind, partner_alias=partner_alias, partner=partner,
                        experimenter_alias=exp_alias, experimenter=exp_model,
                        seed=replicate_seed(protocol, model, rep),
                    )
                )
    calls = worst_case_calls(protocol)
    plan = Plan(loaded=loaded, specs=specs, models=model_names, conditions=wanted, replicates=n_rep,
                calls_per_conversation=calls)
    _estimate_tokens(plan)
    plan.cache_prefixes = cache_prefixes(protocol, {s.model_alias: s.model for s in specs}, wanted)
    if protocol.preferences is not None:
        _preferences_worst_case(plan, aliases)
    return plan


def _preferences_worst_case(plan: Plan, aliases: dict[str, ModelAlias]) -> None:
    """Comparisons and calls of a preference protocol, later adaptive rounds included (worst case:
    every round runs in full), and the judge's calls when a judge classifies the choices."""
    prefs = plan.protocol.preferences
    assert prefs is not None
    n_rounds = cmp.rounds(prefs)
    judge = prefs.classify.judge
    if judge is not None and judge in plan.models:
        raise PlanError(f"the choice judge `{judge}` is also a subject of this run: a model never classifies its own choices")
    for entry in plan.per_model.values():
        for key in ("conversations", "calls", "tokens_in", "tokens_out"):
            entry[key] *= n_rounds
    plan.tokens_in *= n_rounds
    plan.tokens_out *= n_rounds
    choose_steps = sum(isinstance(s, schema.Choose) for s in schema.iter_steps(plan.protocol.steps))
    conversations = len(plan.specs) * n_rounds
    if judge is not None:
        jm = resolve_model(judge, aliases)
        entry = plan.per_model.setdefault(judge, {"litellm_model": jm.model if jm else judge, "conversations": 0,
                                                  "calls": 0, "tokens_in": 0, "tokens_out": 0})
        entry["calls"] += conversations * choose_steps
        entry["tokens_in"] += conversations * choose_steps * 600
        entry["tokens_out"] += conversations * choose_steps * 50
    n = len(prefs.option_list)
    plan.preferences = {
        "options": n,
        "opt_out": next((o.id for o in prefs.option_list if o.opt_out), None),
        "pairs_possible": n * (n - 1) // 2,
        "comparisons_per_round": cmp.comparisons_per_round(prefs),
        "rounds": n_rounds,
        "comparisons_per_cell": cmp.comparisons_per_round(prefs) * n_rounds,
        "cells": len(plan.models) * len(plan.conditions) * plan.replicates,
        "comparisons": conversations,
        "judge_calls": conversations * choose_steps if judge else 0,
        "seed": prefs.seed,
        "mode": prefs.mode,
    }


def replicate_seed(protocol: schema.Protocol, model: ModelAlias, replicate: int) -> int | None:
    base = protocol.params.seed if protocol.params.seed is not None else model.seed
    if base is None and model.vendor in ("local", "sim"):
        base = 0
    return None if base is None else base + replicate - 1


def _calls(steps: list[Any], variables: dict[str, Any]) -> int:
    total = 0
    for step in steps:
        if isinstance(step, (schema.Say, schema.Choose)):
            total += 1
        elif isinstance(step, schema.Offer):
            total += 1 + max(_calls(step.if_accepted, variables), _calls(step.if_declined, variables))
        elif isinstance(step, schema.Open):
            total += step.open.turns + _break_calls(step.open.break_every, step.open.turns, variables)
        elif isinstance(step, schema.Repeat):
            spec = step.repeat
            if isinstance(spec.over, list):
                passes = len(spec.over)
            elif isinstance(spec.over, str):
                passes = len(over) if isinstance(over := variables.get(spec.over), list) else spec.max
            else:
                passes = spec.times or spec.max
            body = passes * _calls(spec.steps, variables)
            total += body + _break_calls(spec.break_every, body, variables)
    return total


def _break_calls(brk: schema.BreakEvery | None, turns: int, variables: dict[str, Any]) -> int:
    if brk is None:
        return 0
    return (turns // brk.turns) * _calls([brk.offer], variables)


def worst_case_calls(protocol: schema.Protocol) -> int:
    """Model replies in the longest path through the script, bounded by `max_turns`."""
    if protocol.pair:
        return protocol.max_turns
    worst = 0
    for condition in protocol.conditions:
        variables = {**protocol.vars, **condition.vars}
        worst = max(worst, _with_stop_turns(protocol, condition, _calls(protocol.steps, variables)))
    return min(worst, protocol.max_turns)


def _with_stop_turns(protocol: schema.Protocol, condition: schema.Condition, script: int) -> int:
    """Add the stop rule's own model turns: a check-in every K scripted turns, one confirmation."""
    stop = protocol.stop
    if stop is None:
        return script
    channels = condition.stop_channels if condition.stop_channels is not None else stop.offered
    extra = (max(script - 1, 0) // stop.check_in.every) if stop.check_in and "check_in" in channels else 0
    return script + extra + (1 if stop.then == "confirm" and channels else 0)


CHARS_PER_TOKEN = 4
"""The plan's token estimate: about four characters a token (vendors count their own way)."""


def _first_user_text(protocol: schema.Protocol, variables: dict[str, Any]) -> str:
    """The first user turn a conversation under `variables` sends (rendered where the sandbox can;
    the raw template where it needs variables only a running conversation has)."""
    if protocol.pair is not None:
        source = schema.text_of(protocol.pair.opener)
    else:
        source = ""
        for step in schema.iter_steps(protocol.steps):
            if not isinstance(step, (schema.Say, schema.Offer)):
                continue
            when = getattr(step, "when", None)
            try:
                if when and not templates.evaluate(when, variables):
                    continue
            except Exception:  # a condition on what only a conversation knows: take the step
                pass
            source = schema.text_of(step.say if isinstance(step, schema.Say) else step.offer)
            break
    try:
        return templates.render(source, variables)
    except Exception:
        return source


def cache_prefixes(protocol: schema.Protocol, models: dict[str, ModelAlias],
                   conditions: list[str]) -> list[dict[str, Any]]:
    """Whether each alias × condition's shared prefix (system prompt + first user turn) is long
    enough for the vendor to cache it at all (an estimate, ~4 characters a token)."""
    from .providers.caching import min_cacheable_tokens

    by_name = {c.name: c for c in protocol.conditions}
    out = []
    for alias, model in models.items():
        minimum = min_cacheable_tokens(model.model, model.vendor)
        if minimum is None or not model.prompt_cache:
            continue
        for cname in conditions:
            cond = by_name[cname]
            variables = {**protocol.vars, **cond.vars, "condition": cname, "model": alias}
            system = None if cond.no_system else (cond.system or protocol.system)
            system_text = ""
            if system is not None:
                try:
                    system_text = templates.render(system.content, variables)
                except Exception:
                    system_text = system.content
            chars = len(system_text) + len(_first_user_text(protocol, variables))
            tokens = chars // CHARS_PER_TOKEN
            out.append({"model": alias, "litellm_model": model.model, "condition": cname,
                        "prefix_tokens_estimate": tokens, "min_cacheable_tokens": minimum,
                        "prefix_cacheable": tokens >= minimum})
    return out


def _estimate_tokens(plan: Plan) -> None:
    protocol = plan.protocol
    system_tokens = len(protocol.system.content) // 4 if protocol.system else 0
    prompts = [len(schema.text_of(s.say)) for s in schema.iter_steps(protocol.steps) if isinstance(s, schema.Say)]
    user_tokens = (sum(prompts) // max(len(prompts), 1)) // 4 + 1 if prompts else 50
    n = plan.calls_per_conversation
    for spec in plan.specs:
        reply = spec.model.max_tokens or protocol.params.max_tokens or DEFAULT_REPLY_TOKENS
        tin = n * system_tokens + (n * (n + 1) // 2) * (user_tokens + reply)
        tout = n * reply
        calls = n
        if spec.kind == "experimenter":
            calls *= 2
            tin *= 2
        entry = plan.per_model.setdefault(
            spec.model_alias,
            {"litellm_model": spec.model.model, "conversations": 0, "calls": 0, "tokens_in": 0, "tokens_out": 0},
        )
        entry["conversations"] += 1
        entry["calls"] += calls
        entry["tokens_in"] += tin
        entry["tokens_out"] += tout
        plan.tokens_in += tin
        plan.tokens_out += tout


__all__ = ["CHARS_PER_TOKEN", "ConversationKind", "ConversationSpec", "Plan", "PlanError", "cache_prefixes", "make_plan",
           "worst_case_calls"]
