"""YAML → validated `Protocol`, with every error naming file:line:column and field.

YAML is parsed with ruamel.yaml (round-trip loader, for node positions), refusing
object tags, oversized files and alias bombs. Pydantic validates the structure; this
module maps each error's location back to the YAML node, then checks references
(aliases, step ids, files) and templates (syntax, undefined variables).
"""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.error import MarkedYAMLError

from . import schema, templates
from .models_file import BUILTIN_ALIASES, ModelAlias, ModelsFile, resolve_model

MAX_PROTOCOL_BYTES = 2 * 1024 * 1024
"""Largest protocol or models file accepted (long prompts belong in `file:` includes)."""
MAX_EXPANDED_NODES = 200_000
"""Most YAML nodes a document may expand to through aliases (refuses "billion laughs")."""

_STEP_TAGS = {"say", "offer", "open", "repeat"}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a protocol, located in its source."""

    path: str
    line: int
    column: int
    field: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}:{self.column}"
        text = f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        return f"{text}\n    hint: {self.hint}" if self.hint else text


class ProtocolError(Exception):
    """A protocol or models file that cannot be used; `problems` says where and why."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass
class Loaded:
    """A validated protocol with what was needed to validate it."""

    protocol: schema.Protocol
    path: Path
    text: str
    """The protocol file's text (and, for `extends`, its base's, concatenated)."""
    models: dict[str, ModelAlias] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    """Every file included with `file:`, by absolute path, as read."""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    def snapshot(self) -> dict[str, Any]:
        """Everything needed to run this protocol again exactly: stored with every run (`latitude rerun`)."""
        return {
            "base_dir": str(self.path.parent.resolve()),
            "protocol": self.protocol.model_dump(mode="json", by_alias=True),
            "files": self.files,
        }


def from_snapshot(snapshot: dict[str, Any], models: dict[str, ModelAlias], path: Path, text: str) -> Loaded:
    """Rebuild a loaded protocol from a run's stored snapshot (no file is read)."""
    context = {"base_dir": snapshot["base_dir"], "files": snapshot.get("files", {})}
    protocol = schema.Protocol.model_validate(snapshot["protocol"], context=context)
    return Loaded(protocol=protocol, path=path, text=text, models=models, files=dict(snapshot.get("files", {})))


# ---------------------------------------------------------------- YAML


def _yaml() -> YAML:
    y = YAML(typ="rt", pure=True)
    y.allow_duplicate_keys = False
    return y


def read_yaml(path: Path) -> tuple[Any, str]:
    """Parse one YAML file safely; returns (document, text)."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ProtocolError([Problem(str(path), 0, 0, "", f"cannot read file: {exc.strerror}")]) from None
    if size > MAX_PROTOCOL_BYTES:
        raise ProtocolError(
            [Problem(str(path), 1, 1, "", f"file is {size:,} bytes; the limit is {MAX_PROTOCOL_BYTES:,}",
                     "put long prompts in separate files and include them with `file:`")]
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError([Problem(str(path), 1, 1, "", f"not UTF-8 text ({exc.reason})")]) from None
    try:
        doc = _yaml().load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = " ".join(str(x) for x in (exc.context, exc.problem) if x)
        hint = "duplicate keys are not allowed" if "duplicate" in message else "check indentation and quoting"
        raise ProtocolError([Problem(str(path), line, col, "", f"YAML syntax: {message}", hint)]) from None
    except Exception as exc:  # ruamel raises a few non-marked errors (e.g. on bad tags)
        raise ProtocolError([Problem(str(path), 1, 1, "", f"YAML error: {exc}")]) from None
    _refuse_bombs_and_tags(doc, path)
    return doc, text


def _refuse_bombs_and_tags(doc: Any, path: Path) -> None:
    sizes: dict[int, int] = {}

    def size(node: Any, depth: int, pos: tuple[int, int]) -> int:
        if depth > 100:
            raise ProtocolError([Problem(str(path), pos[0], pos[1], "", "YAML nests deeper than 100 levels")])
        key = id(node)
        if key in sizes:
            return sizes[key]
        if isinstance(node, TaggedScalar) or (
            isinstance(node, (CommentedMap, CommentedSeq)) and getattr(node.tag, "value", None)
        ):
            line, col = _pos_of(node) if isinstance(node, (CommentedMap, CommentedSeq)) else pos
            tag = getattr(node.tag, "value", None) or "?"
            raise ProtocolError(
                [Problem(str(path), line, col, "", f"YAML tag {tag} is not allowed", "protocols are plain data")]
            )
        sizes[key] = 1  # guards against recursive aliases
        total = 1
        if isinstance(node, dict):
            for k, v in node.items():
                total += size(v, depth + 1, _child_pos(node, k, pos))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                total += size(v, depth + 1, _child_pos(node, i, pos))
        sizes[key] = total
        if total > MAX_EXPANDED_NODES:
            raise ProtocolError(
                [Problem(str(path), 1, 1, "", f"YAML expands to more than {MAX_EXPANDED_NODES:,} nodes through aliases",
                         "this looks like an alias bomb; write the document out plainly")]
            )
        return total

    size(doc, 0, (1, 1))


def _child_pos(parent: Any, key: Any, default: tuple[int, int]) -> tuple[int, int]:
    lc = getattr(parent, "lc", None)
    try:
        line, col = lc.value(key) if isinstance(parent, dict) else lc.item(key)
        return line + 1, col + 1
    except Exception:
        return default


def _pos_of(node: Any) -> tuple[int, int]:
    lc = getattr(node, "lc", None)
    if lc is not None and lc.line is not None:
        return lc.line + 1, lc.col + 1
    return 1, 1


# ---------------------------------------------------------------- locating errors


@dataclass
class _Doc:
    """A merged document and where each part came from."""

    data: Any
    root_path: Path
    origin: dict[str, tuple[Path, Any]]
    """Top-level key (or `vars.NAME`) → (file, the mapping that holds it)."""


def _locate(doc: _Doc, loc: Iterable[Any], missing: bool = False) -> tuple[Path, int, int, str]:
    """File, line, column and dotted field path for a pydantic error location."""
    loc = list(loc)
    path, node = doc.root_path, doc.data
    line, col = 1, 1
    fields: list[str] = []
    parent_map: Any = None
    prev: Any = None
    for i, item in enumerate(loc):
        nxt = loc[i + 1] if i + 1 < len(loc) else None
        if isinstance(prev, int) and nxt is not None and (
            (item in ("say", "offer")) or (item in ("open", "repeat") and nxt == item)
        ):
            prev = item
            continue  # the discriminator tag pydantic inserts for a step
        prev = item
        if isinstance(node, dict) and item in node:
            if not fields:
                path, parent_map = doc.origin.get(str(item), (doc.root_path, node))
            elif fields == ["vars"]:
                path, parent_map = doc.origin.get(f"vars.{item}", (path, node))
            else:
                parent_map = node
            lc = getattr(parent_map, "lc", None)
            if lc is not None:
                try:
                    kl, kc = lc.key(item)
                    line, col = kl + 1, kc + 1
                except (KeyError, TypeError):
                    pass
            node = node[item]
            fields.append(str(item))
        elif isinstance(node, list) and isinstance(item, int) and 0 <= item < len(node):
            lc = getattr(node, "lc", None)
            if lc is not None:
                try:
                    il, ic = lc.item(item)
                    line, col = il + 1, ic + 1
                except (KeyError, TypeError):
                    pass
            node = node[item]
            fields.append(f"[{item}]")
        elif missing and i == len(loc) - 1:
            fields.append(str(item))  # a missing key: point at the mapping that lacks it
            break
        # else: a union member name or tag pydantic added; it has no YAML node
    dotted = ".".join(fields).replace(".[", "[")
    return path, line, col, dotted


_FIELD_NAMES: set[str] = set()


def _vocabulary() -> set[str]:
    if not _FIELD_NAMES:
        for obj in vars(schema).values():
            if isinstance(obj, type) and issubclass(obj, BaseModel) and obj is not BaseModel:
                for name, f in obj.model_fields.items():
                    _FIELD_NAMES.add(f.alias or name)
        _FIELD_NAMES.update(ModelAlias.model_fields)
        _FIELD_NAMES.update({"say", "offer", "open", "repeat"})
    return _FIELD_NAMES


def _field_names(model: type[BaseModel], seen: set[type] | None = None) -> set[str]:
    seen = set() if seen is None else seen
    if model in seen:
        return set()
    seen.add(model)
    names: set[str] = set()
    for name, f in model.model_fields.items():
        names.add(f.alias or name)
        for arg in _type_args(f.annotation):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                names |= _field_names(arg, seen)
    return names


def _type_args(tp: Any) -> list[Any]:
    from typing import get_args

    out = [tp]
    for a in get_args(tp):
        out.extend(_type_args(a))
    return out


def _hint(err: dict[str, Any], key: str) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(key, sorted(_vocabulary()), n=1, cutoff=0.6)
        return f"did you mean `{close[0]}`?" if close else "remove it; see `latitude schema` for the keys allowed here"
    if kind == "missing":
        return f"add `{key}:`"
    if kind == "step_kind":
        return "write e.g. `- say: \"...\"`"
    if kind.startswith("literal"):
        return ""
    if kind in {"string_type", "int_type", "int_parsing", "float_parsing", "bool_parsing"}:
        return "check the value's type"
    return ""


def _problems_from(exc: ValidationError, doc: _Doc) -> list[Problem]:
    grouped: dict[tuple[str, int, int, str], list[tuple[str, str]]] = {}
    for err in exc.errors(include_url=False):
        path, line, col, dotted = _locate(doc, err["loc"], missing=err["type"] == "missing")
        key = str(err["loc"][-1]) if err["loc"] else ""
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = f"unknown key `{key}`"
        elif err["type"] == "missing":
            msg = f"required key `{key}` is missing"
        grouped.setdefault((str(path), line, col, dotted), []).append((msg, _hint(err, key)))
    problems = []
    for (path, line, col, dotted), items in grouped.items():
        msgs = list(dict.fromkeys(m for m, _ in items))
        if any("instance of FileText" in m for m in msgs):
            msgs = ["expected text, or `{file: PATH}`"]
        hints = [h for _, h in items if h]
        problems.append(Problem(path, line, col, dotted, " or ".join(msgs), hints[0] if hints else ""))
    return problems


# ---------------------------------------------------------------- extends


def _absolutise_files(node: Any, base: Path) -> None:
    """Make `file:` paths in a base protocol absolute, so they resolve from the child too."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "file" and isinstance(v, str):
                node[k] = str((base / v).resolve())
            else:
                _absolutise_files(v, base)
    elif isinstance(node, list):
        for v in node:
            _absolutise_files(v, base)


def _merged(path: Path, seen: tuple[Path, ...] = ()) -> tuple[_Doc, str]:
    data, text = read_yaml(path)
    if not isinstance(data, dict):
        raise ProtocolError([Problem(str(path), 1, 1, "", "a protocol is a YAML mapping (key: value lines)")])
    origin: dict[str, tuple[Path, Any]] = {k: (path, data) for k in data}
    for name in data.get("vars") or {}:
        origin[f"vars.{name}"] = (path, data["vars"])
    base_ref = data.get("extends")
    if base_ref is None:
        return _Doc(data, path, origin), text
    if not isinstance(base_ref, str):
        line, col = _pos_of(data)
        raise ProtocolError([Problem(str(path), line, col, "extends", "`extends` takes a file path")])
    base_path = (path.parent / base_ref).resolve()
    if base_path in seen or base_path == path.resolve():
        kl, kc = data.lc.key("extends")
        raise ProtocolError([Problem(str(path), kl + 1, kc + 1, "extends", "protocols extend each other in a cycle")])
    if not base_path.is_file():
        kl, kc = data.lc.key("extends")
        raise ProtocolError([Problem(str(path), kl + 1, kc + 1, "extends", f"file not found: {base_path}")])
    base, base_text = _merged(base_path, seen + (path.resolve(),))
    _absolutise_files(base.data, base_path.parent)
    merged = dict(base.data)
    merged_origin = dict(base.origin)
    for k, v in data.items():
        if k == "extends":
            continue
        if k == "vars" and isinstance(v, dict) and isinstance(merged.get("vars"), dict):
            merged["vars"] = {**merged["vars"], **v}
            merged_origin.update({key: val for key, val in origin.items() if key.startswith("vars.")})
            continue
        merged[k] = v
        merged_origin[k] = origin[k]
    return _Doc(merged, path, merged_origin), base_text + "\n---\n" + text


# ---------------------------------------------------------------- models file


def load_models(path: Path | None) -> dict[str, ModelAlias]:
    """Aliases from a models file (built-in aliases are always there too). A missing default file is empty."""
    if path is None:
        path = Path("models.yaml")
        if not path.exists():
            return dict(BUILTIN_ALIASES)
    data, _ = read_yaml(path)
    data = {} if data is None else data
    try:
        parsed = ModelsFile.model_validate(data)
    except ValidationError as exc:
        raise ProtocolError(_problems_from(exc, _Doc(data, path, {k: (path, data) for k in data}))) from None
    return {**BUILTIN_ALIASES, **parsed.models}


# ---------------------------------------------------------------- any YAML model


def load_yaml_model(path: Path, model: type[BaseModel]) -> Any:
    """Validate a YAML file against any pydantic model, with located errors (codebooks use it)."""
    data, _ = read_yaml(path)
    data = {} if data is None else data
    _vocabulary().update(_field_names(model))
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        origin = {k: (path, data) for k in data} if isinstance(data, dict) else {}
        raise ProtocolError(_problems_from(exc, _Doc(data, path, origin))) from None


# ---------------------------------------------------------------- protocol


def load(path: str | Path, models: dict[str, ModelAlias] | None = None) -> Loaded:
    """Load and fully check a protocol. Raises ProtocolError listing every problem found."""
    path = Path(path)
    doc, text = _merged(path)
    data = {k: v for k, v in doc.data.items() if k != "extends"}
    files: dict[str, str] = {}
    try:
        protocol = schema.Protocol.model_validate(
            data, context={"base_dir": str(path.parent.resolve()), "read_files": files})
    except ValidationError as exc:
        raise ProtocolError(_problems_from(exc, doc)) from None
    aliases = dict(BUILTIN_ALIASES) if models is None else models
    problems = _check_references(protocol, doc, aliases) + _check_templates(protocol, doc)
    if problems:
        raise ProtocolError(problems)
    return Loaded(protocol=protocol, path=path, text=text, models=aliases, files=files)


def _problem(doc: _Doc, loc: tuple[Any, ...], message: str, hint: str = "") -> Problem:
    path, line, col, dotted = _locate(doc, loc)
    return Problem(str(path), line, col, dotted, message, hint)


def _check_references(protocol: schema.Protocol, doc: _Doc, aliases: dict[str, ModelAlias]) -> list[Problem]:
    problems: list[Problem] = []

    def check_model(name: str, loc: tuple[Any, ...]) -> None:
        if resolve_model(name, aliases) is None:
            close = difflib.get_close_matches(name, sorted(aliases), n=1, cutoff=0.5)
            hint = f"did you mean `{close[0]}`?" if close else "add it to the models file, or write a litellm string like `openai/gpt-4.1`"
            problems.append(_problem(doc, loc, f"unknown model alias `{name}`", hint))

    for i, name in enumerate(protocol.models):
        check_model(name, ("models", i))
    if protocol.experimenter:
        check_model(protocol.experimenter.model, ("experimenter", "model"))
    if protocol.pair:
        for side in ("a", "b"):
            if getattr(protocol.pair, side):
                check_model(getattr(protocol.pair, side), ("pair", side))
    for loc, step in _steps_with_loc(protocol.steps, ("steps",)):
        if isinstance(step, schema.Offer) and step.classify.judge:
            check_model(step.classify.judge, loc + ("classify", "judge"))
    names = [c.name for c in protocol.conditions]
    by_name = {c.name: c for c in protocol.conditions}
    for i, c in enumerate(protocol.conditions):
        target = c.paraphrase_of
        if target is None:
            continue
        loc = ("conditions", i, "paraphrase_of")
        if target not in by_name:
            close = difflib.get_close_matches(target, names, n=1, cutoff=0.5)
            hint = f"did you mean `{close[0]}`?" if close else f"conditions: {', '.join(names)}"
            problems.append(_problem(doc, loc, f"no condition is named `{target}`", hint))
        elif target == c.name:
            problems.append(_problem(doc, loc, "a condition cannot be a paraphrase of itself"))
        elif c.role == "control" or by_name[target].role == "control":
            problems.append(_problem(doc, loc, "a control is never a paraphrase, nor paraphrased",
                                     "drop `role: control`, or `paraphrase_of`"))
        elif by_name[target].paraphrase_of is not None:
            root = by_name[target].paraphrase_of
            problems.append(_problem(doc, loc, f"`{target}` is itself a paraphrase of `{root}`",
                                     f"name the original: `paraphrase_of: {root}`"))
    ids = {s.id for s in schema.iter_steps(protocol.steps) if s.id}
    if protocol.stop and protocol.stop.announced_by and protocol.stop.announced_by not in ids:
        close = difflib.get_close_matches(protocol.stop.announced_by, sorted(ids), n=1)
        hint = f"did you mean `{close[0]}`?" if close else "give the announcing step an `id:`"
        problems.append(_problem(doc, ("stop", "announced_by"), f"no step has id `{protocol.stop.announced_by}`", hint))
    return problems


def _steps_with_loc(steps: list[Any], loc: tuple[Any, ...]):
    for i, step in enumerate(steps):
        here = loc + (i,)
        yield here, step
        if isinstance(step, schema.Offer):
            yield from _steps_with_loc(step.if_accepted, here + ("if_accepted",))
            yield from _steps_with_loc(step.if_declined, here + ("if_declined",))
        elif isinstance(step, schema.Repeat):
            yield from _steps_with_loc(step.repeat.steps, here + ("repeat", "steps"))
            if step.repeat.break_every:
                yield here + ("repeat", "break_every", "offer"), step.repeat.break_every.offer
                yield from _steps_with_loc(step.repeat.break_every.offer.if_accepted,
                                           here + ("repeat", "break_every", "offer", "if_accepted"))
                yield from _steps_with_loc(step.repeat.break_every.offer.if_declined,
                                           here + ("repeat", "break_every", "offer", "if_declined"))
        elif isinstance(step, schema.Open) and step.open.break_every:
            yield here + ("open", "break_every", "offer"), step.open.break_every.offer
            yield from _steps_with_loc(step.open.break_every.offer.if_accepted,
                                       here + ("open", "break_every", "offer", "if_accepted"))
            yield from _steps_with_loc(step.open.break_every.offer.if_declined,
                                       here + ("open", "break_every", "offer", "if_declined"))


def template_fields(protocol: schema.Protocol) -> list[tuple[tuple[Any, ...], str, bool]]:
    """Every template in a protocol: (location, source, is_expression)."""
    out: list[tuple[tuple[Any, ...], str, bool]] = []
    if protocol.system:
        out.append((("system",), protocol.system.content, False))
    for i, c in enumerate(protocol.conditions):
        if c.system:
            out.append((("conditions", i, "system"), c.system.content, False))
    if protocol.pair:
        out.append((("pair", "opener"), schema.text_of(protocol.pair.opener), False))
    if protocol.experimenter:
        out.append((("experimenter", "instructions"), schema.text_of(protocol.experimenter.instructions), False))
    for loc, step in _steps_with_loc(protocol.steps, ("steps",)):
        if isinstance(step, schema.Say):
            out.append((loc + ("say",), schema.text_of(step.say), False))
        elif isinstance(step, schema.Offer):
            out.append((loc + ("offer",), schema.text_of(step.offer), False))
        elif isinstance(step, schema.Open):
            out.append((loc + ("open", "nudge"), schema.text_of(step.open.nudge), False))
        elif isinstance(step, schema.Repeat):
            if step.repeat.until:
                out.append((loc + ("repeat", "until"), step.repeat.until, True))
            if isinstance(step.repeat.over, str):
                out.append((loc + ("repeat", "over"), step.repeat.over, True))
        if getattr(step, "when", None):
            out.append((loc + ("when",), step.when, True))
    return out


def known_variables(protocol: schema.Protocol) -> set[str]:
    names = set(templates.BUILTIN_VARIABLES) | set(protocol.vars)
    for step in schema.iter_steps(protocol.steps):
        if getattr(step, "capture", None):
            names.add(step.capture)
        if isinstance(step, schema.Repeat):
            names.update({step.repeat.as_, "index"})
    return names


def _check_templates(protocol: schema.Protocol, doc: _Doc) -> list[Problem]:
    problems: list[Problem] = []
    shared = known_variables(protocol)
    for loc, source, is_expr in template_fields(protocol):
        try:
            used = templates.undeclared(source, expression=is_expr)
        except templates.TemplateSyntaxError as exc:
            problems.append(_problem(doc, loc, f"template syntax error on its line {exc.lineno}: {exc.message}",
                                     "see https://jinja.palletsprojects.com/templates/"))
            continue
        for name in sorted(used - shared):
            missing_in = [c.name for c in protocol.conditions if name not in c.vars]
            if not missing_in:
                continue
            if len(missing_in) < len(protocol.conditions):
                problems.append(_problem(doc, loc, f"variable `{name}` is not set in condition(s) {', '.join(missing_in)}",
                                         "set it in every condition, or give a default in `vars:`"))
            else:
                close = difflib.get_close_matches(name, sorted(shared | {v for c in protocol.conditions for v in c.vars}), n=1)
                hint = f"did you mean `{close[0]}`?" if close else "define it in `vars:` or a condition's `vars:`"
                problems.append(_problem(doc, loc, f"undefined variable `{name}`", hint))
    for name in protocol.sources:
        if name in shared:
            problems.append(_problem(doc, ("sources", name), f"source name `{name}` hides a variable of the same name"))
    return problems


__all__ = ["from_snapshot", "Loaded", "Problem", "ProtocolError", "load", "load_models", "load_yaml_model", "read_yaml", "template_fields"]
