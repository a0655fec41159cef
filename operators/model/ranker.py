"""The learned ranker: a torch model over each candidate's features, trained online with the
next event's item as the positive and the request's other candidates as negatives (a softmax
over the candidates, one Adam step per learning batch).

Features of a candidate (``FEATURES``): the generators' scores, scaled per request as the
fusion scales them; whether each generator proposed it; its popularity; and the same scores
crossed with the request's context (how long the user's history is), so that how much each
generator counts can depend on who is asking, and with the request's situation
(``CONTEXT``: what the session and the window features say about the user and their last
item when the list is served; a user mid-session follows their last items, one just back
follows what is trending). The scorer is linear in these features, so each feature's
contribution to a score (weight x value) is exact and names the reason of a recommendation.

Training is deterministic by events: the examples of a batch are the batch's own events
(every ``every``-th taken event), their candidates come from the model as of the batch's start,
and the step runs on one thread, so replaying the update log gives the same weights bit for
bit. The model and Adam's moments are part of the snapshot.

>>> r = LearnedRanker(seed=1)
>>> x = np.zeros((3, len(FEATURES))); x[0, 0] = 1.0                  # one request, three candidates
>>> for _ in range(50):
...     r.learn(x, np.array([0, 3]), np.array([0]))
>>> int(np.argmax(r.score(x)))
0
"""

from __future__ import annotations

import math

import numpy as np
import torch

from operators.features.windows import WindowFeatures

_OWN = (
    "co_occurrence", "regression", "embedding", "trending",           # scaled scores
    "co_occurrence last item",                                        # with the most recent item alone
    "by_co_occurrence", "by_regression", "by_embedding", "by_trending",   # proposed by
    "popularity",                                                     # log count / log max count
    # the scaled scores x log history length
    "co_occurrence x history", "regression x history", "embedding x history", "trending x history",
)
# The request's situation when its list is served (``request_context``), each log-squashed to
# [0, 1): the events of the user's current session so far; the seconds between the user's last
# two events (0 for a first event); the user's events in the short and
# long windows; the user's last item's events in the short window and its trending score; the
# items active in the short window. Each is crossed with the generators' scores (``CROSSED``).
CONTEXT = ("session", "gap", "user short", "user long", "last item short", "last item trending", "active items")
CROSSED = ("co_occurrence", "co_occurrence last item", "regression", "trending")
FEATURES = (*_OWN, *(f"{g} x {c}" for c in CONTEXT for g in CROSSED))
GENERATOR_OF = {f: f.split(" ")[0].removeprefix("by_").replace("popularity", "trending") for f in FEATURES}
# Groups of features that an ablation (OnlineConfig.ranker_without, jobs.evaluate --without) hides.
FEATURE_GROUPS: dict[str, tuple[str, ...]] = {
    "window": tuple(f for f in FEATURES if f.split(" x ")[-1] in CONTEXT[2:]),
    "session": tuple(f for f in FEATURES if f.split(" x ")[-1] in ("session", "gap")),
    "history": tuple(f for f in FEATURES if f.endswith(" x history")),
    "last_item": tuple(f for f in FEATURES if f.startswith("co_occurrence last item")),
    "proposed": tuple(f for f in FEATURES if f.startswith("by_")),
    "popularity": ("popularity",),
}


def request_context(session_events: int, gap_ms: int | None, window: WindowFeatures | None) -> tuple[float, ...]:
    """A request's ``CONTEXT`` from the user's session depth, the gap before their last event
    and the window features of that event (zeros where there are none).

    >>> request_context(0, None, None)
    (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    >>> round(request_context(1, None, None)[0], 4)      # log1p(1) / (1 + log1p(1))
    0.4094
    """
    raw = [session_events, (gap_ms or 0) / 1000, 0.0, 0.0, 0.0, 0.0, 0.0]
    if window is not None:
        raw[2:] = [window.count("user", "short"), window.count("user", "long"), window.count("item", "short"),
                   window.item_trending, window.active_items]
    logs = [math.log1p(max(float(v), 0.0)) for v in raw]
    return tuple(v / (1.0 + v) for v in logs)


def ranker_features(norm: np.ndarray, last: np.ndarray, by_cooc: np.ndarray, by_regression: np.ndarray,
                    by_embedding: np.ndarray, by_trending: np.ndarray, popularity: np.ndarray, history: np.ndarray,
                    context: np.ndarray) -> np.ndarray:
    """The ``FEATURES`` of candidate rows: ``norm`` is rows x (co-occurrence, regression,
    embedding, trending) scaled per request; the rest are per row (``history``: the request's
    log history length in 0..1; ``context``: rows x ``CONTEXT``)."""
    crossed = np.column_stack([norm[:, 0], last, norm[:, 1], norm[:, 3]])          # CROSSED
    return np.column_stack([norm, last, by_cooc, by_regression, by_embedding, by_trending, popularity,
                            norm * history[:, None],
                            (context[:, :, None] * crossed[:, None, :]).reshape(len(norm), len(CONTEXT) * len(CROSSED)),
                            ]).astype(np.float64)


class LearnedRanker:
    def __init__(self, seed: int = 7, lr: float = 0.02, every: int = 2) -> None:
        self.lr, self.every = lr, every
        g = torch.Generator().manual_seed(seed)
        self.weights = torch.randn(len(FEATURES), generator=g) * 0.01
        self.weights[0] = 1.0                      # start where the fusion starts: co-occurrence first
        self.optimizer_state: dict[str, torch.Tensor] = {"m": torch.zeros(len(FEATURES)),
                                                         "v": torch.zeros(len(FEATURES))}
        self.steps = 0

    def score(self, features: np.ndarray) -> np.ndarray:
        return features @ self.weights.numpy().astype(np.float64)

    def contributions(self, features: np.ndarray) -> np.ndarray:
        """Each feature's part of each score (rows x features): the explanation."""
        return features * self.weights.numpy().astype(np.float64)

    def learn(self, features: np.ndarray, starts: np.ndarray, targets: np.ndarray) -> None:
        """One Adam step on the requests of a batch: ``starts`` delimits each request's
        candidate rows, ``targets`` is the row of its event's item (each request has one)."""
        if not targets.size:
            return
        threads = torch.get_num_threads()
        torch.set_num_threads(1)          # a replay on another core count must give the same sums
        try:
            self._step(torch.from_numpy(features), starts, torch.from_numpy(targets))
        finally:
            torch.set_num_threads(threads)

    def _step(self, x: torch.Tensor, starts: np.ndarray, targets: torch.Tensor) -> None:
        sizes = np.diff(starts)
        requests, width = sizes.size, int(sizes.max())
        owner = torch.from_numpy(np.repeat(np.arange(requests), sizes))
        slot = torch.from_numpy(np.arange(starts[-1]) - np.repeat(starts[:-1], sizes))
        w = self.weights.clone().requires_grad_()
        padded = torch.full((requests, width), -torch.inf, dtype=x.dtype)
        padded = padded.index_put((owner, slot), x @ w.to(x.dtype))
        target_slot = targets - torch.from_numpy(starts[:-1])
        loss = torch.nn.functional.cross_entropy(padded, target_slot, reduction="mean")
        loss.backward()
        assert w.grad is not None
        grad = w.grad.detach()
        m, v = self.optimizer_state["m"], self.optimizer_state["v"]
        self.steps += 1
        m.mul_(0.9).add_(grad, alpha=0.1)
        v.mul_(0.999).addcmul_(grad, grad, value=0.001)
        m_hat = m / (1 - 0.9 ** self.steps)
        v_hat = v / (1 - 0.999 ** self.steps)
        self.weights = (self.weights - self.lr * m_hat / (v_hat.sqrt() + 1e-8)).detach()

    def state(self) -> dict[str, object]:
        return {"weights": self.weights.clone(), "m": self.optimizer_state["m"].clone(),
                "v": self.optimizer_state["v"].clone(), "steps": self.steps}

    def load(self, state: dict[str, object]) -> None:
        weights, m, v = state["weights"], state["m"], state["v"]
        assert isinstance(weights, torch.Tensor) and isinstance(m, torch.Tensor) and isinstance(v, torch.Tensor)
        self.weights, self.optimizer_state = weights.clone(), {"m": m.clone(), "v": v.clone()}
        self.steps = int(state["steps"])  # type: ignore[call-overload]

    def report(self) -> dict[str, float]:
        return {f: round(float(w), 4) for f, w in zip(FEATURES, self.weights.tolist(), strict=True)}
