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
from ruamel.yaml.scalarstring import FoldedScalarString, LiteralScalarString
from ruamel.yaml.error import MarkedYAMLError

from . import schema, templates
from .models_file import BUILTIN_ALIASES, ModelAlias, ModelsFile, resolve_model

MAX_PROTOCOL_BYTES = 2 * 1024 * 1024
"""Largest protocol or models file accepted (long prompts belong in `file:` includes)."""
MAX_EXPANDED_NODES = 200_000
"""Most YAML nodes a document may expand to through aliases (refuses "billion laughs")."""

_STEP_TAGS = {"say", "offer", "open", "repeat", "choose"}


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
        message, hint = _plain_yaml_error(exc, text)
        raise ProtocolError([Problem(str(path), line, col, "", f"YAML syntax: {message}", hint)]) from None
    except Exception as exc:  # ruamel raises a few non-marked errors (e.g. on bad tags)
        raise ProtocolError([Problem(str(path), 1, 1, "", f"YAML error: {exc}")]) from None
    _refuse_bombs_and_tags(doc, path)
    return doc, text


def _plain_yaml_error(exc: MarkedYAMLError, text: str) -> tuple[str, str]:
    """The parser's complaint in plain words: what was expected on the line it points at."""
    problem = str(exc.problem or "")
    context = str(exc.context or "")
    where = exc.context_mark
    opened = f"line {where.line + 1}" if where else "above"
    start_col = where.column + 1 if where else None
    kind = "mapping" if "mapping" in context else "list"
    if "duplicate key" in problem:
        import re

        key = re.search(r'duplicate key "?([^"\s]+)', problem)
        name = f"`{key.group(1)}`" if key else "a key"
        return (f"duplicate key: {name} is given twice in the same mapping",
                "each key may appear once; remove or rename one of them")
    if "expected <block end>" in problem or "did not find expected key" in problem \
            or "did not find expected '-'" in problem:
        what = "a `- item`" if "<block sequence start>" in problem or "'-'" in problem else "a key"
        return (f"{what} here is indented differently from the {kind} it belongs to (started on {opened}, "
                f"column {start_col})",
                f"line every key of one mapping, and every `- item` of one list, up in the same column; "
                f"indent a nested block further than its parent key")
    if "mapping values are not allowed" in problem:
        return ("unexpected `:` here: this line is not lined up with the keys above it, or its text contains `: `",
                "line keys up with their siblings; put text containing `: ` in quotes (`say: \"a: b\"`)")
    if "'\\t'" in problem or "\\t" in problem or "\t" in problem:
        return ("a tab character: YAML indents with spaces only", "replace the tab with spaces")
    if "could not find expected ':'" in problem:
        return ("expected `key: value` on this line",
                "a line inside a mapping is `key: value`; quote text that contains `:` or `#`")
    if "undefined alias" in problem:
        return ("an alias (`*name`) is used before any anchor (`&name`) defines it",
                "define the anchor first, or write the value out")
    if "end of stream" in problem and "quoted" in context:
        return (f"the quote opened on {opened} is never closed", "close the quote, or use a block (`say: |`)")
    if "expected ',' or ']'" in problem or ("flow sequence" in context and "expected" in problem):
        return (f"the `[` list opened on {opened} is not closed with `]`",
                "close the list, or write it as `- item` lines; quote items that contain `,` `[` or `]`")
    if "expected ',' or '}'" in problem or ("flow mapping" in context and "expected" in problem):
        return (f"the `{{` mapping opened on {opened} is not closed with `}}`", "close the mapping, or write it as `key: value` lines")
    raw = " ".join(x for x in (context, problem) if x)
    return raw, "check indentation and quoting"


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


_STEP_LISTS = {"steps", "if_accepted", "if_declined"}
"""Fields holding a list of steps: in a pydantic location, the item after an index there is the step kind."""


def _locate(doc: _Doc, loc: Iterable[Any], missing: bool = False, *, tagged: bool = False,
            value: bool = False) -> tuple[Path, int, int, str]:
    """File, line, column and dotted field path for a location.

    `tagged`: the location is pydantic's, which names the kind of a step after its index
    (`steps, 0, say, when`); that name has no YAML node of its own. `value`: point at the
    value of the last key (a wrong type is in the value), not at the key."""
    loc = list(loc)
    path, node = doc.root_path, doc.data
    line, col = 1, 1
    fields: list[str] = []
    parent_map: Any = None
    value_at: tuple[int, int] | None = None
    for i, item in enumerate(loc):
        if (tagged and i >= 2 and isinstance(loc[i - 1], int) and loc[i - 2] in _STEP_LISTS
                and item in _STEP_TAGS):
            continue  # the discriminator tag pydantic inserts for a step
        last = i == len(loc) - 1
        if isinstance(node, dict) and item in node:
            value_at = None
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
                    if value:  # the value's position, used if nothing deeper resolves
                        vl, vc = lc.value(item)
                        value_at = (vl + 1, vc + 1)
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
                    value_at = None
                except (KeyError, TypeError):
                    pass
            node = node[item]
            fields.append(f"[{item}]")
        elif missing and last:
            fields.append(str(item))  # a missing key: point at the mapping that lacks it
            break
        # else: a union member name pydantic added; it has no YAML node
    if value and value_at is not None:
        line, col = value_at
    dotted = ".".join(fields).replace(".[", "[")
    return path, line, col, dotted


def _node(doc: _Doc, loc: Iterable[Any]) -> Any:
    """The YAML value at a (plain, untagged) location, or None."""
    node = doc.data
    for item in loc:
        if isinstance(node, dict) and item in node:
            node = node[item]
        elif isinstance(node, list) and isinstance(item, int) and 0 <= item < len(node):
            node = node[item]
        else:
            return None
    return node


_FIELD_NAMES: set[str] = set()


def _vocabulary() -> set[str]:
    if not _FIELD_NAMES:
        for obj in vars(schema).values():
            if isinstance(obj, type) and issubclass(obj, BaseModel) and obj is not BaseModel:
                for name, f in obj.model_fields.items():
                    _FIELD_NAMES.add(f.alias or name)
        _FIELD_NAMES.update(ModelAlias.model_fields)
        _FIELD_NAMES.update({"say", "offer", "open", "repeat", "choose"})
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


_EXPECTED = {
    "int": "a whole number (e.g. `3`)",
    "float": "a number (e.g. `0.7`)",
    "bool": "`true` or `false`",
    "string": "text",
    "str": "text",
    "list": "a list (`- item` lines, or `[a, b]`)",
    "dict": "a mapping (`key: value` lines)",
    "model": "a mapping (`key: value` lines)",
    "model_attributes": "a mapping (`key: value` lines)",
}
"""Plain words for what a pydantic type error expected, by the error type's prefix."""


def _type_error(kind: str) -> str | None:
    """The expected-type prefix of a pydantic type error (`int_parsing` → `int`), or None."""
    for suffix in ("_type", "_parsing", "_from_float"):
        if kind.endswith(suffix) and kind.removesuffix(suffix) in _EXPECTED:
            return kind.removesuffix(suffix)
    return None


def _found(value: Any) -> str:
    """What a YAML value is, in plain words (for 'expected X, found Y')."""
    if value is None:
        return "nothing (the value is empty)"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, (int, float)):
        return f"the number `{value}`"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the text `{shown}`"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


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
    expected = _type_error(kind)
    if expected:
        return f"expected {_EXPECTED[expected]} here, found {_found(err.get('input'))}"
    return ""


_MODEL_LEVEL_KEYS = {
    "`steps` is required": ("steps", "add at least one step, e.g. `- say: \"Hello.\"`"),
    "`conditions` may be left out": ("conditions", "leave `conditions:` out for one default condition, or list some"),
}
"""Errors a whole-protocol validator raises about one key: located at that key when it is written."""


def _problems_from(exc: ValidationError, doc: _Doc) -> list[Problem]:
    grouped: dict[tuple[str, int, int, str], list[tuple[str, str]]] = {}
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        extra_hint = ""
        for start, (key_name, key_hint) in _MODEL_LEVEL_KEYS.items():
            if msg.startswith(start) and isinstance(_node(doc, loc), dict) and key_name in _node(doc, loc):
                loc, extra_hint = loc + (key_name,), key_hint
        kind = err["type"]
        target = _node_tagged(doc, loc)
        at_value = kind not in ("missing", "extra_forbidden") and (
            _type_error(kind) is not None or not isinstance(target, (dict, list)))
        path, line, col, dotted = _locate(doc, loc, missing=kind == "missing", tagged=True, value=at_value)
        key = str(loc[-1]) if loc else ""
        if kind == "extra_forbidden":
            msg = f"unknown key `{key}`"
        elif kind == "missing":
            msg = f"required key `{key}` is missing"
        grouped.setdefault((str(path), line, col, dotted), []).append((msg, extra_hint or _hint(err, key)))
    problems = []
    for (path, line, col, dotted), items in grouped.items():
        msgs = list(dict.fromkeys(m for m, _ in items))
        hints = [h for _, h in items if h]
        if any("instance of FileText" in m for m in msgs):
            msgs = ["expected text, or `{file: PATH}`"]
            found = next((h.split(", found ", 1)[1] for h in hints if ", found " in h), None)
            hints = [f"expected text (or `{{file: PATH}}` to include a file) here, found {found}"] if found else hints
        problems.append(Problem(path, line, col, dotted, " or ".join(msgs), hints[0] if hints else ""))
    return problems


def _node_tagged(doc: _Doc, loc: tuple[Any, ...]) -> Any:
    """`_node` for a pydantic location (step-kind tags skipped, union member names ignored)."""
    node = doc.data
    for i, item in enumerate(loc):
        if i >= 2 and isinstance(loc[i - 1], int) and loc[i - 2] in _STEP_LISTS and item in _STEP_TAGS:
            continue
        if isinstance(node, dict) and item in node:
            node = node[item]
        elif isinstance(node, list) and isinstance(item, int) and 0 <= item < len(node):
            node = node[item]
    return node


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
    problems = (_check_references(protocol, doc, aliases) + _check_templates(protocol, doc)
                + _check_preferences(protocol, doc, aliases))
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
    if protocol.stop and protocol.stop.judge:
        check_model(protocol.stop.judge, ("stop", "judge"))
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
    fork = protocol.fork
    if fork is not None and isinstance(fork.at, str):
        if protocol.pair is not None:
            problems.append(_problem(doc, ("fork", "at"), "a pair protocol has no steps to name",
                                     "fork at a message number instead (`at: 3`)"))
        elif fork.at not in ids:
            close = difflib.get_close_matches(fork.at, sorted(ids), n=1)
            hint = f"did you mean `{close[0]}`?" if close else "give the step an `id:`, or fork at a message number"
            problems.append(_problem(doc, ("fork", "at"), f"no step has id `{fork.at}`", hint))
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
    if protocol.stop is not None:
        out.append((("stop", "confirm_question"), schema.text_of(protocol.stop.confirm_question), False))
        if protocol.stop.check_in is not None:
            out.append((("stop", "check_in", "question"), schema.text_of(protocol.stop.check_in.question), False))
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
        elif isinstance(step, schema.Choose) and step.choose.question is not None:
            out.append((loc + ("choose", "question"), schema.text_of(step.choose.question), False))
        if getattr(step, "when", None):
            out.append((loc + ("when",), step.when, True))
    if protocol.preferences:
        prefs = protocol.preferences
        out.append((("preferences", "question"), prefs.question_text(), False))
    return out


def known_variables(protocol: schema.Protocol) -> set[str]:
    names = set(templates.BUILTIN_VARIABLES) | set(protocol.vars) | {"options", "tag"}
    for step in schema.iter_steps(protocol.steps):
        if getattr(step, "capture", None):
            names.add(step.capture)
        if isinstance(step, schema.Repeat):
            names.update({step.repeat.as_, "index"})
    if protocol.preferences is not None or any(isinstance(s, schema.Choose) for s in schema.iter_steps(protocol.steps)):
        names.update(CHOICE_VARIABLES)
    return names


def _template_line(doc: _Doc, loc: tuple[Any, ...], lineno: int) -> tuple[Path, int, int, str]:
    """Where line `lineno` of the template at `loc` is: in the protocol file (a `|` block starts on
    the line after its key), or in the file a `{file: PATH}` includes."""
    path, line, col, dotted = _locate(doc, loc, value=True)
    node = _node(doc, loc)
    if isinstance(node, dict) and "text" in node and "file" not in node:  # system: {text: ...}
        path, line, col, dotted = _locate(doc, loc + ("text",), value=True)
        node = node["text"]
    if isinstance(node, dict) and isinstance(node.get("file"), str):
        included = Path(node["file"])
        if not included.is_absolute():
            included = (path.parent / included).resolve()
        return included, max(lineno, 1), 1, dotted
    if isinstance(node, (LiteralScalarString, FoldedScalarString)):
        return path, line + lineno, 1, dotted  # the text starts on the line after `|`
    return path, line + max(lineno, 1) - 1, col if lineno <= 1 else 1, dotted


def _sample_contexts(protocol: schema.Protocol) -> list[dict[str, Any]]:
    """One context per condition, like a run's, for trying each template once at validation."""
    names = known_variables(protocol)
    loop: dict[str, Any] = {}
    for step in schema.iter_steps(protocol.steps):
        if isinstance(step, schema.Repeat):
            over = step.repeat.over
            if isinstance(over, list) and over:
                loop[step.repeat.as_] = over[0]
            elif isinstance(over, str) and isinstance(protocol.vars.get(over), list) and protocol.vars[over]:
                loop[step.repeat.as_] = protocol.vars[over][0]
            else:
                loop[step.repeat.as_] = 1
    contexts = []
    for c in protocol.conditions:
        values = {**loop, **protocol.vars, **c.vars, "condition": c.name,
                  "sources": {name: {"text": templates.SAMPLE_REPLY} for name in protocol.sources}}
        contexts.append(templates.sample_variables(values, names))
    return contexts


CHOICE_VARIABLES = ("a", "b", "label_a", "label_b", "a_id", "b_id")
"""Template variables of a conversation with a comparison: the two options' texts as shown, their labels and ids."""


def _check_preferences(protocol: schema.Protocol, doc: _Doc, aliases: dict[str, ModelAlias]) -> list[Problem]:
    """`choose` steps name options that exist, and need a `preferences` block unless they name both;
    a choice judge is a known model and never one of the subjects."""
    problems: list[Problem] = []
    prefs = protocol.preferences
    ids = {o.id for o in prefs.option_list} if prefs else set()
    judges: list[tuple[tuple[Any, ...], str]] = []
    if prefs and prefs.classify.judge:
        judges.append((("preferences", "classify", "judge"), prefs.classify.judge))
    for loc, step in _steps_with_loc(protocol.steps, ("steps",)):
        if not isinstance(step, schema.Choose):
            continue
        spec = step.choose
        if spec.classify and spec.classify.judge:
            judges.append((loc + ("choose", "classify", "judge"), spec.classify.judge))
        if spec.a is None and prefs is None:
            problems.append(_problem(doc, loc + ("choose",), "a `choose` step without `a` and `b` needs a `preferences` block",
                                     "add `preferences: {options: [...]}` at the top level, or name `a:` and `b:`"))
        for side in ("a", "b"):
            oid = getattr(spec, side)
            if oid is not None and oid not in ids:
                close = difflib.get_close_matches(oid, sorted(ids), n=1)
                hint = f"did you mean `{close[0]}`?" if close else "list it under `preferences.options`"
                problems.append(_problem(doc, loc + ("choose", side), f"no option has id `{oid}`", hint))
    for loc, judge in judges:
        if resolve_model(judge, aliases) is None:
            close = difflib.get_close_matches(judge, sorted(aliases), n=1, cutoff=0.5)
            problems.append(_problem(doc, loc, f"unknown model alias `{judge}`",
                                     f"did you mean `{close[0]}`?" if close else "add it to the models file"))
        elif judge in protocol.models:
            problems.append(_problem(doc, loc, f"the judge `{judge}` is also a subject of this protocol",
                                     "a model never classifies its own choices: name another model"))
    return problems


def _check_templates(protocol: schema.Protocol, doc: _Doc) -> list[Problem]:
    problems: list[Problem] = []
    shared = known_variables(protocol)
    samples = _sample_contexts(protocol)

    def located(loc: tuple[Any, ...], lineno: int, message: str, hint: str) -> Problem:
        path, line, col, dotted = _template_line(doc, loc, lineno)
        return Problem(str(path), line, col, dotted, message, hint)

    for loc, source, is_expr in template_fields(protocol):
        try:
            issues = templates.check(source, expression=is_expr, samples=samples)
            used = templates.undeclared(source, expression=is_expr) if not issues else set()
        except templates.TemplateSyntaxError as exc:
            lineno = exc.lineno or 1
            problems.append(located(loc, lineno, f"template syntax error: {exc.message}",
                                    "see https://jinja.palletsprojects.com/templates/"))
            continue
        for issue in issues:
            problems.append(located(loc, issue.lineno, issue.message, issue.hint))
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
