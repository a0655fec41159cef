import random

import numpy as np

from operators.model import CooccurrenceRanker, RankerConfig, UserHistory
from operators.model.ranker import top_k_indices
from operators.records import Event, SourcePosition


def ev(n: int, user: str, item: str, kind: str = "click", offset: int = -1) -> Event:
    return Event(f"e{n}", user, item, kind, None, 1_000 * n, SourcePosition(0 if offset >= 0 else -1, offset))


def train(events: list[Event]) -> tuple[CooccurrenceRanker, dict[str, UserHistory]]:
    ranker, users = CooccurrenceRanker(RankerConfig()), {}
    for e in events:
        h = users.setdefault(e.user_id, UserHistory())
        ranker.learn(e, h.recent)
        h.apply(e, max_recent=20)
    return ranker, users


def stream(seed: int, n: int = 400) -> list[Event]:
    rnd = random.Random(seed)
    return [ev(k, f"u{rnd.randrange(30)}", f"i{rnd.randrange(60)}", offset=k) for k in range(n)]


def test_snapshot_restore_gives_identical_recommendations() -> None:
    ranker, users = train(stream(1))
    restored = CooccurrenceRanker.restore(ranker.snapshot())
    for user, h in users.items():
        expected = ranker.recommend(h.recent, 10, 400_000, h.seen)
        assert restored.recommend(h.recent, 10, 400_000, h.seen) == expected, user
    assert restored.positions == ranker.positions and restored.learned_events == ranker.learned_events


def test_same_events_same_model() -> None:
    a, ua = train(stream(2))
    b, ub = train(stream(2))
    assert a.snapshot() == b.snapshot()
    assert all(a.recommend(h.recent, 10, 0, h.seen) == b.recommend(ub[u].recent, 10, 0, ub[u].seen)
               for u, h in ua.items())


def test_seen_items_never_recommended() -> None:
    ranker, users = train(stream(3))
    for h in users.values():
        recs = ranker.recommend(h.recent, 50, 400_000, h.seen)
        assert not {r.item_id for r in recs} & h.seen


def test_k_larger_than_candidates_returns_every_unseen_item() -> None:
    ranker, users = train([ev(1, "a", "x"), ev(2, "a", "y"), ev(3, "b", "z")])
    recs = ranker.recommend(users["b"].recent, 100, 3_000, users["b"].seen)
    assert sorted(r.item_id for r in recs) == ["x", "y"]
    assert ranker.recommend(users["a"].recent + ["z"], 5, 3_000) == []


def test_empty_history_gets_trending_or_popular_items() -> None:
    ranker, _ = train([ev(1, "a", "x"), ev(2, "b", "x"), ev(3, "c", "y")])
    recs = ranker.recommend([], 2, 3_000)
    assert [r.item_id for r in recs] == ["x", "y"]
    assert all(r.reason in ("trending", "popular") for r in recs)


def test_empty_model_recommends_nothing() -> None:
    assert CooccurrenceRanker(RankerConfig()).recommend(["x"], 10, 0) == []


def test_learning_a_pair_raises_the_item_for_users_with_the_other() -> None:
    base = [ev(1, "a", "x"), ev(2, "b", "y"), ev(3, "c", "z"), ev(4, "c", "y")]
    ranker, _ = train(base)
    before = {r.item_id: r.score for r in ranker.recommend(["x"], 10, 10_000)}
    ranker2, _ = train(base + [ev(5, "d", "x"), ev(6, "d", "z")])
    after = ranker2.recommend(["x"], 10, 10_000)
    assert after[0].item_id == "z" and after[0].reason == "co_occurrence:x"
    assert {r.item_id: r.score for r in after}["z"] > before["z"]


def test_replayed_positions_are_not_learned_twice() -> None:
    ranker, _ = train(stream(4, 50))
    snap = ranker.snapshot()
    assert not ranker.learn(ev(10, "u1", "i1", offset=10), [])
    assert ranker.snapshot() == snap
    assert ranker.learn(ev(60, "u1", "i1", offset=60), [])
    assert ranker.learned_events == 51


def test_catalogue_grows_past_initial_capacity() -> None:
    ranker = CooccurrenceRanker(RankerConfig(), capacity=4)
    h = UserHistory()
    for n in range(50):
        e = ev(n, "u", f"i{n}")
        ranker.learn(e, h.recent)
        h.apply(e, 20)
    assert len(ranker.item_ids) == 50
    assert ranker.recommend(["i49"], 3, 50_000, exclude=set())[0].reason.startswith("co_occurrence")


def test_items_beyond_max_items_are_ignored_not_crashing() -> None:
    ranker = CooccurrenceRanker(RankerConfig(max_items=3))
    for n in range(6):
        ranker.learn(ev(n, "u", f"i{n}"), [])
    assert ranker.item_ids == ["i0", "i1", "i2"] and ranker.learned_events == 6


def test_top_k_ties_and_edges() -> None:
    assert top_k_indices(np.array([2.0, 5.0, 5.0, 1.0]), 2) == [1, 2]
    assert top_k_indices(np.array([1.0]), 5) == [0]
    assert top_k_indices(np.array([]), 3) == []
    assert top_k_indices(np.array([1.0, 2.0]), 0) == []


def test_planted_structure_beats_popularity() -> None:
    """Two taste groups; co-occurrence should recommend within the group, popularity cannot."""
    rnd = random.Random(7)
    groups = {0: [f"a{j}" for j in range(10)], 1: [f"b{j}" for j in range(10)]}
    events = []
    for n in range(600):
        u = rnd.randrange(40)
        events.append(ev(n, f"u{u}", rnd.choice(groups[u % 2])))
    ranker, users = CooccurrenceRanker(RankerConfig(trending_weight=0, popularity_weight=0.05)), {}
    hits = pop_hits = evaluated = 0
    popularity: dict[str, int] = {}
    for e in events:
        h = users.setdefault(e.user_id, UserHistory())
        if h.recent:
            evaluated += 1
            hits += e.item_id in {r.item_id for r in ranker.recommend(h.recent, 3, e.ts, h.seen)}
            top = sorted((i for i in popularity if i not in h.seen), key=lambda i: (-popularity[i], i))[:3]
            pop_hits += e.item_id in top
        ranker.learn(e, h.recent)
        h.apply(e, 20)
        popularity[e.item_id] = popularity.get(e.item_id, 0) + 1
    assert hits > 1.5 * pop_hits, (hits, pop_hits, evaluated)
