"""The embedding index (operators/model/ann.py): it finds what an exhaustive search finds, while
scoring a small part of the catalogue, deterministically, and a restored model searches as the
one it was taken from."""

from __future__ import annotations

import numpy as np

from operators.model import OnlineConfig, OnlineRanker
from operators.model.ann import EmbeddingIndex
from tests.unit.test_online import planted, train


def clustered(items: int, dim: int, seed: int) -> np.ndarray:
    """Item vectors (dim, then a bias column) around 60 tastes, as trained embeddings are."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 1.0, (60, dim))
    vectors = centres[rng.integers(0, 60, items)] + rng.normal(0.0, 0.35, (items, dim))
    return np.hstack([vectors, rng.normal(0.0, 0.1, (items, 1))]).astype(np.float32)


def test_the_index_finds_most_of_the_exact_top_items_scoring_a_fraction_of_the_catalogue() -> None:
    vectors = clustered(20_000, 16, seed=1)
    rng = np.random.default_rng(2)
    users = vectors[rng.integers(0, 20_000, 50), :-1] + rng.normal(0.0, 0.2, (50, 16)).astype(np.float32)
    exact = [set(np.argsort(-(vectors[:, :-1] @ u + vectors[:, -1]), kind="stable")[:50].tolist()) for u in users]

    def overlap(probes: int) -> tuple[float, EmbeddingIndex]:
        index = EmbeddingIndex(probes=probes)
        index.build(vectors, learned_events=0)
        found = index.search(users, vectors[:, :-1], vectors[:, -1], 50)
        assert all(got.size == 50 and np.unique(got).size == 50 for got in found)
        shares = [len(set(got.tolist()) & want) / 50 for got, want in zip(found, exact, strict=True)]
        return float(np.mean(shares)), index

    eight, index = overlap(8)
    assert index.clusters == 141 and index.items == 20_000
    assert eight >= 0.99, eight                   # README: at least 99 % with 8 probes (99.8 % measured)
    two, _ = overlap(2)
    assert 0.8 <= two <= 0.95, two                # README: 2 probes miss more (87 % measured): the probes matter
    # what a search scores: the members of 8 of 141 clusters, 6 % of the catalogue on average and
    # under 15 % even for the 8 largest
    assert np.sort(np.bincount(index.assign))[-8:].sum() < 20_000 * 0.15


def test_a_build_is_deterministic_and_due_on_growth_or_after_every_events() -> None:
    vectors = clustered(3_000, 8, seed=3)
    a, b = EmbeddingIndex(every=1_000), EmbeddingIndex(every=1_000)
    a.build(vectors, learned_events=500)
    b.build(vectors.copy(), learned_events=500)
    assert np.array_equal(a.assign, b.assign) and np.array_equal(a.centroids, b.centroids)
    assert not a.due(items=3_000, learned_events=1_499)
    assert a.due(items=3_000, learned_events=1_500)          # every 1,000 learned events
    assert a.due(items=6_000, learned_events=600)            # the catalogue doubled
    empty = EmbeddingIndex().search(vectors[:2, :-1], vectors[:, :-1], vectors[:, -1], 5)   # never built
    assert [f.size for f in empty] == [0, 0]


def test_the_model_snapshot_carries_the_index_and_searches_identically_after_restore() -> None:
    ranker, hist = train(planted(4, 2_500), OnlineConfig(batch_size=8, refit_every=200, learn_every=16,
                                                         index_every=500, embedding_candidates=5))
    assert ranker.nearest.items > 0
    restored = OnlineRanker.restore(ranker.snapshot())
    assert np.array_equal(restored.nearest.assign, ranker.nearest.assign)
    assert np.array_equal(restored.nearest.centroids, ranker.nearest.centroids)
    assert restored.nearest.built_at == ranker.nearest.built_at
    contexts = [ranker._context(h, 30) for h in hist.values()]
    users = ranker.embedding.users(contexts, len(ranker.item_ids))
    mine = ranker.nearest.search(users, *ranker.embedding.arrays()[1:], 5)
    theirs = restored.nearest.search(users, *restored.embedding.arrays()[1:], 5)
    assert all(np.array_equal(a, b) for a, b in zip(mine, theirs, strict=True))
    assert all(f.size == 5 for f in mine)
