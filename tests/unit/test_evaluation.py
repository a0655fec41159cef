"""Online evaluation on served lists (operators/model/evaluation.py): what each event's test
says, and the event-time windows that the job's metrics SQL and jobs.evaluate both make."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from operators.model import ModelStep, OnlineConfig, OnlineRanker, UserState
from operators.model.evaluation import (
    Evaluation,
    ab_tests,
    catalogue_auc,
    list_quality,
    two_proportion_z,
    window_totals,
)
from operators.model.online import Interaction
from operators.records import Event


def test_an_event_is_tested_against_the_list_the_user_was_last_served() -> None:
    step = ModelStep(OnlineRanker(OnlineConfig(learn_every=1)), k=3)
    users = {u: UserState() for u in ("a", "b")}
    results = [step.process(Event(f"e{n}", user, item, "click", None, 1000 * n), users[user], window=None)
               for n, (user, item) in enumerate([("a", "x"), ("a", "y"), ("b", "x"), ("b", "z"), ("a", "x")])]
    ranks = [r.evaluation.rank if r.evaluation else "none" for r in results]
    # a's lists were empty (the model knew only what a had seen); b was served ("y",) after x
    assert [r.item_id for r in results[2].recommendations] == ["y"]
    assert ranks == [None, None, None, -1, None]
    assert users["a"].served == tuple(r.item_id for r in results[4].recommendations) == ("z",)
    served = step.process(Event("e5", "a", "z", "click", None, 5000), users["a"], window=None)
    assert served.evaluation is not None and served.evaluation.rank == 0
    d = served.evaluation.as_dict()
    assert (d["tested"], d["hit"], d["ndcg"], d["rr"]) == (1, 1, 1.0, 1.0)
    assert d["lagged"] == 1 and d["model_lag_ms"] == 5000 - 4000      # the model holds up to e4


def test_first_event_of_a_user_is_not_tested() -> None:
    step = ModelStep(OnlineRanker(), k=3)
    result = step.process(Event("e", "u", "x", "view", None, 1), UserState(), window=None)
    assert result.evaluation is not None and result.evaluation.as_dict()["tested"] == 0
    assert step.process(Event("e", "u", "x", "view", None, 1), UserState(), window=None,
                        recommend=False).evaluation is None      # no list served: nothing to evaluate


@pytest.mark.parametrize(("rank", "ndcg", "rr"), [(0, 1.0, 1.0), (2, 0.5, 1 / 3), (-1, 0.0, 0.0)])
def test_ranking_terms(rank: int, ndcg: float, rr: float) -> None:
    served = ("a", "b", "c", "d")
    item = served[rank] if rank >= 0 else "zz"
    d = Evaluation.of(served, item, (None, None), None).as_dict()
    assert d["rank"] == rank and d["hit"] == int(rank >= 0)
    assert d["ndcg"] == pytest.approx(ndcg) and d["rr"] == pytest.approx(rr)


def test_list_quality_is_one_minus_mean_pairwise_similarity_and_mean_self_information() -> None:
    sim = np.array([[1.0, 0.2, 0.4], [0.2, 1.0, 0.6], [0.4, 0.6, 1.0]])
    counts = np.array([2.0, 4.0, 0.0])
    diversity, novelty = list_quality(np.array([0, 1, 2]), counts, 8.0, lambda idx: sim[np.ix_(idx, idx)])
    assert diversity == pytest.approx(1 - 0.4, abs=1e-4)
    assert novelty == pytest.approx(np.mean([2.0, 1.0, 3.0]), abs=1e-4)    # an unseen item counts once
    assert list_quality(np.array([], dtype=np.int64), counts, 8.0, lambda idx: sim) == (None, None)


def test_windows_equal_a_brute_force_count() -> None:
    rng = random.Random(3)
    rows = []
    for n in range(400):
        hit = rng.random() < 0.3
        ranked = rng.random() < 0.25
        served = rng.sample([f"i{j}" for j in range(60)], 3)
        rows.append((rng.choice(["a", "b"]), rng.randrange(0, 50_000), {
            "tested": 1, "hit": int(hit), "ndcg": 0.5 if hit else 0.0, "rr": 0.25 if hit else 0.0, "listed": 1,
            "diversity": 0.5, "novelty": 3.0, "lagged": 1, "model_lag_ms": n, "ranked": int(ranked),
            "auc": rng.random() if ranked else 0.0, "catalogue": 100 + n, "timed": 0, "latency_ms": 0}, served))
    size, slide = 10_000, 2_500
    windows = window_totals(rows, size, slide, "sliding", closed_by=40_000)
    assert windows and all(w["window_end"] - 1 <= 40_000 for w in windows)
    for w in windows:
        inside = [(e, items) for v, ts, e, items in rows
                  if v == w["variant"] and w["window_start"] <= ts < w["window_end"]]
        assert w["events"] == w["tested"] == len(inside)
        assert w["hits"] == sum(e["hit"] for e, _ in inside)
        assert w["model_lag_ms_sum"] == sum(e["model_lag_ms"] for e, _ in inside)
        assert w["recall_at_k"] == pytest.approx(w["hits"] / len(inside))
        assert w["ranked"] == sum(e["ranked"] for e, _ in inside)
        if w["ranked"]:
            assert w["auc"] == pytest.approx(sum(e["auc"] for e, _ in inside) / w["ranked"])
        distinct = {i for _, items in inside for i in items}
        catalogue = max(e["catalogue"] for e, _ in inside)
        assert (w["items_served"], w["catalogue"]) == (len(distinct), catalogue)
        assert w["coverage"] == pytest.approx(len(distinct) / catalogue)
    starts = {w["window_start"] for w in windows}
    assert starts == set(range(-7_500, 32_500, slide))      # every window whose end is closed, from the first


@pytest.mark.parametrize(("rank", "candidates", "negatives", "auc"),
                         [(0, 10, 99, 1.0), (9, 10, 99, 90 / 99), (-1, 10, 99, 0.5 * 89 / 99), (-1, 0, 5, 0.5),
                          (0, 1, 0, None)])
def test_catalogue_auc_counts_the_negatives_ranked_below_and_half_the_unscored(
        rank: int, candidates: int, negatives: int, auc: float | None) -> None:
    assert catalogue_auc(rank, candidates, negatives) == (pytest.approx(auc) if auc is not None else None)


def test_the_auc_of_a_test_is_the_share_of_every_other_eligible_item_scored_below() -> None:
    """Brute force over the whole catalogue: score every item the user may get with the
    model's own fused score (an item that is no candidate: below every candidate), and count."""
    rng = random.Random(5)
    ranker = OnlineRanker(OnlineConfig(learn_every=1))
    items = [f"i{j}" for j in range(40)]
    for n in range(600):
        ranker.learn([Interaction(Event(f"e{n}", f"u{n % 30}", rng.choice(items[: 5 + n % 36]), "view", None, n),
                                  tuple(rng.sample(items[:20], 3)))])
    aucs = []
    for n in range(40):
        history = rng.sample(items[:25], 4)
        target = rng.choice([i for i in items if i not in history])
        test = ranker.observe(history, set(history), target)
        assert test.auc is not None
        excluded = ranker.indices(set(history))
        scored = ranker.candidates([ranker._context(history, ranker.config.history)], [excluded])
        total = ranker._fuse(scored)[1]
        score = dict.fromkeys(range(len(ranker.item_ids)), -np.inf)     # not a candidate: below every candidate
        score.update({int(i): float(v) for i, v in zip(scored.cand.item, total, strict=True)})
        mine = score[ranker.index[target]]
        others = [v for i, v in score.items() if i != ranker.index[target] and i not in set(excluded.tolist())]
        below = sum(v < mine for v in others) + 0.5 * sum(v == mine for v in others)
        assert test.auc == pytest.approx(below / len(others)), n
        aucs.append(test.auc)
    assert 0.6 < float(np.mean(aucs)) < 1.0       # the learned model ranks the next item well above chance


def test_ab_records_test_each_variant_against_the_control_in_every_window_with_events() -> None:
    def window(variant: str, start: int, tested: int, hits: int) -> dict[str, object]:
        return {"kind": "tumble", "variant": variant, "window_start": start, "window_end": start + 10,
                "tested": tested, "hits": hits}

    windows = [window("c", 0, 200, 20), window("t", 0, 200, 40), window("c", 10, 50, 5), window("t", 20, 30, 3),
               window("c", 30, 40, 0), window("t", 30, 40, 0)]
    records = {r["window_start"]: r for r in ab_tests(windows, ["c", "t"])}
    assert sorted(records) == [0, 10, 20, 30]
    z, p = two_proportion_z(40, 200, 20, 200) or (0, 0)
    assert (records[0]["z"], records[0]["p_value"]) == (z, p) and z > 2 and p < 0.01
    pooled = 60 / 400
    assert z == pytest.approx((0.2 - 0.1) / math.sqrt(pooled * (1 - pooled) * (2 / 200)))
    assert p == pytest.approx(math.erfc(z / math.sqrt(2)))
    # a side without tests, or no hit anywhere: no test to make
    assert all(records[s]["z"] is None and records[s]["p_value"] is None for s in (10, 20, 30))
    assert (records[10]["tested"], records[10]["control_tested"], records[10]["recall_at_k"]) == (0, 50, None)
