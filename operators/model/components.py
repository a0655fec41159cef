"""The recommenders the online ranker fuses. Each scores the candidates of a user context
(candidates.py) and learns from events; none imports pyflink and none keeps per-user state (the job keeps the
user's recent items in Flink keyed state and passes them in).

Item indices come from the ranker's catalogue (first seen, first numbered). Co-occurrence keeps
a bounded number of neighbours per item (any catalogue); the regression is a dense item-item
model over the first ``max_dense_items`` items only (its head); later items are left to the
other components.

>>> import numpy as np
>>> c = Cooccurrence(width=4, alpha=0.5, beta=0.5)
>>> c.learn_many(np.array([0]), [(np.array([1]), np.array([1.0]))], np.array([1.0]))
>>> c.neighbours.row(0), c.neighbours.row(1)
({1: 1.0}, {0: 1.0})
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch
import torch.nn.functional as F

from operators.model.neighbours import ItemNeighbours


def _grow_square(m: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros((size, size), dtype=m.dtype)
    out[: m.shape[0], : m.shape[1]] = m
    return out


def _ensure_square(m: np.ndarray, n: int, capacity: int) -> np.ndarray:
    """``m`` grown (doubling, at most to ``capacity``) to cover ``n`` items, or ``m`` itself."""
    n = min(n, capacity)
    return _grow_square(m, min(capacity, max(n, 2 * m.shape[0]))) if n > m.shape[0] else m


def _pairs(items: np.ndarray, contexts: list[tuple[np.ndarray, np.ndarray]], weights: np.ndarray,
           capacity: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The symmetric updates a batch makes to an item-item matrix, in event order: for each
    event, (item, h) then (h, item) with ``rho_h * weight``, for its context items h (all
    inside ``capacity``; an event whose item is outside adds nothing)."""
    rows, cols, vals = [], [], []
    for item, (h, rho), w in zip(items.tolist(), contexts, weights.tolist(), strict=True):
        if item >= capacity or not h.size:
            continue
        keep = h < capacity
        hk = h[keep]
        if hk.size:
            rows += [np.full(hk.size, item), hk]
            cols += [hk, np.full(hk.size, item)]
            v = rho[keep] * w
            vals += [v, v]
    if not rows:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0)
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)


def _bag(matrix: np.ndarray, contexts: list[tuple[np.ndarray, np.ndarray]], rows: int, n: int,
         scale: np.ndarray | None = None) -> np.ndarray:
    """Per context, ``sum_h w_h * matrix[h, :n]`` over its items h below ``rows`` (w_h: its
    weight, divided by ``scale[h]`` if given): contexts x n (columns beyond the matrix's stay
    zero). One small product per context, so a context's scores do not depend on the others
    in its batch (and one request, the job's usual batch, pays no batching overhead)."""
    out = np.zeros((len(contexts), n))
    m = min(matrix.shape[1], n)
    if m == 0 or rows == 0:
        return out
    for row, (h, w) in enumerate(contexts):
        keep = h < rows
        if keep.any():
            hk = h[keep]
            weights = w[keep] / scale[hk] if scale is not None else w[keep]
            out[row, :m] = weights.astype(matrix.dtype) @ matrix[hk, :m]
    return out


_SOLVER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ease-solve")


def _ease(gram: np.ndarray, l2: float) -> np.ndarray:
    """EASE weights from a Gram matrix: ``B = -P / diag(P)``, ``P = (G + l2 I)^-1``, zero diagonal."""
    gram[np.diag_indices_from(gram)] += l2
    p = np.linalg.inv(gram)
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    return b.astype(np.float32)


def dense_pairs(matrix: np.ndarray) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """``pairs`` of a dense matrix: matrix[rows, cols], 0 outside it."""
    def values(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        rows, cols = np.broadcast_arrays(rows, cols)
        inside = (rows < matrix.shape[0]) & (cols < matrix.shape[1])
        out = np.zeros(rows.shape)
        out[inside] = matrix[rows[inside], cols[inside]]
        return out
    return values

class Cooccurrence:
    """(b) Incremental item-to-item co-occurrence over users' recent items, recency-weighted:
    learning (u, i) adds ``weight * rho_h`` to the pair (i, h) for each recent item h of u,
    rho_h falling with h's age in u's history. Each item keeps only its ``width`` strongest
    pairs (neighbours.py), so the state is items x width, never items x items. Scores are the
    user's recent items' neighbours, normalised like an asymmetric cosine:
    ``C[h, j] / (n_h^alpha * n_j^beta)``."""

    name = "co_occurrence"

    def __init__(self, width: int, alpha: float, beta: float, half_life_events: int = 0) -> None:
        self.alpha, self.beta = alpha, beta
        self.neighbours = ItemNeighbours(width, half_life_events)

    def ensure(self, n: int) -> None:
        self.neighbours.ensure(n)

    def learn_many(self, items: np.ndarray, contexts: list[tuple[np.ndarray, np.ndarray]],
                   weights: np.ndarray) -> None:
        """Learn a batch: each event (u, i) adds ``weight * rho_h`` to the pairs (i, h) and
        (h, i) for u's recent items h; the counters age by the batch's events first."""
        self.neighbours.decay(items.size)
        rows, cols, vals = _pairs(items, contexts, weights, np.iinfo(np.int32).max)
        self.neighbours.learn_many(rows, cols, vals)

    def evidence_weights(self, contexts: list[tuple[np.ndarray, np.ndarray]], counts: np.ndarray,
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The contexts' items as flat (context, item, weight) rows, ``weight = rho_h / n_h^alpha``:
        a candidate's evidence is the sum over them of ``weight * C[h, candidate]``."""
        owner, hist, rho = _flatten(contexts, self.neighbours.ids.shape[0])
        return owner, hist, rho / np.maximum(counts[hist], 1.0) ** self.alpha

    def neighbours_of(self, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The items' neighbour slots and counters' lower bounds: items x width each."""
        return self.neighbours.ids[items], self.neighbours.lower_bounds(items).astype(np.float64)

    def pair_values(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """C[rows, cols] (broadcast; 0 where a pair is not kept)."""
        return self.neighbours.lookup(rows, cols)

    def similarity(self, items: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Cosine-like similarity between ``items`` (for diversity re-ranking)."""
        pair = self.pair_values(items[:, None], items[None, :])
        norm = np.sqrt(np.maximum(counts[items], 1.0))
        return np.minimum(np.maximum(pair, pair.T) / norm[:, None] / norm[None, :], 1.0)


def _flatten(contexts: list[tuple[np.ndarray, np.ndarray]], rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The contexts' items below ``rows`` as flat arrays: owning context, item, weight."""
    sizes = [h.size for h, _ in contexts]
    if not sum(sizes):
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0)
    owner = np.repeat(np.arange(len(contexts)), sizes)
    hist = np.concatenate([h for h, _ in contexts]).astype(np.int64)
    rho = np.concatenate([r for _, r in contexts]).astype(np.float64)
    keep = hist < rows
    return owner[keep], hist[keep], rho[keep]


class ItemRegression:
    """(d) A linear item-to-item model (EASE: ridge regression of each item on the others,
    closed form ``B = -P / diag(P)`` with ``P = (G + l2 I)^-1``), where the Gram matrix ``G`` is
    updated with every learning batch (recency-weighted pairs, like co-occurrence) and solved
    from the Gram matrix as of each refit point: every ``refit_every`` learned events, and
    early, at 500, 1,000 and 2,000.

    The solve (cubic in the catalogue) runs on a background thread
    (LAPACK releases the GIL) while learning goes on, and its weights are installed at the
    first learning boundary at least ``install_lag`` events after the refit point, waiting
    for the thread if it is not done. Both points are counts of events, so a replay installs
    the same weights at the same event; a snapshot taken in between waits for the solve and
    carries its weights until their install point."""

    name = "regression"
    EARLY_REFITS = (500, 1_000, 2_000)

    def __init__(self, capacity: int, l2: float, refit_every: int, install_lag: int = 1_024) -> None:
        self.capacity, self.l2, self.refit_every, self.install_lag = capacity, l2, refit_every, install_lag
        self.gram = np.zeros((64, 64), dtype=np.float64)
        self.weights = np.zeros((0, 0), dtype=np.float32)
        self.fitted_at = 0
        self.solving: Future[np.ndarray] | np.ndarray | None = None   # the solve in flight, or its result
        self.solving_at = 0           # the refit point it solves the Gram matrix of
        self.install_at = 0           # install it at the first boundary at or after this

    def ensure(self, n: int) -> None:
        self.gram = _ensure_square(self.gram, n, self.capacity)

    def learn_many(self, items: np.ndarray, contexts: list[tuple[np.ndarray, np.ndarray]],
                   weights: np.ndarray) -> None:
        """Add a batch's pairs to the Gram matrix, in order."""
        inside = items < self.capacity
        if not inside.any():
            return
        self.ensure(int(items[inside].max()) + 1)
        rows, cols, vals = _pairs(items, contexts, weights, self.capacity)
        if rows.size:
            self.ensure(int(max(rows.max(), cols.max())) + 1)
        np.add.at(self.gram, (items[inside], items[inside]), weights[inside])
        np.add.at(self.gram, (rows, cols), vals)

    def due_between(self, before: int, after: int) -> bool:
        """Whether a refit point lies in (before, after]: a batch that crosses one refits at its end."""
        return (any(before < r <= after for r in self.EARLY_REFITS)
                or after // self.refit_every > before // self.refit_every)

    def boundary(self, n: int, before: int, after: int) -> None:
        """A learning batch took the model from ``before`` to ``after`` learned events (``n``
        items): install a solve whose point has come, then start one if a refit point was crossed."""
        if self.solving is not None and after >= self.install_at:
            self.weights = self.solved()
            self.fitted_at, self.solving = self.solving_at, None
        if self.due_between(before, after):
            if self.solving is not None:      # a refit point before the last one was installed
                self.weights, self.fitted_at = self.solved(), self.solving_at
            m = min(n, self.capacity, self.gram.shape[0])
            if m:
                self.solving = _SOLVER.submit(_ease, self.gram[:m, :m].copy(), self.l2)
                self.solving_at, self.install_at = after, after + self.install_lag

    def solved(self) -> np.ndarray:
        """The weights of the solve in flight (waiting for it)."""
        if isinstance(self.solving, Future):
            self.solving = self.solving.result()
        assert self.solving is not None
        return self.solving

    def head_scores(self, contexts: list[tuple[np.ndarray, np.ndarray]], n: int) -> np.ndarray:
        """Each context's scores over the head (the items the weights cover, at most the
        first ``n``): contexts x head, bounded by ``capacity`` whatever the catalogue."""
        m = min(self.weights.shape[0], n)
        return _bag(self.weights, contexts, m, m)



class Embeddings:
    """(a) Item embeddings trained online with BPR and sampled negatives: a user is the
    recency-weighted mean of the input embeddings of their recent items, an item's score is
    ``user . out[item] + bias[item]``. Training is micro-batched: events queue up and every
    ``batch_size`` of them make one SGD step; negatives are drawn uniformly from the known
    items by a generator seeded with (seed, batch number), so a replay draws the same ones."""

    name = "embedding"

    def __init__(self, dim: int, lr: float, negatives: int, batch_size: int, seed: int) -> None:
        self.dim, self.lr, self.negatives, self.batch_size, self.seed = dim, lr, negatives, batch_size, seed
        g = torch.Generator().manual_seed(seed)
        self.inp = torch.randn(64, dim, generator=g) * 0.1
        self.out = torch.randn(64, dim, generator=g) * 0.1
        self.bias = torch.zeros(64)
        self.pending: list[tuple[list[int], list[float], int]] = []
        self.batches = 0
        self._views: tuple[tuple[torch.Tensor, ...], tuple[np.ndarray, ...]] | None = None

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``inp``, ``out`` and ``bias`` as numpy views (kept while the tensors are the same
        objects: a view costs ~20 us to make, and the job's path asks for them per request)."""
        tensors = (self.inp, self.out, self.bias)
        if self._views is None or any(a is not b for a, b in zip(self._views[0], tensors, strict=True)):
            self._views = (tensors, tuple(t.numpy() for t in tensors))
        inp, out, bias = self._views[1]
        return inp, out, bias

    def ensure(self, n: int) -> None:
        if n <= self.inp.shape[0]:
            return
        size = max(n, 2 * self.inp.shape[0])
        g = torch.Generator().manual_seed(self.seed + size)
        extra = size - self.inp.shape[0]
        self.inp = torch.cat([self.inp, torch.randn(extra, self.dim, generator=g) * 0.1])
        self.out = torch.cat([self.out, torch.randn(extra, self.dim, generator=g) * 0.1])
        self.bias = torch.cat([self.bias, torch.zeros(extra)])

    def learn(self, item: int, history: np.ndarray, rho: np.ndarray, n_items: int) -> None:
        if history.size:
            self.pending.append((history.tolist(), (rho / rho.sum()).tolist(), item))
        if len(self.pending) >= self.batch_size:
            self.step(n_items)

    def step(self, n_items: int) -> None:
        batch, self.pending = self.pending, []
        if not batch or n_items < 2:
            return
        # On one thread: torch splits the backward pass's sums over its intra-op threads, whose
        # number defaults to the machine's cores, and a different split gives (slightly)
        # different numbers. The update log must replay to the same model bit for bit, also on
        # a TaskManager with another core count.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            self._step(batch, n_items)
        finally:
            torch.set_num_threads(threads)

    def _step(self, batch: list[tuple[list[int], list[float], int]], n_items: int) -> None:
        self.ensure(n_items)
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.batches)
        self.batches += 1
        flat = [h for ctx, _, _ in batch for h in ctx]
        weights = torch.tensor([w for _, ws, _ in batch for w in ws], dtype=torch.float32)
        offsets = torch.tensor(np.cumsum([0] + [len(ctx) for ctx, _, _ in batch[:-1]]), dtype=torch.long)
        pos = torch.tensor([i for _, _, i in batch])
        neg = torch.randint(n_items, (len(batch), self.negatives), generator=g)
        inp, out, bias = (t.requires_grad_() for t in (self.inp, self.out, self.bias))
        user = F.embedding_bag(torch.tensor(flat), inp, offsets, mode="sum", per_sample_weights=weights)
        s_pos = (user * out[pos]).sum(1) + bias[pos]
        s_neg = (user[:, None, :] * out[neg]).sum(2) + bias[neg]
        loss = -F.logsigmoid(s_pos[:, None] - s_neg).sum() / self.negatives
        loss.backward()
        with torch.no_grad():
            for t in (inp, out, bias):
                t -= self.lr * t.grad   # type: ignore[operator]
        self.inp, self.out, self.bias = inp.detach(), out.detach(), bias.detach()

    def users(self, contexts: list[tuple[np.ndarray, np.ndarray]], n: int) -> np.ndarray:
        """Per context, its user vector: the recency-weighted mean of the input embeddings of
        its recent items (contexts x dim; no history: zeros)."""
        self.ensure(max(n, 1))
        return _bag(self.arrays()[0], [(h, r / r.sum() if h.size else r) for h, r in contexts],
                    self.inp.shape[0], self.dim)

    def score_rows(self, users: np.ndarray, request: np.ndarray, item: np.ndarray) -> np.ndarray:
        """``user . out[item] + bias[item]`` for (request, item) rows, ``users`` being the
        requests' vectors (a request without history scores 0)."""
        if not item.size:
            return np.zeros(item.size)
        _, vectors, bias = self.arrays()
        out = np.einsum("rd,rd->r", users[request], vectors[item]) + bias[item]
        out[~users.any(axis=1)[request]] = 0.0
        return out

    def vectors(self, n: int) -> np.ndarray:
        """The first ``n`` items' output embeddings with their bias as one more column (n x (dim + 1))."""
        self.ensure(n)
        _, out, bias = self.arrays()
        return np.hstack([out[:n], bias[:n, None]])

    def pair_values(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """``inp[row] . out[col]``: how much a recent item speaks for an item (explanations)."""
        rows, cols = np.broadcast_arrays(rows, cols)
        inp, out, _ = self.arrays()
        return np.einsum("...d,...d->...", inp[rows], out[cols])


class Trending:
    """(c) Popularity with exponential time decay (event time): serves users without history
    and lets a new item in as soon as it draws interactions."""

    name = "trending"

    def __init__(self, half_life_ms: int) -> None:
        self.half_life_ms = half_life_ms
        self.values = np.zeros(64)
        self.clock: int | None = None

    def learn_many(self, items: np.ndarray, ts: np.ndarray, weights: np.ndarray) -> None:
        """Learn a batch: each event's weight decays from the clock as of it (the running
        maximum of event times) to the clock at the batch's end, in one pass."""
        if not items.size:
            return
        start = int(ts[0]) if self.clock is None else self.clock
        clocks = np.maximum.accumulate(np.maximum(ts, start))
        end = int(clocks[-1])
        rate = math.log(2) / self.half_life_ms
        if self.clock is not None and end > self.clock:
            self.values *= math.exp(-rate * (end - self.clock))
        self.clock = end
        top = int(items.max()) + 1
        if top > self.values.size:
            grown = np.zeros(max(top, 2 * self.values.size))
            grown[: self.values.size] = self.values
            self.values = grown
        np.add.at(self.values, items, weights * np.exp(-rate * (end - clocks)))

    def values_of(self, items: np.ndarray) -> np.ndarray:
        inside = items < self.values.size
        return np.where(inside, self.values[np.where(inside, items, 0)], 0.0)

    def scores(self, n: int) -> np.ndarray:
        out = np.zeros(n)
        m = min(n, self.values.size)
        out[:m] = self.values[:m]
        return out
