"""The transcript store: tables, migrations, the group-commit writer and the reads.

Public names are re-exported here and loaded on first use, so ``import runner.store``
costs nothing until a name is touched (SQLAlchemy/SQLModel take ~0.5 s to import;
``latitude --help`` must stay fast). The store imports neither litellm, rich nor textual.

    from runner.store import StoreWriter, upgrade, make_engine, session, queries
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "DEFAULT_URL",
    "TABLES",
    "UNFINISHED_STATUSES",
    "ArtifactRow",
    "ConversationKind",
    "ConversationRow",
    "ConversationStatus",
    "MessageRow",
    "OfferOutcome",
    "OfferRow",
    "Role",
    "RunRow",
    "RunStatus",
    "RunSummary",
    "StoreWriter",
    "WriterClosedError",
    "conversation_artifacts",
    "conversation_messages",
    "conversation_offers",
    "current_revision",
    "default_url",
    "downgrade",
    "get_conversation",
    "get_run",
    "head_revision",
    "latest_run",
    "list_runs",
    "make_engine",
    "next_message_idx",
    "normalize_url",
    "open",
    "run_conversations",
    "run_summary",
    "session",
    "unfinished_conversations",
    "upgrade",
    "utcnow",
]

_HOME = {
    **dict.fromkeys(
        ["DEFAULT_URL", "current_revision", "default_url", "downgrade", "head_revision",
         "make_engine", "normalize_url", "open", "session", "upgrade"],
        "runner.store.db",
    ),
    **dict.fromkeys(
        ["TABLES", "ArtifactRow", "ConversationKind", "ConversationRow", "ConversationStatus",
         "MessageRow", "OfferOutcome", "OfferRow", "Role", "RunRow", "RunStatus", "utcnow"],
        "runner.store.tables",
    ),
    **dict.fromkeys(["StoreWriter", "WriterClosedError"], "runner.store.writer"),
    "RunSummary": "runner.store.records",
    **dict.fromkeys(
        ["UNFINISHED_STATUSES", "conversation_artifacts", "conversation_messages",
         "conversation_offers", "get_conversation", "get_run", "latest_run", "list_runs",
         "next_message_idx", "run_conversations", "run_summary", "unfinished_conversations"],
        "runner.store.queries",
    ),
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:
    from runner.store.db import (
        DEFAULT_URL,
        current_revision,
        default_url,
        downgrade,
        head_revision,
        make_engine,
        normalize_url,
        open,
        session,
        upgrade,
    )
    from runner.store.queries import (
        UNFINISHED_STATUSES,
        conversation_artifacts,
        conversation_messages,
        conversation_offers,
        get_conversation,
        get_run,
        latest_run,
        list_runs,
        next_message_idx,
        run_conversations,
        run_summary,
        unfinished_conversations,
    )
    from runner.store.records import RunSummary
    from runner.store.tables import (
        TABLES,
        ArtifactRow,
        ConversationKind,
        ConversationRow,
        ConversationStatus,
        MessageRow,
        OfferOutcome,
        OfferRow,
        Role,
        RunRow,
        RunStatus,
        utcnow,
    )
    from runner.store.writer import StoreWriter, WriterClosedError
