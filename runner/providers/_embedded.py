"""litellm adapters for the in-process providers (the client calls `local` and `sim` directly;
these serve anyone calling litellm itself, e.g. a bare litellm benchmark): ``local/...`` (llama.cpp) and ``sim/...``.

Call `register(litellm)` once (idempotent); then ``litellm.acompletion(model="local/gemma-3-270m",
...)`` and ``litellm.acompletion(model="sim/maker", ...)`` work with no API key and no network,
streaming or not. Model-specific keyword arguments (``model_path``, ``seed``, ``stop_after``,
``prompt_format``, ``fault``...) are passed to ``acompletion`` like any other keyword; litellm
hands them to the handler in ``optional_params`` (``extra_body={...}`` works too).

- Streamed replies end with a chunk carrying ``finish_reason`` and real ``usage`` (llama.cpp
  tokenizer counts for ``local``, whitespace word counts for ``sim``).
- Local generation runs on the model's own worker thread (`LocalModel.executor`, a single
  thread, so conversations queue without holding threads and the event loop never blocks);
  the model is loaded in a worker thread too, once per file.
- ``sim/faulty`` faults surface at request time as the litellm exceptions a real vendor's
  would: `litellm.RateLimitError`, `ServiceUnavailableError` (overloaded),
  `InternalServerError`, `Timeout`, `APIConnectionError` (connection reset; malformed JSON).
- Both providers cost 0 (registered in litellm's cost map).

This module imports litellm only inside functions.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, AsyncIterator, Iterator, Mapping, Sequence

from . import local, sim

PROVIDERS = (local.PROVIDER, sim.PROVIDER)
EMBEDDED_MODELS = (f"local/{local.GEMMA_MODEL}",) + tuple(f"sim/{p}" for p in sim.PERSONAS)
"""Model names that need no configuration (``local/<name>`` with ``model_path`` also works)."""

_NOT_PARAMS = {"stream", "stream_options", "extra_body", "extra_headers", "api_key", "api_base"}

_handlers: dict[str, Any] = {}
_lock = threading.Lock()
_costed: set[str] = set()


# --------------------------------------------------------------------------------------
# Public helpers


def is_embedded(model: str) -> bool:
    """Whether a model string is served in-process (``local/...`` or ``sim/...``)."""
    return model.split("/", 1)[0] in PROVIDERS and "/" in model


def context_window(model: str, params: Mapping[str, Any] | None = None) -> int | None:
    """Context window of an embedded model: the local file's (from its metadata, capped);
    None for ``sim`` (simulated replies have no window) and for anything else."""
    if model.startswith(local.PROVIDER + "/"):
        return local.context_window(model, params)
    return None


def cost(model: str, usage: Any = None) -> float | None:
    """Embedded models cost nothing; None for models this module does not serve."""
    return 0.0 if is_embedded(model) else None


def handler_params(optional_params: Mapping[str, Any] | None, litellm_params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The model parameters a handler sees: litellm's optional_params (OpenAI params and any
    extra keyword, e.g. model_path / seed / stop_after) merged with ``extra_body``."""
    params = dict(optional_params or {})
    extra = params.get("extra_body")
    out = {k: v for k, v in params.items() if k not in _NOT_PARAMS}
    if isinstance(extra, Mapping):
        out.update(extra)
    return out


# --------------------------------------------------------------------------------------
# Registration


def register(litellm_module: Any = None) -> None:
    """Register the ``local`` and ``sim`` custom providers with litellm (idempotent)."""
    if litellm_module is None:
        import litellm as litellm_module
    with _lock:
        if not _handlers:
            _handlers.update(_make_handlers())
        current = list(getattr(litellm_module, "custom_provider_map", None) or [])
        kept = [item for item in current if item.get("provider") not in PROVIDERS]
        ours = [{"provider": name, "custom_handler": _handlers[name]} for name in PROVIDERS]
        if current != kept + ours:
            litellm_module.custom_provider_map = kept + ours
        for model in EMBEDDED_MODELS:
            _register_cost(litellm_module, model)


def _register_cost(lm: Any, model: str, context: int | None = None) -> None:
    key = f"{model}|{context}"
    if key in _costed:
        return
    entry: dict[str, Any] = {
        "input_cost_per_token": 0.0,
        "output_cost_per_token": 0.0,
        "cache_creation_input_token_cost": 0.0,
        "cache_read_input_token_cost": 0.0,
        "litellm_provider": model.split("/", 1)[0],
        "mode": "chat",
    }
    if context:
        entry["max_input_tokens"] = context
        entry["max_tokens"] = context
    try:
        lm.register_model({model: entry})
    except Exception:  # pragma: no cover - cost is telemetry, never fatal
        return
    _costed.add(key)


def _mapped_exception(lm: Any, exc: BaseException, model: str, provider: str) -> BaseException:
    """A litellm exception for a simulated fault or a local-model failure."""
    if isinstance(exc, sim.SimFault):
        msg = f"{exc.message} [{provider}/{model}, seed={exc.seed}, attempt={exc.attempt}]"
        kind = exc.kind
        if kind == "rate_limit":
            return lm.RateLimitError(message=msg, llm_provider=provider, model=model)
        if kind == "overloaded":
            return lm.ServiceUnavailableError(message=msg, llm_provider=provider, model=model)
        if kind == "server":
            return lm.InternalServerError(message=msg, llm_provider=provider, model=model)
        if kind == "timeout":
            return lm.Timeout(message=msg, model=model, llm_provider=provider)
        return lm.APIConnectionError(message=msg, llm_provider=provider, model=model)  # connection, malformed
    if isinstance(exc, local.LocalModelError):
        return lm.NotFoundError(message=str(exc), model=model, llm_provider=provider)
    if isinstance(exc, ValueError):
        return lm.BadRequestError(message=str(exc), model=model, llm_provider=provider)
    return lm.InternalServerError(message=f"{type(exc).__name__}: {exc}", llm_provider=provider, model=model)


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _chunk(text: str = "", finish: str | None = None, usage: dict[str, int] | None = None,
           extra: dict[str, Any] | None = None) -> dict[str, Any]:
    chunk: dict[str, Any] = {
        "text": text,
        "tool_use": None,
        "is_finished": finish is not None,
        "finish_reason": finish or "",
        "usage": usage,
        "index": 0,
    }
    if extra:
        chunk["provider_specific_fields"] = extra
    return chunk


def _fill(lm: Any, model_response: Any, full_model: str, text: str, finish: str, usage: dict[str, int],
          fingerprint: str, extra: dict[str, Any]) -> Any:
    model_response.choices[0].message.content = text
    model_response.choices[0].finish_reason = finish
    model_response.choices[0].message.provider_specific_fields = extra
    model_response.model = full_model
    model_response.created = int(time.time())
    model_response.system_fingerprint = fingerprint
    model_response.usage = lm.Usage(**usage)
    return model_response


def _local_extra(g: local.Generation) -> dict[str, Any]:
    return {
        "embedded": "llama.cpp",
        "seed": g.seed,
        "context_window": g.context_window,
        "truncated_messages": g.truncated_messages,
        "prompt_format": g.prompt_format,
        "queue_s": round(g.queue_s, 4),
        "generation_s": round(g.generation_s, 4),
    }


def _make_handlers() -> dict[str, Any]:
    import litellm as lm
    from litellm import CustomLLM

    class SimHandler(CustomLLM):
        """``sim/<persona>``: scripted, deterministic, instant."""

        latitude_embedded = "sim"

        def _reply(self, model: str, messages: list, optional_params: dict) -> tuple[str, dict[str, Any]]:
            params = handler_params(optional_params)
            persona = sim.persona_of(model)
            if persona not in sim.PERSONAS:
                raise lm.NotFoundError(message=f"unknown sim persona {persona!r}; known: {', '.join(sim.PERSONAS)}",
                                       model=f"sim/{persona}", llm_provider=sim.PROVIDER)
            try:
                text = sim.reply(persona, messages, params.get("seed"), params)
            except (sim.SimFault, ValueError) as e:
                raise _mapped_exception(lm, e, persona, sim.PROVIDER) from e
            return text, params

        def _extra(self, persona: str, params: Mapping[str, Any]) -> dict[str, Any]:
            return {"simulated": True, "persona": persona, "seed": sim._seed(params.get("seed"))}

        def completion(self, model, messages, api_base, custom_prompt_dict, model_response, print_verbose, encoding,
                       api_key, logging_obj, optional_params, acompletion=None, litellm_params=None, logger_fn=None,
                       headers={}, timeout=None, client=None):
            text, params = self._reply(model, messages, optional_params)
            persona = sim.persona_of(model)
            return _fill(lm, model_response, f"sim/{persona}", text, "stop",
                         _usage(sim.prompt_tokens(messages), sim.count_tokens(text)), "latitude-sim",
                         self._extra(persona, params))

        async def acompletion(self, model, messages, api_base, custom_prompt_dict, model_response, print_verbose,
                              encoding, api_key, logging_obj, optional_params, acompletion=None, litellm_params=None,
                              logger_fn=None, headers={}, timeout=None, client=None):
            return self.completion(model, messages, api_base, custom_prompt_dict, model_response, print_verbose,
                                   encoding, api_key, logging_obj, optional_params)

        def _chunks(self, model: str, messages: list, text: str, params: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
            for piece in sim.pieces(text):
                yield _chunk(piece)
            yield _chunk("", "stop", _usage(sim.prompt_tokens(messages), sim.count_tokens(text)),
                         self._extra(sim.persona_of(model), params))

        # Plain methods returning iterators (not generator functions), so that a fault is
        # raised when the request is made, as a vendor's would be, not on the first chunk.
        def streaming(self, model, messages, api_base, custom_prompt_dict, model_response, print_verbose, encoding,
                      api_key, logging_obj, optional_params, acompletion=None, litellm_params=None, logger_fn=None,
                      headers={}, timeout=None, client=None) -> Iterator[dict[str, Any]]:
            text, params = self._reply(model, messages, optional_params)
            return self._chunks(model, messages, text, params)

        def astreaming(self, model, messages, api_base, custom_prompt_dict, model_response, print_verbose, encoding,
                       api_key, logging_obj, optional_params, acompletion=None, litellm_params=None, logger_fn=None,
                       headers={}, timeout=None, client=None) -> AsyncIterator[dict[str, Any]]:
            text, params = self._reply(model, messages, optional_params)
            chunks = self._chunks(model, messages, text, params)

            async def agen() -> AsyncIterator[dict[str, Any]]:
                for c in chunks:
                    yield c

            return agen()

    class LocalHandler(CustomLLM):
        """``local/<name>``: a llama.cpp model in this process."""

        latitude_embedded = "local"

        def _prepare(self, model: str, optional_params: dict) -> tuple[str, dict[str, Any], Any]:
            params = handler_params(optional_params)
            full = model if model.startswith(local.PROVIDER + "/") else f"{local.PROVIDER}/{model}"
            try:
                path = local.resolve_model_path(full, params)
            except local.LocalModelError as e:
                raise _mapped_exception(lm, e, full, local.PROVIDER) from e
            return full, params, path

        def _loaded(self, full: str, path: Any) -> local.LocalModel:
            try:
                m = local.get_model(path)
            except Exception as e:
                raise _mapped_exception(lm, e, full, local.PROVIDER) from e
            _register_cost(lm, full, m.context_window)
            return m

        def _response(self, model_response: Any, full: str, m: local.LocalModel, g: local.Generation) -> Any:
            return _fill(lm, model_response, full, g.text, g.finish_reason, _usage(g.prompt_tokens, g.completion_tokens),
                         f"llama.cpp:{m.path.name}", _local_extra(g))

        def completion(self, model, messages, api_base, custom_prompt_dict, model_response, print_verbose, encoding,
                       api_key, logging_obj, optional_params, acompletion=None, litellm_params=None, logger_fn=None,
                       headers={}, timeout=None, client=None):
            full, params, path = self._prepare(model, optional_params)
            m = self._loaded(full, path)
            try:
                g = m.generate(messages, params)
            except Exception as e:
                raise _mapped_exception(lm, e, full, local.PROVIDER) from e
            return self._response(model_response, full, m, g)

        async def acompletion(self, model, messages, api_base, custom_prompt_dict, model_response, print_verbose,
                              encoding, api_key, logging_obj, optional_params, acompletion=None, litellm_params=None,
                              logger_fn=None, headers={}, timeout=None, client=None):
            # Resolving (first use assembles the packaged GGUF) and loading happen off the loop.
            full, params, path = await asyncio.to_thread(self._prepare, model, optional_params)
            submitted = time.perf_counter()
            m = await asyncio.to_thread(self._loaded, full, path)
            loop = asyncio.get_running_loop()
            try:
                g = await loop.run_in_executor(m.executor, lambda: m.generate(messages, params, submitted_at=submitted))
            except Exception as e:
                raise _mapped_exception(lm, e, full, local.PROVIDER) from e
            return self._response(model_response, full, m, g)

        @staticmethod
        def _as_chunk(item: local.Piece | local.Generation) -> dict[str, Any]:
            if isinstance(item, local.Piece):
                return _chunk(item.text)
            return _chunk("", item.finish_reason, _usage(item.prompt_tokens, item.completion_tokens), _local_extra(item))

        def streaming(self, model, messages, api_base, custom_prompt_dict, model_response, print_verbose, encoding,
                      api_key, logging_obj, optional_params, acompletion=None, litellm_params=None, logger_fn=None,
                      headers={}, timeout=None, client=None) -> Iterator[dict[str, Any]]:
            full, params, path = self._prepare(model, optional_params)

            def gen() -> Iterator[dict[str, Any]]:
                submitted = time.perf_counter()
                m = self._loaded(full, path)
                try:
                    for item in m.stream(messages, params, submitted_at=submitted):
                        yield self._as_chunk(item)
                except Exception as e:
                    raise _mapped_exception(lm, e, full, local.PROVIDER) from e

            return gen()

        def astreaming(self, model, messages, api_base, custom_prompt_dict, model_response, print_verbose, encoding,
                       api_key, logging_obj, optional_params, acompletion=None, litellm_params=None, logger_fn=None,
                       headers={}, timeout=None, client=None) -> AsyncIterator[dict[str, Any]]:
            full, params, path = self._prepare(model, optional_params)
            return _local_astream(self, full, path, messages, params)

    async def _local_astream(handler: Any, full: str, path: Any, messages: Sequence[Mapping[str, Any]],
                             params: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        submitted = time.perf_counter()
        m = await asyncio.to_thread(handler._loaded, full, path)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        cancel = threading.Event()

        def post(kind: str, value: Any) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, (kind, value))
            except RuntimeError:  # loop closed: the consumer is gone
                cancel.set()

        def work() -> None:
            try:
                for item in m.stream(messages, params, cancel=cancel, submitted_at=submitted):
                    post("item", item)
                    if cancel.is_set():
                        break
            except BaseException as e:  # noqa: BLE001 - handed to the consumer
                post("error", e)
            finally:
                post("done", None)

        loop.run_in_executor(m.executor, work)
        try:
            while True:
                kind, value = await queue.get()
                if kind == "done":
                    return
                if kind == "error":
                    raise _mapped_exception(lm, value, full, local.PROVIDER) from value
                yield handler._as_chunk(value)
        finally:
            cancel.set()  # consumer stopped early: let the model go to the next conversation

    return {"sim": SimHandler(), "local": LocalHandler()}


__all__ = [
    "EMBEDDED_MODELS",
    "PROVIDERS",
    "context_window",
    "cost",
    "handler_params",
    "is_embedded",
    "register",
]
