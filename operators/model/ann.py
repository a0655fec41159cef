"""Nearest-neighbour search over the item embeddings: an inverted-file index, so the embedding
generator proposes a user's best items without scoring the whole catalogue.

The items' output vectors (with their bias as one more coordinate) are clustered by k-means
into about sqrt(n) clusters. A request scores the centroids against its user vector
(``[user, 1]``), takes its ``probes`` best clusters and scores only their members, with the
*current* embeddings, so a stale index costs recall, never a wrong score. At 100k items that is
~316 centroids and ~8 x 316 members per request instead of 100,000 rows.

The index is rebuilt at learning boundaries (``due``: every ``every`` learned events, and
whenever the catalogue has doubled since the last build, so a young catalogue is covered
early); items first seen after a build wait for the next one (co-occurrence and trending
propose them meanwhile). A build is deterministic (its k-means seeds come from the item
count) and the index is part of the model's snapshot, so a restored model searches exactly
as the one it was taken from.

>>> rng = np.random.default_rng(0)
>>> vectors = np.vstack([rng.normal(c, 0.1, (50, 3)) for c in (-5.0, 0.0, 5.0)]).astype(np.float32)
>>> index = EmbeddingIndex(probes=1)
>>> index.build(vectors, learned_events=0)
>>> index.clusters, index.items
(12, 150)
>>> found = index.search(np.array([[1.0, 1.0]]), vectors[:, :2], vectors[:, 2], 5)[0]
>>> bool((found >= 100).all())        # the cluster around (5, 5, 5) holds the best items
True
"""

from __future__ import annotations

import math

import numpy as np

from operators.model.candidates import best_of

_SAMPLE_PER_CLUSTER = 32     # k-means learns its centroids on up to this many items per cluster...
_ITERATIONS = 6              # ...in this many rounds, then assigns every item once
_CHUNK = 16_384              # items per distance block in an assignment (bounds its memory)


class EmbeddingIndex:
    def __init__(self, probes: int = 8, every: int = 20_000, seed: int = 7) -> None:
        self.probes, self.every, self.seed = probes, every, seed
        self.centroids = np.zeros((0, 0), dtype=np.float32)     # clusters x (dim + 1)
        self.assign = np.zeros(0, dtype=np.int32)                # indexed item -> its cluster
        self.built_at = 0                                        # learned events at the last build
        self._order = np.zeros(0, dtype=np.int64)                # items by cluster
        self._starts = np.zeros(1, dtype=np.int64)               # clusters + 1 offsets into _order

    @property
    def clusters(self) -> int:
        return int(self.centroids.shape[0])

    @property
    def items(self) -> int:
        return int(self.assign.size)

    def due(self, items: int, learned_events: int) -> bool:
        """Whether a boundary at ``learned_events`` with ``items`` known should rebuild."""
        return items >= 2 and (items >= 2 * self.items or learned_events - self.built_at >= self.every)

    def build(self, vectors: np.ndarray, learned_events: int) -> None:
        """Cluster ``vectors`` (items x (dim + 1): output embedding and bias) anew."""
        n = len(vectors)
        k = max(1, round(math.sqrt(n)))
        rng = np.random.default_rng([self.seed, n])
        sample = vectors if n <= _SAMPLE_PER_CLUSTER * k else vectors[
            np.sort(rng.choice(n, _SAMPLE_PER_CLUSTER * k, replace=False))]
        centroids = sample[np.sort(rng.choice(len(sample), k, replace=False))].astype(np.float32)
        for _ in range(_ITERATIONS):
            nearest = _nearest(sample, centroids)
            counts = np.bincount(nearest, minlength=k)
            sums = np.zeros_like(centroids)
            np.add.at(sums, nearest, sample)
            filled = counts > 0                     # an empty cluster keeps its centroid
            centroids[filled] = sums[filled] / counts[filled, None]
        self.load(centroids, _nearest(vectors, centroids), learned_events)

    def load(self, centroids: np.ndarray, assign: np.ndarray, built_at: int) -> None:
        self.centroids = centroids.astype(np.float32)
        self.assign = assign.astype(np.int32)
        self.built_at = built_at
        self._order = np.argsort(self.assign, kind="stable")
        self._starts = np.searchsorted(self.assign[self._order], np.arange(self.clusters + 1))

    def search(self, users: np.ndarray, out: np.ndarray, bias: np.ndarray, m: int) -> list[np.ndarray]:
        """Per user vector (rows of ``users``; all zeros: no user, nothing found), the indexed
        items with the ``m`` largest ``user . out[item] + bias[item]`` among the members of
        its ``probes`` best clusters (any order; ties: the lower item)."""
        if not self.clusters or m <= 0:
            return [np.zeros(0, dtype=np.int64) for _ in users]
        near = users @ self.centroids[:, :-1].T + self.centroids[:, -1]          # users x clusters
        probes = min(self.probes, self.clusters)
        found = []
        for u, row in zip(users, near, strict=True):
            if not u.any():
                found.append(np.zeros(0, dtype=np.int64))
                continue
            best = np.argpartition(-row, probes - 1)[:probes] if probes < row.size else np.arange(row.size)
            members = np.concatenate([self._order[self._starts[c]: self._starts[c + 1]] for c in best])
            scores = out[members] @ u.astype(out.dtype) + bias[members]
            found.append(members[best_of(scores, members, m)].astype(np.int64))
        return found


def _nearest(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Each row's nearest centroid (squared Euclidean distance; ties: the lower centroid)."""
    norms = (centroids.astype(np.float32) ** 2).sum(axis=1)
    out = np.empty(len(x), dtype=np.int64)
    for lo in range(0, len(x), _CHUNK):
        block = x[lo: lo + _CHUNK].astype(np.float32)
        out[lo: lo + _CHUNK] = np.argmin(norms - 2.0 * (block @ centroids.T), axis=1)
    return out
