"""Online evaluation in the stream (DESIGN.md §6, README "Online evaluation"): test, then learn,
on the lists the job actually served.

For each event the model stage asks, before it learns the event: was the event's item in the
top-k this user was last served (the list the job emitted for the user's previous event, kept
in the user's keyed state)? Its position gives the hit, NDCG@k and reciprocal rank. On the
events the fusion measures (every ``fusion_every``-th, the job's sample), the model also ranks
the event's item against every other item the user may get, before learning it: the share of
those it scores above is the event's AUC. The list served for the event itself gives
intra-list diversity and novelty, and, summed over a window, catalogue coverage (distinct
items served / items the model knows); the model's event-time lag is how far the event's time
is ahead of the newest event the model has learned. Each output record carries these as its
``evaluation`` (``Evaluation.as_dict``); Flink SQL sums them per variant over event-time
windows into the metrics topic (operators/model/metrics_sql.py), and ``window_totals`` makes
the same sums offline (jobs.evaluate --metrics-out), so the job's windows and the offline
replay's can be compared number for number.

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

# A window's sums, each of one field of the records' evaluations: (sum, field). The metrics
# topic carries them with the rates made from them (RATES), so that windows of several
# subtasks or variants can be added up again.
SUMMED = (("tested", "tested"), ("hits", "hit"), ("ndcg_sum", "ndcg"), ("rr_sum", "rr"), ("lists", "listed"),
          ("diversity_sum", "diversity"), ("novelty_sum", "novelty"), ("lagged", "lagged"),
          ("model_lag_ms_sum", "model_lag_ms"), ("ranked", "ranked"), ("auc_sum", "auc"), ("timed", "timed"),
          ("latency_ms_sum", "latency_ms"))
SUMS = ("events", *(name for name, _ in SUMMED))
# A window's maxima of a field: (maximum, field, the flag of the records that measured it or
# None for all); None where no record measured it.
MAXED = (("catalogue", "catalogue", None), ("latency_ms_max", "latency_ms", "timed"))
MAXED_NAMES = tuple(name for name, _, _ in MAXED)
# A window's rates: (rate, numerator sum, denominator sum); None where the denominator is 0.
RATES = (("recall_at_k", "hits", "tested"), ("ndcg_at_k", "ndcg_sum", "tested"), ("mrr", "rr_sum", "tested"),
         ("diversity", "diversity_sum", "lists"), ("novelty", "novelty_sum", "lists"),
         ("model_lag_ms", "model_lag_ms_sum", "lagged"), ("auc", "auc_sum", "ranked"),
         ("latency_ms", "latency_ms_sum", "timed"))


@dataclass(frozen=True)
class Evaluation:
    rank: int | None              # the item's 0-based position in the list last served; -1 absent; None: no list
    diversity: float | None       # of the list served for this event: 1 - mean pairwise similarity (None: < 2 items)
    novelty: float | None         # its mean self-information, -log2(popularity share), in bits (None: empty list)
    model_lag_ms: int | None      # event time minus the newest learned event's time (None: nothing learned)
    auc: float | None = None      # the item against every other item the user may get (None: not ranked)
    catalogue: int = 0            # the items the model knew when it served the list now
    latency_ms: int | None = None  # wall clock at the list's emission minus the event's Kafka timestamp (job only)

    @classmethod
    def of(cls, served: Sequence[str], item_id: str, quality: tuple[float | None, float | None],
           model_lag_ms: int | None, auc: float | None = None, catalogue: int = 0) -> Evaluation:
        """``served``: the list the user was last served (empty: none); ``quality``: the
        (diversity, novelty) of the list served now (``list_quality``); ``auc``: the event's
        ``catalogue_auc``, where the model ranked it."""
        rank = None
        if served:
            rank = served.index(item_id) if item_id in served else -1
        return cls(rank, *quality, model_lag_ms, auc, catalogue)

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
                "model_lag_ms": int(self.model_lag_ms) if self.model_lag_ms is not None else 0,
                "ranked": int(self.auc is not None), "auc": float(self.auc) if self.auc is not None else 0.0,
                "catalogue": self.catalogue, "timed": int(self.latency_ms is not None),
                "latency_ms": int(self.latency_ms) if self.latency_ms is not None else 0}


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


def catalogue_auc(rank: int, candidates: int, negatives: int) -> float | None:
    """The AUC of one positive item against ``negatives`` other items, when the model scored
    ``candidates`` of them (best first) and the rest not at all: the share of negatives the
    positive is ranked above, ties counting half. ``rank``: the positive's 0-based place among
    the candidates, or -1 when it is not one (then it ties with every item not scored).
    None when there is no negative.

    >>> catalogue_auc(0, 50, 100), catalogue_auc(9, 50, 100), catalogue_auc(-1, 50, 100)
    (1.0, 0.91, 0.25)
    """
    if negatives <= 0:
        return None
    if rank >= 0:
        return (negatives - rank) / negatives
    return 0.5 * (negatives - candidates) / negatives


def _row(evaluation: dict[str, Any]) -> dict[str, float]:
    return {"events": 1, **{name: evaluation[field] for name, field in SUMMED}}


def ratios(sums: dict[str, float]) -> dict[str, float | None]:
    """The window's rates from its sums (None where nothing was measured)."""
    return {rate: sums[num] / sums[den] if sums[den] else None for rate, num, den in RATES}


def two_proportion_z(hits: int, n: int, hits_control: int, n_control: int) -> tuple[float, float] | None:
    """z and two-sided p-value of the difference of two hit rates (pooled standard error);
    None when a side has no test or the pooled rate is 0 or 1 (no variance to test against).

    >>> [round(x, 4) for x in two_proportion_z(120, 1000, 100, 1000)]
    [1.4293, 0.1529]
    """
    if not n or not n_control:
        return None
    pooled = (hits + hits_control) / (n + n_control)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n + 1 / n_control))
    if se == 0:
        return None
    z = (hits / n - hits_control / n_control) / se
    return z, math.erfc(abs(z) / math.sqrt(2))


def ab_tests(windows: Iterable[dict[str, Any]], variants: Sequence[str]) -> list[dict[str, Any]]:
    """The metrics topic's A/B records of ``windows`` (``window_totals`` records of several
    kinds): per window that holds any event and per variant after the first (the control),
    the two-proportion z-test of its hit rate against the control's, in that window. Sorted
    by (window kind, window_start, variant).

    >>> w = [{"kind": "tumble", "variant": v, "window_start": 0, "window_end": 10, "tested": 100, "hits": h}
    ...      for v, h in (("c", 10), ("t", 25))]
    >>> [(r["variant"], r["control"], round(r["z"], 3), round(r["p_value"], 4)) for r in ab_tests(w, ["c", "t"])]
    [('t', 'c', 2.791, 0.0052)]
    """
    control, *others = variants
    by_window: dict[tuple[str, int, int], dict[str, dict[str, Any]]] = defaultdict(dict)
    for w in windows:
        by_window[(w["kind"], w["window_start"], w["window_end"])][w["variant"]] = w
    out = []
    for (kind, start, end), of in sorted(by_window.items()):
        base = of.get(control, {})
        n_c, h_c = int(base.get("tested", 0)), int(base.get("hits", 0))
        for variant in others:
            mine = of.get(variant, {})
            n, h = int(mine.get("tested", 0)), int(mine.get("hits", 0))
            test = two_proportion_z(h, n, h_c, n_c)
            out.append({"kind": "ab", "window": kind, "window_start": start, "window_end": end, "variant": variant,
                        "control": control, "tested": n, "hits": h, "control_tested": n_c, "control_hits": h_c,
                        "recall_at_k": h / n if n else None, "control_recall_at_k": h_c / n_c if n_c else None,
                        "z": None if test is None else test[0], "p_value": None if test is None else test[1]})
    return out


def window_totals(records: Iterable[tuple[str, int, dict[str, Any], Sequence[str]]], size_ms: int,
                  slide_ms: int | None = None, kind: str = "tumble",
                  closed_by: int | None = None) -> list[dict[str, Any]]:
    """Sum (variant, event ts, evaluation, items served) per variant over event-time windows of
    ``size_ms`` sliding by ``slide_ms`` (tumbling when None), aligned to the epoch, as the
    metrics SQL does, with each window's distinct items served and its MAXED; only
    windows whose last millisecond is at or before ``closed_by`` (a watermark), when given.
    Records in the metrics topic's schema, sorted by (variant, window_start).

    >>> ev = Evaluation(0, None, None, None, catalogue=4).as_dict()
    >>> [(w["window_start"], w["events"], w["recall_at_k"], w["coverage"])
    ...  for w in window_totals([("v", 5, ev, ["a"]), ("v", 12, ev, ["a", "b"])], 10)]
    [(0, 1, 1.0, 0.25), (10, 1, 1.0, 0.5)]
    >>> [(w["window_start"], w["items_served"]) for w in window_totals([("v", 5, ev, ["a"])], 10, 5, "hop")]
    [(0, 1), (5, 1)]
    """
    slide = slide_ms or size_ms
    totals: dict[tuple[str, int], dict[str, float]] = defaultdict(lambda: dict.fromkeys(SUMS, 0))
    served: dict[tuple[str, int], set[str]] = defaultdict(set)
    maxima: dict[tuple[str, int], dict[str, float | None]] = defaultdict(lambda: dict.fromkeys(MAXED_NAMES))
    for variant, ts, evaluation, items in records:
        row = _row(evaluation)
        last_start = ts - ts % slide
        for start in range(last_start, ts - size_ms, -slide):
            sums = totals[(variant, start)]
            for name, value in row.items():
                sums[name] += value
            top = maxima[(variant, start)]
            for name, field, flag in MAXED:
                if flag is None or evaluation[flag]:
                    top[name] = evaluation[field] if top.get(name) is None else max(top[name], evaluation[field])
            served[(variant, start)].update(items)
    out = []
    for (variant, start), sums in sorted(totals.items()):
        if closed_by is not None and start + size_ms - 1 > closed_by:
            continue
        distinct = len(served[(variant, start)])
        top = maxima[(variant, start)]
        out.append({"kind": kind, "variant": variant, "window_start": start, "window_end": start + size_ms,
                    **sums, "items_served": distinct, **top, **ratios(sums),
                    "coverage": distinct / top["catalogue"] if top["catalogue"] else None})
    return out
