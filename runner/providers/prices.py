"""Prices and context windows from litellm's bundled price map, read as data.

litellm ships `model_prices_and_context_window_backup.json` inside its package. Importing
litellm costs seconds of CPU, so the file is located without importing it
(`importlib.util.find_spec("litellm").submodule_search_locations`), parsed once and cached.
`LATITUDE_PRICE_MAP` names another file of the same shape.

The arithmetic follows what `runner.engine.providers.cost_of` asks of
`litellm.cost_per_token(model, prompt_tokens, completion_tokens, cache_read_input_tokens)`:
uncached prompt tokens at the input price, cache reads at the cache-read price and cache writes
at the cache-write price for their TTL (the vendor's published multiplier of the input price when
the map has none: `runner.providers.caching`), completion tokens at the output price, and the
`_above_200k_tokens` tier when the prompt is longer than 200,000 tokens. The conformance
suite checks the figures against litellm's own on the models it uses.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
from pathlib import Path
from typing import Any

from ..kinds import BatchPriceBasis

PRICE_FILE = "model_prices_and_context_window_backup.json"
"""The file name of litellm's bundled price map."""

_TIER = 200_000


def price_map_path() -> Path | None:
    """Where the price map is: `LATITUDE_PRICE_MAP`, or the file inside the installed litellm."""
    override = os.environ.get("LATITUDE_PRICE_MAP")
    if override:
        return Path(override)
    spec = importlib.util.find_spec("litellm")  # finds the package without executing it
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / PRICE_FILE
        if path.is_file():
            return path
    return None


@functools.lru_cache(maxsize=1)
def price_map() -> dict[str, dict[str, Any]]:
    """The whole map, model name → entry (empty when the file cannot be found or read)."""
    path = price_map_path()
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    data.pop("sample_spec", None)
    return data if isinstance(data, dict) else {}


@functools.lru_cache(maxsize=512)
def model_info(model: str) -> dict[str, Any] | None:
    """The entry for a model string: the string itself (`openai/gpt-4.1`), then without its
    provider prefix (`gpt-4.1`); None when the map does not know it."""
    table = price_map()
    entry = table.get(model)
    if entry is None and "/" in model:
        entry = table.get(model.split("/", 1)[1])
    return entry if isinstance(entry, dict) else None


def _vendor(model: str, info: dict[str, Any]) -> str:
    provider = str(info.get("litellm_provider") or model.split("/", 1)[0])
    return provider if provider in ("anthropic", "openai") else "other"


def input_prices(model: str, tokens_in: int = 0, cache_ttl: str | None = None) -> tuple[float, float, float] | None:
    """(uncached input, cache read, cache write) USD per token of `model`: the price map's own
    `cache_read_input_token_cost` and `cache_creation_input_token_cost` (``_above_1hr`` for a
    one-hour write) where it has them, else the vendor's published multipliers of the input price
    (`runner.providers.caching`: reads 0.1× on Anthropic, 0.5×/0.25×/0.1× on OpenAI by family;
    writes 1.25× for 5 minutes, 2× for an hour, on Anthropic; OpenAI writes are free). None when
    the model has no input price."""
    from .caching import read_multiplier, write_multiplier

    info = model_info(model)
    if info is None or info.get("input_cost_per_token") is None:
        return None
    vendor = _vendor(model, info)
    inp = info["input_cost_per_token"]
    read = info.get("cache_read_input_token_cost")
    write = info.get("cache_creation_input_token_cost_above_1hr" if cache_ttl == "1h" else
                     "cache_creation_input_token_cost")
    if tokens_in > _TIER:
        inp = info.get("input_cost_per_token_above_200k_tokens", inp)
        read = info.get("cache_read_input_token_cost_above_200k_tokens", read)
        write = info.get("cache_creation_input_token_cost_above_200k_tokens", write) if cache_ttl != "1h" else write
    if read is None:
        read = inp * read_multiplier(model, vendor)
    if write is None:
        write = inp * write_multiplier(vendor, cache_ttl)
    return float(inp), float(read), float(write)


def input_cost(model: str, tokens_in: int, cached: int = 0, cache_write: int = 0,
               cache_ttl: str | None = None) -> tuple[float, float] | None:
    """(charged, uncached) USD of one request's prompt: as charged (uncached tokens at the input
    price, cache reads and writes at theirs) and what the same prompt costs with no cache at
    all; None when the model has no input price."""
    p = input_prices(model, tokens_in, cache_ttl)
    if p is None:
        return None
    inp, read, write = p
    uncached = max(tokens_in - cached - cache_write, 0)
    return float(uncached * inp + cached * read + cache_write * write), float(tokens_in * inp)


def cost(model: str, tokens_in: int, tokens_out: int, cached: int = 0, cache_write: int = 0,
         cache_ttl: str | None = None) -> float | None:
    """USD cost of one completion (`tokens_in` counts the cache reads `cached` and writes
    `cache_write`, as both transports report them); None when the model has no input or output
    price."""
    info = model_info(model)
    if info is None:
        return None
    out = info.get("output_cost_per_token")
    charged = input_cost(model, tokens_in, cached, cache_write, cache_ttl)
    if out is None or charged is None:
        return None
    if tokens_in > _TIER:
        out = info.get("output_cost_per_token_above_200k_tokens", out)
    return float(charged[0] + tokens_out * out)


BATCH_DISCOUNT = 0.5
"""The share of the live price both vendors charge through their batch APIs (OpenAI Batch API,
Anthropic Message Batches: 50% off every token), used where the map has no batch price."""


def _batch_token_prices(model: str, tokens_in: int
                        ) -> tuple[float, float, float, float, float, BatchPriceBasis] | None:
    """USD per token on the batch API for a prompt of `tokens_in`: (input, output, cache read,
    5-minute write, 1-hour write, basis); None when the model has no live price either."""
    info = model_info(model)
    if info is None:
        return None
    out = info.get("output_cost_per_token")
    live = input_prices(model, tokens_in)
    live_1h = input_prices(model, tokens_in, "1h")
    if out is None or live is None or live_1h is None:
        return None
    half = BATCH_DISCOUNT
    inp, read, write = live  # the live prices: the map's own, else the vendor's cache multipliers
    write_1h = live_1h[2]
    b_inp, b_out = info.get("input_cost_per_token_batches"), info.get("output_cost_per_token_batches")
    b_read = info.get("cache_read_input_token_cost_batches")
    b_write = info.get("cache_creation_input_token_cost_batches")
    basis: BatchPriceBasis = "price map" if b_inp is not None and b_out is not None else "50% rule"
    if tokens_in > _TIER:  # the map has no batch prices for the long-prompt tier: half the live ones
        out = info.get("output_cost_per_token_above_200k_tokens", out)
        basis = "50% rule"
    if basis == "50% rule":
        b_inp = b_out = b_read = b_write = None
    p_inp = b_inp if b_inp is not None else inp * half
    p_out = b_out if b_out is not None else out * half
    p_read = b_read if b_read is not None else read * half
    p_write = b_write if b_write is not None else write * half
    p_write_1h = write_1h * half
    return p_inp, p_out, p_read, p_write, p_write_1h, basis


def batch_cost(model: str, tokens_in: int, tokens_out: int, cached: int = 0, cache_write: int = 0,
               cache_write_1h: int = 0) -> tuple[float | None, BatchPriceBasis | None]:
    """USD cost of one reply of a vendor batch, and where its prices came from
    (`BatchPriceBasis`); ``(None, None)`` when the model has no live price either.

    `tokens_in` is the whole prompt as the transports count it (cache reads and writes
    included); `cached` the cache reads; `cache_write` / `cache_write_1h` the Anthropic cache
    writes with a 5-minute / 1-hour lifetime (part of `tokens_in`). Batch prices are the map's
    ``*_batches`` entries where it has them (``price map``, which needs both input and output),
    else half the live price (``50% rule``). A cache read or write without a batch entry costs
    half its live price. Above 200,000 prompt tokens the
    map's ``_above_200k_tokens`` live prices are halved (basis ``50% rule``: the map has no batch
    prices for that tier). The live cache prices are `input_prices` (the map's, else the vendor's
    multipliers), so a batch is never priced by other cache rules than the live transport."""
    p = _batch_token_prices(model, tokens_in)
    if p is None:
        return None, None
    p_inp, p_out, p_read, p_write, p_write_1h, basis = p
    plain = max(tokens_in - cached - cache_write - cache_write_1h, 0)
    total = plain * p_inp + cached * p_read + cache_write * p_write + cache_write_1h * p_write_1h + tokens_out * p_out
    return float(total), basis


def batch_input_cost(model: str, tokens_in: int, cached: int = 0, cache_write: int = 0,
                     cache_ttl: str | None = None) -> tuple[float, float] | None:
    """(charged, uncached) USD of one batch request's prompt, at the batch prices `batch_cost`
    charges (so a batch reply's input cost and cost agree); None when the model has no price."""
    p = _batch_token_prices(model, tokens_in)
    if p is None:
        return None
    p_inp, _, p_read, p_write, p_write_1h, _ = p
    write_price = p_write_1h if cache_ttl == "1h" else p_write
    plain = max(tokens_in - cached - cache_write, 0)
    return float(plain * p_inp + cached * p_read + cache_write * write_price), float(tokens_in * p_inp)


def price_per_token(model: str) -> tuple[float, float] | None:
    """(input, output) USD per token, for plan estimates; None when unknown."""
    info = model_info(model)
    if info is None:
        return None
    return float(info.get("input_cost_per_token") or 0), float(info.get("output_cost_per_token") or 0)


def context_window(model: str) -> int | None:
    """Input context window (`max_input_tokens`, else `max_tokens`); None when unknown."""
    info = model_info(model)
    if info is None:
        return None
    return int(info.get("max_input_tokens") or info.get("max_tokens") or 0) or None


__all__ = ["BATCH_DISCOUNT", "batch_cost", "batch_input_cost", "context_window", "cost", "input_cost", "input_prices", "model_info",
           "price_map", "price_map_path", "price_per_token"]
