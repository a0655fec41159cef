"""Bounded neighbours and the candidate stage: what they keep, what they sum, what they cost."""

from __future__ import annotations

import io
import random
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from operators.model import Interaction, OnlineConfig, OnlineRanker
from operators.model.candidates import Candidates, Slots
from operators.model.neighbours import EMPTY, ItemNeighbours
from operators.model.online import COMPONENTS, Scored
from operators.records import Event, Recommendation


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


def _gather_case(seed: int) -> tuple:
    rnd = np.random.default_rng(seed)
    width, n, requests = 6, 40, 5
    ids = rnd.integers(0, n, (12, width))
    ids[rnd.random(ids.shape) < 0.3] = EMPTY
    for row in ids:                          # a neighbour row holds an item once
        seen: set[int] = set()
        for j, i in enumerate(row):
            if i in seen:
                row[j] = EMPTY
            seen.add(int(i))
    values = rnd.random(ids.shape)
    owner = np.repeat(np.arange(requests), 3)
    rows = rnd.integers(0, 12, owner.size)
    weight = rnd.random(owner.size)
    shared = np.array([0, 1])
    own = [rnd.integers(0, n, 2) for _ in range(requests)]
    excluded = [rnd.integers(0, n, 4) for _ in range(requests)]
    return ids, values, owner, rows, weight, shared, own, excluded, n


def test_gather_sums_the_evidence_of_every_history_item_and_drops_excluded() -> None:
    ids, values, owner, rows, weight, shared, own, excluded, n = _gather_case(2)
    cand = Candidates.gather(Slots(), owner, rows, weight, ids, values, shared, own, excluded, n, sources=True)
    for r in range(len(own)):
        want: dict[int, float] = {}
        strongest: dict[int, tuple[float, int]] = {}
        for e in np.flatnonzero(owner == r):
            for j, v in zip(ids[rows[e]], values[rows[e]], strict=True):
                if j != EMPTY:
                    want[int(j)] = want.get(int(j), 0.0) + weight[e] * v
                    if weight[e] * v > strongest.get(int(j), (0.0, -1))[0]:
                        strongest[int(j)] = (weight[e] * v, int(e))
        first = dict(zip(ids[rows[owner == r][0]].tolist(), values[rows[owner == r][0]].tolist(), strict=True))
        for j in [*shared, *own[r]]:
            want.setdefault(int(j), 0.0)
        for j in excluded[r]:
            want.pop(int(j), None)
        lo, hi = cand.starts[r], cand.starts[r + 1]
        got = dict(zip(cand.item[lo:hi].tolist(), cand.cooc[lo:hi].tolist(), strict=True))
        assert got.keys() == want.keys()
        assert all(abs(got[j] - want[j]) <= 1e-12 * max(1.0, want[j]) for j in want)
        assert (cand.request[lo:hi] == r).all()
        for j, f, src in zip(cand.item[lo:hi].tolist(), cand.first_cooc[lo:hi].tolist(),
                             cand.source[lo:hi].tolist(), strict=True):
            assert f == first.get(j, 0.0)
            assert src == strongest.get(j, (0.0, -1))[1]


def test_gather_keeps_the_best_co_occurrence_and_every_other_proposal() -> None:
    ids, values, owner, rows, weight, shared, own, excluded, n = _gather_case(3)
    everything = Candidates.gather(Slots(), owner, rows, weight, ids, values, shared, own, excluded, n)
    best = Candidates.gather(Slots(), owner, rows, weight, ids, values, shared, own, excluded, n, best=3)
    for r in range(len(own)):
        lo, hi = everything.starts[r], everything.starts[r + 1]
        items, cooc = everything.item[lo:hi], everything.cooc[lo:hi]
        proposed = set(shared.tolist()) | set(own[r].tolist())
        order = sorted(zip(-cooc, items.tolist(), strict=True))
        want = {j for _, j in order[:3]} | (proposed & set(items.tolist()))
        kept = best.item[best.starts[r]: best.starts[r + 1]]
        assert set(kept.tolist()) == want and len(kept) == len(want)
        assert dict(zip(kept.tolist(), best.cooc[best.starts[r]: best.starts[r + 1]].tolist(), strict=True)) == {
            j: c for j, c in zip(items.tolist(), cooc.tolist(), strict=True) if j in want}


def test_candidates_per_request_are_bounded_whatever_the_catalogue() -> None:
    config = OnlineConfig(neighbours=16, knn_history=5, history=5, cooc_candidates=30, regression_candidates=10,
                          trending_candidates=10, embedding_candidates=10, learn_every=64, batch_size=64,
                          refit_every=1_000)
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
    scored = ranker.candidates(contexts, [ranker.indices(h) for h in history.values()])
    cand, raw = scored.cand, scored.raw
    per_request = np.diff(cand.starts)
    bound = (config.cooc_candidates + config.regression_candidates + config.trending_candidates
             + config.embedding_candidates)
    assert per_request.max() <= bound < len(ranker.item_ids) / 10
    assert raw.shape == (len(cand), 4) and np.isfinite(raw).all() and np.isfinite(scored.features).all()


def test_the_learned_ranker_finds_the_feature_that_predicts_the_next_item() -> None:
    # Each request: 30 candidates; the positive is the one with the highest "last item"
    # evidence, while the summed co-occurrence score is noise.
    from operators.model.ranker import FEATURES, LearnedRanker

    rnd = np.random.default_rng(4)
    col = FEATURES.index("co_occurrence last item")

    def batch(requests: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = rnd.random((requests * 30, len(FEATURES)))
        starts = np.arange(0, requests * 30 + 1, 30)
        targets = starts[:-1] + np.argmax(x[:, col].reshape(requests, 30), axis=1)
        return x, starts, targets

    ranker = LearnedRanker(seed=3, lr=0.05)
    x, starts, targets = batch(200)
    before = (np.argmax(ranker.score(x).reshape(200, 30), axis=1) + starts[:-1] == targets).mean()
    for _ in range(1_000):
        ranker.learn(*batch(16))
    after = (np.argmax(ranker.score(x).reshape(200, 30), axis=1) + starts[:-1] == targets).mean()
    assert before < 0.1 and after > 0.8          # chance is 1 in 30
    weights = ranker.report()
    assert max(weights, key=lambda f: abs(weights[f])) == "co_occurrence last item"


def test_the_learned_ranker_uses_session_depth_to_choose_between_signals() -> None:
    # Users just back (session depth 0) take the most trending candidate; users deep in a
    # session take the one closest to their last item. Only the session crosses can tell.
    from operators.model.ranker import CONTEXT, FEATURES, LearnedRanker, ranker_features

    rnd = np.random.default_rng(8)

    def batch(requests: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows = requests * 20
        norm, last = rnd.random((rows, 4)), rnd.random(rows)
        depth = np.repeat(rnd.integers(0, 2, requests).astype(float), 20)
        context = np.zeros((rows, len(CONTEXT)))
        context[:, CONTEXT.index("session")] = depth
        x = ranker_features(norm, last, np.ones(rows), np.zeros(rows), np.zeros(rows), np.ones(rows),
                            np.zeros(rows), np.full(rows, 0.5), context)
        signal = np.where(depth > 0, last, norm[:, 3]).reshape(requests, 20)
        starts = np.arange(0, rows + 1, 20)
        return x, starts, starts[:-1] + np.argmax(signal, axis=1)

    ranker = LearnedRanker(seed=3, lr=0.05)
    for _ in range(800):
        ranker.learn(*batch(16))
    x, starts, targets = batch(300)
    assert (np.argmax(ranker.score(x).reshape(300, 20), axis=1) + starts[:-1] == targets).mean() > 0.7
    weights = ranker.report()
    assert weights["co_occurrence last item x session"] > 0 > weights["trending x session"]
    assert x.shape[1] == len(FEATURES)


def _clustered_ranker(events: int = 3_000) -> tuple[OnlineRanker, dict[str, list[str]]]:
    ranker = OnlineRanker(OnlineConfig(learn_every=32, batch_size=32, refit_every=500))
    rnd = random.Random(6)
    history: dict[str, list[str]] = {}
    for n in range(events):
        user = f"u{rnd.randrange(100)}"
        item = f"i{(int(user[1:]) % 5) * 100 + rnd.randrange(40)}"   # clusters of 40: some unseen
        h = history.setdefault(user, [])
        ranker.learn([Interaction(Event(f"e{n}", user, item, "click", None, n), tuple(h))])
        h.append(item)
    return ranker, history


def _served_lists(ranker: OnlineRanker, history: dict[str, list[str]]) -> Iterator[tuple[list[Recommendation], Scored]]:
    """The top-5 of the first 20 users, each with the candidates it was chosen from."""
    for user in sorted(history)[:20]:
        h = history[user]
        idx, rho = ranker._context(h, ranker.config.history)
        yield ranker.recommend(h, 5), ranker.candidates([(idx, rho)], [ranker.indices(h)])


def test_when_the_learned_ranker_leads_it_orders_the_lists_and_names_the_reasons() -> None:
    from operators.model.ranker import FEATURES, GENERATOR_OF

    ranker, history = _clustered_ranker()
    ranker.fusion.chosen_hits, ranker.fusion.blend_hits[-1], ranker.fusion.stacked_hits = 0.1, 0.2, 0.0
    assert ranker.fusion.leader == "learned"
    named = 0
    for recs, scored in _served_lists(ranker, history):
        scores = ranker.learned.score(scored.features)
        parts = ranker.learned.contributions(scored.features)
        best = np.argsort(-scores, kind="stable")[:5]
        assert [r.item_id for r in recs] == [ranker.item_ids[int(scored.cand.item[b])] for b in best]
        for rec, row in zip(recs, best, strict=True):
            by_generator: dict[str, float] = {}
            for f, part in zip(GENERATOR_OF, parts[row], strict=True):
                by_generator[GENERATOR_OF[f]] = by_generator.get(GENERATOR_OF[f], 0.0) + part
            strongest = max(by_generator, key=lambda g: by_generator[g])
            assert rec.reason == (strongest if by_generator[strongest] > 0 else "trending")
            added = sorted((-p, n) for n, p in enumerate(parts[row]) if p > 0)[:2]
            assert rec.features == tuple(FEATURES[n] for _, n in added)
            named += len(rec.features) == 2
    assert named >= 20


def test_when_the_stacked_scorer_leads_each_scorer_counts_in_units_of_its_own_spread() -> None:
    ranker, history = _clustered_ranker()
    ranker.fusion.chosen_hits, ranker.fusion.blend_hits[-1], ranker.fusion.stacked_hits = 0.1, 0.2, 0.3
    assert ranker.fusion.leader == "stacked" and ranker.fusion.learned
    differs = 0
    for recs, scored in _served_lists(ranker, history):
        learned = ranker.learned.score(scored.features)
        blend = scored.norm @ ranker.fusion.weights
        stacked = learned / max(float(learned.std()), 1e-12) + blend / max(float(blend.std()), 1e-12)
        best = np.argsort(-stacked, kind="stable")[:5]
        assert [r.item_id for r in recs] == [ranker.item_ids[int(scored.cand.item[b])] for b in best]
        assert [r.score for r in recs] == pytest.approx(stacked[best].tolist(), abs=1e-5)
        differs += list(best) != list(np.argsort(-learned, kind="stable")[:5])
        assert all(len(r.features) >= 1 for r in recs)        # the ranker's features still name reasons
    assert differs > 0                                        # not the learned ranker's order alone


def test_the_stacked_scorer_is_measured_last_and_older_measurements_leave_it_alone() -> None:
    ranker, history = _clustered_ranker(1_000)
    user = next(u for u in sorted(history) if history[u][-1] not in history[u][:-1])
    fusion = ranker.fusion
    measured = None
    for _ in range(fusion_every := ranker.config.fusion_every):
        test = ranker.observe(history[user][:-1], set(history[user][:-1]), history[user][-1])
        measured = test.hits if test.hits is not None else measured
    assert fusion_every and measured is not None
    assert measured.size == len(fusion.blends) + 2 + len(COMPONENTS)
    before, chosen = fusion.stacked_hits, fusion.chosen_hits
    fusion.apply(np.ones(len(fusion.blends) + 1 + len(COMPONENTS), dtype=bool))     # a record from before it
    assert fusion.stacked_hits == before
    assert fusion.chosen_hits == pytest.approx(chosen + fusion.rate * (1.0 - chosen))
    hits = np.zeros(len(fusion.blends) + 2 + len(COMPONENTS), dtype=bool)
    hits[-1] = True                                           # only the stacked scorer held the item
    hits[(fusion.best_blend + 1) % len(fusion.blends)] = True   # and a blend that does not lead
    blends = fusion.blend_hits.copy()
    fusion.apply(hits)
    assert fusion.stacked_hits == pytest.approx(before + fusion.rate * (1.0 - before))
    assert fusion.chosen_hits < chosen + fusion.rate * (1.0 - chosen)             # the leading blend missed
    assert (fusion.blend_hits[hits[: blends.size]] > blends[hits[: blends.size]]).all()
    fusion.chosen_hits = fusion.blend_hits[-1] = fusion.stacked_hits = 0.2
    assert fusion.leader == "blend"                           # ties go to the blend
    state = ranker._state()
    del state["stacked_hits"], state["chosen_hits"]           # a snapshot from before them
    buffer = io.BytesIO()
    torch.save(state, buffer)
    restored = OnlineRanker.restore(buffer.getvalue()).fusion
    assert restored.stacked_hits == 0.0 and restored.chosen_hits == restored.blend_hits[:-1].max()


def test_an_ablation_hides_its_feature_groups_from_the_ranker() -> None:
    from operators.model.ranker import FEATURE_GROUPS, FEATURES

    def trained(without: tuple[str, ...]) -> OnlineRanker:
        ranker = OnlineRanker(OnlineConfig(learn_every=32, batch_size=32, refit_every=500, ranker_without=without))
        rnd = random.Random(6)
        history: dict[str, list[str]] = {}
        for n in range(1_500):
            user = f"u{rnd.randrange(50)}"
            h = history.setdefault(user, [])
            context = (0.5,) * 7          # a situation: every context feature is non-zero
            ranker.learn([Interaction(Event(f"e{n}", user, f"i{rnd.randrange(60)}", "click", None, n), tuple(h),
                                      context)])
            h.append(f"i{rnd.randrange(60)}")
        return ranker

    hidden = trained(("window", "last_item"))
    columns = [FEATURES.index(f) for g in ("window", "last_item") for f in FEATURE_GROUPS[g]]
    idx, rho = hidden._context(["i1", "i2", "i3"], 30)
    scored = hidden.candidates([(idx, rho)], [idx], situations=[(0.5,) * 7])
    assert len(scored.cand) and not scored.features[:, columns].any()
    init = OnlineRanker(OnlineConfig(ranker_without=("window", "last_item"))).learned.weights
    assert hidden.learned.steps > 0
    assert (hidden.learned.weights[columns] == init[columns]).all()          # never moved: no gradient
    seen = trained(())
    assert (seen.learned.weights[columns] != init[columns]).any()
    try:
        OnlineRanker(OnlineConfig(ranker_without=("windows",)))
    except ValueError as exc:
        assert "unknown ranker feature groups ['windows']" in str(exc)
    else:
        raise AssertionError("an unknown group must be refused")
