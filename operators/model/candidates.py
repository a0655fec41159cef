"""Candidates: the items a batch of requests is scored on, as flat arrays (no items x catalogue
matrix anywhere), with the segment operations the ranker needs on them.

Each request (a user's recent items and the items they may not get) is answered from a bounded
set of candidates, proposed by generators: the neighbours of the user's recent items
(co-occurrence, with their evidence summed per item), items of the request's own (the
regression's best over its head) and items every request gets (the trending top-N). The
cost per request depends on the history length, the neighbour width and N, never on the
catalogue.

Per request, the entries (each recent item's neighbours with their weighted counters, then
the proposals, then the excluded items) are grouped by item in time linear in their number:
a reusable item -> first-position map (``Slots``) numbers the distinct items, and one
``bincount`` sums each item's entries in entry order (a sort was 3x slower here, a dense
catalogue-sized accumulator 5x slower at 100k items). Proposals carry a value far below any
evidence (``MARK``: adding it leaves a float64 sum unchanged) and excluded items one far
below anything (``BLOCK``). A request's rows come in the order its items first appear, the
same alone or in a batch; every operation below breaks ties by item index, never by row order.

>>> c = Candidates.gather(Slots(), np.array([0, 1]), np.array([0, 1]), np.array([1.0, 0.5]),
...     np.array([[2, 3], [3, -1]]), np.array([[1.0, 2.0], [4.0, 0.0]]),
...     shared=np.array([7]), own=[np.array([], dtype=np.int64), np.array([9])],
...     excluded=[np.array([3]), np.array([], dtype=np.int64)], n=10, sources=True)
>>> sorted(zip(c.request.tolist(), c.item.tolist(), c.cooc.tolist(), c.source.tolist()))
[(0, 2, 1.0, 0), (0, 7, 0.0, -1), (1, 3, 2.0, 1), (1, 7, 0.0, -1), (1, 9, 0.0, -1)]
>>> segment_max(np.array([1.0, 3.0, 2.0]), np.array([0, 1, 3])).tolist()
[1.0, 3.0]
>>> top_k_per_segment(np.array([1.0, 3.0, 2.0]), np.array([4, 5, 6]), np.array([0, 1, 3]), 1).tolist()
[[0], [1]]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from operators.model.neighbours import EMPTY

MARK = 1e-30        # a proposal without evidence: far below any counter, lost in any float64 sum with one
BLOCK = -1e300      # an excluded item: far below any sum of counters


@dataclass(frozen=True)
class Candidates:
    request: np.ndarray     # rows: owning request (ascending)
    item: np.ndarray        # rows: item index
    cooc: np.ndarray        # rows: co-occurrence evidence (0: proposed by another generator only)
    starts: np.ndarray      # requests + 1 offsets
    first_cooc: np.ndarray  # rows: the counter in the request's first (most recent) history entry's row alone
    source: np.ndarray      # rows: the history entry that weighs most in ``cooc`` (-1: none, or not asked)

    @classmethod
    def gather(cls, slots: Slots, hist_owner: np.ndarray, hist_row: np.ndarray, hist_weight: np.ndarray,
               neighbour_ids: np.ndarray, neighbour_values: np.ndarray, shared: np.ndarray,
               own: Sequence[np.ndarray], excluded: Sequence[np.ndarray], n: int,
               sources: bool = False, best: int | None = None) -> Candidates:
        """The candidates of ``len(own)`` requests over items 0..n-1. History entry e (most
        recent first within a request) belongs to request ``hist_owner[e]`` (ascending), has
        weight ``hist_weight[e]`` and its neighbours in row ``hist_row[e]`` of ``neighbour_ids``
        / ``neighbour_values`` (EMPTY slots unused); ``shared`` items go to every request,
        ``own[r]`` to request r only; ``excluded[r]`` are removed from request r's. A sum of
        exactly 0 (counters whose lower bound is 0, proposed by nothing else) is no candidate.
        With ``best``, co-occurrence proposes only each request's ``best`` largest sums (ties:
        the lower item); an item another generator proposed keeps its sum either way. With
        ``sources``, each row's ``source`` is the history entry whose evidence weighs most in its
        sum (the earlier on ties; -1: none)."""
        requests = len(own)
        slots.reserve(n)
        starts_of = np.searchsorted(hist_owner, np.arange(requests + 1))
        ids_all, values_all = neighbour_ids[hist_row], neighbour_values[hist_row]
        keep_all = ids_all != EMPTY
        weighted_all = hist_weight[:, None] * values_all
        parts: list[tuple[np.ndarray, ...]] = []
        for r in range(requests):
            lo, hi = starts_of[r], starts_of[r + 1]
            keep = keep_all[lo:hi]
            evidence = weighted_all[lo:hi][keep]
            item = np.concatenate([ids_all[lo:hi][keep], shared, own[r], excluded[r]]).astype(np.int64)
            value = np.concatenate([evidence, np.full(shared.size + own[r].size, MARK),
                                    np.full(excluded[r].size, BLOCK)])
            distinct, group = slots.group(item)
            total = np.bincount(group, weights=value, minlength=distinct.size)   # each item's, in entry order
            first = np.zeros(distinct.size)
            if hi > lo:
                first[group[: keep[0].sum()]] = values_all[lo][keep[0]]   # a row holds an item once
            source = np.full(distinct.size, -1, dtype=np.int64)
            if sources and evidence.size:
                source = _strongest(group[: evidence.size], evidence, distinct.size,
                                    np.repeat(np.arange(lo, hi), keep.sum(axis=1)))
            ok = (total != 0) & (total > BLOCK / 2)
            if best is not None and ok.sum() > best:
                proposed = np.zeros(distinct.size, dtype=bool)
                proposed[group[evidence.size: evidence.size + shared.size + own[r].size]] = True
                ok &= proposed | best_of(np.where(ok, total, -np.inf), distinct, best)
            parts.append((distinct[ok], total[ok], first[ok], source[ok]))
        sizes = np.array([p[0].size for p in parts], dtype=np.int64)
        joined = [np.concatenate([p[j] for p in parts]) if parts else np.zeros(0) for j in range(4)]
        cooc = joined[1]
        return cls(np.repeat(np.arange(requests), sizes), joined[0].astype(np.int64),
                   np.where(cooc > 1e-20, cooc, 0.0), np.concatenate([[0], np.cumsum(sizes)]),
                   joined[2], joined[3].astype(np.int64))

    def select(self, requests: np.ndarray) -> tuple[Candidates, np.ndarray]:
        """The candidates of ``requests`` (ascending), renumbered 0.., and the mask of their
        rows here (to pick the rows of arrays that run beside these).

        >>> c = Candidates(np.array([0, 1, 1, 2]), np.array([5, 6, 7, 8]), np.zeros(4), np.array([0, 1, 3, 4]),
        ...                np.zeros(4), np.full(4, -1))
        >>> sub, keep = c.select(np.array([1, 2]))
        >>> sub.request.tolist(), sub.item.tolist(), sub.starts.tolist(), keep.tolist()
        ([0, 0, 1], [6, 7, 8], [0, 2, 3], [False, True, True, True])
        """
        keep = np.isin(self.request, requests)
        starts = np.concatenate([[0], np.cumsum(np.diff(self.starts)[requests])])
        return Candidates(np.searchsorted(requests, self.request[keep]), self.item[keep], self.cooc[keep], starts,
                          self.first_cooc[keep], self.source[keep]), keep

    def __len__(self) -> int:
        return int(self.item.size)


class Slots:
    """A reusable item -> first position map, so grouping an array of items costs time in its
    length (no sort, no pass over the catalogue). Every entry it sets is reset before
    ``group`` returns.

    >>> Slots().group(np.array([5, 3, 5, 9, 3]))[0].tolist(), Slots().group(np.array([5, 3, 5, 9, 3]))[1].tolist()
    ([5, 3, 9], [0, 1, 0, 2, 1])
    """

    UNSET = np.iinfo(np.int64).max

    def __init__(self) -> None:
        self.first = np.full(64, self.UNSET, dtype=np.int64)

    def reserve(self, n: int) -> None:
        if n > self.first.size:
            self.first = np.full(max(n, 2 * self.first.size), self.UNSET, dtype=np.int64)

    def group(self, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The distinct items in order of first appearance, and each entry's group number."""
        position = np.arange(items.size)
        np.minimum.at(self.first, items, position)
        first = self.first[items]
        self.first[items] = self.UNSET
        is_first = first == position
        return items[is_first], (np.cumsum(is_first) - 1)[first]

    def marked(self, items: np.ndarray, starts: np.ndarray, chosen: Sequence[np.ndarray]) -> np.ndarray:
        """Per row of segment r (``starts``), whether its item is in ``chosen[r]``.

        >>> Slots().marked(np.array([4, 5, 4]), np.array([0, 2, 3]), [np.array([5]), np.array([4])]).tolist()
        [False, True, True]
        """
        out = np.zeros(items.size, dtype=bool)
        for r, picked in enumerate(chosen):
            if picked.size:
                self.first[picked] = 0
                lo, hi = starts[r], starts[r + 1]
                out[lo:hi] = self.first[items[lo:hi]] == 0
                self.first[picked] = self.UNSET
        return out


def best_of(values: np.ndarray, items: np.ndarray, n: int) -> np.ndarray:
    """The mask of the ``n`` largest ``values`` (ties: the lower item), without sorting them all.

    >>> best_of(np.array([1.0, 3.0, 2.0, 3.0, 2.0]), np.array([9, 8, 7, 6, 5]), 3).tolist()
    [False, True, False, True, True]
    """
    if values.size <= n:
        return np.ones(values.size, dtype=bool)
    cut = np.partition(values, values.size - n)[values.size - n]
    above = values > cut
    tied = np.flatnonzero(values == cut)
    out = above.copy()
    out[tied[np.argsort(items[tied], kind="stable")[: n - int(above.sum())]]] = True
    return out


def _strongest(group: np.ndarray, evidence: np.ndarray, groups: int, entry: np.ndarray) -> np.ndarray:
    """Per group, the ``entry`` of its largest positive evidence (the first on ties; -1: none)."""
    best = np.full(groups, -np.inf)
    np.maximum.at(best, group, evidence)
    at = np.flatnonzero((evidence == best[group]) & (evidence > 0))
    earliest = np.full(groups, Slots.UNSET, dtype=np.int64)
    np.minimum.at(earliest, group[at], at)
    found = earliest != Slots.UNSET
    out = np.full(groups, -1, dtype=np.int64)
    out[found] = entry[earliest[found]]
    return out


def segment_max(values: np.ndarray, starts: np.ndarray, empty: float = 0.0) -> np.ndarray:
    """The maximum of each segment of ``values`` (rows, or rows x columns: per column), ``empty``
    for an empty one.

    >>> segment_max(np.array([[1.0, 5.0], [3.0, 2.0]]), np.array([0, 2, 2])).tolist()
    [[3.0, 5.0], [0.0, 0.0]]
    """
    out = np.full((starts.size - 1, *values.shape[1:]), empty, dtype=np.float64)
    full = starts[1:] > starts[:-1]
    if full.any():
        out[full] = np.maximum.reduceat(values, starts[:-1][full], axis=0)
    return out


def segment_scale(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The standard deviation of each segment of ``values`` (1 where it is 0 or the segment is
    empty): dividing by it puts two scorers' scores of a request on one scale.

    >>> segment_scale(np.array([1.0, 3.0, 2.0, 2.0]), np.array([0, 2, 4, 4])).tolist()
    [1.0, 1.0, 1.0]
    >>> segment_scale(np.array([0.0, 4.0]), np.array([0, 2])).tolist()
    [2.0]
    """
    sizes = np.diff(starts)
    out = np.ones(sizes.size)
    full = sizes > 0
    if full.any():
        at = starts[:-1][full]
        mean = np.add.reduceat(values, at) / sizes[full]
        spread = np.add.reduceat(values * values, at) / sizes[full] - mean * mean
        std = np.sqrt(np.maximum(spread, 0.0))
        out[full] = np.where(std > 1e-12, std, 1.0)
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
