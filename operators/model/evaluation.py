"""Online evaluation in the stream (DESIGN.md §6, README "Online evaluation"): test, then learn,
on the lists the job actually served.

For each event the model stage asks, before it learns the event: was the event's item in the
top-k this user was last served (the list the job emitted for the user's previous event, kept
in the user's keyed state)? Its position gives the hit, NDCG@k and reciprocal rank; the list
served for the event itself gives intra-list diversity and novelty; the model's event-time lag
is how far the event's time is ahead of the newest event the model has learned. Each output
record carries these as its ``evaluation`` (``Evaluation.as_dict``); Flink SQL sums them per
variant over event-time windows into the metrics topic (operators/model/metrics_sql.py), and
``window_totals`` makes the same sums offline (jobs.evaluate --metrics-out), so the job's
windows and the offline replay's can be compared number for number.

>>> e = Evaluation.of(("a", "b", "c"), "b", (None, None), None)
>>> e.as_dict()["hit"], round(e.as_dict()["ndcg"], 4), e.as_dict()["rr"]
(1, 0.6309, 0.5)
>>> Evaluation.of((), "b", (None, None), None).as_dict()["tested"]
0
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# Sums over a window; the metrics topic carries them with the ratios made from them, so that
# windows of several subtasks or variants can be added up again.
SUMS = ("events", "tested", "hits", "ndcg_sum", "rr_sum", "lists", "diversity_sum", "novelty_sum",
        "lagged", "model_lag_ms_sum")


@dataclass(frozen=True)
class Evaluation:
    rank: int | None              # the item's 0-based position in the list last served; -1 absent; None: no list
    diversity: float | None       # of the list served for this event: 1 - mean pairwise similarity (None: < 2 items)
    novelty: float | None         # its mean self-information, -log2(popularity share), in bits (None: empty list)
    model_lag_ms: int | None      # event time minus the newest learned event's time (None: nothing learned)

    @classmethod
    def of(cls, served: Sequence[str], item_id: str, quality: tuple[float | None, float | None],
           model_lag_ms: int | None) -> Evaluation:
        """``served``: the list the user was last served (empty: none); ``quality``: the
        (diversity, novelty) of the list served now (``list_quality``)."""
        rank = None
        if served:
            rank = served.index(item_id) if item_id in served else -1
        return cls(rank, *quality, model_lag_ms)

    @property
    def served(self) -> int:
        """The test as the health guard counts it: 1 hit, 0 miss, -1 (health.UNTESTED) no list."""
        return -1 if self.rank is None else int(self.rank >= 0)

    def as_dict(self) -> dict[str, Any]:
        """The output record's ``evaluation``: every field the metrics SQL sums, always present."""
        tested = self.rank is not None
        hit = self.rank is not None and self.rank >= 0
        rank = self.rank if self.rank is not None else -1
        return {"tested": int(tested), "hit": int(hit), "rank": self.rank,
                "ndcg": 1.0 / math.log2(rank + 2) if hit else 0.0, "rr": 1.0 / (rank + 1) if hit else 0.0,
                "listed": int(self.novelty is not None),
                "diversity": float(self.diversity) if self.diversity is not None else 0.0,
                "novelty": float(self.novelty) if self.novelty is not None else 0.0,
                "lagged": int(self.model_lag_ms is not None),
                "model_lag_ms": int(self.model_lag_ms) if self.model_lag_ms is not None else 0}


NOT_EVALUATED = Evaluation(None, None, None, None)     # an event answered without a list (never in the job)


def list_quality(indices: np.ndarray, counts: np.ndarray, total: float,
                 similarity: Any) -> tuple[float | None, float | None]:
    """(diversity, novelty) of one list of item indices: 1 - the mean pairwise ``similarity``
    (items x items -> matrix in [0, 1]), and the mean -log2 of each item's share of ``total``
    interactions (an item with no count yet counts as one).

    >>> list_quality(np.array([0, 1]), np.array([1.0, 3.0]), 4.0, lambda i: np.array([[1, .5], [.5, 1]]))
    (0.5, 1.2075)
    """
    if not indices.size:
        return None, None
    shares = np.maximum(counts[indices], 1.0) / max(total, 1.0)
    novelty = round(float(np.mean(-np.log2(shares))), 4)
    if indices.size < 2:
        return None, novelty
    sim = np.asarray(similarity(indices), dtype=float)
    n = indices.size
    mean_pair = (sim.sum() - np.trace(sim)) / (n * (n - 1))
    return round(1.0 - float(mean_pair), 4), novelty


def _row(evaluation: dict[str, Any]) -> dict[str, float]:
    e = evaluation
    return {"events": 1, "tested": e["tested"], "hits": e["hit"], "ndcg_sum": e["ndcg"], "rr_sum": e["rr"],
            "lists": e["listed"], "diversity_sum": e["diversity"], "novelty_sum": e["novelty"],
            "lagged": e["lagged"], "model_lag_ms_sum": e["model_lag_ms"]}


def ratios(sums: dict[str, float]) -> dict[str, float | None]:
    """The window's rates from its sums (None where nothing was measured)."""
    def per(num: str, den: str) -> float | None:
        return sums[num] / sums[den] if sums[den] else None

    return {"recall_at_k": per("hits", "tested"), "ndcg_at_k": per("ndcg_sum", "tested"),
            "mrr": per("rr_sum", "tested"), "diversity": per("diversity_sum", "lists"),
            "novelty": per("novelty_sum", "lists"), "model_lag_ms": per("model_lag_ms_sum", "lagged")}


def window_totals(records: Iterable[tuple[str, int, dict[str, Any]]], size_ms: int, slide_ms: int | None = None,
                  kind: str = "tumble", closed_by: int | None = None) -> list[dict[str, Any]]:
    """Sum (variant, event ts, evaluation) per variant over event-time windows of ``size_ms``
    sliding by ``slide_ms`` (tumbling when None), aligned to the epoch, as the metrics SQL
    does; only windows whose last millisecond is at or before ``closed_by`` (a watermark), when
    given. Records in the metrics topic's schema, sorted by (variant, window_start).

    >>> ev = {"tested": 1, "hit": 1, "ndcg": 1.0, "rr": 1.0, "listed": 0, "diversity": 0.0,
    ...       "novelty": 0.0, "lagged": 0, "model_lag_ms": 0}
    >>> [(w["window_start"], w["events"], w["recall_at_k"]) for w in window_totals([("v", 5, ev), ("v", 12, ev)], 10)]
    [(0, 1, 1.0), (10, 1, 1.0)]
    >>> [(w["window_start"], w["events"]) for w in window_totals([("v", 5, ev)], 10, 5, "hop")]
    [(0, 1), (5, 1)]
    """
    slide = slide_ms or size_ms
    totals: dict[tuple[str, int], dict[str, float]] = defaultdict(lambda: dict.fromkeys(SUMS, 0))
    for variant, ts, evaluation in records:
        row = _row(evaluation)
        last_start = ts - ts % slide
        for start in range(last_start, ts - size_ms, -slide):
            sums = totals[(variant, start)]
            for name, value in row.items():
                sums[name] += value
    out = []
    for (variant, start), sums in sorted(totals.items()):
        if closed_by is not None and start + size_ms - 1 > closed_by:
            continue
        out.append({"kind": kind, "variant": variant, "window_start": start, "window_end": start + size_ms,
                    **sums, **ratios(sums)})
    return out
