"""The models file (`models.yaml`): aliases → litellm model strings and parameters.

One file serves every protocol. Keys are never written here: `api_key_env` names the
environment variable that holds one.
"""

from __future__ import annotations

import os
from typing import Annotated, Any, Literal

from ..kinds import BatchFallback
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..kinds import CacheTTL

Vendor = Literal["anthropic", "openai", "local", "sim", "other"]
"""Who serves a model, as shown in listings and tallies."""

Transport = Literal["litellm", "native", "batch"]
"""How an alias's requests reach the vendor: `litellm` (any vendor litellm knows), `native`
(`runner.providers.native`: the OpenAI chat-completions and Anthropic messages wire formats
spoken directly, for `openai/...` and `anthropic/...` model strings only) or `batch`
(`runner.providers.batch`: the vendor's batch API at its batch price, requests gathered in
waves; `openai/...` and `anthropic/...` only)."""

NATIVE_BY_DEFAULT = True
"""Whether `openai/...` and `anthropic/...` aliases that name no transport use the native one.
Turned on once the conformance suite (`tests/conformance/`) showed both transports store the
same records for every fault the fake provider injects."""


def default_transport(model: str, reasoning_effort: str | None = None) -> Transport:
    """The transport of an alias that names none: native for `openai/` and `anthropic/`
    strings (except an Anthropic alias with `reasoning_effort`, which only litellm maps to a
    thinking budget), litellm for everything else."""
    if not NATIVE_BY_DEFAULT:
        return "litellm"
    if model.startswith("openai/") or (model.startswith("anthropic/") and reasoning_effort is None):
        return "native"
    return "litellm"


_KNOWN_VENDORS = {"anthropic": "anthropic", "openai": "openai", "local": "local", "sim": "sim"}


class ModelAlias(BaseModel):
    """One entry of the models file."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    model: str = Field(min_length=3)
    """litellm model string, e.g. `anthropic/claude-sonnet-4-5`, `openai/gpt-4.1`, `local/gemma-3-270m`, `sim/maker`."""
    api_base: str | None = None
    """Endpoint override (an OpenAI-compatible server, a proxy)."""
    api_key_env: str | None = None
    """Name of the environment variable holding the key. The key itself is never stored."""
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    top_p: Annotated[float, Field(gt=0, le=1)] | None = None
    seed: int | None = None
    reasoning_effort: Literal["minimal", "low", "medium", "high"] | None = None
    """Reasoning effort for models that take one."""
    thinking_budget: Annotated[int, Field(ge=1024)] | None = None
    """Anthropic extended-thinking budget in tokens."""
    context_window: Annotated[int, Field(ge=256)] | None = None
    """Override of the context window litellm knows for this model."""
    model_path: str | None = None
    """GGUF file for the `local` provider."""
    rpm: Annotated[int, Field(ge=1)] | None = None
    """Requests per minute this alias may send."""
    tpm: Annotated[int, Field(ge=1)] | None = None
    """Tokens per minute (input + output) this alias may use."""
    max_concurrency: Annotated[int, Field(ge=1)] | None = None
    """Most requests in flight at once for this alias."""
    timeout_s: Annotated[float, Field(gt=0)] = 120.0
    """Per-request timeout."""
    extra: dict[str, Any] = Field(default_factory=dict)
    """Further request parameters passed as they are (to litellm, or into the native request body)."""
    transport: Transport = "litellm"
    """How requests are sent (see `Transport`); when the file names none, `default_transport()` decides."""
    batch_fallback: BatchFallback = "none"
    """With ``transport: batch``: where a request whose batch item failed is retried, in the
    next wave (``none``) or on the live native transport (``live``)."""
    stream: bool = True
    """Stream the reply (time to first token is measured). `false` reads one JSON body; the
    native transport only (litellm always streams)."""
    prompt_cache: bool = True
    """Mark prompts for the vendor's prompt cache: Anthropic `cache_control` breakpoints on the
    system prompt (when the protocol marks it `cacheable`) and on the latest turn of a
    conversation (the moving prefix); OpenAI `prompt_cache_key` per conversation. `false` sends
    neither (an OpenAI-compatible server that refuses `prompt_cache_key`, or a comparison run).
    Never a response cache: every turn is a new request."""
    cache_ttl: CacheTTL = "5m"
    """Anthropic cache lifetime asked for on every breakpoint (`CacheTTL`); the batch transport
    asks for ``1h`` itself. Recorded with every request (`RequestRecord.cache_ttl`)."""

    @model_validator(mode="before")
    @classmethod
    def _default_transport(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("transport") is None and isinstance(data.get("model"), str):
            data = {**data, "transport": default_transport(data["model"], data.get("reasoning_effort"))}
        return data

    @model_validator(mode="after")
    def _native_serves_it(self) -> "ModelAlias":
        if self.transport == "native" and not self.model.startswith(("openai/", "anthropic/")):
            raise ValueError(f"transport native serves openai/ and anthropic/ models, not {self.model}")
        if self.transport == "batch" and not self.model.startswith(("openai/", "anthropic/")):
            raise ValueError(f"transport batch serves openai/ and anthropic/ models (the vendors with a batch API), "
                             f"not {self.model}")
        return self

    def batched(self) -> "ModelAlias":
        """This alias on the batch transport (`latitude run --batch`): itself when it has no batch API."""
        if self.transport == "batch" or not self.model.startswith(("openai/", "anthropic/")):
            return self
        return self.model_copy(update={"transport": "batch"})

    @property
    def vendor(self) -> str:
        prefix = self.model.split("/", 1)[0]
        if prefix in _KNOWN_VENDORS:
            return _KNOWN_VENDORS[prefix]
        if self.model.startswith(("claude", "anthropic")):
            return "anthropic"
        if self.model.startswith(("gpt", "o1", "o3", "o4")):
            return "openai"
        return prefix if "/" in self.model else "other"

    @property
    def simulated(self) -> bool:
        return self.model.startswith("sim/")

    def key_is_set(self) -> bool | None:
        """Whether the key variable is set (None when the alias needs none)."""
        if not self.api_key_env:
            return None
        return bool(os.environ.get(self.api_key_env))

    def sampling(self) -> dict[str, Any]:
        """The sampling parameters recorded with every conversation."""
        keys = ("temperature", "max_tokens", "top_p", "seed", "reasoning_effort", "thinking_budget")
        return {k: getattr(self, k) for k in keys if getattr(self, k) is not None}


class ModelsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    models: dict[str, ModelAlias] = Field(default_factory=dict)
    """Alias → model."""


BUILTIN_ALIASES: dict[str, ModelAlias] = {
    "gemma": ModelAlias(model="local/gemma-3-270m", temperature=0.7, max_tokens=200),
    "sim-maker": ModelAlias(model="sim/maker"),
    "sim-functional": ModelAlias(model="sim/functional"),
    "sim-stopper": ModelAlias(model="sim/stopper"),
    "sim-decliner": ModelAlias(model="sim/decliner"),
    "sim-faulty": ModelAlias(model="sim/faulty"),
    "sim-chooser": ModelAlias(model="sim/chooser"),
    "sim-judge": ModelAlias(model="sim/judge"),
}
"""Aliases that exist without a models file: the embedded local model and the simulator personas."""


def resolve_model(name: str, aliases: dict[str, ModelAlias]) -> ModelAlias | None:
    """An alias from the file (or a built-in one), or a direct litellm string; None when unknown."""
    if name in aliases:
        return aliases[name]
    if name in BUILTIN_ALIASES:
        return BUILTIN_ALIASES[name]
    if "/" in name:
        return ModelAlias(model=name)
    return None


__all__ = ["BUILTIN_ALIASES", "ModelAlias", "ModelsFile", "NATIVE_BY_DEFAULT", "Transport", "Vendor", "default_transport",
           "resolve_model"]
