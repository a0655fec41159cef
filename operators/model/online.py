"""The online ranker: four recommenders fused with weights that follow their recent prequential
performance, diversity re-ranking, and a reason for every recommended item.

No pyflink import and no per-user state: the caller passes the user's recent items (the job
keeps them in Flink keyed state). ``learn``, ``recommend``, ``snapshot`` and ``restore`` are the
whole contract; ``observe`` is the "test" half of test-then-learn: it scores the event's item
against what the ranker would have recommended and measures the fusion's blends.

Learning is batched by event count (DESIGN: "batched model step"): ``learn`` takes events into
a pending batch, and every ``learn_every`` taken events the model learns the whole batch at
once, vectorised, in order. Between two boundaries the model does not change, so everything it
answers for an event depends on the events of earlier batches only, never on how the events of
its own batch were grouped, timed or flushed. A replay of the same events (the update log)
therefore reproduces the model bit for bit; the pending batch is part of the snapshot.

>>> from operators.records import Event
>>> r = OnlineRanker(OnlineConfig(batch_size=2, learn_every=3))
>>> for n, (user, item, history) in enumerate([("a", "x", ()), ("a", "y", ("x",))]):
...     _ = r.learn([Interaction(Event(f"e{n}", user, item, "click", None, n), history)])
>>> r.recommend(["x"], k=1), len(r.pending)          # two events taken, none learned yet
([], 2)
>>> _ = r.learn([Interaction(Event("e2", "b", "x", "click", None, 2), ())])   # the third: a boundary
>>> [(rec.item_id, rec.reason, rec.related_item) for rec in r.recommend(["x"], k=1)]
[('y', 'co_occurrence', 'x')]
>>> r.recommend([], k=1)[0].reason       # no history: trending
'trending'
"""

from __future__ import annotations

import hashlib
import io
import itertools
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch

from operators.model.ann import EmbeddingIndex
from operators.model.candidates import (
    Candidates,
    Slots,
    ranks_of_targets,
    segment_max,
    segment_scale,
    top_k_per_segment,
)
from operators.model.components import Cooccurrence, Embeddings, ItemRegression, Trending, dense_pairs
from operators.model.evaluation import catalogue_auc, list_quality
from operators.model.health import UNTESTED, HealthGuard
from operators.model.progress import LearnedEvents, Writer
from operators.model.ranker import CONTEXT, FEATURE_GROUPS, FEATURES, GENERATOR_OF, LearnedRanker, ranker_features
from operators.records import Event, Recommendation, SourcePosition

EVENT_WEIGHTS = {"view": 1.0, "click": 2.0, "add_to_cart": 3.0, "purchase": 5.0}
COMPONENTS = ("co_occurrence", "regression", "embedding", "trending")
TIE_BREAK = 1e-9       # weight of trending in every fused score, whatever the blend: breaks ties


@dataclass(frozen=True)
class OnlineConfig:
    seed: int = 7
    history: int = 30                     # recent items used to score (most recent first)
    history_decay: float = 0.9            # weight of the k-th most recent item: decay**k
    knn_history: int = 20
    knn_decay: float = 0.8                # co-occurrence scores the k-th most recent item's neighbours: decay**k
    knn_alpha: float = 0.5                # co-occurrence normalisation n_h^alpha * n_j^beta
    knn_beta: float = 0.4
    regression_l2: float = 400.0
    regression_pair_decay: float = 0.95  # Gram matrix pairs: weight decay**k over the `history` items
    regression_decay: float = 0.8         # the regression scores the k-th most recent item with weight decay**k
    refit_every: int = 5_000              # learned events between regression refits
    max_dense_items: int = 2_048          # the regression's dense item-item matrices cover this many items
    neighbours: int = 256                 # co-occurring items kept per item
    neighbour_half_life_events: int = 50_000   # co-occurrence counters halve every this many events (0: never)
    dim: int = 32
    learning_rate: float = 1.0            # the embeddings' SGD step (0.05: their top-10 hit rate 8 %; 1.0: 13 %)
    negatives: int = 8
    batch_size: int = 256                 # events per embedding update (one torch step)
    learn_every: int = 256                # events per learning batch (the model changes only between them)
    trending_half_life_ms: int = 7 * 86_400_000
    # EW rate of the scorers' hit rates, measured on every fusion_every-th observed event: a
    # half-life of ~1,400 measurements (~5,500 events). The scorers' rates differ by 0.01 to
    # 0.03; at 0.008 a rate's noise (sd ~0.026 at a hit rate of 0.2) was as large, and the
    # lists flipped between scorers on noise (ml-100k Recall@10 0.2069; 0.2094 at 0.0005)
    fusion_rate: float = 0.0005
    fusion_every: int = 4
    mmr_lambda: float = 1.0               # 1 = relevance only; lower trades relevance for diversity
    mmr_candidates: int = 50
    cooc_candidates: int = 200            # candidates co-occurrence proposes per request (its largest sums of evidence)
    regression_candidates: int = 100      # candidates the regression proposes per request (its best over the head)
    trending_candidates: int = 100        # the trending top-N every request gets as candidates
    embedding_candidates: int = 50        # candidates the embeddings' nearest-neighbour search proposes per request
    index_probes: int = 8                 # clusters of the embedding index a search scores (of ~sqrt(items))
    index_every: int = 20_000             # learned events between rebuilds of the embedding index
    ranker_rate: float = 0.02             # Adam step size of the learned ranker
    ranker_every: int = 2                 # every n-th taken event is a training example of the learned ranker
    ranker_without: tuple[str, ...] = ()  # ranker.FEATURE_GROUPS it does not see (ablations; kept at 0)
    # the health guard (health.py): every guard_every learned events (0: off), roll back to the
    # last good state on a non-finite parameter or when the served-list hit rate of the last
    # guard_short_ms falls below guard_ratio x that of the guard_long_ms before it (each window
    # with guard_min_tests tests or more)
    guard_every: int = 0
    guard_short_ms: int = 3_600_000
    guard_long_ms: int = 86_400_000
    guard_ratio: float = 0.7
    guard_min_tests: int = 200

    def event_weight(self, event: Event) -> float:
        if event.event_type == "rating":     # 1..5 stars -> 0.5..1.5: every rating is a signal
            return 0.25 + 0.25 * (event.value if event.value is not None else 3.0)
        return EVENT_WEIGHTS.get(event.event_type, 1.0)


@dataclass(frozen=True, slots=True)
class Interaction:
    """An event, the user's recent items before it (most recent last), the situation of the
    request it answers (ranker.CONTEXT, as of the user's previous event; empty: unknown) and
    its served-list test (1 hit, 0 miss, UNTESTED: no list served before; the health guard's input)."""

    event: Event
    history: Sequence[str]
    situation: tuple[float, ...] = ()
    served: int = UNTESTED


@dataclass
class AdaptiveFusion:
    """Weights over the components, chosen online: a grid of blends, the learned ranker
    (ranker.py) and the two stacked (the ranker's score plus the best blend's, each divided by
    its spread over the request's candidates) are scored on every measured event (would its
    top-10 have held the event's item?) and each keeps an exponentially weighted hit rate.
    The best blend so far weights the blend; the lists come from whichever of the three
    scorers measures best, where the blend's rate is that of the blends as they served (each
    measurement's hit of the blend leading at the time), not the best of eighteen noisy
    rates, which is biased upwards by the choice. Each component's own hit rate is kept too,
    for reports. A measurement is the blends' hits, then the learned ranker's, then the
    components', then the stacked one's (absent from update-log records written before it
    existed: then its rate stays as it is)."""

    rate: float
    blends: np.ndarray = field(default_factory=lambda: np.array(
        list(itertools.product([1.0], [0, 0.5, 1], [0, 0.3], [0, 0.05, 0.2]))))
    blend_hits: np.ndarray = field(default_factory=lambda: np.zeros(0))
    component_hits: np.ndarray = field(default_factory=lambda: np.zeros(len(COMPONENTS)))
    stacked_hits: float = 0.0
    chosen_hits: float = 0.0           # the blends as they serve: each measurement's hit of the blend leading then

    def __post_init__(self) -> None:
        if self.blend_hits.size != len(self.blends) + 1:
            self.blend_hits = np.zeros(len(self.blends) + 1)        # the last: the learned ranker
            # until evidence arrives, the blend that leans on co-occurrence, then regression
            self.blend_hits[self._index_of((1, 0.5, 0, 0.05))] = 1e-9

    def _index_of(self, weights: tuple[float, ...]) -> int:
        return int(np.flatnonzero((self.blends == np.array(weights)).all(axis=1))[0])

    @property
    def leader(self) -> str:
        """What orders the lists: "blend", "learned" (the learned ranker alone) or "stacked"."""
        learned = float(self.blend_hits[-1])
        if self.stacked_hits > max(self.chosen_hits, learned):      # ties: the blend, then the ranker alone
            return "stacked"
        return "learned" if learned > self.chosen_hits else "blend"

    @property
    def learned(self) -> bool:
        """Whether the learned ranker orders the lists, alone or stacked (then its features
        name the reasons)."""
        return self.leader != "blend"

    @property
    def best_blend(self) -> int:
        """The index of the blend with the best rate so far."""
        return int(np.argmax(self.blend_hits[: len(self.blends)]))

    @property
    def weights(self) -> np.ndarray:
        """The best blend's weights (the best of the blends when the learned ranker leads:
        they still scale the parts an explanation names)."""
        return self.blends[self.best_blend]

    def component_hits_of(self, hits: np.ndarray) -> np.ndarray:
        """The per-component part of a measurement (reports)."""
        nb = len(self.blends) + 1
        return hits[nb: nb + len(COMPONENTS)]

    def apply(self, hits: np.ndarray) -> None:
        nb = len(self.blends) + 1
        chosen = float(hits[self.best_blend])
        self.chosen_hits += self.rate * (chosen - self.chosen_hits)
        self.blend_hits += self.rate * (hits[:nb] - self.blend_hits)
        self.component_hits += self.rate * (self.component_hits_of(hits) - self.component_hits)
        if hits.size > nb + len(COMPONENTS):
            self.stacked_hits += self.rate * (float(hits[nb + len(COMPONENTS)]) - self.stacked_hits)


class Test(NamedTuple):
    """One event's test before learning (``OnlineRanker.observe``)."""

    rank: int | None                # the item in the top-k: 0.., -1 absent, None not asked
    hits: np.ndarray | None         # the fusion's measurement of it (blends, then components)
    auc: float | None = None        # the item against every other item the user may get (None: not ranked)


@dataclass
class Tally:
    """Observed events counted apart from a ranker: which of them the fusion measures
    (every ``fusion_every``-th) is decided by this count."""

    observed: int = 0


class OnlineRanker:
    def __init__(self, config: OnlineConfig | None = None) -> None:
        self.config = c = config or OnlineConfig()
        self.item_ids: list[str] = []
        self.index: dict[str, int] = {}
        self.counts = np.zeros(64)
        self.counts_total = 0.0           # the sum of ``counts``: one per learned event (not in the snapshot)
        self.cooc = Cooccurrence(c.neighbours, c.knn_alpha, c.knn_beta, c.neighbour_half_life_events)
        self.regression = ItemRegression(c.max_dense_items, c.regression_l2, c.refit_every)
        self.embedding = Embeddings(c.dim, c.learning_rate, c.negatives, c.batch_size, c.seed)
        self.nearest = EmbeddingIndex(c.index_probes, c.index_every, c.seed)
        self.trending = Trending(c.trending_half_life_ms)
        self.fusion = AdaptiveFusion(c.fusion_rate)
        self.learned = LearnedRanker(c.seed, c.ranker_rate, c.ranker_every)
        unknown = set(c.ranker_without) - set(FEATURE_GROUPS)
        if unknown:
            raise ValueError(f"unknown ranker feature groups {sorted(unknown)}; known: {sorted(FEATURE_GROUPS)}")
        self._hidden = np.array([FEATURES.index(f) for g in c.ranker_without for f in FEATURE_GROUPS[g]],
                                dtype=np.int64)
        self.progress = LearnedEvents()
        self.learned_events = 0           # events taken: learned, or pending in the current batch
        self.pending: list[tuple[Interaction, np.ndarray | None]] = []
        self.observed = 0
        self.titles: dict[str, str] = {}     # item metadata, when loaded (not part of the snapshot)
        self._trending: np.ndarray | None = None     # the trending top-N as of the last boundary
        self._trending_mask = np.zeros(0, dtype=bool)   # the same, as a mask over the items
        self._slots = Slots()                            # scratch for grouping candidates
        self.guard = HealthGuard(c.guard_short_ms, c.guard_long_ms, c.guard_ratio, c.guard_min_tests)
        self._good: dict[str, Any] | None = None     # the learned parts at the last healthy check (None: empty)
        self.good_version = 0
        self._changed_since_good = False

    @property
    def positions(self) -> dict[int, int]:
        return self.progress.offsets

    def holds_until(self, ts: int) -> None:
        """Count every event at or before ``ts`` as learned: a bootstrap (jobs.bootstrap) learned
        the history up to ``ts`` from a file, so the job skips those events when the stream
        brings them (as it skips the events a restored snapshot holds; progress.py)."""
        self.progress.advance(ts)

    @property
    def holds_events_until(self) -> int | None:
        """The event time up to which every event counts as learned (None: none yet)."""
        return self.progress.watermark

    # -- learning ---------------------------------------------------------------------------
    def learn(self, interactions: Sequence[Interaction], hits: Sequence[np.ndarray | None] | None = None,
              check: bool = True, writer: Writer | None = None) -> int:
        """Take each interaction the model does not hold yet (with the fusion's measurement of
        it, if any); returns how many it took. Taken events are learned at the next boundary.
        ``check=False`` takes every one: a replica folding the shared update log (replica.py),
        where the log, not this model's positions, says what was learned; ``writer``: the
        replica that proposed them (progress.py)."""
        taken = 0
        for n, it in enumerate(interactions):
            event = it.event
            if check and self.progress.contains(event):
                continue
            self.progress.add(event, writer)
            self.learned_events += 1
            self.pending.append((it, None if hits is None else hits[n]))
            taken += 1
            if len(self.pending) >= self.config.learn_every:
                self._learn_pending()
            self.guard.count(event.ts, it.served)
            if self.config.guard_every and self.learned_events % self.config.guard_every == 0:
                self._check_health()
        return taken

    def _check_health(self) -> None:
        """The health guard's check (health.py): keep this state as the good copy, or roll the
        learned parts back to the good copy (the rollback is in ``guard.rollbacks``)."""
        state = self._state(guard=False)
        reason = self.guard.check(_nonfinite_part(state))
        if reason is None:
            self._good, self.good_version = state, self.learned_events
        else:
            self.guard.rolled_back(self.learned_events, self.good_version, reason)
            self._load_learned(self._good)
        self._changed_since_good = False

    def _load_learned(self, state: dict[str, Any] | None) -> None:
        """Replace the learned parts by those of ``state`` (None: an empty model); what the
        model has taken (positions, version, pending batch) and the guard stay."""
        source = OnlineRanker(self.config) if state is None else OnlineRanker._from_state(state, self.config)
        for name in ("item_ids", "index", "counts", "counts_total", "cooc", "regression", "embedding", "nearest",
                     "trending", "fusion", "learned", "_trending", "_trending_mask"):
            setattr(self, name, getattr(source, name))

    @property
    def until_boundary(self) -> int:
        """Events the model takes before it learns its pending batch."""
        return self.config.learn_every - len(self.pending)

    def _learn_pending(self) -> None:
        """Learn the pending batch, in order, vectorised per component."""
        batch, self.pending = self.pending, []
        if not batch:
            return
        self._changed_since_good = True
        c = self.config
        self._train_learned(batch, self.learned_events - len(batch))
        items = np.array([self._add_item(it.event.item_id) for it, _ in batch], dtype=np.int64)
        weights = np.array([c.event_weight(it.event) for it, _ in batch])
        contexts = [self._context(it.history, c.history) for it, _ in batch]
        k = c.knn_history
        short = [(h[:k], r[:k]) for h, r in contexts]
        self.cooc.learn_many(items, short, weights)
        self.regression.learn_many(items, [(h, c.regression_pair_decay ** np.arange(h.size)) for h, _ in contexts],
                                   weights)
        for item, (h, r) in zip(items.tolist(), short, strict=True):
            self.embedding.learn(item, h, r, len(self.item_ids))
        self.trending.learn_many(items, np.array([it.event.ts for it, _ in batch], dtype=np.int64), weights)
        np.add.at(self.counts, items, 1.0)
        self.counts_total += len(batch)
        for _, measured in batch:
            if measured is not None:
                self.fusion.apply(measured)
        self.regression.boundary(len(self.item_ids), self.learned_events - len(batch), self.learned_events)
        if self.nearest.due(len(self.item_ids), self.learned_events):
            self.nearest.build(self.embedding.vectors(len(self.item_ids)), self.learned_events)
        self._trending = None

    def _train_learned(self, batch: list[tuple[Interaction, np.ndarray | None]], first: int) -> None:
        """One step of the learned ranker on the batch's examples (every ``ranker_every``-th
        taken event, counted from ``first``, whose item and history the model knows), each
        asked of the model as of the batch's start, excluding the history's items."""
        examples = [it for n, (it, _) in enumerate(batch) if (first + n) % self.config.ranker_every == 0
                    and it.history and it.event.item_id in self.index]
        contexts = [self._context(it.history, self.config.history) for it in examples]
        keep = [n for n, (h, _) in enumerate(contexts) if h.size]
        if not keep:
            return
        contexts = [contexts[n] for n in keep]
        targets = np.array([self.index[examples[n].event.item_id] for n in keep], dtype=np.int64)
        scored = self.candidates(contexts, [h for h, _ in contexts],
                                 situations=[examples[n].situation for n in keep])
        rows = _rows_of(scored.cand, targets)
        found = rows >= 0
        if not found.any():
            return
        sub, rows_kept = scored.cand.select(np.flatnonzero(found))
        local = rows[found] - scored.cand.starts[:-1][found] + sub.starts[:-1]
        self.learned.learn(scored.features[rows_kept], sub.starts, local)

    def flush(self) -> None:
        """Learn the pending batch now, off the boundary (offline tools at the end of their
        input; a flush changes where later boundaries fall, so the job never calls it)."""
        self._learn_pending()

    def _add_item(self, item_id: str) -> int:
        idx = self.index.get(item_id)
        if idx is None:
            idx = self.index[item_id] = len(self.item_ids)
            self.item_ids.append(item_id)
            if idx >= self.counts.size:
                self.counts = np.concatenate([self.counts, np.zeros(self.counts.size)])
            self.cooc.ensure(idx + 1)
            self.regression.ensure(idx + 1)
        return idx

    def _context(self, history: Sequence[str], limit: int) -> tuple[np.ndarray, np.ndarray]:
        """Indices of the known recent items, most recent first, and their recency weights."""
        index = self.index
        arr = np.array([index[h] for h in history[::-1][: 2 * limit] if h in index][:limit], dtype=np.int64)
        return arr, self.config.history_decay ** np.arange(arr.size, dtype=np.float64)

    # -- scoring ----------------------------------------------------------------------------
    def candidates(self, contexts: Sequence[tuple[np.ndarray, np.ndarray]], excluded: Sequence[np.ndarray],
                   sources: bool = False, situations: Sequence[tuple[float, ...]] | None = None) -> Scored:
        """The candidates of a batch of requests (each: its history context and the indices of
        the items it may not get), their raw scores (rows x components), the scores scaled per
        request, and the learned ranker's features. Generators: the neighbours of the recent
        items, the regression's best over its head, the embeddings' nearest neighbours of the
        user (ann.py), the trending top-N. With ``sources``, each row knows the recent item
        whose co-occurrence weighs most in its evidence (explanations). ``situations``: per
        request, its ranker.CONTEXT (empty or None: zeros)."""
        c, n = self.config, len(self.item_ids)
        k = c.knn_history
        short = [(h[:k], r[:k]) for h, r in contexts]
        owner, hist, rho = self.cooc.evidence_weights([(h, c.knn_decay ** np.arange(h.size)) for h, _ in short],
                                                      self.counts)
        rows, at = np.unique(hist, return_inverse=True)
        ids, values = self.cooc.neighbours_of(rows)
        head = self.regression.head_scores([(h, c.regression_decay ** np.arange(h.size)) for h, _ in contexts], n)
        proposed, floor = _best_per_row(head, c.regression_candidates)
        users = self.embedding.users(short, n)
        found = self.nearest.search(users, *self.embedding.arrays()[1:], c.embedding_candidates)
        trend = self._trending_top()
        own = [np.concatenate([p, f]) for p, f in zip(proposed, found, strict=True)]
        cand = Candidates.gather(self._slots, owner, at, rho, ids, values, trend, own, excluded, n, sources,
                                 c.cooc_candidates)
        raw = np.zeros((len(cand), len(COMPONENTS)))
        raw[:, 0] = cand.cooc / np.maximum(self.counts[cand.item], 1.0) ** self.cooc.beta
        inside = cand.item < head.shape[1]
        raw[inside, 1] = head[cand.request[inside], cand.item[inside]]
        raw[:, 2] = self.embedding.score_rows(users, cand.request, cand.item)
        raw[:, 3] = self.trending.values_of(cand.item)
        scale = np.maximum(segment_max(np.abs(raw), cand.starts), 1e-12)
        norm = raw / scale[cand.request]
        by_regression = np.zeros(len(cand), dtype=bool)
        by_regression[inside] = raw[inside, 1] >= floor[cand.request[inside]]
        history = np.log1p([h.size for h, _ in contexts]) / np.log1p(c.history)
        situation = _situations(situations, len(contexts))
        last = self._last_item_evidence(owner, hist, cand)
        popularity = np.log1p(self.counts[cand.item]) / np.log1p(max(float(self.counts.max()), 1.0))
        related = np.where(cand.source >= 0, hist[np.maximum(cand.source, 0)], -1) if hist.size else cand.source
        by_embedding = self._slots.marked(cand.item, cand.starts, found)
        features = ranker_features(norm, last, cand.cooc > 0, by_regression, by_embedding,
                                   self._trending_mask[cand.item], popularity, history[cand.request],
                                   situation[cand.request])
        features[:, self._hidden] = 0.0
        return Scored(cand, raw, norm, features, related)

    def _last_item_evidence(self, owner: np.ndarray, hist: np.ndarray, cand: Candidates) -> np.ndarray:
        """Per candidate row, its co-occurrence with the request's most recent item alone
        (normalised like the co-occurrence score, then scaled to at most 1 per request): the
        sequence signal the recency-weighted sum dilutes."""
        last = np.full(cand.starts.size - 1, -1, dtype=np.int64)
        first = np.concatenate([[True], owner[1:] != owner[:-1]]) if owner.size else np.zeros(0, dtype=bool)
        last[owner[first]] = hist[first]
        alpha = np.maximum(self.counts[np.maximum(last, 0)[cand.request]], 1.0) ** self.cooc.alpha
        out = cand.first_cooc / alpha / np.maximum(self.counts[cand.item], 1.0) ** self.cooc.beta
        return out / np.maximum(segment_max(out, cand.starts), 1e-12)[cand.request]

    def _trending_top(self) -> np.ndarray:
        """The trending top-N item indices (they change only at learning boundaries)."""
        if self._trending is None:
            n = len(self.item_ids)
            self._trending = np.array(top_k_indices(self.trending.scores(n), min(self.config.trending_candidates, n)),
                                      dtype=np.int64)
            self._trending_mask = np.zeros(n, dtype=bool)
            self._trending_mask[self._trending] = True
        return self._trending

    def _fuse(self, scored: Scored) -> tuple[np.ndarray, np.ndarray]:
        """The weighted parts (rows x components) and the fused total: the best blend's sum
        of the scaled scores, or the learned ranker's score when it measures best (its parts:
        each feature's contribution, summed per generator). Ties go to the more trending item
        (a user with nothing else to go on gets the trending list, whatever the blend)."""
        tie = TIE_BREAK * scored.norm[:, COMPONENTS.index("trending")]
        leader = self.fusion.leader
        if leader == "learned":
            weighted = self._learned_parts(scored.features)
        elif leader == "stacked":
            weighted = self._stacked_parts(scored.cand, scored.norm, self._learned_parts(scored.features))
        else:
            weighted = scored.norm * self.fusion.weights
        return weighted, weighted.sum(axis=1) + tie

    def _learned_parts(self, features: np.ndarray) -> np.ndarray:
        """The learned ranker's score of each row split per generator (rows x components)."""
        return self.learned.contributions(features) @ _GENERATOR_MATRIX

    def _stacked_parts(self, cand: Candidates, norm: np.ndarray, learned: np.ndarray) -> np.ndarray:
        """The stacked scorer's parts (rows x components): the learned ranker's per generator
        (``learned``: ``_learned_parts``) plus the best blend's, each divided by the spread of
        its total over the request's candidates, so that neither dominates by scale alone."""
        blend = norm * self.fusion.weights
        return (learned / segment_scale(learned.sum(axis=1), cand.starts)[cand.request][:, None]
                + blend / segment_scale(blend.sum(axis=1), cand.starts)[cand.request][:, None])

    def observe(self, history: Sequence[str], exclude: set[str], item_id: str, k: int = 10,
                fusion_only: bool = False, situation: tuple[float, ...] = (),
                tally: Tally | None = None) -> Test:
        """Test before learn: where does ``item_id`` stand in the top-k the ranker would give
        now (its 0-based position, or -1 if absent), and the fusion's measurement of the event
        when it is one the fusion measures (every ``fusion_every``-th observed event whose item
        is known; ``learn`` takes it with the event). The rank is None when the question does
        not apply (no history) or, with ``fusion_only``, when the event is not measured (the
        job's way to save the work). Where the ranker ranked the item (a known item the user
        may get), the test also has its AUC against every other such item
        (evaluation.catalogue_auc). ``situation``: the request's ranker.CONTEXT. ``tally``
        counts the observed events instead of the ranker (a replica, which only the log changes)."""
        return self.observe_many([(history, self.indices(exclude), item_id)], k, fusion_only, [situation], tally)[0]

    def observe_many(self, requests: Sequence[tuple[Sequence[str], np.ndarray, str]], k: int = 10,
                     fusion_only: bool = False, situations: Sequence[tuple[float, ...]] | None = None,
                     tally: Tally | None = None) -> list[Test]:
        """``observe`` for a list of (history, excluded item indices, item) of one batch (and
        each one's situation): the same questions asked of the same (unchanging) model, on
        the candidates of all of them at once."""
        out: list[Test] = [Test(None, None)] * len(requests)
        asked, targets, measured = [], [], []
        counter: Tally | OnlineRanker = self if tally is None else tally
        for n, (history, exclude, item_id) in enumerate(requests):
            if not history or not self.item_ids:
                continue
            target = self.index.get(item_id)
            counter.observed += 1
            measure = target is not None and counter.observed % self.config.fusion_every == 0
            if fusion_only and not measure:
                continue
            if target is None or (exclude == target).any():
                out[n] = Test(-1, None)       # an item never seen before cannot be recommended
                continue
            asked.append(n)
            targets.append(target)
            measured.append(measure)
        if not asked:
            return out
        contexts = [self._context(requests[n][0], self.config.history) for n in asked]
        scored = self.candidates(contexts, [requests[n][1] for n in asked],
                                 situations=None if situations is None else [situations[n] for n in asked])
        t = np.array(targets, dtype=np.int64)
        total = self._fuse(scored)[1]
        places = ranks_of_targets(total, scored.cand.item, scored.cand.starts, t)   # among all the candidates
        if self.config.mmr_lambda < 1.0:
            ranks = np.array([self._diversified_rank(scored, total, row, int(t[row]), k) for row in range(len(asked))])
        else:
            ranks = places
        hits = self._measure(scored, t, np.array(measured), k)
        sizes = np.diff(scored.cand.starts)
        for row, n in enumerate(asked):
            rank = int(ranks[row])
            negatives = len(self.item_ids) - np.unique(requests[n][1]).size - 1
            out[n] = Test(rank if 0 <= rank < k else -1, hits[row] if measured[row] else None,
                          catalogue_auc(int(places[row]), int(sizes[row]), negatives))
        return out

    def _measure(self, scored: Scored, targets: np.ndarray, measured: np.ndarray, k: int) -> np.ndarray:
        """The fusion's measurement of the measured requests: whether each blend's, the
        learned ranker's, each component's, then the stacked scorer's top-k held the target
        (requests x columns; a target that is not a candidate is a miss for all)."""
        cand = scored.cand
        hits = np.zeros((targets.size, len(self.fusion.blends) + 2 + len(COMPONENTS)), dtype=bool)
        rows = np.flatnonzero(measured)
        if not rows.size:
            return hits
        sub, keep = cand.select(rows)
        norm, learned = scored.norm[keep], self._learned_parts(scored.features[keep])
        columns = np.concatenate([norm @ self.fusion.blends.T, learned.sum(axis=1)[:, None], norm,
                                  self._stacked_parts(sub, norm, learned).sum(axis=1)[:, None]], axis=1)
        ranks = ranks_of_targets(columns, sub.item, sub.starts, targets[rows])
        hits[rows] = (ranks >= 0) & (ranks < k)
        return hits

    def _diversified_rank(self, scored: Scored, total: np.ndarray, row: int, target: int, k: int) -> int:
        chosen = [int(scored.cand.item[r]) for r in self._choose(scored, total, row, k)]
        return chosen.index(target) if target in chosen else -1

    def recommend(self, history: Sequence[str], k: int, exclude: set[str] | None = None,
                  situation: tuple[float, ...] = ()) -> list[Recommendation]:
        """Top-k items not in ``exclude`` (default: ``history``), best first, each with the
        component that contributed most and, where it applies, the recent item it relates to.
        ``situation``: the request's ranker.CONTEXT as of the user's latest event."""
        return self.recommend_many([(history, self.indices(set(history) if exclude is None else exclude))], k,
                                   [situation])[0]

    def recommend_many(self, requests: Sequence[tuple[Sequence[str], np.ndarray]], k: int,
                       situations: Sequence[tuple[float, ...]] | None = None) -> list[list[Recommendation]]:
        """``recommend`` for a list of (history, excluded item indices) of one batch, on the
        candidates of all of them at once."""
        if k <= 0 or not self.item_ids or not requests:
            return [[] for _ in requests]
        contexts = [self._context(h, self.config.history) for h, _ in requests]
        scored = self.candidates(contexts, [x for _, x in requests], sources=True,
                                 situations=situations)
        weighted, total = self._fuse(scored)
        if self.config.mmr_lambda < 1.0:
            rows = np.full((len(requests), k), -1, dtype=np.int64)
            for r in range(len(requests)):
                picked = self._choose(scored, total, r, k)
                rows[r, : len(picked)] = picked
        else:
            rows = top_k_per_segment(total, scored.cand.item, scored.cand.starts, k)
        return self._explain_many(rows, scored, total, weighted, contexts)

    def _choose(self, scored: Scored, total: np.ndarray, row: int, k: int) -> list[int]:
        """One request's top-k re-ranked by maximal marginal relevance among its best
        ``mmr_candidates``: their candidate rows."""
        lo, hi = int(scored.cand.starts[row]), int(scored.cand.starts[row + 1])
        items, sub = scored.cand.item[lo:hi], total[lo:hi]
        pool = top_k_per_segment(sub, items, np.array([0, hi - lo]), max(k, self.config.mmr_candidates))[0]
        pool = pool[pool >= 0]
        if not pool.size:
            return []
        picked = mmr(sub[pool], self.cooc.similarity(items[pool], self.counts), min(k, pool.size),
                     self.config.mmr_lambda)
        return [lo + int(pool[j]) for j in picked]

    def _explain_many(self, rows: np.ndarray, scored: Scored, total: np.ndarray, weighted: np.ndarray,
                      contexts: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[list[Recommendation]]:
        """Each chosen candidate (``rows``: requests x k candidate rows, -1: none) with the
        component that contributed most to its score (trending when none did) and the recent
        item it relates to: for co-occurrence, the one whose evidence weighs most in the
        candidate's sum (known from the gather); for the others, the one with the largest
        recency-weighted pair value, one gather per component."""
        cand = scored.cand
        events, k = rows.shape
        if not len(cand):
            return [[] for _ in range(events)]
        valid = rows >= 0
        safe = np.where(valid, rows, 0)
        chosen = cand.item[safe]
        parts = weighted[safe]                                               # events x k x components
        top = np.argmax(parts, axis=2)
        top[parts.max(axis=2) <= 0] = COMPONENTS.index("trending")
        related = np.where((top == COMPONENTS.index("co_occurrence")) & valid, scored.related[safe], -1)
        width = max((h.size for h, _ in contexts), default=0)
        hist = np.zeros((events, width), dtype=np.int64)
        rho = np.zeros((events, width))
        reg_rho = np.zeros((events, width))       # the regression scores with its own recency weights
        for e, (h, r) in enumerate(contexts):
            hist[e, : h.size], rho[e, : h.size] = h, r
            reg_rho[e, : h.size] = self.config.regression_decay ** np.arange(h.size)
        for c, pairs, weights in ((COMPONENTS.index("regression"), dense_pairs(self.regression.weights), reg_rho),
                                  (COMPONENTS.index("embedding"), self.embedding.pair_values, rho)):
            mine = (top == c) & valid
            if mine.any() and width:
                related[mine] = _strongest_many(pairs, hist, weights, chosen, mine)
        named = self._strongest_features(scored.features[safe.ravel()]).reshape(events, k, -1).tolist()
        ids, titles = self.item_ids, self.titles
        scores = np.round(total[safe], 6).tolist()
        out_lists = []
        for e in range(events):
            recs = []
            for j, score, ok, c, r, f in zip(chosen[e].tolist(), scores[e], valid[e].tolist(), top[e].tolist(),
                                             related[e].tolist(), named[e], strict=True):
                if not ok:
                    break
                related_id = ids[r] if r >= 0 else None
                recs.append(Recommendation(ids[j], score, COMPONENTS[c], related_id,
                                           titles.get(related_id) if related_id is not None else None,
                                           tuple(FEATURES[x] for x in f if x >= 0)))
            out_lists.append(recs)
        return out_lists

    def _strongest_features(self, features: np.ndarray, count: int = 2) -> np.ndarray:
        """Per row, the learned ranker's ``count`` features that added most to its score
        (largest positive weight x value first, ties to the earlier feature; -1 pads), or all
        -1 when the ranker does not order the lists."""
        out = np.full((len(features), count), -1, dtype=np.int64)
        if not self.fusion.learned or not len(features):
            return out
        parts = self.learned.contributions(features)
        order = np.argsort(-parts, axis=1, kind="stable")[:, :count]
        positive = np.take_along_axis(parts, order, axis=1) > 0
        out[positive] = order[positive]
        return out

    def list_quality(self, items: Sequence[str]) -> tuple[float | None, float | None]:
        """(intra-list diversity, novelty) of a served list (evaluation.list_quality): pairwise
        similarity from the co-occurrence neighbours, popularity from the learned counts."""
        # Not learned_events minus the pending batch: after a health-guard rollback the counts
        # are the good copy's, while the version keeps counting.
        return list_quality(self.indices(items), self.counts, self.counts_total,
                            lambda idx: self.cooc.similarity(idx, self.counts))

    @property
    def newest_learned_ts(self) -> int | None:
        """The newest event time the model has learned (its batches'; None before the first)."""
        return self.trending.clock

    def indices(self, items: set[str] | Sequence[str]) -> np.ndarray:
        """The catalogue indices of the known items among ``items`` (unknown ones are left
        out): the excluded items of a request to ``recommend_many`` or ``observe_many``."""
        index = self.index
        return np.array([index[i] for i in items if i in index], dtype=np.int64)

    def memory(self) -> dict[str, int]:
        """Bytes held by each part of the model (the arrays; Python objects of the catalogue aside)."""
        nb, reg, emb = self.cooc.neighbours, self.regression, self.embedding
        return {"items": len(self.item_ids), "neighbours": nb.nbytes,
                "regression": reg.gram.nbytes + reg.weights.nbytes,
                "embedding": sum(t.element_size() * t.nelement() for t in (emb.inp, emb.out, emb.bias)),
                "embedding_index": self.nearest.centroids.nbytes + self.nearest.assign.nbytes,
                "trending_and_counts": self.trending.values.nbytes + self.counts.nbytes}

    def fusion_report(self) -> dict[str, object]:
        return {"weights": dict(zip(COMPONENTS, self.fusion.weights.tolist(), strict=True)),
                "component_hit_rate": dict(zip(COMPONENTS, self.fusion.component_hits.round(4).tolist(),
                                               strict=True)),
                "leader": self.fusion.leader,
                "learned_ranker": {"leads": self.fusion.leader == "learned",
                                   "hit_rate": round(float(self.fusion.blend_hits[-1]), 4),
                                   "best_blend_hit_rate": round(float(self.fusion.blend_hits[:-1].max()), 4),
                                   "served_blend_hit_rate": round(self.fusion.chosen_hits, 4),
                                   "stacked_hit_rate": round(self.fusion.stacked_hits, 4),
                                   "weights": self.learned.report()}}

    # -- state ------------------------------------------------------------------------------
    def snapshot(self) -> bytes:
        return self.cut().blob()

    def digest(self) -> str:
        """A hash of the model state (ModelState.digest)."""
        return self.cut().digest()

    def cut(self) -> ModelState:
        """A copy of the state, taken between events; serialise or hash it on any thread."""
        return ModelState(self._state())

    def _state(self, guard: bool = True) -> dict[str, Any]:
        """The whole state as copies; with ``guard``, the health guard's too (its counters,
        rollbacks and good copy: ``"self"`` when that is this state's learned parts)."""
        n = len(self.item_ids)
        e = self.embedding
        solving = self.regression.solved() if self.regression.solving is not None else None
        state = {
            "format": 8, "config": asdict(self.config), "item_ids": list(self.item_ids),
            "counts": torch.from_numpy(self.counts[:n].copy()),
            "neighbour_ids": torch.from_numpy(self.cooc.neighbours.ids[:n].copy()),
            "neighbour_counts": torch.from_numpy(self.cooc.neighbours.counts[:n].copy()),
            "neighbour_errors": torch.from_numpy(self.cooc.neighbours.errors[:n].copy()),
            "neighbour_scale": self.cooc.neighbours.scale,
            "gram": torch.from_numpy(self.regression.gram.copy()),
            "regression": torch.from_numpy(self.regression.weights.copy()),
            "fitted_at": self.regression.fitted_at,
            "regression_solving": None if solving is None else torch.from_numpy(solving),
            "regression_solving_at": self.regression.solving_at,
            "regression_install_at": self.regression.install_at,
            "emb_in": e.inp.clone(), "emb_out": e.out.clone(), "emb_bias": e.bias.clone(),
            "emb_pending": [[ctx, ws, i] for ctx, ws, i in e.pending], "emb_batches": e.batches,
            "index_centroids": torch.from_numpy(self.nearest.centroids.copy()),
            "index_assign": torch.from_numpy(self.nearest.assign.copy()), "index_built_at": self.nearest.built_at,
            "trending": torch.from_numpy(self.trending.values.copy()), "trending_clock": self.trending.clock,
            "blend_hits": torch.from_numpy(self.fusion.blend_hits.copy()),
            "component_hits": torch.from_numpy(self.fusion.component_hits.copy()),
            "stacked_hits": self.fusion.stacked_hits, "chosen_hits": self.fusion.chosen_hits,
            "learned": self.learned.state(),
            "progress": self.progress.to_state(), "learned_events": self.learned_events,
            "observed": self.observed,
            # no user id: learning never reads it, so a snapshot holds no one's id (a forgotten
            # user's included: README "Security and privacy"); the update log has it
            "pending": [[e.event_id, "", e.item_id, e.event_type, e.value, e.ts, e.position.partition,
                         e.position.offset, list(it.history), None if hits is None else hits.tolist(),
                         list(it.situation)]
                        for it, hits in self.pending for e in (it.event,)],
            "pending_served": [it.served for it, _ in self.pending],
        }
        if guard:
            good: Any = "empty" if self._good is None else self._good
            if not self._changed_since_good and self.good_version == self.learned_events:
                good = "self"
            state["guard"] = {**self.guard.to_state(), "good_version": self.good_version, "good": good}
        return state

    @classmethod
    def restore(cls, data: bytes, config: OnlineConfig | None = None) -> OnlineRanker:
        state = torch.load(io.BytesIO(data), weights_only=True)
        if state.get("format") != 8:     # 7: no embedding index; 6: no request context; 5: no learned ranker; ...
            raise ValueError(f"not an OnlineRanker snapshot (format {state.get('format')!r})")
        r = cls._from_state(state, config or OnlineConfig(**state["config"]))
        guard = state.get("guard")      # absent in snapshots of earlier releases: a healthy start here
        good: Any = "self" if guard is None else guard["good"]
        r.good_version = r.learned_events if guard is None else int(guard["good_version"])
        r._changed_since_good = good != "self"
        if r.config.guard_every and good != "empty":     # the good copy is kept only with the guard on
            r._good = {k: v for k, v in state.items() if k != "guard"} if good == "self" else good
        if guard is not None:
            r.guard.load(guard)
        return r

    @classmethod
    def _from_state(cls, state: dict[str, Any], config: OnlineConfig) -> OnlineRanker:
        r = cls(config)
        r.item_ids = list(state["item_ids"])
        r.index = {item: j for j, item in enumerate(r.item_ids)}
        r.counts = np.zeros(max(64, 2 * len(r.item_ids)))
        r.counts[: len(r.item_ids)] = state["counts"].numpy()
        r.counts_total = float(r.counts.sum())
        nb = r.cooc.neighbours
        nb.ensure(len(r.item_ids))
        nb.ids[: len(r.item_ids)] = state["neighbour_ids"].numpy()
        nb.counts[: len(r.item_ids)] = state["neighbour_counts"].numpy()
        nb.errors[: len(r.item_ids)] = state["neighbour_errors"].numpy()
        nb.scale = float(state["neighbour_scale"])
        r.regression.gram = state["gram"].numpy().copy()
        r.regression.weights = state["regression"].numpy().copy()
        r.regression.fitted_at = int(state["fitted_at"])
        solving = state.get("regression_solving")
        r.regression.solving = None if solving is None else solving.numpy().copy()
        r.regression.solving_at = int(state.get("regression_solving_at", 0))
        r.regression.install_at = int(state.get("regression_install_at", 0))
        e = r.embedding
        e.inp, e.out, e.bias = state["emb_in"].clone(), state["emb_out"].clone(), state["emb_bias"].clone()
        e.pending = [(list(ctx), list(ws), int(i)) for ctx, ws, i in state["emb_pending"]]
        e.batches = int(state["emb_batches"])
        r.nearest.load(state["index_centroids"].numpy(), state["index_assign"].numpy(), int(state["index_built_at"]))
        r.trending.values = state["trending"].numpy().copy()
        r.trending.clock = state["trending_clock"]
        r.fusion.blend_hits = state["blend_hits"].numpy().copy()
        r.fusion.component_hits = state["component_hits"].numpy().copy()
        # absent before the stacked scorer: then the blends' best rate stands for the chosen blend's
        r.fusion.stacked_hits = float(state.get("stacked_hits", 0.0))
        r.fusion.chosen_hits = float(state.get("chosen_hits", r.fusion.blend_hits[:-1].max()))
        r.learned.load(state["learned"])
        r.progress = LearnedEvents.from_state(state["progress"])
        r.learned_events = int(state["learned_events"])
        r.observed = int(state["observed"])
        served = state.get("pending_served") or [UNTESTED] * len(state["pending"])
        r.pending = [(Interaction(Event(eid, user, item, kind, value, int(ts), SourcePosition(int(part), int(off))),
                                  tuple(history), tuple(situation), int(test)),
                      None if hits is None else np.array(hits, dtype=bool))
                     for (eid, user, item, kind, value, ts, part, off, history, hits, situation), test
                     in zip(state["pending"], served, strict=True)]
        return r


@dataclass(frozen=True)
class ModelState:
    """A ranker's state as copies (arrays, tensors, plain containers): what a snapshot holds.

    ``blob`` is the snapshot (torch.save; ``OnlineRanker.restore`` reads it). ``digest`` hashes
    the state canonically, so that equal models have equal digests however they got there: a
    blob's bytes are not canonical (pickle's layout follows which objects happen to be shared).
    """

    values: dict[str, Any]

    def blob(self) -> bytes:
        buf = io.BytesIO()
        torch.save(self.values, buf)
        return buf.getvalue()

    def digest(self) -> str:
        h = hashlib.sha256()
        _hash_into(h, self.values)
        return h.hexdigest()


_SCALARS = (str, int, float, bool, type(None))


def _nonfinite_part(state: dict[str, Any]) -> str | None:
    """The first entry of ``state`` (a ranker's, nested) holding a NaN or an Inf, if any."""
    for key, value in state.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            return key
        if isinstance(value, np.ndarray) and value.dtype.kind == "f" and not np.isfinite(value).all():
            return key
        if isinstance(value, float) and not np.isfinite(value):
            return key
        if isinstance(value, dict):
            inner = _nonfinite_part(value)
            if inner is not None:
                return f"{key}.{inner}"
    return None


def _plain(value: object) -> bool:
    return isinstance(value, _SCALARS) or (isinstance(value, list | tuple)
                                           and all(isinstance(item, _SCALARS) for item in value))


def _hash_into(h: Any, value: object) -> None:
    """Feed ``value`` (a snapshot state: tensors, arrays, containers, scalars) to ``h`` in a
    canonical form: type tags, shapes and raw bytes, dict keys in order."""
    if isinstance(value, torch.Tensor):
        value = value.detach().contiguous().numpy()
    if isinstance(value, np.ndarray):
        h.update(f"a{value.dtype.str}{value.shape}".encode())
        h.update(np.ascontiguousarray(value).data)
    elif isinstance(value, dict):
        h.update(f"d{len(value)}".encode())
        for key in sorted(value, key=repr):
            _hash_into(h, key)
            _hash_into(h, value[key])
    elif isinstance(value, list | tuple):
        if all(_plain(item) for item in value):     # one repr: item ids, events, positions
            h.update(f"l{[[*i] if isinstance(i, list | tuple) else i for i in value]!r};".encode())
            return
        h.update(f"l{len(value)}".encode())
        for item in value:
            _hash_into(h, item)
    else:
        h.update(f"s{type(value).__name__}:{value!r};".encode())


@dataclass(frozen=True)
class Scored:
    """A batch of requests' candidates and what is known of each candidate row."""

    cand: Candidates
    raw: np.ndarray          # rows x COMPONENTS: the components' raw scores
    norm: np.ndarray         # the same, scaled per request to at most 1 in absolute value
    features: np.ndarray     # rows x ranker.FEATURES: what the learned ranker sees
    related: np.ndarray      # rows: the recent item whose co-occurrence weighs most in the row's (-1: none)


# Which component each learned-ranker feature speaks for (explanations): features x components.
_GENERATOR_MATRIX = np.array([[1.0 if GENERATOR_OF[f] == c else 0.0 for c in COMPONENTS] for f in FEATURES])


def _situations(situations: Sequence[tuple[float, ...]] | None, requests: int) -> np.ndarray:
    """Requests x CONTEXT (an unknown situation: zeros)."""
    out = np.zeros((requests, len(CONTEXT)))
    for r, s in enumerate(situations or ()):
        if s:
            out[r] = s
    return out


def _rows_of(cand: Candidates, targets: np.ndarray) -> np.ndarray:
    """Per request, the candidate row holding its target item (-1: not a candidate)."""
    out = np.full(targets.size, -1, dtype=np.int64)
    hit = np.flatnonzero(cand.item == targets[cand.request])
    out[cand.request[hit]] = hit
    return out


def _best_per_row(scores: np.ndarray, n: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Per row, the columns of its ``n`` largest positive scores (any order), and the smallest
    of them (inf where none is positive).

    >>> cols, floor = _best_per_row(np.array([[3.0, -1.0, 2.0], [0.0, 0.0, 0.0]]), 2)
    >>> [sorted(c.tolist()) for c in cols], floor.tolist()
    ([[0, 2], []], [2.0, inf])
    """
    rows = scores.shape[0]
    if not scores.size or n <= 0:
        return [np.zeros(0, dtype=np.int64) for _ in range(rows)], np.full(rows, np.inf)
    n = min(n, scores.shape[1])
    cols = np.argpartition(-scores, n - 1, axis=1)[:, :n] if n < scores.shape[1] else np.tile(
        np.arange(scores.shape[1]), (rows, 1))
    chosen = np.take_along_axis(scores, cols, axis=1)
    keep = chosen > 0
    floor = np.where(keep, chosen, np.inf).min(axis=1)
    return [c[k] for c, k in zip(cols, keep, strict=True)], floor


def _strongest_many(pairs: Callable[[np.ndarray, np.ndarray], np.ndarray], hist: np.ndarray, rho: np.ndarray,
                    chosen: np.ndarray, mine: np.ndarray) -> np.ndarray:
    """For the chosen items at the (event, slot) places ``mine``: the history item h (events x
    history, padded with rho 0) with the largest ``rho[h] * pairs(h, item)``, the first on
    ties, or -1 where none contributes positively.

    >>> m = np.array([[0., 2., 0.], [1., 0., 3.], [0., 0., 0.]])
    >>> _strongest_many(dense_pairs(m), np.array([[0, 1]]), np.array([[1.0, 0.5]]), np.array([[1, 2, 0, 7]]),
    ...                 np.array([[True, True, True, True]])).tolist()
    [0, 1, 1, -1]
    """
    e, slot = np.nonzero(mine)
    h = hist[e]                                                           # places x history
    contrib = rho[e] * pairs(h, chosen[e, slot][:, None])
    best = np.argmax(contrib, axis=1)
    positive = contrib[np.arange(best.size), best] > 0
    out = np.full(best.size, -1, dtype=np.int64)
    out[positive] = h[np.arange(best.size), best][positive]
    return out


def top_k_indices(scores: np.ndarray, k: int) -> list[int]:
    """Indices of the k largest scores, best first; ties go to the lower index.

    >>> top_k_indices(np.array([1.0, 3.0, 3.0, -np.inf]), 3)
    [1, 2, 0]
    >>> top_k_indices(np.array([2.0]), 5)
    [0]
    """
    k = min(k, scores.size)
    if k <= 0:
        return []
    if k < scores.size:
        part = np.argpartition(-scores, k - 1)[:k]
        cut = scores[part].min()
        part = np.flatnonzero(scores >= cut)   # every item tied at the cut competes by index
    else:
        part = np.arange(scores.size)
    order = part[np.lexsort((part, -scores[part]))]
    return [int(j) for j in order[:k] if scores[j] > -np.inf]


def mmr(relevance: np.ndarray, similarity: np.ndarray, k: int, lam: float) -> list[int]:
    """Maximal marginal relevance: pick ``k`` of the candidates one by one, each maximising
    ``lam * relevance - (1 - lam) * max similarity to those already picked``.

    >>> rel = np.array([1.0, 0.99, 0.5])
    >>> sim = np.array([[1, 0.9, 0], [0.9, 1, 0], [0, 0, 1.0]])
    >>> mmr(rel, sim, 2, lam=1.0), mmr(rel, sim, 2, lam=0.5)
    ([0, 1], [0, 2])
    """
    k = min(k, relevance.size)
    rel = relevance / max(float(np.abs(relevance[np.isfinite(relevance)]).max(initial=0.0)), 1e-12)
    chosen: list[int] = []
    penalty = np.zeros(relevance.size)
    for _ in range(k):
        gain = lam * rel - (1 - lam) * penalty
        gain[chosen] = -np.inf
        best = int(np.argmax(gain))
        chosen.append(best)
        penalty = np.maximum(penalty, similarity[best])
    return chosen
