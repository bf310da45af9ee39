"""The hypotheses file of a pre-registration: what is predicted, of which groups, by which test.

    alpha: 0.05                      # default for every hypothesis
    hypotheses:
      - id: H1
        statement: The maker persona builds visualisers more often than the functional one.
        code: visualiser             # a codebook code (or a built-in code such as stop:stop_phrase)
        groups: {by: model, compare: [sim-maker, sim-functional]}
        direction: greater           # greater | less | differs (two-sided)
        test: fisher                 # fisher | two-proportion (codes); bradley-terry (preferences)
      - id: H2
        preference: {a: tidy-docs, b: write-poem}   # option ids of a preferences protocol
        direction: greater           # a's utility above b's (with groups: the a-b gap larger in the first group)
        test: bradley-terry
        alpha: 0.01

A code hypothesis compares the share of conversations where the code is present between two
groups (two levels of one grouping field: models, conditions, vendors...). A preference
hypothesis compares two options' Bradley-Terry utilities, in the whole run or between two
groups. Errors name ``file:line:column: field: message``, like protocol errors; the checks
against the protocol and codebook (a code the codebook lacks, a model the plan does not run)
are located the same way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..kinds import HypothesisDirection, HypothesisGroupField, PlannedTest
from ..protocol.load import Problem, ProtocolError, _Doc, _field_names, _locate, _problems_from, _vocabulary, read_yaml

__all__ = ["CODE_TESTS", "GroupsCompared", "Hypothesis", "HypothesesFile", "OptionPair", "check_against",
           "load_hypotheses"]

CODE_TESTS: tuple[PlannedTest, ...] = ("fisher", "two-proportion")
"""Tests of a code's share between two groups."""

_STRICT = ConfigDict(extra="forbid", frozen=True)


class GroupsCompared(BaseModel):
    """Two levels of one grouping field: the first is what `direction` speaks of."""

    model_config = _STRICT
    by: HypothesisGroupField
    """The grouping field (``model``: model aliases, ``condition``: protocol conditions...)."""
    compare: Annotated[list[str], Field(min_length=2, max_length=2)]
    """The two levels compared, first against second."""

    @model_validator(mode="after")
    def _distinct(self) -> Self:
        if self.compare[0] == self.compare[1]:
            raise ValueError(f"compare names `{self.compare[0]}` twice; compare two different levels")
        return self


class OptionPair(BaseModel):
    """Two options of a preferences protocol: the first is what `direction` speaks of."""

    model_config = _STRICT
    a: str
    """Option id predicted above (``greater``) or below (``less``) `b`."""
    b: str
    """The option it is compared with."""

    @model_validator(mode="after")
    def _distinct(self) -> Self:
        if self.a == self.b:
            raise ValueError("a and b name the same option")
        return self


class Hypothesis(BaseModel):
    """One registered hypothesis."""

    model_config = _STRICT
    id: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$", max_length=40)]
    """Stable id (``H1``), unique in the file."""
    statement: str = ""
    """The hypothesis in words."""
    code: Annotated[str, Field(min_length=1, max_length=80)] | None = None
    """The code it is about (a codebook code or a built-in one); exactly one of `code` and `preference`."""
    preference: OptionPair | None = None
    """The option pair it is about."""
    groups: GroupsCompared | None = None
    """The groups compared: required for a code, optional for a preference (whole run when absent)."""
    direction: HypothesisDirection
    """`greater`, `less` or `differs`, of the first group (or option) against the second."""
    test: PlannedTest
    """The planned test: `fisher` or `two-proportion` for a code, `bradley-terry` for a preference."""
    alpha: Annotated[float, Field(gt=0, le=0.5)] | None = None
    """Significance level; the file's `alpha` when absent."""
    coder: str | None = None
    """Whose codes count (as `latitude tally --coder`: a person, `judge`, `consensus`, `builtin`)."""

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        if (self.code is None) == (self.preference is None):
            raise ValueError("name exactly one of `code` (a share of conversations) or `preference` (an option pair)")
        if self.code is not None:
            if self.test not in CODE_TESTS:
                raise ValueError(f"a code hypothesis is tested with {' or '.join(CODE_TESTS)}, not {self.test}")
            if self.groups is None:
                raise ValueError("a code hypothesis compares two groups: add `groups: {by: model, compare: [A, B]}`")
        else:
            if self.test != "bradley-terry":
                raise ValueError(f"a preference hypothesis is tested with bradley-terry, not {self.test}")
            if self.groups is not None and self.groups.by not in ("model", "condition"):
                raise ValueError("preferences are grouped by model or condition")
        return self


class HypothesesFile(BaseModel):
    """A whole hypotheses file."""

    model_config = _STRICT
    alpha: Annotated[float, Field(gt=0, le=0.5)] = 0.05
    """Default significance level."""
    hypotheses: Annotated[list[Hypothesis], Field(min_length=1)]
    """In the order the report shows them."""

    @model_validator(mode="after")
    def _unique(self) -> Self:
        ids = [h.id for h in self.hypotheses]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"hypothesis ids must be unique: {', '.join(dupes)} repeated")
        return self

    def alpha_of(self, h: Hypothesis) -> float:
        """The level `h` is judged at."""
        return h.alpha if h.alpha is not None else self.alpha


class LoadedHypotheses:
    """A validated hypotheses file with its text and its YAML (for locating later checks)."""

    def __init__(self, path: Path, text: str, parsed: HypothesesFile, doc: _Doc):
        self.path = path
        self.text = text
        self.parsed = parsed
        self.doc = doc

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


def load_hypotheses(path: Path) -> LoadedHypotheses:
    """Parse and validate a hypotheses file; raises `ProtocolError` with located problems."""
    data, text = read_yaml(path)
    data = {} if data is None else data
    origin = {k: (path, data) for k in data} if isinstance(data, dict) else {}
    doc = _Doc(data, path, origin)
    if not isinstance(data, dict):
        raise ProtocolError([Problem(str(path), 1, 1, "", "a hypotheses file is a YAML mapping with `hypotheses:`")])
    _vocabulary().update(_field_names(HypothesesFile))
    try:
        parsed = HypothesesFile.model_validate(data)
    except ValidationError as exc:
        raise ProtocolError(_problems_from(exc, doc)) from None
    return LoadedHypotheses(path, text, parsed, doc)


def check_against(loaded: LoadedHypotheses, *, codes: Sequence[str] | None, models: Sequence[str],
                  conditions: Sequence[str], options: Sequence[str]) -> None:
    """Check the hypotheses name what the study has: codes in the codebook (when one is registered; built-in
    codes always count), models and conditions the plan runs, options the protocol offers. Raises
    `ProtocolError` listing every problem, each located in the hypotheses file."""
    from ..analysis.builtin_codes import is_builtin

    problems: list[Problem] = []

    def at(loc: tuple[object, ...], message: str, hint: str = "") -> None:
        p, line, col, dotted = _locate(loaded.doc, loc, value=True)
        problems.append(Problem(str(p), line, col, dotted, message, hint))

    levels = {"model": list(models), "condition": list(conditions)}
    for i, h in enumerate(loaded.parsed.hypotheses):
        if h.code is not None and codes is not None and h.code not in codes and not is_builtin(h.code):
            at(("hypotheses", i, "code"), f"code `{h.code}` is not in the registered codebook",
               "codes: " + (", ".join(codes) or "none"))
        if h.groups is not None and h.groups.by in levels:
            known = levels[h.groups.by]
            for j, level in enumerate(h.groups.compare):
                if level not in known:
                    at(("hypotheses", i, "groups", "compare", j),
                       f"the plan runs no {h.groups.by} `{level}`", f"{h.groups.by}s: {', '.join(known) or 'none'}")
        if h.preference is not None:
            for side in ("a", "b"):
                option = getattr(h.preference, side)
                if option not in options:
                    at(("hypotheses", i, "preference", side), f"the protocol offers no option `{option}`",
                       "options: " + (", ".join(options) or "none (not a preferences protocol)"))
    if problems:
        raise ProtocolError(problems)
