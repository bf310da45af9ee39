"""Analysis: codebooks and tags, built-in codes, judge coding, suggested themes, tallies and statistics.

Names are loaded on first use (tally and themes import scipy, scikit-learn and numpy).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS: dict[str, str] = {
    **dict.fromkeys(["Code", "Codebook", "CodebookError", "import_codebook", "export_codebook", "read_codebook",
                     "rename_code", "merge_codes", "delete_code", "add_code", "edit_code"],
                    "runner.analysis.codebook"),
    **dict.fromkeys(["toggle_tag", "add_span_tag", "set_note", "undo", "TagError"], "runner.analysis.tags"),
    **dict.fromkeys(["code_tally", "stop_tally", "offer_tally", "agreement_report", "tally_rows", "available_coders",
                     "TallyRow", "CodeTally", "StopTally", "OfferTally", "AgreementReport", "Provenance",
                     "TallyError", "GROUP_FIELDS", "Coverage", "JudgeValidation", "FactorEffect",
                     "condition_roles"], "runner.analysis.tally"),
    **dict.fromkeys(["judge_run", "judge_coder", "JudgeOptions", "JudgeSummary", "JudgeError", "SelfJudgeError"],
                    "runner.analysis.judge"),
    **dict.fromkeys(["suggest_themes", "collect_texts", "cluster", "get_embedder", "ThemeRun", "ThemeError"],
                    "runner.analysis.themes"),
    **dict.fromkeys(["BUILTIN_CODES", "BUILTIN_CODER", "derive_builtin", "write_builtin_tags"],
                    "runner.analysis.builtin_codes"),
}

__all__ = sorted([*_EXPORTS, "stats"])


def __getattr__(name: str) -> Any:
    if name == "stats":
        return import_module("runner.analysis.stats")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'runner.analysis' has no attribute {name!r}")
    return getattr(import_module(module), name)


def __dir__() -> list[str]:
    return __all__
