"""The TUI's writer (`Coding`): it lives in `runner.analysis.session`, so the TUI never imports
sqlmodel directly; re-exported here for the screens."""

from runner.analysis.session import DEFAULT_CODEBOOK, Coding, ReviewDecision

__all__ = ["DEFAULT_CODEBOOK", "Coding", "ReviewDecision"]
