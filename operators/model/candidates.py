"""Candidates: the items a batch of requests is scored on, as flat arrays (no items x catalogue
matrix anywhere), with the segment operations the ranker needs on them.

Each request (a user's recent items and the items they may not get) is answered from a bounded
set of candidates, proposed by generators: the neighbours of the user's recent items
(co-occurrence, with their evidence summed per item), items of the request's own (the
regression's best over its head) and items every request gets (the trending top-N). The
cost per request depends on the history length, the neighbour width and N, never on the
catalogue.

The whole union is one sparse product (scipy's CSR x CSR, which sums per row in a dense
accumulator instead of sorting): requests x sources times sources x items, where the sources
are the recent items (weighted by recency, rows: their neighbours' counters), one row of
shared proposals and, per request, a row of its own proposals and a row of its excluded
items. Proposals carry a value far below any evidence (``MARK``: adding it leaves a float64
sum unchanged) and excluded items one far below anything (``BLOCK``), so one pass gives each
request's candidates with their evidence, minus its excluded items. Within a request the
rows come in the order the product found them, the same for a request alone or in a batch:
every operation below breaks ties by item index, never by row order.

>>> c = Candidates.gather(2, np.array([0, 1]), np.array([0, 1]), np.array([1.0, 0.5]),
...     np.array([[2, 3], [3, -1]]), np.array([[1.0, 2.0], [4.0, 0.0]]),
...     shared=np.array([7]), own=[np.array([], dtype=np.int64), np.array([9])],
...     excluded=[np.array([3]), np.array([], dtype=np.int64)], n=10)
>>> sorted(zip(c.request.tolist(), c.item.tolist(), c.cooc.tolist()))
[(0, 2, 1.0), (0, 7, 0.0), (1, 3, 2.0), (1, 7, 0.0), (1, 9, 0.0)]
>>> segment_max(np.array([1.0, 3.0, 2.0]), np.array([0, 1, 3])).tolist()
[1.0, 3.0]
>>> top_k_per_segment(np.array([1.0, 3.0, 2.0]), np.array([4, 5, 6]), np.array([0, 1, 3]), 1).tolist()
[[0], [1]]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from operators.model.neighbours import EMPTY

MARK = 1e-30        # a proposal without evidence: far below any counter, lost in any float64 sum with one
BLOCK = -1e300      # an excluded item: far below any sum of counters


@dataclass(frozen=True)
class Candidates:
    request: np.ndarray     # rows: owning request (ascending)
    item: np.ndarray        # rows: item index
    cooc: np.ndarray        # rows: co-occurrence evidence (0: proposed by another generator only)
    starts: np.ndarray      # requests + 1 offsets

    @classmethod
    def gather(cls, requests: int, hist_owner: np.ndarray, hist_row: np.ndarray, hist_weight: np.ndarray,
               neighbour_ids: np.ndarray, neighbour_values: np.ndarray, shared: np.ndarray,
               own: Sequence[np.ndarray], excluded: Sequence[np.ndarray], n: int) -> Candidates:
        """The candidates of ``requests`` requests over items 0..n-1. History entry e belongs
        to request ``hist_owner[e]``, has weight ``hist_weight[e]`` and its neighbours in row
        ``hist_row[e]`` of ``neighbour_ids`` / ``neighbour_values`` (EMPTY slots unused);
        ``shared`` items go to every request, ``own[r]`` to request r only; ``excluded[r]`` are
        removed from request r's."""
        b = neighbour_ids.shape[0]
        keep = neighbour_ids != EMPTY
        sizes = np.array([x.size for x in [*own, *excluded]], dtype=np.int64)
        rows = [(neighbour_ids[keep], neighbour_values[keep], keep.sum(axis=1)),
                (shared, np.full(shared.size, MARK), np.array([shared.size])),
                (np.concatenate([*own, *excluded]) if requests else np.zeros(0, dtype=np.int64),
                 np.repeat(np.repeat([MARK, BLOCK], requests), sizes), sizes)]
        right = sparse.csr_matrix((np.concatenate([r[1] for r in rows]), np.concatenate([r[0] for r in rows]),
                                   np.concatenate([[0], np.cumsum(np.concatenate([r[2] for r in rows]))])),
                                  shape=(b + 1 + 2 * requests, n))
        mine = np.arange(requests)
        left_rows = np.concatenate([hist_owner, mine, mine, mine])
        left_cols = np.concatenate([hist_row, np.full(requests, b), b + 1 + mine, b + 1 + requests + mine])
        left_vals = np.concatenate([hist_weight, np.ones(3 * requests)])
        order = np.argsort(left_rows, kind="stable")
        left = sparse.csr_matrix((left_vals[order], left_cols[order],
                                  np.searchsorted(left_rows[order], np.arange(requests + 1))),
                                 shape=(requests, right.shape[0]))
        product = left @ right
        counts = np.diff(product.indptr)
        owner = np.repeat(np.arange(requests), counts)
        value = product.data
        allowed = value > BLOCK / 2
        owner, item, value = owner[allowed], product.indices[allowed].astype(np.int64), value[allowed]
        return cls(owner, item, np.where(value > 1e-20, value, 0.0), np.searchsorted(owner, np.arange(requests + 1)))

    def select(self, requests: np.ndarray) -> tuple[Candidates, np.ndarray]:
        """The candidates of ``requests`` (ascending), renumbered 0.., and the mask of their
        rows here (to pick the rows of arrays that run beside these).

        >>> c = Candidates(np.array([0, 1, 1, 2]), np.array([5, 6, 7, 8]), np.zeros(4), np.array([0, 1, 3, 4]))
        >>> sub, keep = c.select(np.array([1, 2]))
        >>> sub.request.tolist(), sub.item.tolist(), sub.starts.tolist(), keep.tolist()
        ([0, 0, 1], [6, 7, 8], [0, 2, 3], [False, True, True, True])
        """
        keep = np.isin(self.request, requests)
        starts = np.concatenate([[0], np.cumsum(np.diff(self.starts)[requests])])
        return Candidates(np.searchsorted(requests, self.request[keep]), self.item[keep], self.cooc[keep], starts), keep

    def __len__(self) -> int:
        return int(self.item.size)


def segment_max(values: np.ndarray, starts: np.ndarray, empty: float = 0.0) -> np.ndarray:
    """The maximum of each segment of ``values`` (``empty`` for an empty one)."""
    out = np.full(starts.size - 1, empty, dtype=np.float64)
    full = starts[1:] > starts[:-1]
    if full.any():
        out[full] = np.maximum.reduceat(values, starts[:-1][full])
    return out


def top_k_per_segment(scores: np.ndarray, item: np.ndarray, starts: np.ndarray, k: int) -> np.ndarray:
    """Per segment, the rows of its ``k`` best scores, best first, ties to the lower item;
    requests x k, padded with -1."""
    segments = starts.size - 1
    out = np.full((segments, k), -1, dtype=np.int64)
    if not scores.size or k <= 0:
        return out
    owner = np.repeat(np.arange(segments), np.diff(starts))
    order = np.lexsort((item, -scores, owner))
    rank = np.arange(order.size) - starts[owner[order]]
    take = rank < k
    out[owner[order][take], rank[take]] = order[take]
    return out


def ranks_of_targets(scores: np.ndarray, item: np.ndarray, starts: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Per segment, the 0-based place of its target item in best-first order (ties: the lower
    item first), or -1 when the target is not among its rows. ``scores`` may have columns
    (rows x columns): one place per column.

    >>> ranks_of_targets(np.array([2.0, 1.0, 2.0, 5.0]), np.array([1, 2, 3, 4]), np.array([0, 3, 4]),
    ...                  np.array([3, 9])).tolist()
    [1, -1]
    """
    single = scores.ndim == 1
    s = scores[:, None] if single else scores
    segments = starts.size - 1
    owner = np.repeat(np.arange(segments), np.diff(starts))
    is_target = item == targets[owner]
    out = np.full((segments, s.shape[1]), -1, dtype=np.int64)
    rows = np.flatnonzero(is_target)
    if rows.size:
        t = np.full((segments, s.shape[1]), np.nan)
        t[owner[rows]] = s[rows]
        t_item = targets[owner]
        target_score = t[owner]
        before = (s > target_score) | ((s == target_score) & (item < t_item)[:, None])
        full = np.flatnonzero(starts[1:] > starts[:-1])
        counts = np.zeros((segments, s.shape[1]), dtype=np.int64)
        counts[full] = np.add.reduceat(before.astype(np.int64), starts[full], axis=0)
        out[owner[rows]] = counts[owner[rows]]
    return out[:, 0] if single else out
