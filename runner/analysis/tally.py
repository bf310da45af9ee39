"""Tallies from the store: codes per group, stop behaviour, offers, agreement.

Synchronous functions taking a `Session` (the CLI calls them directly, the TUI from
thread workers). The unit is the conversation: a code is present in a conversation when
the coder applied it to the conversation or to any of its messages.

Whose codes are counted (``coder``):
- a person's name: conversations that person tagged or marked reviewed (`reviewed`) are the
  units; a code they did not apply there counts as absent; a conversation they neither
  tagged nor marked is uncoded (out of n), never absent;
- ``judge`` (the one judge of these runs, or of the codes asked for; with several, name one) or a
  full ``judge:<model>@<book>v<n>``: the judge records present and absent explicitly, so its
  units are what it judged;
- ``consensus``: the majority of the people who coded a conversation (at least two); a tie
  is left out of that code's units, and the rule and the number dropped are stated;
- ``builtin``: the built-in codes derived from the store (offers, stop phrase);
- None: ``consensus`` when two or more people coded, else the one person, else the newest
  judge, else ``builtin``. The choice is recorded in the provenance.
Human tags and judge tags are never mixed in one count.

Every figure says what it is out of: coded of finished of planned conversations, per group
(`Coverage`, `TallyRow.finished`/`planned`, `Provenance.coverage`), with a warning when the
coverage differs between the groups compared (`COVERAGE_TOLERANCE`).
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, get_args

from sqlmodel import Session, col, select

from ..store.tables import (
    CONVERSATION_STATUSES,
    CodebookRow,
    CodeRow,
    ConversationRow,
    MessageRow,
    OfferRow,
    RegistrationRow,
    RunRow,
    TagRow,
)
from . import stats
from .builtin_codes import BUILTIN_CODER, derive_builtin
from .echo_band import EchoTrend

__all__ = [
    "GROUP_FIELDS",
    "NOT_A_FORK",
    "fork_point_label",
    "AgreementReport",
    "AgreementRow",
    "COVERAGE_TOLERANCE",
    "ClusterBy",
    "FactorEffect",
    "JudgeValidation",
    "condition_roles",
    "CodeTally",
    "CodeTest",
    "Coverage",
    "Disagreement",
    "GroupField",
    "OfferTallyRow",
    "OfferTally",
    "ParaphraseRow",
    "Provenance",
    "StopRow",
    "StopTally",
    "TallyError",
    "TallyRow",
    "agreement_report",
    "NO_FILTER",
    "CodedUnit",
    "UnitFilter",
    "available_coders",
    "filter_units",
    "code_tally",
    "load_conversations",
    "offer_tally",
    "ratings",
    "stop_tally",
    "tally_rows",
    "to_jsonable",
]

GroupField = Literal["model", "condition", "vendor", "protocol", "run", "litellm_model", "replicate", "echo-band",
                     "fork"]
"""A conversation attribute to group by: the model alias, the protocol condition, the vendor,
the protocol name, the run id, the litellm model string, the replicate number, the echo band
(`echo_band`: the band of the mean echo of the conversation's replies), or the fork point
(``<parent id> #<N>``: the continuations sampled from one message of one conversation; a
conversation that is not a fork falls in ``not a fork``, the parent itself included)."""

NOT_A_FORK = "not a fork"
"""The `fork` group of a conversation that continues no other."""

GROUP_FIELDS: tuple[GroupField, ...] = get_args(GroupField)

FINISHED = ("done",)
"""Conversation statuses counted as units (errored and unfinished conversations are left out)."""

MODEL_STOP_REASONS = ("stop_phrase", "stop_tool", "stop_check_in")
"""Stop reasons of a conversation the model ended itself (by phrase, end tool or check-in)."""

Ratings = dict[str, dict[str, bool]]
"""code → conversation id → present."""

COVERAGE_TOLERANCE = 0.05
"""Largest difference in coverage (coded / finished, or finished / planned) between the groups
compared that passes without a warning: beyond it, a difference between the groups may come
from missing data alone."""


class TallyError(ValueError):
    """A tally that cannot be made (no such run, unknown coder or group field...)."""


# ----------------------------------------------------------------------------- provenance


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where the numbers come from; carried by every export."""

    run_ids: tuple[str, ...]
    """The runs tallied."""
    protocols: tuple[dict[str, str], ...]
    """Per run: run_id, protocol name, version and sha256 of the protocol text; for a run that follows a
    registration, its id (``registration``) and hash (``registration_sha256``)."""
    codebooks: tuple[str, ...]
    """Codebook versions of the tags counted, as ``name vN`` (empty for built-in codes)."""
    coders: tuple[str, ...]
    """The coders whose judgments were counted."""
    coder_rule: str
    """How the coders were chosen (``person``, ``judge``, ``consensus``, ``builtin``)."""
    n: int
    """Conversations (units) that entered the tally."""
    by: tuple[str, ...]
    """The grouping fields."""
    generated_at: str
    """When the tally was made (UTC, ISO 8601)."""
    latitude_version: str
    """Version of latitude that made it."""
    methods: tuple[str, ...] = ()
    """The statistical methods used, in words."""
    simulated: bool = False
    """True when any run tallied is simulated (sim/… models): the numbers describe the simulator."""
    finished: int = 0
    """Finished conversations (status ``done``) in the scope of the tally: what `n` is out of."""
    planned: int = 0
    """Conversations planned in the scope of the tally, whatever their status: what `finished` is out of."""
    warnings: tuple[str, ...] = ()
    """What a reader must know before trusting the numbers (coverage that differs between the groups
    compared, ties dropped, an unvalidated judge, an interval conditional on few paraphrases)."""

    @property
    def coverage(self) -> str:
        """``n coded of finished finished of planned planned``."""
        return f"{self.n} coded of {self.finished} finished of {self.planned} planned"

    def as_dict(self) -> dict[str, object]:
        return {"run_ids": list(self.run_ids), "protocols": [dict(p) for p in self.protocols],
                "codebooks": list(self.codebooks), "coders": list(self.coders), "coder_rule": self.coder_rule,
                "n": self.n, "by": list(self.by), "generated_at": self.generated_at,
                "latitude_version": self.latitude_version, "methods": list(self.methods),
                "simulated": self.simulated, "finished": self.finished, "planned": self.planned,
                "warnings": list(self.warnings)}


def _version() -> str:
    from importlib.metadata import version

    try:
        return version("latitude")
    except Exception:
        return "dev"


def _registration_of(session: Session, run: RunRow) -> dict[str, str]:
    """``registration`` (id) and ``registration_sha256`` of the registration a run follows; empty when none."""
    if run.registration_id is None:
        return {}
    row = session.get(RegistrationRow, run.registration_id)
    return {"registration": run.registration_id, "registration_sha256": row.sha256 if row is not None else ""}


def _provenance(session: Session, run_ids: Sequence[str], *, codebook_ids: Iterable[int | None] = (),
                coders: Iterable[str] = (), coder_rule: str = "", n: int = 0, by: Sequence[str] = (),
                methods: Sequence[str] = (), scope: Sequence[ConversationRow] = (),
                warnings: Sequence[str] = ()) -> Provenance:
    runs = [session.get(RunRow, r) for r in run_ids]
    protocols = tuple({"run_id": r.id, "protocol": r.protocol_name, "version": r.protocol_version,
                       "sha256": r.protocol_hash, **_registration_of(session, r)} for r in runs if r is not None)
    books = []
    for cid in sorted({c for c in codebook_ids if c is not None}):
        row = session.get(CodebookRow, cid)
        if row is not None:
            books.append(f"{row.name} v{row.version}")
    return Provenance(tuple(run_ids), protocols, tuple(books), tuple(sorted(set(coders))), coder_rule, n, tuple(by),
                      datetime.now(UTC).isoformat(timespec="seconds"), _version(), tuple(methods),
                      any(r is not None and r.simulated for r in runs),
                      sum(1 for c in scope if c.status in FINISHED), len(scope), tuple(dict.fromkeys(warnings)))


# ----------------------------------------------------------------------------- coverage


@dataclass(frozen=True, slots=True)
class Coverage:
    """What one group's figure rests on: coded of finished of planned conversations."""

    group: dict[str, str]
    """Grouping field → value."""
    coded: int
    """Conversations that entered the figure (coded by the coder counted; for stops, finished)."""
    finished: int
    """Conversations of the group that finished (status ``done``)."""
    planned: int
    """Conversations of the group in the plan, whatever their status."""

    def __str__(self) -> str:
        return f"{self.coded} coded of {self.finished} finished of {self.planned} planned"


def all_conversations(session: Session, run_ids: Sequence[str]) -> list[ConversationRow]:
    """Every planned conversation of the runs (any status), in run then plan order."""
    return load_conversations(session, run_ids, statuses=CONVERSATION_STATUSES)


def _share(part: int, whole: int) -> str:
    return f"{part}/{whole} ({100 * part / whole:.0f}%)"


def coverage_warnings(what: str, cells: Sequence[tuple[str, int, int]], part: str = "coded",
                      whole: str = "finished") -> list[str]:
    """A warning when the share `part`/`whole` differs by more than `COVERAGE_TOLERANCE` between
    the groups compared. `cells` holds (group label, part, whole) per group."""
    shares = [(label, a, b, a / b) for label, a, b in cells if b]
    empty = [label for label, _, b in cells if not b]
    out = []
    if empty and len(cells) >= 2:
        out.append(f"{what}: no {whole} conversations in {', '.join(empty)}: those groups are missing from "
                   "the comparison")
    if len(shares) >= 2:
        lo = min(shares, key=lambda x: x[3])
        hi = max(shares, key=lambda x: x[3])
        if hi[3] - lo[3] > COVERAGE_TOLERANCE:
            out.append(f"{what}: coverage differs between the groups compared ({part} of {whole}: "
                       f"{lo[0]} {_share(lo[1], lo[2])} vs {hi[0]} {_share(hi[1], hi[2])}); a difference "
                       "between these groups may come from the missing data alone")
    return out


def _finished_warnings(groups: dict[tuple[str, ...], list[ConversationRow]], fields: Sequence[str]) -> list[str]:
    cells = [(_label(dict(zip(fields, k))), sum(1 for c in v if c.status in FINISHED), len(v))
             for k, v in groups.items()]
    return coverage_warnings("conversations", cells, "finished", "planned")


# ----------------------------------------------------------------------------- loading


def load_conversations(session: Session, run_ids: Sequence[str], *,
                       statuses: Sequence[str] = FINISHED) -> list[ConversationRow]:
    """The finished conversations of the runs, in run then plan order. Unknown runs raise `TallyError`."""
    if not run_ids:
        raise TallyError("no run given")
    out: list[ConversationRow] = []
    for run_id in run_ids:
        if session.get(RunRow, run_id) is None:
            raise TallyError(f"no run {run_id} in the store")
        out.extend(session.exec(select(ConversationRow).where(ConversationRow.run_id == run_id)
                                .where(col(ConversationRow.status).in_(list(statuses)))
                                .order_by(col(ConversationRow.seq), col(ConversationRow.id))))
    return out


def _chunks(items: Sequence[str], size: int = 500) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield list(items[i:i + size])


def _live_tags(session: Session, conv_ids: Sequence[str]) -> list[TagRow]:
    out: list[TagRow] = []
    for chunk in _chunks(conv_ids):
        out.extend(session.exec(select(TagRow).where(col(TagRow.conversation_id).in_(chunk))
                                .where(col(TagRow.deleted_at).is_(None)).order_by(col(TagRow.id))))
    return out


def _is_judge(coder: str) -> bool:
    return coder.startswith("judge:")


def _marks(session: Session, conv_ids: Sequence[str]) -> dict[str, set[str]]:
    from .reviewed import reviewed_by

    return reviewed_by(session, conv_ids)


def _people(session: Session, tags: Sequence[TagRow], convs: Sequence[ConversationRow],
            marks: dict[str, set[str]] | None = None) -> list[str]:
    """People with a live tag or a reviewed mark on these conversations (with `marks`, the marks
    a unit filter kept: a coder whose every unit it left out is not a coder of the tally)."""
    from .reviewed import reviewed_by

    tagged = {t.coder for t in tags if t.source in ("human", "suggestion") and not _is_judge(t.coder)}
    if marks is None:
        marks = reviewed_by(session, [c.id for c in convs])
    marked = {m for m, ids in marks.items() if ids}
    return sorted(tagged | {m for m in marked if not _is_judge(m)})


def available_coders(session: Session, run_ids: Sequence[str]) -> dict[str, list[str]]:
    """The coders with live tags in these runs: ``{"people": [...], "judges": [...], "builtin": [...]}``."""
    convs = load_conversations(session, run_ids)
    tags = _live_tags(session, [c.id for c in convs])
    people = _people(session, tags, convs)
    judges = _judges_newest_first(tags)
    return {"people": people, "judges": judges, "builtin": [BUILTIN_CODER]}


def _judges_newest_first(tags: Sequence[TagRow]) -> list[str]:
    newest: dict[str, datetime] = {}
    for t in tags:
        if _is_judge(t.coder):
            if t.coder not in newest or t.created_at > newest[t.coder]:
                newest[t.coder] = t.created_at
    return sorted(newest, key=lambda c: (newest[c], c), reverse=True)


def _code_universe(session: Session, tags: Sequence[TagRow]) -> list[str]:
    """Codes a person could have applied: those of the newest version of each codebook their tags
    point at, plus any code seen in their tags (built-in codes excluded)."""
    names: list[str] = []
    books = {session.get(CodebookRow, t.codebook_id).name  # type: ignore[union-attr]
             for t in tags if t.codebook_id is not None and session.get(CodebookRow, t.codebook_id) is not None}
    for book in sorted(books):
        row = session.exec(select(CodebookRow).where(CodebookRow.name == book)
                           .order_by(col(CodebookRow.version).desc())).first()
        if row is not None:
            names += [c.name for c in session.exec(select(CodeRow).where(CodeRow.codebook_id == row.id)
                                                   .order_by(CodeRow.position, CodeRow.id)) if not c.builtin]
    for t in tags:
        if t.code not in names:
            names.append(t.code)
    return names


def _person_ratings(session: Session, tags: Sequence[TagRow], coder: str,
                    reviewed: Iterable[str] = ()) -> Ratings:
    """A person's units are the conversations they tagged or marked reviewed; a code they did not
    apply in one of them is absent. A conversation they neither tagged nor marked is not theirs
    (uncoded, never absent)."""
    mine = [t for t in tags if t.coder == coder]
    coded = {t.conversation_id for t in mine} | set(reviewed)
    universe = _code_universe(session, mine or [t for t in tags if t.source in ("human", "suggestion")
                                                and not _is_judge(t.coder)])
    out: Ratings = {code: {cid: False for cid in coded} for code in universe}
    for t in mine:
        if t.present:
            out.setdefault(t.code, {cid: False for cid in coded})[t.conversation_id] = True
    return out


def _explicit_ratings(tags: Sequence[TagRow], coder: str) -> Ratings:
    out: Ratings = {}
    for t in tags:
        if t.coder != coder:
            continue
        unit = out.setdefault(t.code, {})
        unit[t.conversation_id] = unit.get(t.conversation_id, False) or bool(t.present)
    return out


def _builtin_ratings(session: Session, convs: Sequence[ConversationRow]) -> Ratings:
    out: Ratings = {}
    for j in derive_builtin(session, convs):
        out.setdefault(j.code, {})[j.conversation_id] = j.present
    return out


CONSENSUS_RULE = ("consensus: a code is present when more than half of the people who coded the conversation "
                  "applied it, absent when fewer than half did (at least two people); a tie (as many for as "
                  "against) is left out of that code's units")
"""The consensus rule, stated in every consensus tally."""


def _consensus_ties(per_coder: dict[str, Ratings]) -> dict[str, int]:
    """code → conversations left out as ties."""
    out: dict[str, int] = {}
    codes = {code for r in per_coder.values() for code in r}
    for code in codes:
        votes: dict[str, list[bool]] = defaultdict(list)
        for r in per_coder.values():
            for cid, v in r.get(code, {}).items():
                votes[cid].append(v)
        out[code] = sum(1 for vs in votes.values() if len(vs) >= 2 and sum(vs) * 2 == len(vs))
    return out


def _consensus(per_coder: dict[str, Ratings]) -> Ratings:
    out: Ratings = {}
    codes = sorted({code for r in per_coder.values() for code in r}, key=_first_seen(per_coder))
    for code in codes:
        votes: dict[str, list[bool]] = defaultdict(list)
        for r in per_coder.values():
            for cid, v in r.get(code, {}).items():
                votes[cid].append(v)
        unit = out.setdefault(code, {})
        for cid, vs in votes.items():
            yes = sum(vs)
            if len(vs) >= 2 and yes * 2 != len(vs):
                unit[cid] = yes * 2 > len(vs)
    return out


def _first_seen(per_coder: dict[str, Ratings]):  # type: ignore[no-untyped-def]
    order: dict[str, int] = {}
    for r in per_coder.values():
        for code in r:
            order.setdefault(code, len(order))
    return lambda code: order.get(code, len(order))


@dataclass(frozen=True, slots=True)
class UnitFilter:
    """Which coded units count, by how they were coded (`runner.kinds.CodedHow`; a unit is one coder's
    coding of one conversation: their tags on it and their reviewed mark)."""

    exclude_self_coded: bool = False
    """Leave out units coded by whoever ran or prompted the conversation (``--exclude-self-coded``)."""
    blind_only: bool = False
    """Count only units coded blind (``--blind-only``); judges' units are never blind."""

    @property
    def active(self) -> bool:
        return self.exclude_self_coded or self.blind_only

    def keeps(self, how: str) -> bool:
        if self.blind_only and how != "blind":
            return False
        return not (self.exclude_self_coded and how == "self-coded")

    def describe(self) -> str:
        parts = (["blind-coded units only"] if self.blind_only else []) + \
            (["self-coded units excluded"] if self.exclude_self_coded else [])
        return " and ".join(parts)


NO_FILTER = UnitFilter()


@dataclass(frozen=True, slots=True)
class CodedUnit:
    """How one coder's coding of one conversation was made, and whether the tally counted it."""

    coder: str
    """The coder (a person or a judge)."""
    conversation_id: str
    """The conversation."""
    coded_how: str
    """``blind``, ``unblinded`` or ``self-coded`` (`runner.kinds.CodedHow`)."""
    counted: bool
    """False when ``--blind-only`` or ``--exclude-self-coded`` left it out."""


def filter_units(session: Session, convs: Sequence[ConversationRow], tags: Sequence[TagRow],
                 marks: dict[str, set[str]], units: UnitFilter
                 ) -> tuple[list[TagRow], dict[str, set[str]], str, list[CodedUnit]]:
    """The tags and reviewed marks of the units ``units`` keeps, a note saying what it kept out of what
    (empty when no filter is set), and every unit with how it was coded. Built-in codes are derived,
    never filtered."""
    from runner.rigour.blind import unit_modes

    modes = unit_modes(session, convs, tags, marks)
    every = [CodedUnit(coder, cid, how, units.keeps(how)) for (coder, cid), how in sorted(modes.items())]
    if not units.active:
        return list(tags), marks, "", every
    keep = {(u.coder, u.conversation_id) for u in every if u.counted}
    kept_tags = [t for t in tags if (t.coder, t.conversation_id) in keep]
    kept_marks = {coder: {cid for cid in ids if (coder, cid) in keep} for coder, ids in marks.items()}
    note = f"{units.describe()}: {len(keep)} of {len(modes)} coded (coder, conversation) units kept"
    return kept_tags, kept_marks, note, every


def units_note(units: Sequence[CodedUnit], coders: Iterable[str]) -> str:
    """``units coded: 12 blind, 30 unblinded, 4 self-coded (of 46; counted 12)`` for the coders counted."""
    mine = [u for u in units if u.coder in set(coders)]
    if not mine:
        return ""
    by = {how: sum(1 for u in mine if u.coded_how == how) for how in ("blind", "unblinded", "self-coded")}
    return (f"units coded: {by['blind']} blind, {by['unblinded']} unblinded, {by['self-coded']} self-coded "
            f"(of {len(mine)} (coder, conversation) units; {sum(u.counted for u in mine)} counted)")


@dataclass(frozen=True, slots=True)
class CoderChoice:
    """Which judgments a tally counts."""

    rule: str
    """``person``, ``judge``, ``consensus`` or ``builtin``."""
    coders: tuple[str, ...]
    """The coder names behind the numbers."""
    ratings: Ratings
    """code → conversation → present."""
    codebook_ids: tuple[int | None, ...]
    """Codebook versions of the tags used."""
    methods: tuple[str, ...] = ()
    """Rules of this choice worth stating (the consensus tie rule)."""
    warnings: tuple[str, ...] = ()
    """What this choice left out (ties dropped by the consensus)."""
    units: tuple[CodedUnit, ...] = ()
    """Every unit of the coders counted, with how it was coded and whether it was counted."""


def ratings(session: Session, convs: Sequence[ConversationRow], coder: str | None = None,
            codes: Sequence[str] | None = None, units: UnitFilter = NO_FILTER) -> CoderChoice:
    """The judgments of one coder choice over `convs` (see the module docstring).

    With `codes`, ``judge`` means the judge that coded all of them (an error when several did).
    With `units`, only the units it keeps count (blind-coded, not self-coded), and the choice says so."""
    choice = _ratings(session, convs, coder, codes, units)
    return choice


def _ratings(session: Session, convs: Sequence[ConversationRow], coder: str | None,
             codes: Sequence[str] | None, units: UnitFilter) -> CoderChoice:
    ids = [c.id for c in convs]
    unfiltered_tags = _live_tags(session, ids)
    unfiltered_marks = _marks(session, ids)
    tags, all_marks, unit_note, coded_units = filter_units(session, convs, unfiltered_tags, unfiltered_marks, units)
    people = _people(session, tags, convs, all_marks)
    # people whose every unit the filter left out: not coders of the tally, but their units are
    # still counted in its "units coded … (of N; k counted)" line
    left_out = set(_people(session, unfiltered_tags, convs, unfiltered_marks)) - set(people) if units.active else set()

    def noted(choice: CoderChoice) -> CoderChoice:
        among = set(choice.coders) | (left_out if choice.rule == "consensus" else set())
        mine = tuple(u for u in coded_units if u.coder in among)
        notes = tuple(n for n in (unit_note, units_note(mine, among)) if n)
        return CoderChoice(choice.rule, choice.coders, choice.ratings, choice.codebook_ids,
                           (*choice.methods, *notes), choice.warnings, mine)

    judges = _judges_newest_first(tags)
    if codes:
        coded = defaultdict(set)
        for t in tags:
            coded[t.coder].add(t.code)
        judges = [j for j in judges if set(codes) <= coded[j]] or judges
    if coder is None:
        coder = "consensus" if len(people) >= 2 else people[0] if people else judges[0] if judges else "builtin"
    if coder == "builtin":
        return noted(CoderChoice("builtin", (BUILTIN_CODER,), _builtin_ratings(session, convs), ()))
    if coder == "judge" or _is_judge(coder):
        if coder == "judge":
            if not judges:
                raise TallyError("no judge has coded these runs (run `latitude code RUN --judge ALIAS` first)")
            if len(judges) > 1:
                raise TallyError("several judges coded these runs; name one: " + ", ".join(judges))
            coder = judges[0]
        elif coder not in judges and unit_note and any(u.coder == coder for u in coded_units):
            raise TallyError(f"no units of {coder} are left with {units.describe()} (a judge never codes blind)")
        elif coder not in judges:
            raise TallyError(f"no judgments by {coder} in these runs; judges: {', '.join(judges) or 'none'}")
        used = [t for t in tags if t.coder == coder]
        return noted(CoderChoice("judge", (coder,), _explicit_ratings(tags, coder),
                                 tuple({t.codebook_id for t in used})))
    if coder == "consensus":
        if len(people) < 2:
            raise TallyError(f"consensus needs at least two people's tags; found {len(people)}: {', '.join(people)}")
        marks = all_marks
        per = {p: _person_ratings(session, tags, p, marks.get(p, ())) for p in people}
        used = [t for t in tags if t.coder in people]
        ties = _consensus_ties(per)
        cons = _consensus(per)
        dropped = {c: n for c, n in ties.items() if n and (not codes or c in codes)}
        note = ("ties dropped: " + ", ".join(f"{c} {n}" for c, n in sorted(dropped.items()))) if dropped \
            else "ties dropped: none"
        warn = (f"consensus left out {sum(dropped.values())} tied (code, conversation) pairs: "
                + ", ".join(f"{c} {n}" for c, n in sorted(dropped.items()))) if dropped else ""
        return noted(CoderChoice("consensus", tuple(people), cons, tuple({t.codebook_id for t in used}),
                                 (f"{CONSENSUS_RULE}; {note}",), (warn,) if warn else ()))
    if coder not in people:
        known = ", ".join(people + judges) or "none"
        if unit_note and any(u.coder == coder for u in coded_units):
            raise TallyError(f"no units of {coder!r} are left with {units.describe()} "
                             f"({units_note(coded_units, [coder])}); coders left: {known}")
        raise TallyError(f"no tags by {coder!r} in these runs; coders: {known}")
    used = [t for t in tags if t.coder == coder]
    return noted(CoderChoice("person", (coder,),
                             _person_ratings(session, tags, coder, all_marks.get(coder, ())),
                             tuple({t.codebook_id for t in used})))


# ----------------------------------------------------------------------------- grouping


def _group_value(conv: ConversationRow, fieldname: str, protocols: dict[str, str],
                 derived: dict[str, dict[str, str]] | None = None) -> str:
    if derived and fieldname in derived:
        return derived[fieldname].get(conv.id, "none")
    if fieldname == "model":
        return conv.model_alias
    if fieldname == "protocol":
        return protocols.get(conv.run_id, "")
    if fieldname == "run":
        return conv.run_id
    if fieldname == "fork":
        return fork_point_label(conv)
    return str(getattr(conv, fieldname))


def fork_warnings(convs: Sequence[ConversationRow], coded: set[str]) -> list[str]:
    """The warning a test between groups needs when some of its units are forks: a continuation shares
    its parent's stored history (and its siblings'), so the units are not independent. Within one fork
    point the continuations are independent samples given that history (``--by fork`` compares points)."""
    forks = [c for c in convs if c.parent_id is not None and c.id in coded]
    if not forks:
        return []
    return [f"{len(forks)} of {len(coded)} coded units are forks (continuations of another conversation's "
            "stored history): they are not independent of their parents or of each other, and the tests between "
            "groups treat every unit as independent, so their p-values are too small; tally the runs without "
            "their forks, or --by fork to compare fork points"]


def fork_point_label(conv: ConversationRow) -> str:
    """``<parent id> #<N>``: the fork point a conversation continues from (`NOT_A_FORK` if none)."""
    return f"{conv.parent_id} #{conv.fork_at}" if conv.parent_id is not None else NOT_A_FORK


def _check_by(by: Sequence[str]) -> tuple[str, ...]:
    fields = tuple(f.strip() for f in by if f.strip())
    for f in fields:
        if f not in GROUP_FIELDS:
            raise TallyError(f"cannot group by {f!r}; use {', '.join(GROUP_FIELDS)}")
    if not fields:
        raise TallyError("group by at least one field")
    return fields


def _protocols(session: Session, convs: Sequence[ConversationRow]) -> dict[str, str]:
    out = {}
    for run_id in {c.run_id for c in convs}:
        r = session.get(RunRow, run_id)
        out[run_id] = r.protocol_name if r is not None else ""
    return out


def _derived(session: Session, convs: Sequence[ConversationRow], by: Sequence[str]) -> dict[str, dict[str, str]]:
    """Grouping values computed from more than the conversation row (the echo band)."""
    if "echo-band" not in by:
        return {}
    from .echo_band import echo_bands

    return {"echo-band": echo_bands(session, convs)}


def _groups(session: Session, convs: Sequence[ConversationRow],
            by: Sequence[str]) -> dict[tuple[str, ...], list[ConversationRow]]:
    protocols = _protocols(session, convs)
    derived = _derived(session, convs, by)
    out: dict[tuple[str, ...], list[ConversationRow]] = {}
    for c in convs:
        out.setdefault(tuple(_group_value(c, f, protocols, derived) for f in by), []).append(c)
    if "echo-band" in by:  # bands in their order (low, mid, high, none), not in plan order
        at, order = list(by).index("echo-band"), ("low", "mid", "high", "none")
        out = dict(sorted(out.items(), key=lambda kv: order.index(kv[0][at]) if kv[0][at] in order else 9))
    return out


# ----------------------------------------------------------------------------- code tallies


@dataclass(frozen=True, slots=True)
class TallyRow:
    """One code in one group: how often it was present, with a 95% Wilson interval."""

    code: str
    """The code."""
    group: dict[str, str]
    """Grouping field → value (e.g. ``{"model": "claude"}``)."""
    n: int
    """Conversations coded in this group."""
    count: int
    """Conversations where the code is present."""
    proportion: float
    """count / n."""
    low: float
    """Lower bound of the 95% Wilson interval."""
    high: float
    """Upper bound of the 95% Wilson interval."""
    finished: int = 0
    """Finished conversations in this group: what `n` is out of."""
    planned: int = 0
    """Planned conversations in this group (any status): what `finished` is out of."""


@dataclass(frozen=True, slots=True)
class CodeTest:
    """A code compared between groups: present/absent × group."""

    code: str
    """The code."""
    test: str
    """``chi2``, ``fisher``, ``fisher-monte-carlo`` or ``none`` (`stats.TestName`)."""
    statistic: float
    """Test statistic (see `stats.IndependenceTest`)."""
    p: float
    """p-value."""
    p_adjusted: float
    """Benjamini-Hochberg adjusted p-value across the codes of this tally."""
    cramers_v: float
    """Cramér's V of the table (effect size)."""
    dof: int
    """Degrees of freedom."""
    groups: int
    """Groups with at least one coded conversation."""
    ranking_flips: bool = False
    """True when the order of two models on this code reverses between paraphrases."""
    flip_detail: str = ""
    """Which models swap places, under which paraphrases."""


@dataclass(frozen=True, slots=True)
class ParaphraseRow:
    """One code in one group, estimated separately under each paraphrase and pooled."""

    code: str
    """The code."""
    group: dict[str, str]
    """Grouping field → value (the condition is what varies, so it is not a grouping field here)."""
    per_paraphrase: dict[str, stats.Proportion]
    """Paraphrase (condition) → its own estimate with a Wilson interval."""
    pooled: stats.PooledEstimate
    """Mean over paraphrases, with a two-stage cluster bootstrap interval and the spread."""


ClusterBy = Literal["replicate", "conversation"]
"""Clusters of the factor model's robust standard errors: ``replicate`` (the conversations of one run and
replicate number, which share their sampling seed across models and conditions: one source) or
``conversation`` (each conversation its own cluster: heteroskedasticity-robust only)."""


@dataclass(frozen=True, slots=True)
class FactorEffect:
    """One level of one factor in the logistic regression of a code on the grouping fields."""

    code: str
    """The code."""
    factor: str
    """The factor (a grouping field)."""
    level: str
    """The level compared with the reference level."""
    reference: str
    """The reference level (the first in plan order)."""
    odds_ratio: float
    """Odds of the code under `level` over the odds under `reference`, the other factors held fixed."""
    low: float
    """Lower bound of the 95% cluster-robust interval of the odds ratio."""
    high: float
    """Upper bound."""
    p: float
    """Wald p-value of this level (cluster-robust)."""
    factor_p: float
    """Joint Wald p-value of all the factor's levels: does this factor matter, the others held fixed?"""
    estimable: bool
    """False under separation (the code always or never present at a level): no finite odds ratio."""
    n: int
    """Conversations in the fit."""
    clusters: int
    """Clusters of the robust covariance."""


@dataclass(frozen=True, slots=True)
class CodeTally:
    """Everything `latitude tally` reports on codes."""

    rows: list[TallyRow]
    """Per code and group."""
    tests: list[CodeTest]
    """Per code, between the groups (only with two or more groups)."""
    paraphrases: list[ParaphraseRow]
    """Per code and group under each paraphrase (only when paraphrase conditions are named)."""
    provenance: Provenance
    """Run ids, protocol hashes, codebook versions, coders, n."""
    validation: list[JudgeValidation] = field(default_factory=list)
    """Per code, when a judge's codes are counted: its agreement with people on the units both coded."""
    factors: list[FactorEffect] = field(default_factory=list)
    """Per code and factor level, with ``factors=True``: the logistic regression's effects."""
    echo: list[EchoTrend] = field(default_factory=list)
    """Per code, when grouped by ``echo-band``: counts per band, the trend test, the "possibly led" flag."""
    units: list[CodedUnit] = field(default_factory=list)
    """Every (coder, conversation) unit of the coders counted: how it was coded (blind, unblinded,
    self-coded) and whether it was counted."""


VALIDATION_MIN_UNITS = 50
"""A judge with fewer human-coded units than this (per code) is flagged unvalidated."""


@dataclass(frozen=True, slots=True)
class JudgeValidation:
    """How far a judge's codes can be trusted: its κ against people on the units both coded."""

    code: str
    """The code."""
    judge: str
    """The judge's coder name."""
    reference: str
    """Whose codes it is compared with: a person, or ``consensus`` of several."""
    units: int
    """Conversations coded by both the judge and the reference."""
    kappa: float
    """Cohen's κ judge vs reference (NaN when undefined or no overlap)."""
    low: float
    """Lower bound of the 95% asymptotic interval of κ."""
    high: float
    """Upper bound."""
    validated: bool
    """At least `VALIDATION_MIN_UNITS` human-coded units overlap."""


def _validate_judge(session: Session, convs: Sequence[ConversationRow], judge: str, judged: Ratings,
                    codes: Sequence[str]) -> tuple[list[JudgeValidation], list[str]]:
    tags = _live_tags(session, [c.id for c in convs])
    people = _people(session, tags, convs)
    if len(people) >= 2:
        reference, human = "consensus", ratings(session, convs, "consensus").ratings
    elif people:
        reference, human = people[0], ratings(session, convs, people[0]).ratings
    else:
        reference, human = "nobody", {}
    out = []
    for code in codes:
        mine, theirs = judged.get(code, {}), human.get(code, {})
        ids = sorted(set(mine) & set(theirs))
        k = stats.kappa_interval([float(mine[i]) for i in ids], [float(theirs[i]) for i in ids])
        out.append(JudgeValidation(code, judge, reference, len(ids), k.kappa, k.low, k.high,
                                   len(ids) >= VALIDATION_MIN_UNITS))
    weak = [v for v in out if not v.validated]
    warnings = []
    if weak:
        warnings.append(f"judge {judge} is unvalidated on {', '.join(v.code for v in weak)}: "
                        + ", ".join(f"{v.code} {v.units} human-coded units" for v in weak)
                        + f" (fewer than {VALIDATION_MIN_UNITS}; reference: {reference}); check it against people "
                        "with `latitude agreement` before trusting these figures")
    return out, warnings


METHODS_CODES = (
    "proportion with 95% Wilson score interval (statsmodels proportion_confint)",
    "between groups: Pearson chi-square without continuity correction when every expected count >= 5, "
    "else Fisher's exact test (Freeman-Halton for r x 2; Monte Carlo with seed 0 when too large) (scipy)",
    "p-values adjusted across codes with Benjamini-Hochberg (statsmodels multipletests fdr_bh)",
    "effect size: Cramer's V without bias correction (scipy.stats.contingency.association)",
)
METHODS_PARAPHRASE = (
    "paraphrases: per-paraphrase Wilson intervals; pooled = " + stats.RE_METHOD + "; the two-stage cluster "
    "bootstrap interval (2000 resamples, seed 0) is in the JSON detail and is conditional on these paraphrases; "
    "spread = max - min",
    "paraphrases, between groups: the paraphrase is the unit (conversations within one are clustered): two groups, "
    "random-effects meta-analysis of the per-paraphrase differences with the Hartung-Knapp t test (k-1 df; its standard "
    "error never below the DerSimonian-Laird one); three or "
    "more, Friedman's test with paraphrases as blocks (scipy)",
    "ranking flip: two models whose order on a code reverses between paraphrases (ties ignored)",
)


def code_tally(session: Session, run_ids: Sequence[str], *, by: Sequence[str] = ("model",),
               coder: str | None = None, codes: Sequence[str] | None = None,
               paraphrases: Sequence[str] | None = None, seed: int = 0, resamples: int = 2000,
               factors: bool = False, cluster_by: ClusterBy = "replicate", with_tests: bool = True,
               units: UnitFilter = NO_FILTER) -> CodeTally:
    """Per code and group: n, count, proportion and Wilson interval; tests between groups.

    With `paraphrases` (condition names that are rewordings of one prompt), the condition
    is not a grouping field: every group is also estimated under each paraphrase, pooled
    with a cluster bootstrap, and codes whose model ranking flips are flagged.

    ``with_tests=False`` computes the rows only (no tests between groups, ``tests`` is empty, the
    Wilson intervals in closed form without importing statsmodels): what a view that shows only
    the rows needs, without the cost of the statistics libraries.
    """
    fields = _check_by(by)
    everything = all_conversations(session, run_ids)
    convs = [c for c in everything if c.status in FINISHED]
    choice = ratings(session, convs, coder, codes, units)
    wanted = list(codes) if codes else list(choice.ratings)
    missing = [c for c in wanted if c not in choice.ratings]
    if codes and missing:
        known = ", ".join(choice.ratings) or "none"
        raise TallyError(f"no judgments of {', '.join(missing)} by {'/'.join(choice.coders)}; codes: {known}")
    para = list(paraphrases or [])
    if para:
        _, controls = condition_roles(session, run_ids)
        pooled_controls = [p for p in para if p in controls]
        if pooled_controls:
            raise TallyError(f"{', '.join(pooled_controls)} {'is a control' if len(pooled_controls) == 1 else 'are controls'}"
                             " (role: control in the protocol): a control is not a paraphrase and is never pooled")
        fields = tuple(f for f in fields if f != "condition") or ("model",)
        present = {c.condition for c in convs}
        unknown = [p for p in para if p not in present]
        everything = [c for c in everything if c.condition in para]
        convs = [c for c in convs if c.condition in para]
        if unknown:
            raise TallyError(f"no conversations under condition(s) {', '.join(unknown)}")
    planned_groups = _groups(session, everything, fields)
    groups = {k: [c for c in v if c.status in FINISHED] for k, v in planned_groups.items()}
    rows: list[TallyRow] = []
    tests: list[CodeTest] = []
    para_rows: list[ParaphraseRow] = []
    units: set[str] = set()
    by_coverage: dict[tuple[tuple[str, int, int], ...], list[str]] = {}
    # --by fork tests the fork points against each other; the conversations that are no fork (the
    # parents among them) share their history with the forks and stay out of that test
    fork_at = fields.index("fork") if "fork" in fields else None
    for code in wanted:
        unit = choice.ratings.get(code, {})
        table = []
        cells = []
        per_group: list[list[list[int]]] = []
        for key, members in groups.items():
            values = [unit[c.id] for c in members if c.id in unit]
            units.update(c.id for c in members if c.id in unit)
            p = (stats.wilson if with_tests else stats.wilson_closed_form)(sum(values), len(values))
            rows.append(TallyRow(code, dict(zip(fields, key)), p.n, p.count, p.p, p.low, p.high, len(members),
                                 len(planned_groups[key])))
            cells.append((_label(dict(zip(fields, key))), p.n, len(members)))
            if values and (fork_at is None or key[fork_at] != NOT_A_FORK):
                table.append([p.count, p.n - p.count])
            if para:
                clusters = {name: [int(unit[c.id]) for c in members if c.condition == name and c.id in unit]
                            for name in para}
                para_rows.append(ParaphraseRow(
                    code, dict(zip(fields, key)),
                    {name: stats.wilson(sum(v), len(v)) for name, v in clusters.items()},
                    stats.random_effects_pool(list(clusters.values()), resamples=resamples, seed=seed)))
                per_group.append(list(clusters.values()))
        by_coverage.setdefault(tuple(cells), []).append(code)
        if with_tests and para and len(per_group) >= 2:
            ct = stats.paraphrase_test(per_group)
            tests.append(CodeTest(code, ct.test, ct.statistic, ct.p, float("nan"), float("nan"), ct.dof,
                                  len(per_group)))
        elif with_tests and len(table) >= 2:
            t = stats.independence_test(table, seed=seed)
            tests.append(CodeTest(code, t.test, t.statistic, t.p, float("nan"), t.cramers_v, t.dof, len(table)))
    adjusted = stats.bh_adjust([t.p for t in tests])
    tests = [_replace(t, p_adjusted=q) for t, q in zip(tests, adjusted)]
    if para:
        tests = _flag_flips(tests, para_rows, fields)
    warnings = _finished_warnings(planned_groups, fields)
    if tests and "fork" not in fields:
        warnings += fork_warnings(convs, units)
    if para and len(para) < 5:
        warnings.append(f"only {len(para)} paraphrase{'s' if len(para) != 1 else ''}: the pooled interval is a "
                        "random-effects (Hartung-Knapp) interval over so few wordings; it is wide by design, and any "
                        "narrower interval (the bootstrap's) is conditional on these paraphrases")
    effects: list[FactorEffect] = []
    if factors:
        effects, more = _factor_effects(convs, wanted, choice.ratings, fields, cluster_by, session)
        warnings += more
    trends: list[EchoTrend] = []
    if "echo-band" in fields:
        from .echo_band import METHOD as ECHO_METHOD
        from .echo_band import echo_bands, echo_trends

        trends = echo_trends(choice.ratings, echo_bands(session, convs), wanted)
        warnings += [f"code {t.code}: {t.detail}" for t in trends if t.possibly_led]
    for cells_, names in by_coverage.items():
        warnings += coverage_warnings(f"code{'s' if len(names) > 1 else ''} {', '.join(names)}", cells_)
    warnings += choice.warnings
    validation: list[JudgeValidation] = []
    if choice.rule == "judge":
        validation, more = _validate_judge(session, convs, choice.coders[0], choice.ratings, wanted)
        warnings += more
    methods = METHODS_CODES + (METHODS_PARAPHRASE if para else ()) + choice.methods
    if "echo-band" in fields:
        methods += (ECHO_METHOD,)
    if fork_at is not None and tests:
        methods += (f"fork: the tests compare the fork points only; the \"{NOT_A_FORK}\" group (the parents "
                    "among them) shares its history with the forks and is shown, not tested",)
    if effects:
        methods += (f"factors: logistic regression of each code on {', '.join(fields)} (statsmodels GLM, binomial, "
                    f"treatment coding against the first level), cluster-robust standard errors by "
                    f"{'run and replicate (one sampling seed: one source)' if cluster_by == 'replicate' else 'conversation'}"
                    "; odds ratios with 95% Wald intervals; joint Wald test per factor",)
    if validation:
        methods += (f"judge validation: Cohen's kappa of the judge against people (consensus of two or more, else "
                    f"the one person) on the conversations both coded, 95% asymptotic interval; unvalidated below "
                    f"{VALIDATION_MIN_UNITS} such units",)
    prov = _provenance(session, run_ids, codebook_ids=choice.codebook_ids, coders=choice.coders,
                       coder_rule=choice.rule, n=len(units), by=fields + (("paraphrase",) if para else ()),
                       methods=methods, scope=everything, warnings=warnings)
    return CodeTally(rows, tests, para_rows, prov, validation, effects, trends, list(choice.units))


def _factor_effects(convs: Sequence[ConversationRow], codes: Sequence[str], judged: Ratings, fields: Sequence[str],
                    cluster_by: ClusterBy, session: Session) -> tuple[list[FactorEffect], list[str]]:
    protocols = _protocols(session, convs)
    derived = _derived(session, convs, fields)
    out: list[FactorEffect] = []
    warnings: list[str] = []
    for code in codes:
        unit = judged.get(code, {})
        members = [c for c in convs if c.id in unit]
        levels = {f: [_group_value(c, f, protocols, derived) for c in members] for f in fields}
        usable = {f: v for f, v in levels.items() if len(set(v)) >= 2}
        if not usable or len({unit[c.id] for c in members}) < 2:
            continue
        clusters = [f"{c.run_id}#{c.replicate}" if cluster_by == "replicate" else c.id for c in members]
        fit = stats.logistic_factors([int(unit[c.id]) for c in members], usable, clusters)
        for t in fit.terms:
            out.append(FactorEffect(code, t.factor, t.level, t.reference, t.odds_ratio, t.low, t.high, t.p,
                                    fit.factor_p.get(t.factor, float("nan")), t.estimable, fit.n, fit.clusters))
        bad = [f"{t.factor}={t.level}" for t in fit.terms if not t.estimable]
        if bad:
            warnings.append(f"code {code}: no finite effect for {', '.join(bad)} (the code is always or never "
                            "present there: separation); read those rows as not estimable")
        if fit.clusters < 20:
            warnings.append(f"code {code}: {fit.clusters} clusters for the robust standard errors (fewer than 20): "
                            "the factor intervals are approximate")
    return out, list(dict.fromkeys(warnings))


def condition_roles(session: Session, run_ids: Sequence[str]) -> tuple[dict[str, list[str]], set[str]]:
    """What the runs' protocols declare about their conditions: paraphrase families (the original
    condition → it and every ``paraphrase_of`` it, in protocol order) and the ``role: control`` ones."""
    import json

    families: dict[str, list[str]] = {}
    controls: set[str] = set()
    for run_id in run_ids:
        run = session.get(RunRow, run_id)
        if run is None:
            continue
        try:
            conditions = json.loads(run.plan_json or "{}").get("snapshot", {}).get("protocol", {}).get("conditions", [])
        except (ValueError, AttributeError):
            conditions = []
        for c in conditions or []:
            if c.get("role") == "control":
                controls.add(c["name"])
            root = c.get("paraphrase_of")
            if root:
                fam = families.setdefault(root, [root])
                if c["name"] not in fam:
                    fam.append(c["name"])
    return families, controls


def _replace(obj, **changes):  # type: ignore[no-untyped-def]
    from dataclasses import replace

    return replace(obj, **changes)


def _flag_flips(tests: list[CodeTest], para_rows: Sequence[ParaphraseRow], fields: Sequence[str]) -> list[CodeTest]:
    by_code: dict[str, list[ParaphraseRow]] = defaultdict(list)
    for r in para_rows:
        by_code[r.code].append(r)
    out = []
    known = {t.code for t in tests}
    flips: dict[str, str] = {}
    for code, rows in by_code.items():
        details = []
        for a, b in itertools.combinations(rows, 2):
            signs: dict[int, list[str]] = {1: [], -1: []}
            for name, pa in a.per_paraphrase.items():
                pb = b.per_paraphrase.get(name)
                if pb is None or pa.n == 0 or pb.n == 0 or pa.p == pb.p:
                    continue
                signs[1 if pa.p > pb.p else -1].append(name)
            if signs[1] and signs[-1]:
                la, lb = _label(a.group), _label(b.group)
                details.append(f"{la} > {lb} under {', '.join(signs[1])}; {la} < {lb} under {', '.join(signs[-1])}")
        if details:
            flips[code] = "; ".join(details)
    for t in tests:
        out.append(_replace(t, ranking_flips=t.code in flips, flip_detail=flips.get(t.code, "")))
    for code, detail in flips.items():  # a flip with a single group left in the main table
        if code not in known:
            nan = float("nan")
            out.append(CodeTest(code, "none", nan, nan, nan, nan, 0, 1, True, detail))
    return out


def _label(group: dict[str, str]) -> str:
    return "/".join(group.values())


def tally_rows(session: Session, run_ids: Sequence[str], by: Sequence[str] = ("model",),
               coder: str | None = None, units: UnitFilter = NO_FILTER) -> list[TallyRow]:
    """The rows of `code_tally` only: what the TUI's tallies screen shows (the tests between groups
    are not computed)."""
    return code_tally(session, run_ids, by=by, coder=coder, with_tests=False, units=units).rows


# ----------------------------------------------------------------------------- stops


@dataclass(frozen=True, slots=True)
class StopRow:
    """Stop behaviour of one group."""

    group: dict[str, str]
    """Grouping field → value."""
    n: int
    """Finished conversations."""
    stopped: int
    """Conversations the model ended itself (stop phrase, end tool or check-in; see `analysis.stops` for channels)."""
    proportion: float
    """stopped / n."""
    low: float
    """Lower bound of the 95% Wilson interval."""
    high: float
    """Upper bound."""
    median_stop_turn: float | None
    """Kaplan-Meier median of the stop turn (None when fewer than half stopped)."""
    stop_turns: list[int] = field(default_factory=list)
    """The model turn (1 = first reply) at which each stopped conversation stopped."""
    censored_turns: list[int] = field(default_factory=list)
    """The turns reached by conversations that ended otherwise (censored)."""
    planned: int = 0
    """Conversations of the group in the plan, whatever their status: what `n` is out of."""
    median_low: float | None = None
    """Lower bound of the 95% interval of the median stop turn (from the curve's pointwise band)."""
    median_high: float | None = None
    """Upper bound; None when not reached (the interval is open above)."""


@dataclass(frozen=True, slots=True)
class StopTally:
    """Stop behaviour per group: share ended by the stop phrase and the survival curve of the stop turn."""

    rows: list[StopRow]
    """One row per group."""
    curves: dict[str, stats.Survival]
    """Group label → Kaplan-Meier curve (conversations that ended otherwise are censored)."""
    provenance: Provenance
    """Run ids, protocol hashes, n."""
    test: stats.SurvivalTest | None = None
    """Log-rank test of equal stop-turn curves across the groups."""


def _stop_turns(session: Session, convs: Sequence[ConversationRow]) -> dict[str, int]:
    """Conversation → the model turn (1-based count of assistant messages) of the stop message."""
    stopped = {c.id: c.stop_message_idx for c in convs
               if c.stop_reason in MODEL_STOP_REASONS and c.stop_message_idx is not None}
    out: dict[str, int] = {}
    for chunk in _chunks(list(stopped)):
        rows = session.exec(select(MessageRow.conversation_id, MessageRow.idx)
                            .where(col(MessageRow.conversation_id).in_(chunk)).where(MessageRow.role == "assistant"))
        for cid, idx in rows:
            if idx <= (stopped[cid] or 0):
                out[cid] = out.get(cid, 0) + 1
    for c in convs:
        if c.id in stopped and c.id not in out:
            out[c.id] = max(c.turns, 1)
    return out


def stop_tally(session: Session, run_ids: Sequence[str], *, by: Sequence[str] = ("model",)) -> StopTally:
    """Per group: how many conversations the model ended with the stop phrase, and when.

    The stop turn is the model reply (1 = first) that carried the stop phrase. Its
    distribution is a Kaplan-Meier curve in which conversations that ended otherwise
    (script finished, max turns, declined) are censored at the turn they reached.
    """
    fields = _check_by(by)
    everything = all_conversations(session, run_ids)
    convs = [c for c in everything if c.status in FINISHED]
    turns = _stop_turns(session, convs)
    rows: list[StopRow] = []
    curves: dict[str, stats.Survival] = {}
    planned_groups = _groups(session, everything, fields)
    samples = []
    for key, planned in planned_groups.items():
        members = [c for c in planned if c.status in FINISHED]
        events = [c.id in turns for c in members]
        durations = [turns[c.id] if c.id in turns else c.turns for c in members]
        curve = stats.kaplan_meier(durations, events)
        samples.append((durations, events))
        p = stats.wilson(sum(events), len(members))
        group = dict(zip(fields, key))
        curves[_label(group)] = curve
        rows.append(StopRow(group, p.n, p.count, p.p, p.low, p.high, curve.median,
                            sorted(turns[c.id] for c in members if c.id in turns),
                            sorted(c.turns for c in members if c.id not in turns), len(planned),
                            curve.median_low, curve.median_high))
    test = stats.logrank(samples)
    methods = ("share stopped: 95% Wilson score interval",
               "stop turn: Kaplan-Meier (scipy.stats.ecdf), conversations ended otherwise right-censored at "
               "their last turn; 95% pointwise log-log interval",
               "median stop turn: 95% interval where the pointwise band crosses 0.5 (first turn where the lower band "
               "reaches 0.5, first turn where the upper band does; open above when it never does)",
               "between groups: log-rank test (scipy.stats.logrank for two groups; k-sample log-rank chi-square on "
               "k-1 df for more)")
    prov = _provenance(session, run_ids, coders=(BUILTIN_CODER,), coder_rule="builtin", n=len(convs), by=fields,
                       methods=methods, scope=everything, warnings=_finished_warnings(planned_groups, fields))
    return StopTally(rows, curves, prov, test)


# ----------------------------------------------------------------------------- offers


@dataclass(frozen=True, slots=True)
class OfferTallyRow:
    """The answers to one kind of offer in one group: accepted, declined and unclear, each counted."""

    label: str
    """What was offered (e.g. ``story_break``)."""
    group: dict[str, str]
    """Grouping field → value."""
    n: int
    """Offers made."""
    accepted: int
    """Offers classified ``accept``."""
    declined: int
    """Offers classified ``decline``."""
    unclear: int
    """Offers classified ``unclear``: neither accepted nor declined, never folded into either."""
    proportion: float
    """Acceptance among the classified: accepted / (accepted + declined); NaN when none was classified."""
    low: float
    """Lower bound of the 95% Wilson interval of `proportion`."""
    high: float
    """Upper bound."""
    conversations: int = 0
    """Conversations of the group in which this offer was made."""
    finished: int = 0
    """Finished conversations of the group (what `conversations` is out of)."""
    planned: int = 0
    """Planned conversations of the group, whatever their status."""
    classified: int = 0
    """Offers classified accept or decline: what `proportion` is out of."""
    unclear_share: float = float("nan")
    """unclear / n: the share of answers the classifier could not read."""
    unclear_low: float = float("nan")
    """Lower bound of the 95% Wilson interval of `unclear_share`."""
    unclear_high: float = float("nan")
    """Upper bound."""


@dataclass(frozen=True, slots=True)
class OfferTally:
    """Offer answers per label and group, with the test of acceptance between groups per label."""

    rows: list[OfferTallyRow]
    """One row per label and group."""
    tests: list[CodeTest]
    """Per label: accepted/declined × group, among the classified (``code`` holds the label)."""
    provenance: Provenance
    """Run ids, protocol hashes, n."""


def offer_tally(session: Session, run_ids: Sequence[str], *,
                by: Sequence[str] = ("model", "condition")) -> OfferTally:
    """Answers to every offer label per group (default model × condition): accept, decline and
    unclear counted separately; acceptance among the classified with its interval, and the
    unclear share with its own.

    The unit is the offer (a conversation offered a break three times counts three times);
    the classification is the one stored when the offer was made.
    """
    fields = _check_by(by)
    everything = all_conversations(session, run_ids)
    convs = [c for c in everything if c.status in FINISHED]
    by_id = {c.id: c for c in convs}
    offers: list[OfferRow] = []
    for chunk in _chunks(list(by_id)):
        offers.extend(session.exec(select(OfferRow).where(col(OfferRow.conversation_id).in_(chunk))
                                   .order_by(col(OfferRow.id))))
    protocols = _protocols(session, convs)
    derived = _derived(session, convs, fields)
    planned_groups = _groups(session, everything, fields)
    cells: dict[tuple[str, tuple[str, ...]], list[OfferRow]] = defaultdict(list)
    for o in offers:
        conv = by_id[o.conversation_id]
        cells[(o.label, tuple(_group_value(conv, f, protocols, derived) for f in fields))].append(o)
    rows = []
    for (label, key), made in sorted(cells.items()):
        outcomes = [o.classification for o in made]
        acc, dec, unc = outcomes.count("accept"), outcomes.count("decline"), outcomes.count("unclear")
        p = stats.wilson(acc, acc + dec)
        u = stats.wilson(unc, len(outcomes))
        planned = planned_groups.get(key, [])
        rows.append(OfferTallyRow(label, dict(zip(fields, key)), len(outcomes), acc, dec, unc, p.p, p.low, p.high,
                                  len({o.conversation_id for o in made}),
                                  sum(1 for c in planned if c.status in FINISHED), len(planned), acc + dec,
                                  u.p, u.low, u.high))
    tests = []
    warnings = _finished_warnings(planned_groups, fields)
    for label in sorted({r.label for r in rows}):
        mine = [r for r in rows if r.label == label]
        table = [[r.accepted, r.declined] for r in mine if r.classified]
        if len(table) >= 2:
            t = stats.independence_test(table)
            tests.append(CodeTest(label, t.test, t.statistic, t.p, float("nan"), t.cramers_v, t.dof, len(table)))
        warnings += coverage_warnings(f"offer {label}", [(_label(r.group), r.classified, r.n) for r in mine],
                                      "classified", "offers")
    adjusted = stats.bh_adjust([t.p for t in tests])
    tests = [_replace(t, p_adjusted=q) for t, q in zip(tests, adjusted)]
    methods = (METHODS_OFFERS, METHODS_CODES[1].replace("between groups:", "between groups (accepted vs declined):"),
               METHODS_CODES[2])
    prov = _provenance(session, run_ids, coders=(BUILTIN_CODER,), coder_rule="builtin",
                       n=len({o.conversation_id for o in offers}), by=fields, methods=methods, scope=everything,
                       warnings=warnings)
    return OfferTally(rows, tests, prov)


METHODS_OFFERS = ("accept, decline and unclear counted separately; acceptance = accepted / (accepted + declined), "
                  "among the classified, 95% Wilson score interval; unclear share = unclear / offers made, 95% "
                  "Wilson score interval")


# ----------------------------------------------------------------------------- agreement


@dataclass(frozen=True, slots=True)
class AgreementRow:
    """Agreement on one code between two coders, or among all of them."""

    code: str
    """The code."""
    coders: tuple[str, ...]
    """The coders compared."""
    units: int
    """Conversations rated by at least two of them."""
    raw: float
    """Share of those conversations on which they agree."""
    kappa: float | None
    """Cohen's κ (exactly two coders), else None."""
    alpha: float
    """Krippendorff's α (nominal)."""
    disagreements: int
    """Conversations on which they disagree."""
    kappa_low: float = float("nan")
    """Lower bound of the 95% interval of κ (asymptotic; NaN when κ is undefined or not computed)."""
    kappa_high: float = float("nan")
    """Upper bound."""
    finished: int = 0
    """Finished conversations in the runs: what `units` is out of."""
    planned: int = 0
    """Planned conversations in the runs, whatever their status."""
    comparison: str = ""
    """``people``, ``judge vs person`` or ``coders`` (no person among them)."""


@dataclass(frozen=True, slots=True)
class Disagreement:
    """A conversation and code on which coders disagree: the review list."""

    conversation_id: str
    """The conversation."""
    code: str
    """The code."""
    values: dict[str, bool]
    """Coder → present."""
    model: str
    """The conversation's model alias."""
    condition: str
    """The conversation's condition."""


@dataclass(frozen=True, slots=True)
class AgreementReport:
    """Agreement per code (all coders, and the judge against each person) and the disagreements."""

    rows: list[AgreementRow]
    """Per code: all coders together, then each judge against each person."""
    disagreements: list[Disagreement]
    """Every (conversation, code) on which the coders compared disagree."""
    provenance: Provenance
    """Run ids, protocol hashes, codebook versions, coders, n."""


def agreement_report(session: Session, run_ids: Sequence[str], *, coders: Sequence[str] | None = None,
                     codes: Sequence[str] | None = None, include_builtin: bool = False,
                     units: UnitFilter = NO_FILTER) -> AgreementReport:
    """Agreement among coders on each code, over the conversations two or more of them coded.

    `coders` defaults to every person and every judge with tags in the runs (with
    `include_builtin`, the built-in coder too, for the codes it derives). Per code, people
    come first (all of them together with α when more than two, then each pair), then each
    judge against each person; every pair with raw agreement, Cohen's κ and its 95% interval,
    Krippendorff's α, and its units of finished. Disagreements are listed for review.
    """
    convs = load_conversations(session, run_ids)
    by_id = {c.id: c for c in convs}
    tags = _live_tags(session, list(by_id))
    people = _people(session, tags, convs)
    judges = _judges_newest_first(tags)
    names = list(coders) if coders else people + judges + ([BUILTIN_CODER] if include_builtin else [])
    marks = _marks(session, list(by_id))
    tags, marks, unit_note, coded_units = filter_units(session, convs, tags, marks, units)
    per: dict[str, Ratings] = {}
    for name in names:
        if name == BUILTIN_CODER:
            per[name] = _builtin_ratings(session, convs)
        elif _is_judge(name):
            if name not in judges:
                raise TallyError(f"no judgments by {name} in these runs")
            per[name] = _explicit_ratings(tags, name)
        elif name in people:
            per[name] = _person_ratings(session, tags, name, marks.get(name, ()))
        else:
            raise TallyError(f"no tags by {name!r} in these runs; coders: {', '.join(people + judges) or 'none'}")
    if units.active and not coders:  # a coder none of whose units the filter kept is not a rater here
        names = [n for n in names if n == BUILTIN_CODER or any(per[n].values())]
        per = {n: per[n] for n in names}
    all_codes = list(codes) if codes else sorted({c for r in per.values() for c in r}, key=_first_seen(per))
    everything = all_conversations(session, run_ids)
    finished, planned = len(convs), len(everything)
    rows: list[AgreementRow] = []
    disagreements: list[Disagreement] = []
    units_seen: set[str] = set()
    for code in all_codes:
        raters = [n for n in names if code in per[n]]
        if len(raters) < 2:
            continue
        ids = sorted({cid for n in raters for cid in per[n][code]})
        matrix = {n: [_value(per[n][code].get(cid)) for cid in ids] for n in raters}
        split = []
        for cid in ids:
            vals = {n: per[n][code][cid] for n in raters if cid in per[n][code]}
            if len(vals) >= 2:
                units_seen.add(cid)
                if len(set(vals.values())) > 1:
                    c = by_id[cid]
                    split.append(Disagreement(cid, code, vals, c.model_alias, c.condition))
        disagreements += split
        machines = [n for n in raters if _is_judge(n) or n == BUILTIN_CODER]
        humans = [n for n in raters if n not in machines]
        if len(humans) > 2:  # all the people together first (α), then each pair of them
            res = stats.agreement(humans, [matrix[n] for n in humans])
            n_split = sum(1 for cid in ids if len({per[n][code][cid] for n in humans if cid in per[n][code]}) > 1)
            rows.append(AgreementRow(code, tuple(humans), res.units, res.raw, None, res.alpha, n_split,
                                     finished=finished, planned=planned, comparison="people"))
        pairs = [(a, b, "people") for a, b in itertools.combinations(humans, 2)]
        pairs += [(j, h, "judge vs person") for j in machines for h in humans]
        if not humans:
            pairs += [(a, b, "coders") for a, b in itertools.combinations(machines, 2)]
        for a, b, kind in pairs:
            pair = [matrix[a], matrix[b]]
            r2 = stats.agreement([a, b], pair)
            k = stats.kappa_interval(*pair)
            split2 = sum(1 for x, y in zip(*pair) if x is not None and y is not None and x != y)
            rows.append(AgreementRow(code, (a, b), r2.units, r2.raw, r2.kappa, r2.alpha, split2, k.low, k.high,
                                     finished, planned, kind))
    methods = ("order: people vs people first (all people together when more than two, then each pair), then "
               "each judge (and the built-in coder) vs each person",
               "raw agreement: share of conversations rated by >= 2 coders on which all agree",
               "Cohen's kappa for two coders (scikit-learn cohen_kappa_score), 95% asymptotic interval "
               "(statsmodels cohens_kappa)",
               "Krippendorff's alpha, nominal, missing ratings allowed (krippendorff package)") \
        + ((unit_note,) if unit_note else ())
    compared = {c for r in rows for c in r.coders}
    counted_units = units_note(coded_units, compared)
    methods += (counted_units,) if counted_units else ()
    used = [t for t in tags if t.coder in compared and t.code in {r.code for r in rows}]
    rated = {n: len({cid for r in per[n].values() for cid in r}) for n in compared}
    warnings = coverage_warnings("coders", [(n, rated[n], finished) for n in sorted(compared)])
    prov = _provenance(session, run_ids, codebook_ids={t.codebook_id for t in used}, coders=compared,
                       coder_rule="agreement", n=len(units_seen), by=(), methods=methods, scope=everything,
                       warnings=warnings)
    return AgreementReport(rows, disagreements, prov)


def _value(v: bool | None) -> float | None:
    return None if v is None else float(v)


def _nan_to_none(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


def to_jsonable(obj: object) -> object:
    """Dataclasses (and what they hold) as JSON-ready values; NaN becomes None."""
    from dataclasses import is_dataclass

    if is_dataclass(obj) and not isinstance(obj, type):
        if isinstance(obj, Provenance):
            return obj.as_dict()
        return {k: to_jsonable(getattr(obj, k)) for k in obj.__dataclass_fields__}  # type: ignore[attr-defined]
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, float):
        return _nan_to_none(obj)
    return obj
