"""Blind coding: what a blind coder may not see, how it is hidden, and who is blind to what.

A coder blind to a run sees no model alias, litellm model string, vendor, condition name or variables,
partner alias, simulated flag, system prompt (it carries the condition), nor a run or protocol name
that names a model. Inside the text, every name the run itself gives a model (its aliases and model
strings, from the run's snapshot and its conversations) and the common vendor and family names
(``Claude``, ``GPT``, ``Gemma``...) are replaced, case-insensitively and on word boundaries, by
``[model]`` (or ``[partner]`` for the other model of a pair). Conversations are shown under a neutral
label (``#0042``) in a random order seeded by the run id and the coder's name, so two coders read them
in different orders and each always in the same one.

The masking half is pure (strings in, strings out). The store half reads and writes
`CoderSettingRow` in a session the caller commits (nothing here commits).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from runner.kinds import CodedHow

__all__ = [
    "HIDDEN", "MODEL_TOKEN", "PARTNER_TOKEN", "SYSTEM_HIDDEN", "VENDOR_NAMES", "BlindView", "ConversationNames",
    "Masker", "RunNames", "SimpleRow", "blind_order", "blind_seed", "coded_how", "default_blind",
    "experimenter_model", "is_blind", "judge_model", "load_view", "names_of_run", "mask_record", "mask_suggestion", "neutral_label", "open_blind",
    "researcher_of", "self_coded_reason", "set_default_blind", "store_names", "unblind", "unblinded_at", "unit_modes",
]

MODEL_TOKEN = "[model]"
"""What a model's name becomes in the text a blind coder reads."""
PARTNER_TOKEN = "[partner]"
"""What the other model of a pair becomes."""
HIDDEN = "—"
"""Shown in place of a hidden field (vendor, condition, replicate)."""
SYSTEM_HIDDEN = "[system prompt hidden while blind: it names the condition]"
"""Shown in place of a system prompt."""

VENDOR_NAMES: tuple[str, ...] = (
    "ChatGPT", "GPT", "OpenAI", "Claude", "Anthropic", "Gemini", "Gemma", "Bard", "Google", "DeepMind",
    "Llama", "Meta", "Mistral", "Mixtral", "Qwen", "Alibaba", "DeepSeek", "Grok", "xAI", "Cohere",
    "Phi-3", "Phi-4", "Kimi", "Moonshot", "Nemotron", "Falcon", "Vicuna", "Yi",
)
"""Vendor and family names hidden in every blind text, whether or not the run uses them."""

_TAIL = r"(?:[-\s](?:\d(?:[\w.]*\w)?|sonnet|opus|haiku|pro|flash|mini|nano|turbo|instruct|chat|ultra|max))*"
"""A version or size after a vendor name (``GPT-4o``, ``Claude 3.5 Sonnet``, ``Gemma 2``) goes with it."""


def _alternation(terms: Iterable[str]) -> str:
    unique = sorted({t for t in terms if t and t.strip()}, key=lambda t: (-len(t), t.lower()))
    return "|".join(re.escape(t) for t in unique)


def _pattern(terms: Iterable[str], *, vendors: bool) -> re.Pattern[str] | None:
    parts = []
    names = _alternation(terms)
    if names:
        parts.append(f"(?:{names})")
    if vendors:
        parts.append(f"(?:{_alternation(VENDOR_NAMES)}){_TAIL}")
    if not parts:
        return None
    return re.compile(rf"(?<![\w]){'|'.join(parts) if len(parts) == 1 else '(?:' + '|'.join(parts) + ')'}(?![\w])",
                      re.IGNORECASE)


def _variants(name: str | None) -> list[str]:
    """A model name and the parts that still name it: ``openai/gpt-4o`` → itself and ``gpt-4o``."""
    if not name:
        return []
    out = [name]
    if "/" in name:
        tail = name.rsplit("/", 1)[1]
        if len(tail) >= 3:
            out.append(tail)
    return out


@dataclass(frozen=True)
class Masker:
    """Replaces model names in text: ``partner`` names by `PARTNER_TOKEN` first, then ``own`` names and
    every vendor name by `MODEL_TOKEN`. Case-insensitive, whole words only (``Claude`` in
    ``Claudette`` stays)."""

    own: tuple[str, ...] = ()
    """Names that become ``[model]`` (the conversation's model, the run's other models)."""
    partner: tuple[str, ...] = ()
    """Names that become ``[partner]`` (the other model of a pair)."""
    _own_re: re.Pattern[str] | None = field(init=False, repr=False, compare=False, default=None)
    _partner_re: re.Pattern[str] | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        partner = set(self.partner) - set(self.own)
        object.__setattr__(self, "_partner_re", _pattern(partner, vendors=False))
        object.__setattr__(self, "_own_re", _pattern(self.own, vendors=True))

    def text(self, value: str | None) -> str:
        """``value`` with every model name replaced."""
        if not value:
            return value or ""
        if self._partner_re is not None:
            value = self._partner_re.sub(PARTNER_TOKEN, value)
        if self._own_re is not None:
            value = self._own_re.sub(MODEL_TOKEN, value)
        return value


@dataclass(frozen=True)
class RunNames:
    """Every name a run gives its models, from its snapshot (models file, protocol) and its conversations."""

    models: frozenset[str] = frozenset()
    """Aliases and model strings (with their part after the vendor's ``/``)."""
    experimenter: str | None = None
    """The experimenter's model string (or alias, when the models file does not resolve it)."""
    experimenter_alias: str | None = None
    """The experimenter's alias as the protocol names it."""

    def masker(self, model: Sequence[str | None] = (), partner: Sequence[str | None] = ()) -> Masker:
        """A masker for one conversation: ``partner`` names become ``[partner]``, all others ``[model]``."""
        mine = {v for name in partner for v in _variants(name)}
        return Masker(own=tuple(sorted((set(self.models) | {v for n in model for v in _variants(n)}) - mine)),
                      partner=tuple(sorted(mine)))


def experimenter_model(protocol_text: str, models_json: str) -> tuple[str | None, str | None]:
    """(alias as the protocol names it, model string) of a run's experimenter, or (None, None)."""
    import yaml

    try:
        doc = yaml.safe_load(protocol_text or "") or {}
    except yaml.YAMLError:
        return None, None
    exp = doc.get("experimenter") if isinstance(doc, dict) else None
    alias = exp.get("model") if isinstance(exp, dict) else None
    if not isinstance(alias, str):
        return None, None
    try:
        models = json.loads(models_json or "{}")
    except ValueError:
        models = {}
    resolved = (models.get(alias) or {}).get("model") if isinstance(models.get(alias), dict) else None
    return alias, resolved or alias


def names_of_run(run: Any, conversations: Iterable[Any] = ()) -> RunNames:
    """The names of a run (a `RunRow`-like object) and its conversations (`ConversationRow`-like)."""
    names: set[str] = set()
    try:
        models = json.loads(getattr(run, "models_json", "") or "{}")
    except ValueError:
        models = {}
    for alias, spec in (models.items() if isinstance(models, dict) else []):
        names.update(_variants(alias))
        if isinstance(spec, dict):
            names.update(_variants(spec.get("model")))
    for c in conversations:
        for attr in ("model_alias", "litellm_model", "partner_alias", "partner_model", "vendor", "model"):
            names.update(_variants(getattr(c, attr, None)))
    alias, model = experimenter_model(getattr(run, "protocol_text", ""), getattr(run, "models_json", ""))
    names.update(_variants(alias))
    names.update(_variants(model))
    return RunNames(frozenset(n for n in names if n), model, alias)


# ----------------------------------------------------------------------------- order


def blind_seed(run_id: str, coder: str) -> int:
    """The seed of ``coder``'s order of ``run_id``: sha256 of both, as a positive 31-bit integer (stored)."""
    digest = hashlib.sha256(f"{run_id}\x00{coder}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def blind_order(ids: Iterable[str], seed: int) -> list[str]:
    """``ids`` in the random order of ``seed`` (the same ids and seed always give the same order)."""
    out = sorted(set(ids))
    random.Random(seed).shuffle(out)
    return out


def neutral_label(position: int) -> str:
    """The label of the conversation at ``position`` (0-based) of a coder's order: ``#0001``…"""
    return f"#{position + 1:04d}"


# ----------------------------------------------------------------------------- self-coding


def judge_model(coder: str) -> str | None:
    """The model of a judge coder (``judge:<model>@<codebook>v<n>`` → ``<model>``), else None."""
    if not coder.startswith("judge:"):
        return None
    return coder[len("judge:"):].rsplit("@", 1)[0] or None


def self_coded_reason(coder: str, researcher: str | None, conversation: Any, names: RunNames | None = None) -> str | None:
    """Why ``coder`` coding ``conversation`` is self-coding, or None: they ran or prompted the run
    (``researcher``), or they are a judge whose model is the conversation's own model, its pair partner or
    its experimenter (`runner.analysis.judge` refuses the first two unless told otherwise)."""
    if researcher and coder == researcher:
        return "you ran this conversation"
    model = judge_model(coder)
    if model is None:
        return None
    own = {getattr(conversation, "litellm_model", None), getattr(conversation, "model_alias", None)}
    if model in own:
        return "the judge is this conversation's own model"
    if model in {getattr(conversation, "partner_model", None), getattr(conversation, "partner_alias", None)} - {None}:
        return "the judge is this conversation's pair partner"
    if names is not None and getattr(conversation, "kind", "") == "experimenter" and \
            model in {names.experimenter, names.experimenter_alias} - {None}:
        return "the judge is this conversation's experimenter"
    return None


def researcher_of(run: Any) -> str | None:
    """Who ran or prompted a run: its ``researcher`` column, else the one its options carry (a fork run
    made by `latitude fork` keeps the parent run's options, the researcher who prompted what it continues,
    but not the column)."""
    if run is None:
        return None
    if getattr(run, "researcher", None):
        return str(run.researcher)
    try:
        options = json.loads(getattr(run, "options_json", "") or "{}")
    except ValueError:
        return None
    found = options.get("researcher") if isinstance(options, dict) else None
    return str(found) if found else None


def coded_how(blind: bool, self_coded: bool) -> CodedHow:
    """`CodedHow` of a unit from its tag's blind flag and whether it was self-coded (self-coding wins)."""
    return "self-coded" if self_coded else ("blind" if blind else "unblinded")


# ----------------------------------------------------------------------------- the store (caller commits)


def _rows(s: Any, coder: str, run_id: str | None) -> list[Any]:
    from sqlmodel import col, select

    from runner.store.tables import CoderSettingRow

    q = select(CoderSettingRow).where(CoderSettingRow.coder == coder)
    q = q.where(col(CoderSettingRow.run_id).is_(None) if run_id is None else CoderSettingRow.run_id == run_id)
    return list(s.exec(q.order_by(col(CoderSettingRow.id))).all())


def set_default_blind(s: Any, coder: str) -> Any:
    """Make ``coder`` blind to every run they have not unblinded (``latitude tui --blind``); idempotent."""
    from runner.store.tables import CoderSettingRow

    for row in _rows(s, coder, None):
        if row.unblinded_at is None:
            return row
    row = CoderSettingRow(coder=coder, run_id=None)
    s.add(row)
    s.flush()
    return row


def _default_blind(s: Any, coder: str) -> bool:
    return any(r.unblinded_at is None for r in _rows(s, coder, None))


def is_blind(s: Any, coder: str, run_id: str) -> bool:
    """Whether ``coder`` is blind to ``run_id``: their row for the run, else their default, says so."""
    own = _rows(s, coder, run_id)
    if own:
        return own[-1].unblinded_at is None
    return _default_blind(s, coder)


def open_blind(s: Any, coder: str, run_id: str, *, blind: bool = False) -> Any | None:
    """The coder's row for ``run_id`` when they are blind to it (``blind``: they asked to be), written
    with their seed on first opening; None when they see it unblinded (never re-blinds a run they unblinded)."""
    from runner.store.tables import CoderSettingRow

    own = _rows(s, coder, run_id)
    if own:
        return own[-1] if own[-1].unblinded_at is None else None
    if not (blind or _default_blind(s, coder)):
        return None
    row = CoderSettingRow(coder=coder, run_id=run_id, seed=blind_seed(run_id, coder))
    s.add(row)
    s.flush()
    return row


def unblind(s: Any, coder: str, run_id: str) -> Any:
    """Record that ``coder`` unblinded ``run_id`` now (who, when, which run); returns the row."""
    from runner.store.tables import CoderSettingRow, utcnow

    own = _rows(s, coder, run_id)
    row = own[-1] if own else CoderSettingRow(coder=coder, run_id=run_id, seed=blind_seed(run_id, coder))
    if row.unblinded_at is None:
        row.unblinded_at = utcnow()
    s.add(row)
    s.flush()
    return row


def unblinded_at(s: Any, coder: str, run_id: str) -> Any | None:
    """When ``coder`` unblinded ``run_id`` (None: never)."""
    own = _rows(s, coder, run_id)
    return own[-1].unblinded_at if own else None


# ----------------------------------------------------------------------------- what a blind screen shows


@dataclass(frozen=True)
class ConversationNames:
    """The names one conversation gives its models (masked in its text)."""

    model: tuple[str, ...]
    partner: tuple[str, ...] = ()
    kind: str = "single"


@dataclass(frozen=True)
class BlindView:
    """What a coder blind to one run is shown: neutral labels in their seeded order, and masked text."""

    run_id: str
    coder: str
    seed: int
    order: tuple[str, ...]
    """The run's conversation ids in this coder's order."""
    names: RunNames
    conversations: dict[str, ConversationNames]
    conditions: frozenset[str] = frozenset()
    """Condition names of the run (masked in search snippets, refused as search words)."""
    positions: dict[str, int] = field(default_factory=dict)
    _maskers: dict[str, Masker] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.positions:
            object.__setattr__(self, "positions", {cid: i for i, cid in enumerate(self.order)})

    def label(self, conversation_id: str) -> str:
        """``#0042``: the conversation's place in this coder's order (``#????`` for one planned since)."""
        i = self.positions.get(conversation_id)
        return neutral_label(i) if i is not None else "#????"

    def rank(self, conversation_id: str) -> int:
        """Sort key of a conversation in this coder's order (new conversations last)."""
        return self.positions.get(conversation_id, len(self.positions))

    def sort(self, ids: Iterable[str]) -> list[str]:
        return sorted(ids, key=lambda i: (self.rank(i), i))

    def masker(self, conversation_id: str | None = None) -> Masker:
        """The masker of one conversation (its partner becomes ``[partner]``); built once per conversation."""
        key = conversation_id if conversation_id in self.conversations else ""
        found = self._maskers.get(key or "")
        if found is None:
            c = self.conversations.get(key or "")
            found = self.names.masker() if c is None else self.names.masker(model=c.model, partner=c.partner)
            self._maskers[key or ""] = found
        return found

    def text(self, value: str | None, conversation_id: str | None = None) -> str:
        """``value`` with the model names of the run replaced (partner names by ``[partner]``)."""
        return self.masker(conversation_id).text(value)

    def snippet(self, value: str | None) -> str:
        """A search snippet: model names and condition names replaced."""
        out = self.masker().text(value)
        pattern = _pattern(self.conditions, vendors=False)
        return pattern.sub("[condition]", out) if pattern is not None else out

    def refuses(self, words: Iterable[str]) -> str | None:
        """Why a search for ``words`` is refused while blind (it names a model or a condition), else None."""
        names = {n.lower() for n in self.names.models} | {n.lower() for n in self.conditions}
        names |= {v.lower() for v in VENDOR_NAMES}
        hit = sorted(w for w in words if w.lower().rstrip("*") in names)
        if hit:
            return (f"Not while blind: {len(hit)} searched word(s) name a model or a condition of this run, and "
                    "the conversations found would say which. Search for what was said instead.")
        return None


def load_view(s: Any, coder: str, run_id: str, *, blind: bool = False) -> BlindView | None:
    """The `BlindView` of ``run_id`` for ``coder`` when they are blind to it (writing their row with the
    seed on first opening: the caller commits), else None."""
    from sqlmodel import select

    from runner.store.tables import ConversationRow, RunRow

    row = open_blind(s, coder, run_id, blind=blind)
    if row is None:
        return None
    run = s.get(RunRow, run_id)
    c = ConversationRow
    convs = list(s.exec(select(c.id, c.model_alias, c.litellm_model, c.partner_alias, c.partner_model, c.vendor,
                               c.condition, c.kind).where(c.run_id == run_id)).all())
    rows = [SimpleRow(*r) for r in convs]
    names = names_of_run(run, rows) if run is not None else names_of_run(None, rows)
    per = {r.id: ConversationNames(model=tuple(n for n in (r.model_alias, r.litellm_model) if n),
                                   partner=tuple(n for n in (r.partner_alias, r.partner_model) if n), kind=r.kind)
           for r in rows}
    return BlindView(run_id=run_id, coder=coder, seed=row.seed, order=tuple(blind_order(per, row.seed)),
                     names=names, conversations=per, conditions=frozenset(r.condition for r in rows))


@dataclass(frozen=True)
class SimpleRow:
    """The columns of a conversation a blind view needs."""

    id: str
    model_alias: str
    litellm_model: str
    partner_alias: str | None
    partner_model: str | None
    vendor: str
    condition: str
    kind: str


def store_names(s: Any) -> RunNames:
    """Every model name of every run in the store (for screens that are not about one run)."""
    from sqlmodel import select

    from runner.store.tables import ConversationRow, RunRow

    c = ConversationRow
    rows = [SimpleRow("", *r, "", "single") for r in s.exec(
        select(c.model_alias, c.litellm_model, c.partner_alias, c.partner_model, c.vendor).distinct()).all()]
    names: set[str] = set()
    for run in s.exec(select(RunRow)).all():
        names |= names_of_run(run).models
    names |= names_of_run(None, rows).models
    return RunNames(frozenset(names))


def default_blind(s: Any, coder: str) -> bool:
    """Whether ``coder`` has a standing blind setting (every run they have not unblinded)."""
    return _default_blind(s, coder)


def mask_record(record: Any, view: BlindView) -> Any:
    """A `ConversationRecord` as a blind coder sees it: copies of its rows with the model, vendor,
    condition, replicate, cost (input cost too) and request details hidden, system prompts replaced, names in
    every text masked (tool calls and stop candidates included). The stored rows are not touched."""
    from dataclasses import replace

    from runner.store.tables import ArtifactRow, ConversationRow, MessageRow, OfferRow, RunRow, TagRow

    c = record.conversation
    cid = c.id
    text = view.masker(cid).text
    pair = bool(c.partner_alias)
    conv = ConversationRow(**{
        **c.model_dump(), "model_alias": MODEL_TOKEN, "litellm_model": HIDDEN, "vendor": HIDDEN,
        "simulated": False, "condition": HIDDEN, "replicate": 0, "params_json": "{}",
        "partner_alias": PARTNER_TOKEN if pair else None, "partner_model": HIDDEN if pair else None,
        "stop_detail": text(c.stop_detail) if c.stop_detail else c.stop_detail, "cost": 0.0,
        "input_cost": 0.0, "input_cost_uncached": 0.0,
    })
    run = RunRow(**{**record.run.model_dump(), "protocol_name": text(record.run.protocol_name),
                    "protocol_path": HIDDEN, "protocol_text": "", "plan_json": "{}", "models_json": "{}",
                    "options_json": "{}", "simulated": False, "researcher": researcher_of(record.run)})
    messages = [MessageRow(**{**m.model_dump(), "content": SYSTEM_HIDDEN if m.role == "system" else text(m.content),
                              "reasoning": text(m.reasoning) if m.reasoning else m.reasoning,
                              "tool_calls_json": text(m.tool_calls_json) if m.tool_calls_json else m.tool_calls_json,
                              "request_json": None, "cost": None, "input_cost": None, "input_cost_uncached": None,
                              "request_id": None})
                for m in record.messages]
    stops = [s.model_copy(update={"text": text(s.text), "phrase": text(s.phrase), "match": text(s.match),
                                  "evidence": text(s.evidence), "judge": text(s.judge) if s.judge else s.judge,
                                  "judge_evidence": text(s.judge_evidence) if s.judge_evidence else s.judge_evidence})
             for s in record.stops]
    offers = [OfferRow(**{**o.model_dump(), "evidence": text(o.evidence), "method": text(o.method)})
              for o in record.offers]
    artifacts = [ArtifactRow(**{**a.model_dump(), "content": text(a.content), "name": text(a.name)})
                 for a in record.artifacts]
    tags = [TagRow(**{**t.model_dump(), "coder": text(t.coder), "quote": text(t.quote) if t.quote else t.quote,
                      "evidence": text(t.evidence) if t.evidence else t.evidence}) for t in record.tags]
    return replace(record, conversation=conv, run=run, messages=messages, offers=offers, artifacts=artifacts,
                   tags=tags, stops=stops)


def _mask_json(value: Any, text: Any) -> Any:
    if isinstance(value, str):
        return text(value)
    if isinstance(value, list):
        return [_mask_json(v, text) for v in value]
    if isinstance(value, dict):
        # per-model and per-condition breakdowns name what a blind coder must not see (their keys)
        return {k: _mask_json(v, text) for k, v in value.items() if k not in ("by_model", "model", "by_condition")}
    return value


def mask_suggestion(item: Any, view: BlindView | None, masker: Masker) -> Any:
    """A review-queue item (`SuggestionRecord`) as a blind coder sees it: the conversation's model,
    vendor and condition hidden, names in every text masked, per-model counts and example models dropped.
    ``view`` is the coder's view of the item's run (None: not blind to it; ``masker`` then covers the
    store-wide names of a theme)."""
    from dataclasses import replace

    from runner.store.tables import ConversationRow, MessageRow, SuggestionRow

    conv = item.conversation
    if conv is not None and view is None:
        return item
    text = view.masker(conv.id).text if view is not None and conv is not None else masker.text
    s = item.suggestion
    try:
        payload = json.loads(s.payload_json or "{}")
    except ValueError:
        payload = {}
    sug = SuggestionRow(**{**s.model_dump(), "payload_json": json.dumps(_mask_json(payload, text)),
                           "definition": text(s.definition) if s.definition else s.definition})
    message = item.message
    if message is not None:
        message = MessageRow(**{**message.model_dump(), "content": text(message.content),
                                "reasoning": text(message.reasoning) if message.reasoning else message.reasoning})
    if conv is not None:
        conv = ConversationRow(**{**conv.model_dump(), "model_alias": MODEL_TOKEN, "litellm_model": HIDDEN,
                                  "vendor": HIDDEN, "condition": HIDDEN, "replicate": 0,
                                  "partner_alias": PARTNER_TOKEN if conv.partner_alias else None,
                                  "partner_model": None, "simulated": False})
    label = view.label(conv.id) if view is not None and conv is not None else None
    if view is not None:  # a blind coder sees nobody else's tags: not who applied the code, nor that others disagree
        return replace(item, suggestion=sug, message=message, conversation=conv, label=label,
                       disagreement=0, coders_for=(), coders_against=())
    return replace(item, suggestion=sug, message=message, conversation=conv, label=label,
                   coders_for=tuple(text(c) for c in item.coders_for),
                   coders_against=tuple(text(c) for c in item.coders_against))


# ----------------------------------------------------------------------------- how each unit was coded


def unit_modes(s: Any, convs: Sequence[Any], tags: Sequence[Any],
               marks: dict[str, set[str]] | None = None) -> dict[tuple[str, str], CodedHow]:
    """How each (coder, conversation) unit was coded (`CodedHow`), for the coders of ``tags`` and ``marks``
    (coder → conversation ids marked reviewed) over ``convs``.

    Self-coded: the coder is the run's researcher, or a judge whose model is the conversation's own, its
    pair partner's or its experimenter's. Blind: every tag of the coder on the conversation was made blind
    (``tags.blind``), and a reviewed mark with no tags counts as blind when the coder was blind to the run
    then (`CoderSettingRow`). Anything else: unblinded. The built-in coder is never in here."""
    from sqlmodel import col, select

    from runner.store.tables import CoderSettingRow, ReviewedRow, RunRow

    by_id = {c.id: c for c in convs}
    runs = {r.id: r for r in s.exec(select(RunRow).where(col(RunRow.id).in_({c.run_id for c in convs})))} \
        if convs else {}
    names = {rid: names_of_run(r, [c for c in convs if c.run_id == rid]) for rid, r in runs.items()}
    per: dict[tuple[str, str], list[bool]] = {}
    for t in tags:
        if t.conversation_id in by_id:
            per.setdefault((t.coder, t.conversation_id), []).append(bool(t.blind))
    marked = [(coder, cid) for coder, ids in (marks or {}).items() for cid in ids if cid in by_id]
    settings: dict[tuple[str, str], list[Any]] = {}
    if marked:
        coders = {coder for coder, _ in marked}
        for row in s.exec(select(CoderSettingRow).where(col(CoderSettingRow.coder).in_(coders))):
            if row.run_id is not None:
                settings.setdefault((row.coder, row.run_id), []).append(row)
        when = {(m.coder, m.conversation_id): m.created_at for m in s.exec(
            select(ReviewedRow).where(col(ReviewedRow.coder).in_(coders), col(ReviewedRow.deleted_at).is_(None),
                                      col(ReviewedRow.conversation_id).in_([cid for _, cid in marked])))}
        for coder, cid in marked:
            if (coder, cid) in per:
                continue
            at = when.get((coder, cid))
            rows = settings.get((coder, by_id[cid].run_id), [])
            blind = at is not None and any(_aware(r.blind_since) <= _aware(at) and
                                           (r.unblinded_at is None or _aware(r.unblinded_at) > _aware(at)) for r in rows)
            per[(coder, cid)] = [blind]
    out: dict[tuple[str, str], CodedHow] = {}
    for (coder, cid), flags in per.items():
        conv = by_id[cid]
        run = runs.get(conv.run_id)
        own = self_coded_reason(coder, researcher_of(run), conv, names.get(conv.run_id))
        out[(coder, cid)] = coded_how(bool(flags) and all(flags), own is not None)
    return out


def _aware(value: Any) -> Any:
    """SQLite may hand back naive datetimes from raw reads: compare them as UTC."""
    from datetime import UTC

    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value
