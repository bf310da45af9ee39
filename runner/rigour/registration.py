"""Pre-registration: freeze a study before its data exist, then list every way a run departs from it.

    record = build(loaded, hypotheses, codebook=book, analysis=path, models_file=path)   # nothing written
    row = register(url, record)                      # one row, hashed, with its time
    found = deviations(row, plan)                    # before a run starts: every difference, never hidden
    record_deviations(url, run_id, row.id, found)    # stored with the run

What is frozen, as one `RegistrationRow`: the protocol exactly as a run snapshots it
(`Plan.summary()`: the protocol, every included file's text, models, conditions, replicates)
with the model aliases it uses, its judges' included (key variable *names* only: a key's value
never enters the record), the hypotheses, the codebook (its canonical YAML and hash) and the planned
analysis commands.

The hash (`canonical`) is sha256 over a canonical JSON serialisation (sorted keys, no
whitespace, UTF-8) of those four parts, with what depends on where the files sit rather
than what they say left out: the protocol's directory, included files keyed by their path
relative to it, the hypotheses' and analysis files' paths. Registering the same files
again, from anywhere, gives the same hash; changing one character of a prompt changes it.

Because a registration holds what a run stores (`RunRow.plan_json`, `RunRow.models_json`),
the two compare field by field (`deviations`): a changed prompt (the step's path and a
short diff), a changed included file, a different replicate count, a model added, removed
or swapped, sampling parameters changed, a condition added, removed or changed, any other
protocol field. A run records them; `--strict` refuses to start instead.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..kinds import DeviationKind
from ..store.records import (
    HypothesesRecord,
    RegisteredAnalysis,
    RegisteredCodebook,
    RegisteredHypothesis,
    RegisteredProtocol,
)

__all__ = ["Deviation", "RegistrationError", "Record", "analysis_commands", "build", "canonical", "deviations",
           "get", "list_registrations", "record_deviations", "redact", "register", "run_deviations"]

REDACTED = "<redacted>"
"""What replaces a secret-looking value."""

_SECRET_KEY = re.compile(r"(^|[_-])(api[_-]?key|apikey|secret|token|password|passwd|authorization|bearer|"
                         r"access[_-]?key|private[_-]?key|credentials?)$", re.IGNORECASE)
"""A mapping key whose value is a secret (``api_key``, ``x-api-key``, ``auth_token``...). ``api_key_env``
(the *name* of the variable) and ``max_tokens`` do not match."""

_URL_SECRETS = (re.compile(r"(?<=://)([^/\s:@]*):([^/\s@]+)(?=@)"),
                re.compile(r"(?<=[?&])((?:api[_-]?)?key|token|access_token|secret|password|sig)=([^&#\s]+)",
                           re.IGNORECASE))
"""A password in a URL's user info (``https://user:KEY@host``) and a key in its query (``?api_key=KEY``)."""

_SECRET_ENV = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.IGNORECASE)
"""Environment variable names whose values are never allowed into a record."""

SAMPLING_KEYS = frozenset({"temperature", "top_p", "max_tokens", "seed", "reasoning_effort", "thinking_budget",
                           "extra"})
"""Alias settings that change what is sampled (a change is ``sampling_changed``; others ``model_changed``)."""

DIFF_LINES = 12
"""Most lines of a deviation's diff."""

_NOT_PROMPTS = frozenset({"name", "description", "version", "extends", "on_empty"})
"""Top-level protocol fields whose text is never sent to a model: a change is ``protocol_changed``."""


class RegistrationError(Exception):
    """A registration that cannot be found or used."""


# ----------------------------------------------------------------------------- secrets


def _secret_values(models: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Values of the environment variables a record must never contain: every `api_key_env` named, and
    every variable whose name looks like a key, token, secret or password (8 characters or more)."""
    names = {m.get("api_key_env") for m in models.values() if m.get("api_key_env")}
    names |= {n for n in os.environ if _SECRET_ENV.search(n)}
    return {n: os.environ[n] for n in sorted(names) if n and len(os.environ.get(n, "")) >= 8}


def redact(value: Any, secrets: dict[str, str]) -> Any:
    """`value` with every secret-looking mapping value replaced, every environment secret's text
    (`secrets`: name → value) replaced by ``<redacted:NAME>`` wherever it occurs, and a key inside a
    URL (its user info's password, a ``key=``/``token=`` query value) replaced."""
    if isinstance(value, dict):
        return {k: (REDACTED if isinstance(k, str) and _SECRET_KEY.search(k) and v not in (None, "")
                    else redact(v, secrets)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, secrets) for v in value]
    if isinstance(value, str):
        for name, secret in secrets.items():
            if secret in value:
                value = value.replace(secret, f"<redacted:{name}>")
        if "://" in value or "=" in value:
            userinfo, query = _URL_SECRETS
            value = userinfo.sub(lambda m: f"{m.group(1)}:{REDACTED}", value)
            value = query.sub(lambda m: f"{m.group(1)}={REDACTED}", value)
        return value
    return value


# ----------------------------------------------------------------------------- building


def _models(plan: Any) -> dict[str, dict[str, Any]]:
    """The aliases a plan uses as a run stores them (`models_json`: subjects, partners, experimenters) and
    the judges its protocol names: a judge reads the outcome, so swapping its model is a deviation too."""
    from ..engine.runs import models_json

    return json.loads(models_json(plan))


@dataclass(frozen=True)
class Record:
    """A registration before it is written: the four payloads and the hash over them."""

    name: str
    protocol: RegisteredProtocol
    hypotheses: HypothesesRecord
    codebook: RegisteredCodebook
    analysis: RegisteredAnalysis

    @property
    def sha256(self) -> str:
        return hashlib.sha256(canonical(self.protocol, self.hypotheses, self.codebook, self.analysis)).hexdigest()


def analysis_commands(path: Path) -> list[str]:
    """The planned analysis: one command a line (``#`` comments and blank lines dropped)."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out


def build(loaded: Any, plan: Any, hypotheses: Any, *, codebook: Any = None, codebook_version: int | None = None,
          analysis: Path | None = None, models_file: Path | None = None, name: str | None = None) -> Record:
    """The registration of a loaded protocol and its default plan (`runner.plan.make_plan`), a loaded
    hypotheses file (`runner.rigour.hypotheses.load_hypotheses`), an optional codebook
    (`runner.analysis.codebook.Codebook`) and analysis file. Nothing is written."""
    models = _models(plan)
    secrets = _secret_values(models)
    protocol = RegisteredProtocol(
        plan=redact(json.loads(json.dumps(plan.summary(), default=str)), secrets),
        models=redact(models, secrets), models_file=str(models_file.resolve()) if models_file else None,
        protocol_path=str(loaded.path.resolve()), protocol_text=redact(loaded.text, secrets))
    parsed = hypotheses.parsed
    hyps = HypothesesRecord(path=str(hypotheses.path.resolve()), sha256=hypotheses.sha256, hypotheses=[
        RegisteredHypothesis(id=h.id, code=h.code, preference=h.preference.model_dump() if h.preference else None,
                             groups=h.groups.model_dump() if h.groups else None, direction=h.direction, test=h.test,
                             alpha=parsed.alpha_of(h), coder=h.coder, statement=redact(h.statement, secrets))
        for h in parsed.hypotheses])
    book = RegisteredCodebook()
    if codebook is not None:
        from ..analysis.codebook import to_yaml

        text = to_yaml(codebook)
        book = RegisteredCodebook(name=codebook.name, sha256=hashlib.sha256(text.encode()).hexdigest(), yaml=text,
                                  codes=[c.name for c in codebook.codes], stored_version=codebook_version)
    planned = RegisteredAnalysis(path=str(analysis.resolve()) if analysis else None,
                                 commands=redact(analysis_commands(analysis), secrets) if analysis else [])
    return Record(name or loaded.protocol.name, protocol, hyps, book, planned)


def _relative_files(snapshot: dict[str, Any]) -> dict[str, Any]:
    """A plan snapshot with what depends on the files' location taken out: `base_dir` dropped, included
    files keyed by their path relative to it (absolute when outside it)."""
    base = snapshot.get("base_dir") or ""
    files = {}
    for path, text in (snapshot.get("files") or {}).items():
        try:
            key = str(Path(path).relative_to(base)) if base else path
        except ValueError:
            key = path
        files[key] = text
    return {k: v for k, v in snapshot.items() if k not in ("base_dir", "files")} | {"files": files}


def _normal_plan(plan: dict[str, Any]) -> dict[str, Any]:
    out = dict(plan)
    if isinstance(out.get("snapshot"), dict):
        out["snapshot"] = _relative_files(out["snapshot"])
    return out


def canonical(protocol: RegisteredProtocol, hypotheses: HypothesesRecord, codebook: RegisteredCodebook,
              analysis: RegisteredAnalysis) -> bytes:
    """The bytes the registration hash is taken over (see the module docstring: paths are left out)."""
    doc = {
        "protocol": {"plan": _normal_plan(protocol.plan), "models": protocol.models},
        "hypotheses": [h.model_dump(mode="json", exclude_none=True) for h in hypotheses.hypotheses],
        "codebook": {"name": codebook.name, "sha256": codebook.sha256, "codes": codebook.codes},
        "analysis": analysis.commands,
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


# ----------------------------------------------------------------------------- the store


def _new_id() -> str:
    import uuid

    return uuid.uuid4().hex[:12]


def register(url: str, record: Record) -> Any:
    """Write the registration (one row, committed); returns the `RegistrationRow`."""
    from sqlmodel import Session

    from ..store.db import open as open_store
    from ..store.tables import RegistrationRow

    row = RegistrationRow(id=_new_id(), name=record.name, sha256=record.sha256,
                          protocol_json=record.protocol.dump(), hypotheses_json=record.hypotheses.dump(),
                          codebook_json=record.codebook.dump(), analysis_json=record.analysis.dump())
    engine = open_store(url, write=True)
    try:
        with Session(engine, expire_on_commit=False) as session:
            session.add(row)
            session.commit()
    finally:
        engine.dispose()
    return row


def get(url: str, registration_id: str) -> Any:
    """The stored registration (a detached `RegistrationRow`); `RegistrationError` when there is none."""
    from ..store.db import opened
    from ..store.tables import RegistrationRow

    with opened(url) as session:
        row = session.get(RegistrationRow, registration_id)
        if row is not None:
            session.expunge(row)
    if row is None:
        raise RegistrationError(f"no registration {registration_id} in {url} (see `latitude register`)")
    return row


def list_registrations(url: str) -> list[Any]:
    """Every registration, newest first."""
    from sqlmodel import col, select

    from ..store.db import opened
    from ..store.tables import RegistrationRow

    with opened(url) as session:
        rows = list(session.exec(select(RegistrationRow).order_by(col(RegistrationRow.created_at).desc())))
        for r in rows:
            session.expunge(r)
    return rows


@dataclass(frozen=True)
class RegistrationSummary:
    """What `latitude registrations` lists beside a registration's row."""

    protocol: str
    """The protocol's name."""
    version: str
    """Its version."""
    hypotheses: list[str]
    """The hypothesis ids."""
    runs: list[str]
    """The runs that follow it, oldest first."""


def summaries(url: str) -> list[tuple[Any, RegistrationSummary]]:
    """Every registration (newest first) with its protocol, hypotheses and the runs that follow it."""
    from sqlmodel import col, select

    from ..store.db import opened
    from ..store.tables import RunRow

    rows = list_registrations(url)
    with opened(url) as session:
        following: dict[str, list[str]] = {}
        for run_id, reg_id in session.exec(select(RunRow.id, RunRow.registration_id)
                                           .where(col(RunRow.registration_id).is_not(None))
                                           .order_by(col(RunRow.started_at))):
            following.setdefault(reg_id, []).append(run_id)
    out = []
    for r in rows:
        plan = RegisteredProtocol.model_validate_json(r.protocol_json).plan
        hyps = HypothesesRecord.model_validate_json(r.hypotheses_json).hypotheses
        out.append((r, RegistrationSummary(str(plan.get("protocol", "")), str(plan.get("version", "")),
                                           [h.id for h in hyps], following.get(r.id, []))))
    return out


@dataclass(frozen=True)
class Deviation:
    """One difference between a registration and a run."""

    path: str
    """Dotted field path (``protocol.steps[1].say``, ``replicates``, ``models.sim-maker.model``)."""
    kind: DeviationKind
    """What kind of departure."""
    registered: Any
    """The registered value (None: the run adds it)."""
    actual: Any
    """The run's value (None: the run drops it)."""
    diff: str = ""
    """For text: a short diff, registered (``-``) → actual (``+``)."""

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "kind": self.kind, "registered": self.registered, "actual": self.actual,
                "diff": self.diff}


def deviation_rows(run_id: str, registration_id: str, found: Sequence[Deviation]) -> list[Any]:
    """The `DeviationRow`s of a run, to be written in the run's own transaction
    (`runner.engine.runs.prepare_start(..., also=...)`), so a registered run never exists without them."""
    from ..store.tables import DeviationRow

    return [DeviationRow(run_id=run_id, registration_id=registration_id, path=d.path, kind=d.kind,
                         registered=None if d.registered is None else json.dumps(d.registered),
                         actual=None if d.actual is None else json.dumps(d.actual), diff=d.diff) for d in found]


def record_deviations(url: str, run_id: str, registration_id: str, found: Sequence[Deviation]) -> None:
    """Store the deviations of a run (one transaction), replacing any stored for it before."""
    from sqlmodel import Session, delete

    from ..store.db import open as open_store
    from ..store.tables import DeviationRow

    engine = open_store(url, write=True)
    try:
        with Session(engine) as session:
            session.exec(delete(DeviationRow).where(DeviationRow.run_id == run_id))  # type: ignore[arg-type]
            session.add_all(deviation_rows(run_id, registration_id, found))
            session.commit()
    finally:
        engine.dispose()


def run_deviations(session: Any, run_id: str) -> list[Deviation]:
    """The stored deviations of a run, in the order they were found."""
    from sqlmodel import col, select

    from ..store.tables import DeviationRow

    rows = session.exec(select(DeviationRow).where(DeviationRow.run_id == run_id).order_by(col(DeviationRow.id)))
    return [Deviation(r.path, r.kind, None if r.registered is None else json.loads(r.registered),
                      None if r.actual is None else json.loads(r.actual), r.diff) for r in rows]


# ----------------------------------------------------------------------------- comparing


def _short_diff(old: str, new: str) -> str:
    if "\n" not in old and "\n" not in new:
        cut = lambda s: s if len(s) <= 200 else s[:197] + "..."  # noqa: E731
        return f"- {cut(old)}\n+ {cut(new)}"
    lines = list(difflib.unified_diff(old.splitlines(), new.splitlines(), "registered", "actual", n=1, lineterm=""))
    lines = lines[2:]  # the ---/+++ header says nothing the labels do not
    if len(lines) > DIFF_LINES:
        lines = lines[:DIFF_LINES] + [f"... ({len(lines) - DIFF_LINES} more lines)"]
    return "\n".join(lines)


def _keyed_protocol(protocol: dict[str, Any]) -> dict[str, Any]:
    """The protocol with its conditions keyed by name (adding one is one deviation, not a shift of indexes)."""
    out = {k: v for k, v in protocol.items() if k not in ("models", "replicates")}
    conditions = protocol.get("conditions") or []
    out["conditions"] = {c.get("name", str(i)): {k: v for k, v in c.items() if k != "name"}
                         for i, c in enumerate(conditions) if isinstance(c, dict)}
    return out


def _leaves(value: Any, prefix: str) -> Iterable[tuple[str, Any]]:
    if isinstance(value, dict) and value:
        for k, v in value.items():
            yield from _leaves(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(value, list) and value:
        for i, v in enumerate(value):
            yield from _leaves(v, f"{prefix}[{i}]")
    else:
        yield prefix, value


def _compare_protocol(reg: dict[str, Any], act: dict[str, Any]) -> list[Deviation]:
    out: list[Deviation] = []
    rc, ac = reg.pop("conditions", {}), act.pop("conditions", {})
    for name in rc:
        if name not in ac:
            out.append(Deviation(f"protocol.conditions.{name}", "condition_removed", rc[name], None))
    for name in ac:
        if name not in rc:
            out.append(Deviation(f"protocol.conditions.{name}", "condition_added", None, ac[name]))
    pairs: list[tuple[str, dict[str, Any], dict[str, Any]]] = [("protocol", reg, act)]
    pairs += [(f"protocol.conditions.{n}", rc[n], ac[n]) for n in rc if n in ac]
    for prefix, r, a in pairs:
        rl, al = dict(_leaves(r, prefix)), dict(_leaves(a, prefix))
        for path in list(rl) + [p for p in al if p not in rl]:
            old, new = rl.get(path), al.get(path)
            if old == new:
                continue
            both_text = isinstance(old, str) and isinstance(new, str)
            top = path.removeprefix("protocol.").split(".", 1)[0].split("[", 1)[0]
            if prefix != "protocol":
                kind: DeviationKind = "condition_changed"
            elif both_text and top not in _NOT_PROMPTS:
                kind = "prompt_changed"
            else:
                kind = "protocol_changed"
            out.append(Deviation(path, kind, old, new, _short_diff(old, new) if both_text else ""))
    return out


def _compare_models(reg: dict[str, dict[str, Any]], act: dict[str, dict[str, Any]]) -> list[Deviation]:
    out: list[Deviation] = []
    for alias in reg:
        if alias not in act:
            out.append(Deviation(f"models.{alias}", "model_removed", reg[alias], None))
    for alias in act:
        if alias not in reg:
            out.append(Deviation(f"models.{alias}", "model_added", None, act[alias]))
    for alias in (a for a in reg if a in act):
        r, a = reg[alias], act[alias]
        for key in list(r) + [k for k in a if k not in r]:
            if r.get(key) == a.get(key):
                continue
            kind: DeviationKind = ("model_swapped" if key == "model" else
                                   "sampling_changed" if key in SAMPLING_KEYS else "model_changed")
            out.append(Deviation(f"models.{alias}.{key}", kind, r.get(key), a.get(key)))
    return out


def deviations(registration: Any, plan: Any) -> list[Deviation]:
    """Every difference between a stored registration and a plan about to run (see the module docstring)."""
    registered = RegisteredProtocol.model_validate_json(registration.protocol_json)
    models = _models(plan)
    secrets = _secret_values(models)
    reg = _normal_plan(registered.plan)
    act = _normal_plan(redact(json.loads(json.dumps(plan.summary(), default=str)), secrets))
    out: list[Deviation] = []
    if reg.get("replicates") != act.get("replicates"):
        out.append(Deviation("replicates", "replicates_changed", reg.get("replicates"), act.get("replicates")))
    out += _compare_models(registered.models, redact(models, secrets))
    rs, as_ = reg.get("snapshot") or {}, act.get("snapshot") or {}
    proto_devs = _compare_protocol(_keyed_protocol(rs.get("protocol") or {}), _keyed_protocol(as_.get("protocol") or {}))
    named = {d.path.rsplit(".", 1)[-1] for d in proto_devs if d.kind in ("condition_added", "condition_removed")}
    rconds, aconds = list(reg.get("conditions") or []), list(act.get("conditions") or [])
    for c in rconds:
        if c not in aconds and c not in named:
            out.append(Deviation(f"conditions.{c}", "condition_removed", c, None))
    for c in aconds:
        if c not in rconds and c not in named:
            out.append(Deviation(f"conditions.{c}", "condition_added", None, c))
    out += proto_devs
    rf, af = rs.get("files") or {}, as_.get("files") or {}
    for path in list(rf) + [p for p in af if p not in rf]:
        old, new = rf.get(path), af.get(path)
        if old != new:
            diff = _short_diff(old or "", new or "") if old is not None and new is not None else ""
            out.append(Deviation(f"files.{path}", "file_changed", old, new, diff))
    return out


# ----------------------------------------------------------------------------- composing


def prepare(url: str, protocol: Path, hypotheses: Path, *, codebook: Path | None = None,
            analysis: Path | None = None, models_file: Path | None = None, name: str | None = None) -> Record:
    """Load and check everything a registration freezes; nothing is written. Raises `ProtocolError`
    (located problems in the protocol, models, hypotheses or codebook file), `runner.plan.PlanError`,
    or `RegistrationError`."""
    from ..plan import make_plan
    from ..protocol import load, load_models
    from .hypotheses import check_against, load_hypotheses

    loaded = load(protocol, load_models(models_file))
    plan = make_plan(loaded)
    hyps = load_hypotheses(hypotheses)
    book = version = None
    if codebook is not None:
        from ..analysis import codebook as cb

        book = cb.read_codebook(codebook)
        version = _stored_version(url, book)
    if analysis is not None and not analysis.is_file():
        raise RegistrationError(f"{analysis}: no such analysis file")
    prefs = loaded.protocol.preferences
    options = [o.id for o in prefs.options] if prefs is not None and isinstance(prefs.options, list) else []
    check_against(hyps, codes=[c.name for c in book.codes] if book is not None else None,
                  models=plan.models, conditions=plan.conditions, options=options)
    return build(loaded, plan, hyps, codebook=book, codebook_version=version, analysis=analysis,
                 models_file=models_file, name=name)


def _stored_version(url: str, book: Any) -> int | None:
    """The version of the stored codebook with exactly this content, if any."""
    from sqlmodel import col, select

    from ..analysis import codebook as cb
    from ..store.db import opened
    from ..store.tables import CodebookRow

    with opened(url) as session:
        text = cb.to_yaml(book)
        rows = session.exec(select(CodebookRow).where(CodebookRow.name == book.name)
                            .order_by(col(CodebookRow.version).desc()))
        for row in rows:
            if cb.to_yaml(cb.as_model(session, row)) == text:
                return int(row.version)
    return None


def check_stored_run(url: str, run_id: str) -> tuple[Any, list[Deviation]]:
    """For `rerun`: the registration a stored run follows (None when it follows none) and the deviations
    a rerun of it would have."""
    from ..engine.runs import RunError, stored_plan
    from ..store import queries
    from ..store.db import opened

    with opened(url) as session:
        row = queries.get_run(session, run_id)
        if row is None:
            raise RunError(f"no run {run_id} in {url}")
        registration_id = row.registration_id
        plan, _ = stored_plan(row) if registration_id else (None, None)
    if registration_id is None:
        return None, []
    reg = get(url, registration_id)
    return reg, deviations(reg, plan)


def stored_run_deviations(url: str, run_id: str) -> tuple[Any, list[Deviation]]:
    """The registration a stored run follows (None when it follows none) and its recorded deviations."""
    from ..store.db import opened
    from ..store.tables import RunRow

    with opened(url) as session:
        row = session.get(RunRow, run_id)
        if row is None:
            raise RegistrationError(f"no run {run_id} in {url}")
        found = run_deviations(session, run_id)
        registration_id = row.registration_id
    return (get(url, registration_id) if registration_id else None), found


__all__ += ["deviation_rows", "RegistrationSummary", "check_stored_run", "prepare", "stored_run_deviations", "summaries"]
