"""Contract checks of the online ranker (in the style of River's shared model checks)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from operators.model import Interaction, OnlineConfig, OnlineRanker
from operators.model.baselines import ItemKNN, Popularity
from operators.model.online import COMPONENTS, mmr, top_k_indices
from operators.records import Event

SMALL = OnlineConfig(batch_size=8, refit_every=200, learn_every=16)


def planted(seed: int, n_events: int = 3_000) -> list[tuple[str, str]]:
    """Users belong to one of 4 tastes; each taste has its own 10 items, and 10 "blockbusters"
    are popular with everyone."""
    rnd = random.Random(seed)
    events = []
    for _ in range(n_events):
        u = rnd.randrange(120)
        taste = u % 4
        item = f"b{rnd.randrange(10)}" if rnd.random() < 0.3 else f"t{taste}-{rnd.randrange(10)}"
        events.append((f"u{u}", item))
    return events


def train(events: list[tuple[str, str]], config: OnlineConfig = SMALL) -> tuple[OnlineRanker, dict[str, list[str]]]:
    ranker, hist = OnlineRanker(config), {}
    for n, (u, i) in enumerate(events):
        h = hist.setdefault(u, [])
        ranker.learn([Interaction(Event(f"e{n}", u, i, "click", None, 1_000 * n), tuple(h))])
        if i in h:
            h.remove(i)
        h.append(i)
    ranker.flush()
    return ranker, hist


def test_snapshot_then_restore_gives_identical_recommendations_and_learning() -> None:
    events = planted(1)
    ranker, hist = train(events[:2_000])
    restored = OnlineRanker.restore(ranker.snapshot())
    for user, h in list(hist.items())[:30]:
        assert restored.recommend(h, 10) == ranker.recommend(h, 10), user
    more = [Interaction(Event(f"x{n}", u, i, "view", None, 10**7 + n), tuple(hist.get(u, [])))
            for n, (u, i) in enumerate(events[2_000:2_300])]
    ranker.learn(more)
    restored.learn(more)
    for user, h in list(hist.items())[:30]:
        assert restored.recommend(h, 10) == ranker.recommend(h, 10), user
    assert restored.learned_events == ranker.learned_events


def test_same_seed_same_model_and_output() -> None:
    a, ha = train(planted(2))
    b, _ = train(planted(2))
    assert torch_equal(a, b)
    assert [a.recommend(h, 10) for h in ha.values()] == [b.recommend(h, 10) for h in ha.values()]


def torch_equal(a: OnlineRanker, b: OnlineRanker) -> bool:
    return (a.item_ids == b.item_ids and bool((a.embedding.inp == b.embedding.inp).all())
            and np.array_equal(a.cooc.neighbours.ids, b.cooc.neighbours.ids)
            and np.array_equal(a.cooc.neighbours.counts, b.cooc.neighbours.counts)
            and np.array_equal(a.regression.weights, b.regression.weights))


def test_learning_a_pair_raises_the_item_for_users_with_the_other() -> None:
    ranker, _ = train([("u1", "x"), ("u2", "y"), ("u3", "z")])
    before = {r.item_id: r.score for r in ranker.recommend(["x"], 10)}
    ranker.learn([Interaction(Event("n1", "u9", "y", "click", None, 10**6), ("x",))])
    assert {r.item_id: r.score for r in ranker.recommend(["x"], 10)} == before    # pending: not learned yet
    ranker.flush()
    after = {r.item_id: r.score for r in ranker.recommend(["x"], 10)}
    assert after["y"] > before["y"]
    assert ranker.recommend(["x"], 1)[0].item_id == "y"


def test_seen_items_never_recommended_and_k_beyond_candidates() -> None:
    ranker, hist = train(planted(3))
    for h in list(hist.values())[:40]:
        recs = ranker.recommend(h, 10, exclude=set(h))
        assert not {r.item_id for r in recs} & set(h)
    everything = set(ranker.item_ids)
    keep = sorted(everything)[:3]
    recs = ranker.recommend(keep, 500, exclude=everything - set(keep[:0]) - {"b0", "b1"})
    assert sorted(r.item_id for r in recs) == ["b0", "b1"]
    assert ranker.recommend(keep, 5, exclude=everything) == []


def test_empty_history_gets_trending_items() -> None:
    ranker, _ = train(planted(4))
    recs = ranker.recommend([], 5)
    assert len(recs) == 5 and all(r.reason == "trending" and r.related_item is None for r in recs)
    assert {r.item_id for r in recs} <= {f"b{k}" for k in range(10)}      # the blockbusters


def test_a_new_item_is_recommended_once_it_co_occurs_or_trends() -> None:
    ranker, _ = train(planted(5))
    assert "brand-new" not in [r.item_id for r in ranker.recommend([], 3)]
    for n in range(40):
        ranker.learn([Interaction(Event(f"new{n}", f"v{n}", "brand-new", "purchase", None, 10**8 + n), ("t1-3",))])
    ranker.flush()
    assert ranker.recommend([], 1)[0].item_id == "brand-new"          # it trends
    ranked = [r.item_id for r in ranker.recommend(["t1-3"], 30)]
    assert ranked.index("brand-new") < min(ranked.index(i) for i in ranked if i.startswith("t2-"))


def test_every_item_has_a_reason_and_related_items_come_from_the_history() -> None:
    ranker, hist = train(planted(6))
    ranker.titles = {i: f"Title of {i}" for i in ranker.item_ids}
    for h in list(hist.values())[:20]:
        for r in ranker.recommend(h, 10):
            assert r.reason in COMPONENTS
            if r.related_item is not None:
                assert r.related_item in h and r.related_title == f"Title of {r.related_item}"


def test_the_model_beats_popularity_clearly_on_planted_structure() -> None:
    events = planted(7, 6_000)
    ranker, pop = OnlineRanker(SMALL), Popularity()
    hist: dict[str, list[str]] = {}
    hits = {"model": 0, "pop": 0}
    tests = 0
    for n, (u, i) in enumerate(events):
        h = hist.setdefault(u, [])
        rank = ranker.observe(h, set(h), i).rank
        pop_rank = pop.observe(u, i)
        if rank is not None and n > 1_000:
            tests += 1
            hits["model"] += rank >= 0
            hits["pop"] += pop_rank is not None and pop_rank >= 0
        ranker.learn([Interaction(Event(f"e{n}", u, i, "click", None, 1_000 * n), tuple(h))])
        pop.learn(u, i)
        if i in h:
            h.remove(i)
        h.append(i)
    assert hits["model"] / tests > 1.5 * hits["pop"] / tests, (hits, tests)


def test_mmr_trades_relevance_for_diversity() -> None:
    ranker, hist = train(planted(8))
    h = list(hist.values())[0]
    plain = ranker.recommend(h, 10)
    diverse_ranker = OnlineRanker.restore(ranker.snapshot(), OnlineConfig(**{**SMALL.__dict__, "mmr_lambda": 0.3}))
    diverse = diverse_ranker.recommend(h, 10)

    def similarity(recs: list) -> float:
        idx = np.array([ranker.index[r.item_id] for r in recs])
        sim = ranker.cooc.similarity(idx, ranker.counts)
        return float(sim[np.triu_indices(len(idx), 1)].mean())

    assert similarity(diverse) < similarity(plain)
    assert len(diverse) == 10 and not {r.item_id for r in diverse} & set(h)


def test_top_k_and_mmr_edge_cases() -> None:
    assert top_k_indices(np.array([]), 3) == []
    assert top_k_indices(np.array([0.0, 0.0, 0.0]), 2) == [0, 1]
    assert top_k_indices(np.array([1.0, -np.inf, 2.0]), 5) == [2, 0]
    assert mmr(np.array([1.0, 0.5]), np.eye(2), 5, 0.5) == [0, 1]


def test_restore_refuses_a_foreign_snapshot() -> None:
    import io

    import torch

    buf = io.BytesIO()
    torch.save({"format": 1}, buf)
    with pytest.raises(ValueError):
        OnlineRanker.restore(buf.getvalue())


def test_item_knn_baseline_recommends_co_occurring_items() -> None:
    b = ItemKNN()
    for u, i in [("a", "x"), ("a", "y"), ("c", "x"), ("c", "y"), ("d", "z")]:
        b.learn(u, i)
    b.learn("b", "x")
    assert b.observe("b", "y") == 0 and b.observe("new", "y") is None


def test_evaluate_command_prints_a_json_summary_and_refuses_bad_input(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    t = 1_700_000_000_000
    lines = [json.dumps({"event_id": f"e{n}", "user_id": u, "item_id": i, "event_type": "click", "value": None,
                         "ts": t + 1_000 * n}) for n, (u, i) in enumerate(planted(9, 600))]
    log.write_text("\n".join(lines) + "\nnot json\n")
    run = subprocess.run([sys.executable, "-m", "jobs.evaluate", "--input", str(log), "--format", "jsonl",
                          "--baselines", "--plot", str(tmp_path / "p.png")], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert summary["events"] == 601 and summary["rejected"] == {"not_json": 1}
    assert 0 < summary["evaluated"] <= 600 and 0 <= summary["ndcg_at_10"] <= summary["recall_at_10"] <= 1
    assert summary["events_per_sec"] > 0 and set(summary["baselines"]) == {"popularity", "item_knn"}
    assert (tmp_path / "p.png").stat().st_size > 0
    bad = subprocess.run([sys.executable, "-m", "jobs.evaluate", "--input", str(tmp_path / "missing"),
                          "--format", "jsonl"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "cannot read" in bad.stderr


def test_each_explanation_names_the_strongest_part_and_the_recent_item_behind_it() -> None:
    # The reasons are computed for the whole list at once; here, item by item, from the parts.
    ranker, histories = train(planted(5, 2_000))
    checked = 0
    for history in list(histories.values())[:40]:
        recs = ranker.recommend(history, 10)
        idx, rho = ranker._context(history, ranker.config.history)
        scored = ranker.candidates([(idx, rho)], [ranker.indices(history)])
        cand, (weighted, _) = scored.cand, ranker._fuse(scored)
        for rec in recs:
            j = ranker.index[rec.item_id]
            parts = weighted[int(np.flatnonzero(cand.item == j)[0])]
            component = COMPONENTS[int(np.argmax(parts))] if parts.max() > 0 else "trending"
            assert rec.reason == component
            if component in ("co_occurrence", "regression"):
                if component == "co_occurrence":    # the recent item whose evidence weighs most in the sum
                    short = idx[: ranker.config.knn_history]
                    decay = ranker.config.knn_decay ** np.arange(short.size)
                    weight = decay / np.maximum(ranker.counts[short], 1.0) ** ranker.cooc.alpha
                    contrib = weight * np.array([ranker.cooc.neighbours.row(int(h)).get(j, 0.0) for h in short])
                    idx = short
                else:
                    matrix = ranker.regression.weights
                    contrib = (np.array([matrix[h, j] if max(h, j) < matrix.shape[0] else 0.0 for h in idx])
                               * ranker.config.regression_decay ** np.arange(idx.size))
                want = (ranker.item_ids[int(idx[int(np.argmax(contrib))])]
                        if contrib.size and contrib.max() > 0 else None)
                assert rec.related_item == want
                checked += 1
    assert checked > 100


def test_learning_does_not_depend_on_how_many_threads_torch_may_use() -> None:
    # A replay of the update log may run on a TaskManager with another core count.
    import torch

    before = torch.get_num_threads()
    try:
        models = []
        rnd = random.Random(4)     # a catalogue large enough for torch to split its sums
        events = [(f"u{rnd.randrange(300)}", f"i{int(rnd.paretovariate(0.6)) % 3_000}") for _ in range(1_200)]
        for threads in (1, 2, 4):
            torch.set_num_threads(threads)
            models.append(train(events, OnlineConfig(refit_every=100_000))[0])
    finally:
        torch.set_num_threads(before)
    assert torch_equal(models[0], models[1]) and torch_equal(models[0], models[2])
