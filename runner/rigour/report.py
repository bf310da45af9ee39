"""`latitude report RUN`: a registered study's results, registered apart from exploratory.

    report = build_report(url, run_id)      # computes; nothing is written
    text = render(report, "md")             # or "json"

In order:
1. each registered hypothesis: the planned test's result, with n-of-N per group (coded of
   finished of planned in this run, and what the registration planned), intervals (Wilson for
   each share, Newcombe's hybrid score interval for a difference of shares, a Wald interval
   for a Bradley-Terry utility difference), the direction observed against the one
   registered, and whether it is supported at the registered alpha (the direction observed
   is the one registered, or any for ``differs``, and p < alpha);
2. the run's deviations from the registration (every one, as recorded before it started);
3. every other analysis: the tallies of every other code by each registered grouping field,
   with their tests, marked *exploratory* (not registered: no p-value there is confirmatory).

A run that follows no registration has no confirmatory results: `build_report` refuses it
(`ReportError`) and says so.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from ..store.records import HypothesesRecord, RegisteredCodebook, RegisteredHypothesis, RegisteredProtocol
from .registration import Deviation, run_deviations

__all__ = ["ExploratoryRow", "ExploratoryUtility", "GroupResult", "HypothesisResult", "ReportError", "RigourReport", "build_report",
           "render", "to_json"]

ReportFormat = Literal["md", "json"]
"""How `latitude report` prints: Markdown or JSON."""

Z95 = 1.959963984540054
"""The normal quantile of a two-sided 95% interval."""

SCHEMA_VERSION = 1
"""Version of the JSON report; bumped on any incompatible change."""


class ReportError(ValueError):
    """A report that cannot be made (no such run, no registration)."""


@dataclass(frozen=True)
class GroupResult:
    """One group of a hypothesis: what its figure rests on and the figure."""

    label: str
    """The group (a model alias, a condition...; ``all`` for a preference in the whole run)."""
    count: int
    """Code hypotheses: conversations where the code is present. Preferences: choices of option a over b."""
    n: int
    """Code hypotheses: conversations coded. Preferences: comparisons fitted (a choice of one shown option)."""
    finished: int
    """Finished conversations of the group in this run (preferences: comparisons asked)."""
    planned: int
    """Conversations of the group this run planned."""
    registered: int
    """Conversations of the group the registration planned."""
    value: float
    """Code: the share count/n. Preference: the Bradley-Terry utility of a minus b."""
    low: float
    """Lower bound of the 95% interval (Wilson for a share; Wald for a utility difference)."""
    high: float
    """Upper bound."""
    direct: int = 0
    """Preferences: comparisons of a with b themselves, answered with one of them (what `count` is out of)."""


@dataclass(frozen=True)
class HypothesisResult:
    """One registered hypothesis and the planned test's result."""

    hypothesis: RegisteredHypothesis
    """As registered."""
    computed: bool
    """False when the test could not be made (`reason` says why): then it is not supported."""
    reason: str = ""
    """Why the test could not be made."""
    groups: list[GroupResult] = field(default_factory=list)
    """The groups compared, first then second (one for a preference without groups)."""
    estimate: float = float("nan")
    """First minus second: difference of shares, or of utility gaps (a preference within one group: a minus b)."""
    low: float = float("nan")
    """Lower bound of the estimate's 95% interval."""
    high: float = float("nan")
    """Upper bound."""
    statistic: float = float("nan")
    """The test statistic: odds ratio (Fisher), z (two-proportion, Bradley-Terry)."""
    p: float = float("nan")
    """p-value of the planned test, one-sided for ``greater``/``less``, two-sided for ``differs``."""
    observed: str = "none"
    """The direction observed: ``greater``, ``less``, ``equal``, or ``none`` (not computed)."""
    supported: bool = False
    """p < alpha and the direction observed is the registered one (any difference for ``differs``)."""
    coder: str = ""
    """Whose codes were counted (code hypotheses)."""
    method: str = ""
    """The test and interval, in words."""
    warnings: list[str] = field(default_factory=list)
    """What a reader must know before trusting it (coverage differing between groups, an unvalidated judge,
    a changed plan)."""


@dataclass(frozen=True)
class ExploratoryRow:
    """A code's share in one group, from an analysis nobody registered."""

    code: str
    by: str
    group: str
    n: int
    """Conversations coded."""
    count: int
    finished: int
    planned: int
    share: float
    low: float
    """95% Wilson interval."""
    high: float
    test: str
    """The tally's test between the groups of `by` for this code (chi2/fisher), ``none`` with one group."""
    p: float
    p_adjusted: float
    """Benjamini-Hochberg across the codes of the tally."""
    coder: str = ""
    """Whose codes: the coder of the registered hypotheses' tallies, or ``builtin`` (offers, stop phrase)."""
    exploratory: bool = True
    """Always True: not registered, not confirmatory."""


@dataclass(frozen=True)
class ExploratoryUtility:
    """One option's Bradley-Terry utility in one group, from an analysis nobody registered (preference runs)."""

    option: str
    by: str
    group: str
    utility: float
    """Relative to the opt-out option when the protocol has one, else to the mean of the options."""
    low: float
    """95% Wald interval."""
    high: float
    wins: int
    """Comparisons this option won."""
    n: int
    """Comparisons it took part in, answered with one of the two shown."""
    anchor: str
    """What the utility is relative to (an option id, or ``mean``)."""
    exploratory: bool = True
    """Always True."""


@dataclass(frozen=True)
class RigourReport:
    """Everything `latitude report` shows."""

    run_id: str
    registration: dict[str, str]
    """id, name, sha256, created_at."""
    protocol: dict[str, str]
    """name, version, sha256 of the run's protocol text."""
    simulated: bool
    """The run used simulated models: every figure describes the simulator."""
    coverage: dict[str, int]
    """Conversations: finished, planned (this run), registered (the registration's plan)."""
    hypotheses: list[HypothesisResult]
    deviations: list[Deviation]
    exploratory: list[ExploratoryRow]
    exploratory_coder: str
    """Whose codes the exploratory tallies count."""
    utilities: list[ExploratoryUtility]
    """Preference runs: every option's utility per group (exploratory); empty otherwise."""
    methods: list[str]
    warnings: list[str]
    generated_at: str


# ----------------------------------------------------------------------------- tests


def _direction(a: float, b: float) -> str:
    if math.isnan(a) or math.isnan(b):
        return "none"
    return "greater" if a > b else "less" if a < b else "equal"


def _supported(direction: str, observed: str, p: float, alpha: float) -> bool:
    if math.isnan(p) or p >= alpha:
        return False
    return observed in ("greater", "less") if direction == "differs" else observed == direction


def _alternative(direction: str, style: str) -> str:
    if style == "scipy":
        return {"greater": "greater", "less": "less"}.get(direction, "two-sided")
    return {"greater": "larger", "less": "smaller"}.get(direction, "two-sided")


def _shares_test(test: str, direction: str, c1: int, n1: int, c2: int, n2: int) -> tuple[float, float, str]:
    """(statistic, p, method) of the planned test on the 2x2 table (group x present/absent)."""
    if test == "fisher":
        from scipy.stats import fisher_exact

        res = fisher_exact([[c1, n1 - c1], [c2, n2 - c2]], alternative=_alternative(direction, "scipy"))
        side = "two-sided" if direction == "differs" else f"one-sided, {direction}"
        return float(res.statistic), float(res.pvalue), f"Fisher's exact test ({side}; statistic: odds ratio) (scipy)"
    import numpy as np
    from statsmodels.stats.proportion import proportions_ztest

    side = "two-sided" if direction == "differs" else f"one-sided, {direction}"
    method = f"two-proportion z test, pooled variance ({side}; Pearson chi-square without continuity correction) (statsmodels)"
    if (c1 + c2) in (0, n1 + n2):
        return float("nan"), float("nan"), method + ": undefined when the code is present in all or none"
    with np.errstate(all="ignore"):
        z, p = proportions_ztest([c1, c2], [n1, n2], alternative=_alternative(direction, "statsmodels"))
    return float(z), float(p), method


def _newcombe(c1: int, n1: int, c2: int, n2: int) -> tuple[float, float]:
    from statsmodels.stats.proportion import confint_proportions_2indep

    low, high = confint_proportions_2indep(c1, n1, c2, n2, method="newcomb", compare="diff", alpha=0.05)
    return max(float(low), -1.0), min(float(high), 1.0)


def _normal_p(z: float, direction: str) -> float:
    from scipy.stats import norm

    if math.isnan(z):
        return float("nan")
    if direction == "greater":
        return float(norm.sf(z))
    if direction == "less":
        return float(norm.cdf(z))
    return float(2 * norm.sf(abs(z)))


# ----------------------------------------------------------------------------- planned counts


def _registered_counts(registered: RegisteredProtocol) -> dict[str, dict[str, int]] | None:
    """Conversations the registration planned, per grouping field and level (rebuilt from its snapshot)."""
    from pathlib import Path

    from ..plan import make_plan
    from ..protocol.load import from_snapshot
    from ..protocol.models_file import BUILTIN_ALIASES, ModelAlias

    try:
        snapshot = registered.plan["snapshot"]
        models = {k: ModelAlias.model_validate(v) for k, v in registered.models.items()}
        loaded = from_snapshot(snapshot, {**BUILTIN_ALIASES, **models}, Path(registered.protocol_path),
                               registered.protocol_text)
        plan = make_plan(loaded)
    except Exception:
        return None
    out: dict[str, dict[str, int]] = {}
    for s in plan.specs:
        for by, value in (("model", s.model_alias), ("condition", s.condition.name), ("replicate", str(s.replicate)),
                          ("vendor", s.model.vendor), ("litellm_model", s.model.model)):
            out.setdefault(by, {}).setdefault(value, 0)
            out[by][value] += 1
    out["all"] = {"all": len(plan.specs)}
    return out


# ----------------------------------------------------------------------------- hypotheses


def _codebook_warnings(session: Any, used: Sequence[str], registered: RegisteredCodebook) -> list[str]:
    """A warning for each codebook version the tags counted come from whose content is not the registered one."""
    import hashlib

    from sqlmodel import select

    from ..analysis import codebook as cb
    from ..store.tables import CodebookRow

    if registered.sha256 is None:
        return []
    out = []
    for label in used:
        name, _, version = label.rpartition(" v")
        row = session.exec(select(CodebookRow).where(CodebookRow.name == name)
                           .where(CodebookRow.version == int(version or 0))).first() if version.isdigit() else None
        if row is None:
            continue
        sha = hashlib.sha256(cb.to_yaml(cb.as_model(session, row)).encode()).hexdigest()
        if sha != registered.sha256:
            out.append(f"coded with codebook {label}, whose content differs from the registered codebook "
                       f"{registered.name} (sha256 {registered.sha256[:16]}, not {sha[:16]})")
    return out


def _code_result(session: Any, run_id: str, h: RegisteredHypothesis, planned: dict[str, dict[str, int]] | None,
                 book: RegisteredCodebook, units: Any = None) -> HypothesisResult:
    from ..analysis.tally import TallyError, code_tally

    assert h.code is not None and h.groups is not None
    by, compare = h.groups["by"], list(h.groups["compare"])
    try:
        tally = code_tally(session, [run_id], by=(by,), coder=h.coder, codes=[h.code], with_tests=False,
                           **({"units": units} if units is not None else {}))
    except TallyError as exc:
        return HypothesisResult(h, False, str(exc))
    rows = {r.group.get(by, ""): r for r in tally.rows if r.code == h.code}
    coder = ", ".join(tally.provenance.coders) + f" ({tally.provenance.coder_rule})"
    groups = []
    for level in compare:
        r = rows.get(level)
        reg = (planned or {}).get(by, {}).get(level, 0)
        if r is None:
            groups.append(GroupResult(level, 0, 0, 0, 0, reg, float("nan"), float("nan"), float("nan")))
        else:
            groups.append(GroupResult(level, r.count, r.n, r.finished, r.planned, reg, r.proportion, r.low, r.high))
    warnings = _codebook_warnings(session, tally.provenance.codebooks, book) + list(tally.provenance.warnings)
    empty = [g.label for g in groups if g.n == 0]
    if empty:
        return HypothesisResult(h, False, f"no coded conversations in {', '.join(empty)} (by {by})", groups,
                                coder=coder, warnings=warnings)
    g1, g2 = groups
    stat, p, method = _shares_test(h.test, h.direction, g1.count, g1.n, g2.count, g2.n)
    low, high = _newcombe(g1.count, g1.n, g2.count, g2.n)
    observed = _direction(g1.value, g2.value)
    reason = "" if not math.isnan(p) else method.rsplit(": ", 1)[-1]
    return HypothesisResult(h, not math.isnan(p), reason, groups, g1.value - g2.value, low, high, stat, p, observed,
                            _supported(h.direction, observed, p, h.alpha), coder, method, warnings)


def _bt_gap(records: Sequence[Any], options: Sequence[str], a: str, b: str) -> tuple[float, float, int, int, int, int]:
    """(utility of a minus b, its standard error, choices of a over b, comparisons of a with b answered with one of
    them, comparisons fitted, asked)."""
    from ..analysis.prefs import bradley_terry

    data = [(r.option_a, r.option_b, r.chosen == r.option_a) for r in records
            if r.chosen is not None and r.chosen in (r.option_a, r.option_b)]
    utilities = {u.option: u for u in bradley_terry(data, list(options), anchor=b)}
    direct = [r for r in records if {r.option_a, r.option_b} == {a, b} and r.chosen in (a, b)]
    wins = sum(1 for r in direct if r.chosen == a)
    u = utilities.get(a)
    if u is None or not data:
        return float("nan"), float("nan"), wins, len(direct), len(data), len(records)
    return u.value, u.se, wins, len(direct), len(data), len(records)


def _preference_result(session: Any, run_id: str, h: RegisteredHypothesis,
                       planned: dict[str, dict[str, int]] | None, conversations: dict[str, tuple[int, int]]
                       ) -> HypothesisResult:
    from ..analysis.prefs import load_choices

    assert h.preference is not None
    a, b = h.preference["a"], h.preference["b"]
    records, options = load_choices(session, [run_id])
    ids = list(options) or sorted({o for r in records for o in (r.option_a, r.option_b)})
    missing = [o for o in (a, b) if o not in ids]
    if missing:
        return HypothesisResult(h, False, f"the run offers no option {', '.join(missing)}")
    method = ("Bradley-Terry utilities (choix, MAP with a tiny ridge) with b as the anchor: the utility of a minus b "
              "with its 95% Wald interval from the observed information")
    if h.groups is None:
        levels: list[tuple[str, list[Any]]] = [("all", list(records))]
    else:
        by = h.groups["by"]
        levels = [(lv, [r for r in records if (r.model if by == "model" else r.condition) == lv])
                  for lv in h.groups["compare"]]
        method += "; between groups: the difference of the two gaps, z test with the two standard errors combined"
    groups = []
    fits = []
    for label, rs in levels:
        gap, se, wins, direct, fitted, asked = _bt_gap(rs, ids, a, b)
        fits.append((gap, se))
        by = h.groups["by"] if h.groups else "all"
        done, total = conversations.get(label, conversations.get("all", (0, 0)))
        groups.append(GroupResult(label, wins, fitted, asked, total, (planned or {}).get(by, {}).get(label, 0),
                                  gap, gap - Z95 * se, gap + Z95 * se, direct))
    if any(math.isnan(g) or math.isnan(s) or s == 0 for g, s in fits):
        return HypothesisResult(h, False, "no comparison to fit in " + ", ".join(
            g.label for g, (gap, s) in zip(groups, fits) if math.isnan(gap) or math.isnan(s) or s == 0), groups,
            method=method)
    if len(fits) == 1:
        est, se = fits[0]
        observed = _direction(est, 0.0)
    else:
        est, se = fits[0][0] - fits[1][0], math.hypot(fits[0][1], fits[1][1])
        observed = _direction(fits[0][0], fits[1][0])
    z = est / se
    p = _normal_p(z, h.direction)
    return HypothesisResult(h, True, "", groups, est, est - Z95 * se, est + Z95 * se, z, p, observed,
                            _supported(h.direction, observed, p, h.alpha), "", method)


# ----------------------------------------------------------------------------- exploratory


def _exploratory(session: Any, run_id: str, hyps: Sequence[RegisteredHypothesis],
                 units: Any = None) -> tuple[list[ExploratoryRow], str, list[str]]:
    from ..analysis.tally import TallyError, code_tally

    registered = {(h.code, h.groups["by"]) for h in hyps if h.code is not None and h.groups is not None}
    fields = list(dict.fromkeys(h.groups["by"] for h in hyps if h.groups is not None)) or ["model"]
    coder = next((h.coder for h in hyps if h.coder), None)
    rows: list[ExploratoryRow] = []
    used = ""
    warnings: list[str] = []
    for who in (coder, "builtin"):
        for by in fields:
            try:
                tally = code_tally(session, [run_id], by=(by,), coder=who,
                                   **({"units": units} if units is not None and who != "builtin" else {}))
            except TallyError as exc:
                if who != "builtin":
                    warnings.append(f"exploratory tallies by {by}: {exc}")
                continue
            rule = tally.provenance.coder_rule
            if who == "builtin" and used.endswith("(builtin)"):
                break  # the main tallies were the built-in codes already
            label = ", ".join(tally.provenance.coders) + f" ({rule})"
            used = used or label
            tests = {t.code: t for t in tally.tests}
            for r in tally.rows:
                if (r.code, by) in registered:
                    continue
                t = tests.get(r.code)
                rows.append(ExploratoryRow(r.code, by, r.group.get(by, ""), r.n, r.count, r.finished, r.planned,
                                           r.proportion, r.low, r.high, t.test if t else "none",
                                           t.p if t else float("nan"), t.p_adjusted if t else float("nan"),
                                           "builtin" if rule == "builtin" else label))
            warnings += [w for w in tally.provenance.warnings if w not in warnings]
    return rows, used, warnings


def _utilities(session: Any, run_id: str, hyps: Sequence[RegisteredHypothesis]) -> list[ExploratoryUtility]:
    """Every option's Bradley-Terry utility per group of each registered preference field (model by default)."""
    from ..analysis.prefs import bradley_terry, load_choices

    records, options = load_choices(session, [run_id])
    if not records:
        return []
    ids = list(options) or sorted({o for r in records for o in (r.option_a, r.option_b)})
    anchor = next((o for o, meta in options.items() if meta.get("opt_out")), None)
    fields = list(dict.fromkeys(h.groups["by"] for h in hyps if h.preference is not None and h.groups)) or ["model"]
    out = []
    for by in fields:
        groups: dict[str, list[Any]] = {}
        for r in records:
            groups.setdefault(r.model if by == "model" else r.condition, []).append(r)
        for label, rs in groups.items():
            data = [(r.option_a, r.option_b, r.chosen == r.option_a) for r in rs
                    if r.chosen is not None and r.chosen in (r.option_a, r.option_b)]
            for u in bradley_terry(data, ids, anchor):
                out.append(ExploratoryUtility(u.option, by, label, u.value, u.low, u.high, u.wins, u.n,
                                              anchor or "mean"))
    return out


# ----------------------------------------------------------------------------- the report


def build_report(url: str, run_id: str, units: Any = None) -> RigourReport:
    """Compute the report of a run that follows a registration. `units` (a `tally.UnitFilter`) keeps only
    units coded blind and/or leaves out self-coded ones, for the hypotheses and the exploratory tallies
    alike (the built-in codes are no one's coding and are kept)."""
    from sqlmodel import col, func, select

    from ..store.db import opened
    from ..store.tables import ConversationRow, RegistrationRow, RunRow

    with opened(url) as session:
        run = session.get(RunRow, run_id)
        if run is None:
            raise ReportError(f"no run {run_id} in {url}")
        if run.registration_id is None:
            raise ReportError(f"run {run_id} follows no registration: nothing in it was registered, so every "
                              "result is exploratory (see `latitude tally`); register a study with "
                              "`latitude register` and run it with --registration")
        reg = session.get(RegistrationRow, run.registration_id)
        if reg is None:
            raise ReportError(f"run {run_id} names registration {run.registration_id}, which is not in the store")
        registered = RegisteredProtocol.model_validate_json(reg.protocol_json)
        hyps = HypothesesRecord.model_validate_json(reg.hypotheses_json).hypotheses
        planned = _registered_counts(registered)
        statuses = session.exec(select(ConversationRow.model_alias, ConversationRow.condition,
                                       ConversationRow.status, func.count())
                                .where(ConversationRow.run_id == run_id)
                                .group_by(ConversationRow.model_alias, ConversationRow.condition,
                                          ConversationRow.status)).all()
        conversations: dict[str, tuple[int, int]] = {}
        for model, condition, status, n in statuses:
            for key in (model, condition, "all"):
                done, total = conversations.get(key, (0, 0))
                conversations[key] = (done + (n if status == "done" else 0), total + n)
        book = RegisteredCodebook.model_validate_json(reg.codebook_json)
        results = [(_code_result(session, run_id, h, planned, book, units) if h.code is not None
                    else _preference_result(session, run_id, h, planned, conversations)) for h in hyps]
        exploratory, coder, warnings = _exploratory(session, run_id, hyps, units)
        if units is not None and units.active:
            warnings.insert(0, f"counted: {units.describe()} (latitude report "
                               f"{'--blind-only ' if units.blind_only else ''}"
                               f"{'--exclude-self-coded' if units.exclude_self_coded else ''})".replace(" )", ")"))
        utilities = _utilities(session, run_id, hyps)
        found = run_deviations(session, run_id)
        done, total = conversations.get("all", (0, 0))
        registered_total = (planned or {}).get("all", {}).get("all", int(registered.plan.get("conversations") or 0))
        if found:
            warnings.insert(0, f"the run deviates from its registration in {len(found)} way(s) (listed below): "
                               "the registered tests describe the run as it was made, not as it was registered")
        # the registration's plan has no forks (a protocol's `fork:` spawns them as the run goes): compare
        # the conversations the plan made, and say how many forks came on top
        forks = session.exec(select(func.count()).select_from(ConversationRow).where(ConversationRow.run_id == run_id)
                             .where(col(ConversationRow.parent_id).is_not(None))).one()
        if total - forks != registered_total:
            also = f" (and {forks} forks)" if forks else ""
            warnings.insert(0, f"the run planned {total - forks} conversations{also}; the registration planned "
                               f"{registered_total}")
        report = RigourReport(
            run_id=run_id,
            registration={"id": reg.id, "name": reg.name, "sha256": reg.sha256,
                          "created_at": reg.created_at.isoformat(timespec="seconds")},
            protocol={"name": run.protocol_name, "version": run.protocol_version, "sha256": run.protocol_hash},
            simulated=bool(run.simulated),
            coverage={"finished": done, "planned": total, "registered": registered_total},
            hypotheses=results, deviations=found, exploratory=exploratory, exploratory_coder=coder,
            utilities=utilities,
            methods=sorted({r.method for r in results if r.method}) + [
                "code hypotheses: each share with its 95% Wilson interval; the difference of shares with Newcombe's "
                "95% hybrid score interval (statsmodels confint_proportions_2indep); units are conversations coded "
                "by the coder named, out of those finished, out of those planned",
                "exploratory: every other code's share by each registered grouping field (95% Wilson), with the "
                "tally's test between groups (chi-square, or Fisher's exact test when an expected count is below 5) "
                "and Benjamini-Hochberg adjustment across codes, for the registered coder's codes and the built-in "
                "codes (offers, stop phrase) alike; not registered, so not confirmatory"] + ([
                "exploratory preferences: every option's Bradley-Terry utility per group (choix, MAP with a tiny "
                "ridge), relative to the opt-out option or to the mean, with 95% Wald intervals"] if utilities else []),
            warnings=warnings, generated_at=datetime.now(UTC).isoformat(timespec="seconds"))
    return report


# ----------------------------------------------------------------------------- rendering


def _clean(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def to_json(report: RigourReport) -> dict[str, Any]:
    """The JSON document (NaN and infinities as null)."""
    def result(r: HypothesisResult) -> dict[str, Any]:
        return {"hypothesis": r.hypothesis.model_dump(mode="json", exclude_none=True), "registered": True,
                "computed": r.computed, "reason": r.reason,
                "groups": [asdict(g) for g in r.groups],
                "estimate": r.estimate, "ci_low": r.low, "ci_high": r.high, "statistic": r.statistic, "p": r.p,
                "alpha": r.hypothesis.alpha, "direction_registered": r.hypothesis.direction,
                "direction_observed": r.observed, "supported": r.supported, "coder": r.coder, "method": r.method,
                "warnings": r.warnings}

    return _clean({
        "schema_version": SCHEMA_VERSION, "run_id": report.run_id, "registration": report.registration,
        "protocol": report.protocol, "simulated": report.simulated, "coverage": report.coverage,
        "registered": [result(r) for r in report.hypotheses],
        "deviations": [d.as_dict() for d in report.deviations],
        "exploratory": {"coder": report.exploratory_coder, "rows": [asdict(e) for e in report.exploratory],
                        "utilities": [asdict(u) for u in report.utilities]},
        "methods": report.methods, "warnings": report.warnings, "generated_at": report.generated_at,
    })


def _f(v: float, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float) and math.isinf(v):
        return "∞" if v > 0 else "-∞"
    return f"{v:.{digits}f}"


def _p(v: float) -> str:
    if math.isnan(v):
        return "–"
    return f"{v:.4f}" if v >= 1e-4 else f"{v:.1e}"


_MD = str.maketrans({"|": "\\|", "\n": " ", "\r": " "})


def _cell(v: Any) -> str:
    return str(v).translate(_MD)


def _md_hypothesis(r: HypothesisResult) -> list[str]:
    h = r.hypothesis
    about = f"code `{h.code}`" if h.code else f"preference `{h.preference['a']}` over `{h.preference['b']}`"  # type: ignore[index]
    groups = (f"{h.groups['by']}: {h.groups['compare'][0]} vs {h.groups['compare'][1]}" if h.groups else "the whole run")
    out = [f"### {h.id}" + (f": {h.statement}" if h.statement else ""), "",
           f"- registered: {about}, {groups}; direction **{h.direction}**; planned test `{h.test}`; alpha {h.alpha}"]
    if r.coder:
        out.append(f"- coded by: {r.coder}")
    out.append("")
    if h.code:
        out += ["| group | coded of finished of planned | registered plan | present | share | 95% Wilson |",
                "|---|---:|---:|---:|---:|---|"]
        for g in r.groups:
            out.append(f"| {_cell(g.label)} | {g.n} of {g.finished} of {g.planned} | {g.registered} | {g.count} | "
                       f"{_f(g.value)} | [{_f(g.low)}, {_f(g.high)}] |")
    else:
        out += ["| group | fitted of asked of planned | registered plan | a chosen over b | utility a − b | 95% Wald |",
                "|---|---:|---:|---:|---:|---|"]
        for g in r.groups:
            out.append(f"| {_cell(g.label)} | {g.n} of {g.finished} of {g.planned} | {g.registered} | "
                       f"{g.count} of {g.direct} | "
                       f"{_f(g.value)} | [{_f(g.low)}, {_f(g.high)}] |")
    out.append("")
    if not r.computed:
        out.append(f"**Not computed**: {r.reason}. Not supported.")
    else:
        what = "difference in share" if h.code else ("utility gap difference" if h.groups else "utility a − b")
        first_second = (f" ({h.groups['compare'][0]} − {h.groups['compare'][1]})" if h.groups else "")
        out.append(f"- {what}{first_second}: {_f(r.estimate)}, 95% interval [{_f(r.low)}, {_f(r.high)}]")
        out.append(f"- {r.method}: statistic {_f(r.statistic)}, p = {_p(r.p)}")
        verdict = "**supported**" if r.supported else "**not supported**"
        out.append(f"- direction observed: {r.observed} (registered: {h.direction}); {verdict} at alpha {h.alpha}")
    out += [f"- warning: {_cell(w)}" for w in r.warnings]
    return out + [""]


def to_markdown(report: RigourReport) -> str:
    reg = report.registration
    cov = report.coverage
    out = [f"# Report: run {report.run_id}", "",
           f"- **registration**: {reg['id']} ({_cell(reg['name'])}), sha256 {reg['sha256']}, registered {reg['created_at']}",
           f"- **protocol**: {report.protocol['name']} v{report.protocol['version']} "
           f"sha256:{report.protocol['sha256'][:16]}",
           f"- **conversations**: {cov['finished']} finished of {cov['planned']} planned "
           f"(the registration planned {cov['registered']})"]
    if report.simulated:
        out.append("- **simulated**: yes: the run used simulated models; every figure describes the simulator")
    out += [f"- **warning**: {_cell(w)}" for w in report.warnings]
    out += [f"- generated {report.generated_at}", "", "## Registered hypotheses", ""]
    for r in report.hypotheses:
        out += _md_hypothesis(r)
    out += [f"## Deviations from the registration ({len(report.deviations)})", ""]
    if not report.deviations:
        out += ["None: the run is the registered study.", ""]
    else:
        out += ["| kind | path | registered | actual |", "|---|---|---|---|"]
        for d in report.deviations:
            reg_v = "–" if d.registered is None else json.dumps(d.registered, ensure_ascii=False)
            act_v = "–" if d.actual is None else json.dumps(d.actual, ensure_ascii=False)
            out.append(f"| {d.kind} | `{_cell(d.path)}` | {_cell(reg_v[:120])} | {_cell(act_v[:120])} |")
        out.append("")
    out += ["## Exploratory (not registered)", "",
            "Every result below was *not* registered: it may suggest a hypothesis for the next registered study, "
            "and confirms none. Coded by: " + (report.exploratory_coder or "–") + ".", ""]
    coded = [e for e in report.exploratory if e.coder != "builtin"]
    builtin = [e for e in report.exploratory if e.coder == "builtin"]
    for title, rows in (("", coded), ("Built-in codes (derived from the store: offers, stop phrase; coder builtin):", builtin)):
        if not rows:
            continue
        if title:
            out += [title, ""]
        out += ["| code | by | group | coded of finished of planned | present | share | 95% Wilson | test | p | p (BH) |",
                "|---|---|---|---:|---:|---:|---|---|---:|---:|"]
        for e in rows:
            out.append(f"| {_cell(e.code)} | {e.by} | {_cell(e.group)} | {e.n} of {e.finished} of {e.planned} | "
                       f"{e.count} | {_f(e.share)} | [{_f(e.low)}, {_f(e.high)}] | {e.test} | {_p(e.p)} | "
                       f"{_p(e.p_adjusted)} |")
        out.append("")
    if report.utilities:
        out += [f"Preferences: every option's Bradley-Terry utility per group (relative to "
                f"{report.utilities[0].anchor}; 95% Wald intervals):", "",
                "| option | by | group | utility | 95% Wald | won of compared |", "|---|---|---|---:|---|---:|"]
        for u in report.utilities:
            out.append(f"| {_cell(u.option)} | {u.by} | {_cell(u.group)} | {_f(u.utility)} | "
                       f"[{_f(u.low)}, {_f(u.high)}] | {u.wins} of {u.n} |")
        out.append("")
    if not report.exploratory and not report.utilities:
        out += ["No other analysis to show.", ""]
    out += ["## Methods", ""] + [f"- {m}" for m in report.methods]
    return "\n".join(out) + "\n"


def render(report: RigourReport, fmt: ReportFormat) -> str:
    """The report as Markdown or JSON text."""
    if fmt == "json":
        return json.dumps(to_json(report), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    if fmt == "md":
        return to_markdown(report)
    raise ValueError(f"unknown format {fmt!r}; use md or json")
