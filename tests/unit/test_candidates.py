"""Bounded neighbours and the candidate stage: what they keep, what they sum, what they cost."""

from __future__ import annotations

import random

import numpy as np

from operators.model import Interaction, OnlineConfig, OnlineRanker
from operators.model.candidates import Candidates
from operators.model.neighbours import EMPTY, ItemNeighbours
from operators.records import Event


def test_space_saving_keeps_the_heavy_pairs_and_bounds_their_counts() -> None:
    rnd = random.Random(1)
    nb = ItemNeighbours(width=8)
    true: dict[int, float] = {}
    for _ in range(40):                       # 40 batches: 3 heavy partners and a stream of rare ones
        cols = [1, 2, 3] * 5 + [rnd.randrange(10, 500) for _ in range(30)]
        vals = [1.0] * len(cols)
        for c, v in zip(cols, vals, strict=True):
            true[c] = true.get(c, 0.0) + v
        nb.learn_many(np.zeros(len(cols), dtype=np.int64), np.array(cols), np.array(vals))
    kept = nb.row(0)
    assert len(kept) == 8 and {1, 2, 3} <= set(kept)
    slots = {int(i): s for s, i in enumerate(nb.ids[0])}
    for c in (1, 2, 3):
        lower, upper = kept[c], float(nb.counts[0, slots[c]])
        assert lower <= true[c] <= upper and true[c] == 200.0
    assert nb.ids.shape[1] == 8          # memory per item is the width, whatever the stream


def test_same_batches_give_the_same_arrays_and_decay_halves() -> None:
    def run() -> ItemNeighbours:
        rnd = np.random.default_rng(5)
        nb = ItemNeighbours(width=4, half_life_events=100)
        for _ in range(30):
            rows, cols = rnd.integers(0, 20, 50), rnd.integers(0, 20, 50)
            nb.decay(50)
            nb.learn_many(rows, cols, rnd.random(50))
        return nb

    a, b = run(), run()
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.counts, b.counts)
    before = a.row(3)
    a.decay(100)
    assert all(abs(a.row(3)[j] - v / 2) < 1e-5 * v for j, v in before.items())


def test_gather_sums_the_evidence_of_every_history_item_and_drops_excluded() -> None:
    rnd = np.random.default_rng(2)
    width, n, requests = 6, 40, 5
    ids = rnd.integers(0, n, (12, width))
    ids[rnd.random(ids.shape) < 0.3] = EMPTY
    values = rnd.random(ids.shape)
    owner = np.repeat(np.arange(requests), 3)
    rows = rnd.integers(0, 12, owner.size)
    weight = rnd.random(owner.size)
    shared = np.array([0, 1])
    own = [rnd.integers(0, n, 2) for _ in range(requests)]
    excluded = [rnd.integers(0, n, 4) for _ in range(requests)]
    cand = Candidates.gather(requests, owner, rows, weight, ids, values, shared, own, excluded, n)
    for r in range(requests):
        want: dict[int, float] = {}
        for e in np.flatnonzero(owner == r):
            for j, v in zip(ids[rows[e]], values[rows[e]], strict=True):
                if j != EMPTY:
                    want[int(j)] = want.get(int(j), 0.0) + weight[e] * v
        for j in [*shared, *own[r]]:
            want.setdefault(int(j), 0.0)
        for j in excluded[r]:
            want.pop(int(j), None)
        lo, hi = cand.starts[r], cand.starts[r + 1]
        got = dict(zip(cand.item[lo:hi].tolist(), cand.cooc[lo:hi].tolist(), strict=True))
        assert got.keys() == want.keys()
        assert all(abs(got[j] - want[j]) <= 1e-12 * max(1.0, want[j]) for j in want)
        assert (cand.request[lo:hi] == r).all()


def test_candidates_per_request_are_bounded_whatever_the_catalogue() -> None:
    config = OnlineConfig(neighbours=16, knn_history=5, history=5, regression_candidates=10, trending_candidates=10,
                          learn_every=64, batch_size=64, refit_every=1_000)
    ranker = OnlineRanker(config)
    rnd = random.Random(3)
    history: dict[str, list[str]] = {}
    for n in range(6_000):                   # up to 3,000 items, most of them rare
        user, item = f"u{rnd.randrange(400)}", f"i{rnd.randrange(3_000) if rnd.random() < 0.5 else rnd.randrange(30)}"
        h = history.setdefault(user, [])
        ranker.learn([Interaction(Event(f"e{n}", user, item, "click", None, n), tuple(h))])
        h.append(item)
    assert len(ranker.item_ids) > 1_500
    contexts = [ranker._context(h, config.history) for h in history.values()]
    cand, raw = ranker.candidates(contexts, [ranker._indices(h) for h in history.values()])
    per_request = np.diff(cand.starts)
    bound = config.knn_history * config.neighbours + config.regression_candidates + config.trending_candidates
    assert per_request.max() <= bound < len(ranker.item_ids) / 10
    assert raw.shape == (len(cand), 4) and np.isfinite(raw).all()
