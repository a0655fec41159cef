"""The simple recommenders the online ranker is measured against (DESIGN.md §6), with the
same test-then-learn interface: ``observe`` (where the item stands in the top-k now) and
``learn``. Both run in the same replay as the ranker (jobs/evaluate.py --baselines).

>>> b = ItemKNN()
>>> for user, item in [("a", "x"), ("a", "y"), ("b", "x")]:
...     _ = b.observe(user, item), b.learn(user, item)
>>> b.observe("b", "y")
0
"""

from __future__ import annotations

import numpy as np


class _Catalogue:
    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.counts = np.zeros(64)
        self.seen: dict[str, set[int]] = {}

    def add(self, item: str) -> int:
        j = self.index.get(item)
        if j is None:
            j = self.index[item] = len(self.index)
            if j >= self.counts.size:
                self.counts = np.concatenate([self.counts, np.zeros(self.counts.size)])
        return j

    def rank(self, scores: np.ndarray, user: str, item: str, k: int) -> int | None:
        """Position of ``item`` in the user's top-k (ties to the lower index), -1 if absent;
        None for a user without history."""
        seen = self.seen.get(user)
        if not seen:
            return None
        j = self.index.get(item)
        if j is None:
            return -1
        s = scores.copy()
        s[list(seen)] = -np.inf
        if not np.isfinite(s[j]):
            return -1
        rank = int((s > s[j]).sum() + (s[:j] == s[j]).sum())
        return rank if rank < k else -1


class Popularity(_Catalogue):
    """All-time interaction counts."""

    name = "popularity"

    def observe(self, user: str, item: str, k: int = 10) -> int | None:
        return self.rank(self.counts[: len(self.index)], user, item, k)

    def learn(self, user: str, item: str) -> None:
        j = self.add(item)           # may grow self.counts: index it after
        self.counts[j] += 1
        self.seen.setdefault(user, set()).add(j)


class ItemKNN(_Catalogue):
    """Incremental item co-occurrence over each user's recent items; scores sum the cosine-
    normalised rows of the user's ``recent`` latest items."""

    name = "item_knn"

    def __init__(self, recent: int = 20) -> None:
        super().__init__()
        self.recent_n = recent
        self.cooc = np.zeros((64, 64), dtype=np.float32)
        self.recent: dict[str, list[int]] = {}

    def observe(self, user: str, item: str, k: int = 10) -> int | None:
        n = len(self.index)
        hist = self.recent.get(user, [])
        if not hist:
            return self.rank(np.zeros(n), user, item, k)
        norm = np.sqrt(np.maximum(self.counts[:n], 1.0))
        scores = (self.cooc[hist, :n] / norm[hist][:, None]).sum(axis=0) / norm
        return self.rank(scores, user, item, k)

    def learn(self, user: str, item: str) -> None:
        j = self.add(item)
        if j >= self.cooc.shape[0]:
            grown = np.zeros((2 * self.cooc.shape[0],) * 2, dtype=np.float32)
            grown[: self.cooc.shape[0], : self.cooc.shape[0]] = self.cooc
            self.cooc = grown
        hist = self.recent.setdefault(user, [])
        others = [h for h in hist if h != j]
        if others:
            self.cooc[j, others] += 1.0
            self.cooc[others, j] += 1.0
        self.counts[j] += 1
        if j in hist:
            hist.remove(j)
        hist.append(j)
        del hist[: -self.recent_n]
        self.seen.setdefault(user, set()).add(j)
