"""Bounded item-to-item co-occurrence: each item keeps its ``width`` strongest co-occurring
items (a Space-Saving summary per item), so memory and time per event do not grow with the
catalogue (a dense items x items matrix held 4,096 items in 64 MB and grew a snapshot to
hundreds of MB).

Learning (u, i) adds ``weight * rho_h`` to the pairs (i, h) and (h, i) for u's recent items h
(rho_h falls with h's age), as the dense matrix did. A pair already in its row adds to its
counter; a new pair takes a free slot, or, in a full row, competes with the row's weakest
counter, entering (Space-Saving) with that counter's value plus its own, so a pair that keeps
coming is never shut out and the strongest counters of a row are the true strongest. A
counter's value is an upper bound, off by at most the floor it entered at, which is kept with
it: scores use the lower bound (value minus that error), since an inflated count on a rare item,
divided by that item's small popularity, would otherwise top the lists. Counters decay with the number of
events learned (``half_life_events``; 0 keeps them forever), so old tastes give way.

Everything is a function of the batches learned, in order, with ties broken by item index:
a replay of the same batches gives the same arrays, bit for bit.

>>> nb = ItemNeighbours(width=2)
>>> nb.learn_many(np.array([0, 0, 0]), np.array([1, 2, 1]), np.array([1.0, 1.0, 1.0]))
>>> nb.row(0)
{1: 2.0, 2: 1.0}
>>> nb.learn_many(np.array([0, 0]), np.array([3, 3]), np.array([1.0, 1.5]))   # evicts 2, enters at 1 + 2.5
>>> nb.row(0)                 # lower bounds: 3 entered at the floor 1.0
{3: 2.5, 1: 2.0}
"""

from __future__ import annotations

import math

import numpy as np

EMPTY = -1


class ItemNeighbours:
    name = "co_occurrence"

    def __init__(self, width: int = 128, half_life_events: int = 0) -> None:
        self.width = width
        self.half_life_events = half_life_events
        self.ids = np.full((64, width), EMPTY, dtype=np.int32)
        self.counts = np.zeros((64, width), dtype=np.float32)
        self.errors = np.zeros((64, width), dtype=np.float32)     # the floor each counter entered at
        # Counters are stored divided by ``scale`` (the decay so far), so decaying them all is
        # one multiplication; they are rescaled before float32 would lose them.
        self.scale = 1.0

    def ensure(self, n: int) -> None:
        if n > self.ids.shape[0]:
            # grow by a quarter, not double: the rows are ~3 KB per item, and doubling left up to
            # half of them unused (65,536 rows for 46,554 items, 201 MB, on the 100k-item log)
            size = max(n, self.ids.shape[0] + max(self.ids.shape[0] // 4, 64))
            ids = np.full((size, self.width), EMPTY, dtype=np.int32)
            counts = np.zeros((size, self.width), dtype=np.float32)
            errors = np.zeros((size, self.width), dtype=np.float32)
            old = self.ids.shape[0]
            ids[:old], counts[:old], errors[:old] = self.ids, self.counts, self.errors
            self.ids, self.counts, self.errors = ids, counts, errors

    def decay(self, events: int) -> None:
        """Age every counter by ``events`` learned events."""
        if self.half_life_events <= 0 or events <= 0:
            return
        self.scale *= math.exp(-math.log(2) * events / self.half_life_events)
        if self.scale < 1e-6:
            self.counts *= np.float32(self.scale)
            self.errors *= np.float32(self.scale)
            self.scale = 1.0

    def learn_many(self, rows: np.ndarray, cols: np.ndarray, values: np.ndarray) -> None:
        """Add ``values`` to the pairs (rows[p], cols[p]) (both directions are the caller's)."""
        if not rows.size:
            return
        self.ensure(int(max(rows.max(), cols.max())) + 1)
        n = np.int64(self.ids.shape[0])
        keys, inverse = np.unique(rows.astype(np.int64) * n + cols, return_inverse=True)
        add = (np.bincount(inverse, weights=values) / self.scale).astype(np.float32)
        r, c = keys // n, (keys % n).astype(np.int32)
        match = self.ids[r] == c[:, None]
        known = match.any(axis=1)
        self.counts[r[known], match[known].argmax(axis=1)] += add[known]
        if not known.all():
            self._admit(r[~known], c[~known], add[~known])

    def _admit(self, r: np.ndarray, c: np.ndarray, add: np.ndarray) -> None:
        """New pairs into their rows (``r`` ascending). A row's occupied slots are a prefix:
        new pairs fill its free slots, strongest first; the rest (Space-Saving) each take the
        place of one of the row's weakest counters, the strongest new pair the weakest slot,
        entering at that counter's value plus their own, with that value as their error."""
        rows, at = np.unique(r, return_inverse=True)
        order = np.lexsort((c, -add, at))
        at, c, add = at[order], c[order], add[order]
        rank = np.arange(at.size) - np.searchsorted(at, np.arange(rows.size))[at]   # among the row's new pairs
        fill = (self.ids[rows] != EMPTY).sum(axis=1)
        free = self.width - fill
        direct = rank < free[at]
        place = rows[at[direct]], fill[at[direct]] + rank[direct]
        self.ids[place], self.counts[place], self.errors[place] = c[direct], add[direct], 0.0
        extra = ~direct & (rank - free[at] < self.width)
        if not extra.any():
            return
        at, c, add, rank = at[extra], c[extra], add[extra], rank[extra] - free[at[extra]]
        full, row_of = np.unique(at, return_inverse=True)
        counts = self.counts[rows[full]]
        weakest = np.argsort(counts, axis=1, kind="stable")        # ties: the lower slot
        fits = rank < _flooded(np.take_along_axis(counts, weakest, axis=1),
                               np.bincount(row_of, weights=add, minlength=full.size))[row_of]
        at, c, add, rank, row_of = at[fits], c[fits], add[fits], rank[fits], row_of[fits]
        slot = weakest[row_of, rank]
        place = rows[at], slot
        floor = self.counts[place]
        self.ids[place], self.counts[place], self.errors[place] = c, floor + add, floor

    def lower_bounds(self, rows: np.ndarray) -> np.ndarray:
        """The guaranteed part of the rows' counters (decayed): rows x width."""
        return (self.counts[rows] - self.errors[rows]) * np.float32(self.scale)

    def row(self, item: int) -> dict[int, float]:
        """One item's neighbours and their (decayed) counters' lower bounds, strongest first."""
        ids, counts = self.ids[item], self.lower_bounds(np.array(item))
        order = np.lexsort((ids, -counts))
        return {int(ids[j]): float(counts[j]) for j in order if ids[j] != EMPTY}

    def lookup(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """The counters' lower bounds of the pairs (rows[p], cols[p]) (0 where absent), broadcasting."""
        rows, cols = np.broadcast_arrays(rows, cols)
        out = np.zeros(rows.shape)
        inside = rows < self.ids.shape[0]
        r, c = rows[inside], cols[inside]
        match = self.ids[r] == c[..., None]
        out[inside] = (self.lower_bounds(r) * match).sum(axis=-1)
        return out

    @property
    def nbytes(self) -> int:
        return self.ids.nbytes + self.counts.nbytes + self.errors.nbytes


def _flooded(ascending: np.ndarray, mass: np.ndarray) -> np.ndarray:
    """Per row, how many of its weakest counters (``ascending``, rows x width) the new pairs'
    total ``mass`` would reach, one pair at a time, in Space-Saving: each enters at the row's
    floor plus its own value, so the mass levels the weakest counters up like water. Counters
    above that level keep their place; new pairs beyond the reached slots are dropped.

    >>> _flooded(np.array([[1.0, 1.0, 5.0, 9.0], [1.0, 2.0, 3.0, 4.0]]), np.array([2.0, 100.0])).tolist()
    [2, 4]
    """
    width = ascending.shape[1]
    j = np.arange(1, width + 1)
    level = (mass[:, None] + np.cumsum(ascending, axis=1)) / j             # the level if j slots share the mass
    reached = level >= ascending                                           # slot j-1 lies under that level
    return np.maximum(reached.sum(axis=1), 1)
