"""Online popularity + item co-occurrence recommender on torch (the walking-skeleton model).

Shared parameters (popularity, trending counts, co-occurrence) live here; per-user history is
passed in, because the job keeps it in Flink keyed state. The ranker also remembers which
events it already contains (:class:`LearnedEvents`), so replayed events are skipped (DESIGN.md §4).

>>> from operators.records import Event
>>> r = CooccurrenceRanker(RankerConfig())
>>> for n, (u, i) in enumerate([("a", "x"), ("a", "y"), ("b", "x")]):
...     _ = r.learn(Event(f"e{n}", u, i, "click", None, n, ), history=["x"] if u == "a" and i == "y" else [])
>>> [rec.item_id for rec in r.recommend(["x"], k=2, now_ts=3)]
['y']
"""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from operators.features.windows import WindowFeatures
from operators.model.progress import LearnedEvents
from operators.records import Event, Recommendation

EVENT_WEIGHTS = {"view": 1.0, "click": 2.0, "add_to_cart": 3.0, "purchase": 5.0}


@dataclass(frozen=True)
class RankerConfig:
    popularity_half_life_ms: int = 7 * 24 * 3_600_000
    trending_window_ms: int = 3_600_000
    cooc_weight: float = 1.0
    trending_weight: float = 0.3
    popularity_weight: float = 0.2
    recency_decay: float = 0.8          # weight of the k-th most recent history item: decay**k
    max_items: int = 10_000             # co-occurrence is dense: max_items² float32 at most

    def event_weight(self, event: Event) -> float:
        if event.event_type == "rating":
            return 0.5 + (event.value or 0.0) / 2.0
        return EVENT_WEIGHTS.get(event.event_type, 1.0)


class CooccurrenceRanker:
    """Scores items for a user from popularity, trending counts and co-occurrence."""

    def __init__(self, config: RankerConfig, capacity: int = 1024) -> None:
        self.config = config
        self.item_ids: list[str] = []
        self.index: dict[str, int] = {}
        cap = min(capacity, config.max_items)
        self.popularity = torch.zeros(cap, dtype=torch.float64)   # event-time decayed weight
        self.counts = torch.zeros(cap, dtype=torch.float64)       # raw interaction counts
        self.trending = torch.zeros(cap, dtype=torch.float64)     # window count from features
        self.trending_ts = torch.full((cap,), -(2**62), dtype=torch.int64)
        self.cooc = torch.zeros(cap, cap, dtype=torch.float32)
        self.progress = LearnedEvents()
        self.learned_events = 0
        self.clock_ms: int | None = None

    # -- learning ---------------------------------------------------------------------------
    @property
    def positions(self) -> dict[int, int]:
        """Partition -> highest learned offset."""
        return self.progress.offsets

    def learn(self, event: Event, history: list[str], window: WindowFeatures | None = None) -> bool:
        """Learn one event given the user's history before it; False if already contained."""
        if self.progress.contains(event):
            return False
        item = self._index_of(event.item_id)
        self._advance_clock(event.ts)
        weight = self.config.event_weight(event)
        if item is not None:
            self.popularity[item] += weight
            self.counts[item] += 1.0
            if window is not None:
                self.trending[item] = float(window.count("item", "short"))
                self.trending_ts[item] = event.ts
            others = [j for j in (self.index.get(h) for h in history if h != event.item_id) if j is not None]
            if others:
                idx = torch.tensor(others, dtype=torch.long)
                self.cooc[item, idx] += weight
                self.cooc[idx, item] += weight
        self.progress.add(event)
        self.learned_events += 1
        return True

    def _advance_clock(self, ts: int) -> None:
        if self.clock_ms is not None and ts > self.clock_ms:
            factor = math.exp(-math.log(2) * (ts - self.clock_ms) / self.config.popularity_half_life_ms)
            self.popularity *= factor
        if self.clock_ms is None or ts > self.clock_ms:
            self.clock_ms = ts

    def _index_of(self, item_id: str) -> int | None:
        idx = self.index.get(item_id)
        if idx is not None:
            return idx
        if len(self.item_ids) >= self.config.max_items:
            return None
        idx = len(self.item_ids)
        if idx >= self.popularity.shape[0]:
            self._grow(min(2 * idx, self.config.max_items))
        self.item_ids.append(item_id)
        self.index[item_id] = idx
        return idx

    def _grow(self, cap: int) -> None:
        n = self.popularity.shape[0]

        def grow1(t: torch.Tensor, fill: float | int = 0) -> torch.Tensor:
            out = torch.full((cap,), fill, dtype=t.dtype)
            out[:n] = t
            return out

        self.popularity, self.counts = grow1(self.popularity), grow1(self.counts)
        self.trending, self.trending_ts = grow1(self.trending), grow1(self.trending_ts, -(2**62))
        cooc = torch.zeros(cap, cap, dtype=torch.float32)
        cooc[:n, :n] = self.cooc
        self.cooc = cooc

    # -- scoring ----------------------------------------------------------------------------
    def recommend(self, history: list[str], k: int, now_ts: int, exclude: set[str] | None = None,
                  ) -> list[Recommendation]:
        """Top-k items not in ``exclude`` (default: the history), each with its reason.

        Scoring reads numpy views of the torch tensors: per-event work is a handful of
        vector operations over the catalogue, where torch's per-call overhead would dominate.
        """
        n = len(self.item_ids)
        exclude = set(history) if exclude is None else exclude
        if n == 0 or k <= 0:
            return []
        cfg = self.config
        counts = self.counts.numpy()[:n]
        components = np.zeros((3, n))
        hist_idx = np.array([self.index[h] for h in history if h in self.index], dtype=np.int64)
        contrib = None
        if hist_idx.size:
            sqrt_counts = np.sqrt(np.maximum(counts, 1.0))
            recency = cfg.recency_decay ** np.arange(hist_idx.size - 1, -1, -1, dtype=np.float64)
            contrib = self.cooc.numpy()[hist_idx, :n] * (recency / sqrt_counts[hist_idx])[:, None]
            components[0] = contrib.sum(axis=0) / sqrt_counts
        fresh = self.trending_ts.numpy()[:n] > now_ts - cfg.trending_window_ms
        components[1] = np.where(fresh, self.trending.numpy()[:n], 0.0)
        components[2] = self.popularity.numpy()[:n]
        scale = np.maximum(components.max(axis=1, keepdims=True), 1e-12)
        weighted = components / scale * np.array([[cfg.cooc_weight], [cfg.trending_weight],
                                                  [cfg.popularity_weight]])
        total = weighted.sum(axis=0)
        excluded = [self.index[i] for i in exclude if i in self.index]
        total[excluded] = -np.inf
        available = n - len(excluded)
        recs = []
        for j in top_k_indices(total, min(k, available)):
            top = int(np.argmax(weighted[:, j]))
            if top == 0 and weighted[0, j] > 0 and contrib is not None:
                source = self.item_ids[int(hist_idx[int(np.argmax(contrib[:, j]))])]
                reason = f"co_occurrence:{source}"
            elif top == 1 and weighted[1, j] > 0:
                reason = "trending"
            else:
                reason = "popular"
            recs.append(Recommendation(self.item_ids[j], round(float(total[j]), 6), reason))
        return recs

    # -- state ------------------------------------------------------------------------------
    def snapshot(self) -> bytes:
        n = len(self.item_ids)
        buf = io.BytesIO()
        torch.save({
            "format": 2, "config": asdict(self.config), "item_ids": self.item_ids,
            "popularity": self.popularity[:n].clone(), "counts": self.counts[:n].clone(),
            "trending": self.trending[:n].clone(), "trending_ts": self.trending_ts[:n].clone(),
            "cooc": self.cooc[:n, :n].clone(), "progress": self.progress.to_state(),
            "learned_events": self.learned_events, "clock_ms": self.clock_ms,
        }, buf)
        return buf.getvalue()

    @classmethod
    def restore(cls, data: bytes, config: RankerConfig | None = None) -> CooccurrenceRanker:
        state = torch.load(io.BytesIO(data), weights_only=True)
        ranker = cls(config or RankerConfig(**state["config"]), capacity=max(1024, len(state["item_ids"])))
        n = len(state["item_ids"])
        ranker.item_ids = list(state["item_ids"])
        ranker.index = {item: j for j, item in enumerate(ranker.item_ids)}
        for name in ("popularity", "counts", "trending", "trending_ts"):
            getattr(ranker, name)[:n] = state[name]
        ranker.cooc[:n, :n] = state["cooc"]
        ranker.progress = LearnedEvents.from_state(state["progress"])
        ranker.learned_events = int(state["learned_events"])
        ranker.clock_ms = state["clock_ms"]
        return ranker


def top_k_indices(scores: np.ndarray, k: int) -> list[int]:
    """Indices of the k largest scores, best first; ties go to the lower index.

    >>> top_k_indices(np.array([1.0, 3.0, 3.0, -np.inf]), 3)
    [1, 2, 0]
    """
    n = scores.shape[0]
    k = min(max(k, 0), n)
    if k == 0:
        return []
    # Every index scoring at least the k-th best value, so that ties are decided by index.
    threshold = np.partition(scores, n - k)[n - k]
    candidates = np.flatnonzero(scores >= threshold)
    order = np.lexsort((candidates, -scores[candidates]))
    return [int(j) for j in candidates[order[:k]]]
