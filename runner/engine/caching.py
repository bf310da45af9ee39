"""What a run's prompt cache did, from the tokens the vendors reported: per model, cache reads and
writes out of all input tokens, the prompts' cost as charged against what it would have been
uncached, and whether the shared prefix was too short to cache at all (the vendors skip that
silently). `latitude run` prints it at the end; `latitude show RUN` prints it for a stored run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..providers.caching import min_cacheable_tokens
from ..store import queries

__all__ = ["CacheLine", "report"]


@dataclass(frozen=True)
class CacheLine:
    """One model's prompt-cache figures over a run (vendor-reported token counts: exact, not estimates)."""

    alias: str
    model: str
    vendor: str
    replies: int
    """Model replies counted."""
    tokens_in: int
    """Input tokens of those replies' requests (reads and writes included)."""
    cached_tokens: int
    """Of `tokens_in`, read from the cache."""
    cache_write_tokens: int
    """Of `tokens_in`, written to the cache."""
    input_cost: float | None
    """USD charged for the prompts; None without a price."""
    input_cost_uncached: float | None
    """USD the same prompts would have cost with no cache."""
    first_prompt_max: int
    """The largest first request of a conversation (system prompt + first user turn), in tokens."""
    minimum: int | None
    """The model's minimum cacheable length (None: a vendor without prompt caching)."""

    @property
    def too_short(self) -> bool:
        """Nothing was cached and even the longest shared prefix is under the model's minimum."""
        return (self.minimum is not None and self.cached_tokens == 0 and self.cache_write_tokens == 0
                and 0 < self.first_prompt_max < self.minimum)

    def text(self) -> str:
        """The line shown to a researcher."""
        head = f"prompt cache, {self.alias} ({self.model}): "
        if self.minimum is None:
            return head + "no prompt cache for this vendor"
        share = (lambda n: f"{n / self.tokens_in:.1%}") if self.tokens_in else (lambda n: "–")
        parts = [f"read {self.cached_tokens:,} and wrote {self.cache_write_tokens:,} of {self.tokens_in:,} input "
                 f"tokens ({share(self.cached_tokens)} / {share(self.cache_write_tokens)}) over {self.replies:,} "
                 "replies (vendor-reported counts)"]
        if self.input_cost is not None and self.input_cost_uncached:
            saved = 1 - self.input_cost / self.input_cost_uncached
            parts.append(f"input cost ${self.input_cost:,.4f} against ${self.input_cost_uncached:,.4f} uncached "
                         f"({saved:.1%} {'saved' if saved >= 0 else 'more'})")
        if self.too_short:
            parts.append(f"the shared prefix (system prompt + first user turn: at most {self.first_prompt_max:,} "
                         f"tokens as recorded) is under the {self.minimum:,}-token minimum {self.model} caches, "
                         "so the vendor cached nothing")
        return head + "; ".join(parts)


def report(session: Any, run_id: str) -> list[CacheLine]:
    """One `CacheLine` per model that replied in the run (in-process models left out)."""
    lines = []
    for row in queries.cache_totals(session, run_id):
        vendor = str(row["vendor"])
        if vendor in ("sim", "local"):
            continue
        model = str(row["model"])
        lines.append(CacheLine(
            alias=str(row["alias"]), model=model, vendor=vendor, replies=int(row["replies"]),  # type: ignore[call-overload]
            tokens_in=int(row["tokens_in"]), cached_tokens=int(row["cached_tokens"]),  # type: ignore[call-overload]
            cache_write_tokens=int(row["cache_write_tokens"]),  # type: ignore[call-overload]
            input_cost=row["input_cost"], input_cost_uncached=row["input_cost_uncached"],  # type: ignore[arg-type]
            first_prompt_max=int(row["first_prompt_max"]),  # type: ignore[call-overload]
            minimum=min_cacheable_tokens(model, vendor)))
    return lines
