"""The model step, shared by the Flink operator and the offline tools.

Test, then learn (DESIGN.md §6), in batches counted by events (online.py): for each event the
ranker is asked where the event's item stands in the user's top-k (which measures the fusion's
blends), the event is taken into the pending batch, and the user gets a top-k. The ranker
changes only when a batch of ``learn_every`` taken events is complete, so an event's answers
come from the model as of the start of its batch plus the user's own newest history (kept per
user, up to and including the event). ``process`` does this for one event (the job);
``process_many`` for a run of events at once, vectorised (jobs.evaluate): both give the same
model, event for event.

>>> from operators.records import Event
>>> step = ModelStep(OnlineRanker(), k=3)
>>> user = UserState()
>>> result = step.process(Event("e1", "u", "x", "view", None, 1), user, window=None)
>>> result.recommendations, result.learned, result.rank, result.session.session_events
([], True, None, 1)
>>> user.history.recent
['x']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from operators.features.spec import FeatureConfig
from operators.features.user import SessionFeatures
from operators.features.windows import WindowFeatures
from operators.model.evaluation import Evaluation
from operators.model.health import UNTESTED
from operators.model.history import UserState
from operators.model.online import Interaction, OnlineRanker, Tally, Test
from operators.model.progress import Writer
from operators.model.ranker import request_context
from operators.model.updates import ModelUpdate
from operators.records import Event, Recommendation


@dataclass(frozen=True)
class StepResult:
    recommendations: list[Recommendation]
    learned: bool               # False: the shared model already held the event (a replay)
    session: SessionFeatures    # the user's sequence and session as of the event
    rank: int | None            # the event's item in the top-k before learning: 0.., -1 absent, None not asked
    update: ModelUpdate | None = None   # what the update log records, when the event was taken
    hits: np.ndarray | None = None      # the fusion's measurement of the event (blends, then components)
    evaluation: Evaluation | None = None  # the event tested against the user's last served list (with lists)


@dataclass(frozen=True)
class _Served:
    before: tuple[float, ...]       # the situation the list this event answers was served in
    session: SessionFeatures
    context: tuple[str, ...]        # the user's recent items before the event
    rank: int | None
    hits: np.ndarray | None
    recs: list[Recommendation]
    held: bool                      # the model already holds the event
    evaluation: Evaluation | None

    @property
    def test(self) -> int:
        """The served-list test as the model and its update log carry it (Interaction.served)."""
        return self.evaluation.served if self.evaluation is not None else UNTESTED


def _bits(hits: np.ndarray | None) -> tuple[bool, ...] | None:
    return None if hits is None else tuple(bool(h) for h in hits)


@dataclass
class ModelStep:
    ranker: OnlineRanker
    k: int = 10
    features: FeatureConfig = field(default_factory=FeatureConfig)
    test_every_event: bool = True   # False (the job): test only the events the fusion measures
    lineage: str = ""               # tags the updates (updates.py); the job sets it
    writer: Writer | None = None    # a replica's (subtask, parallelism): whose watermark says what it holds

    def process(self, event: Event, user: UserState, window: WindowFeatures | None,
                watermark: int | None = None, recommend: bool = True) -> StepResult:
        """Take the event into the user's state (``user`` is updated in place), test it and
        hand it to the ranker unless the shared model already holds it, and return the
        user's top-k (unless ``recommend`` is False: evaluation only needs the test).

        ``watermark`` is the model's input watermark (None offline): it tells the shared model
        which replayed events it already holds (progress.py)."""
        ranker = self.ranker
        ranker.progress.advance(watermark)
        observed = ranker.observed
        served = self._serve(event, user, window, recommend, None)
        learned = ranker.learn([Interaction(event, served.context, served.before, served.test)], [served.hits]) > 0
        update = None
        if learned:
            update = ModelUpdate(self.lineage, ranker.learned_events, event, served.context, ranker.progress.watermark,
                                 ranker.observed != observed, _bits(served.hits), served.before, served.test)
        return StepResult(served.recs, learned, served.session, served.rank, update, served.hits, served.evaluation)

    def propose(self, event: Event, user: UserState, window: WindowFeatures | None, watermark: int | None,
                tally: Tally) -> StepResult:
        """``process`` for a replica of the shared model (replica.py): the same test and top-k,
        but the ranker is left as it is; the event comes back as the update to log (its
        ``seq`` is 0: the log's order numbers it), unless the model already holds it (a
        replay). ``tally`` counts this subtask's observed events (which ones the fusion measures)."""
        before = tally.observed
        served = self._serve(event, user, window, True, tally)
        update = None
        if not served.held:
            update = ModelUpdate(self.lineage, 0, event, served.context, watermark, tally.observed != before,
                                 _bits(served.hits), served.before, served.test, self.writer)
        return StepResult(served.recs, update is not None, served.session, served.rank, update, served.hits,
                          served.evaluation)

    def _serve(self, event: Event, user: UserState, window: WindowFeatures | None, recommend: bool,
               tally: Tally | None) -> _Served:
        """The shared part of both: test the event (unless the model holds it), take it into
        the user's state, and the user's top-k as of the model now."""
        ranker = self.ranker
        before = user.situation              # the situation when the list this event answers was served
        session = user.activity.observe(event.item_id, event.event_type, event.ts, self.features.session_gap_ms,
                                        self.features.sequence_length)
        history = user.history
        test = Test(None, None)
        held = ranker.progress.contains(event, self.writer)
        if not held:
            test = ranker.observe(history.recent, history.seen, event.item_id, self.k,
                                  fusion_only=not self.test_every_event, situation=before, tally=tally)
        context = tuple(history.recent)
        history.apply(event, ranker.config.history)
        # The top-k before the event is taken: when it completes a batch, the batch is learned
        # after, so every event's answers come from the model as of the start of its batch.
        user.situation = request_context(session.session_events, session.gap_ms, window)
        if not recommend:
            return _Served(before, session, context, test.rank, test.hits, [], held, None)
        recs = ranker.recommend(history.recent, self.k, exclude=history.seen, situation=user.situation)
        last_served, user.served = user.served, tuple(r.item_id for r in recs)
        newest = ranker.newest_learned_ts
        evaluation = Evaluation.of(last_served, event.item_id, ranker.list_quality(user.served),
                                   None if newest is None else event.ts - newest, test.auc, len(ranker.item_ids))
        return _Served(before, session, context, test.rank, test.hits, recs, held, evaluation)

    def process_many(self, events: Sequence[Event], users: dict[str, UserState],
                     windows: Sequence[WindowFeatures | None] | None = None) -> list[StepResult]:
        """Test and take ``events`` in order (with their window features, if any), with every
        test of a batch asked in one vectorised pass (``OnlineRanker.observe_many``; with
        ``test_every_event`` False, only the tests the fusion measures); no recommendation
        lists (evaluation, bootstrap).
        Offline input only (no positions, no watermark): every event is new to the model."""
        ranker = self.ranker
        out: list[StepResult] = []
        start = 0
        while start < len(events):
            first = start
            chunk = events[start: start + ranker.until_boundary]
            start += len(chunk)
            sessions, requests, contexts, situations = [], [], [], []
            index = ranker.index             # the catalogue does not change within a batch
            excluded: dict[str, list[np.ndarray]] = {}     # per user: indices of the known items seen
            for n, event in enumerate(chunk):
                user = users.setdefault(event.user_id, UserState())
                situations.append(user.situation)
                sessions.append(user.activity.observe(event.item_id, event.event_type, event.ts,
                                                      self.features.session_gap_ms, self.features.sequence_length))
                user.situation = request_context(sessions[-1].session_events, sessions[-1].gap_ms,
                                                 None if windows is None else windows[first + n])
                history = user.history
                context = tuple(history.recent)
                seen = excluded.get(event.user_id)
                if seen is None:
                    seen = excluded[event.user_id] = [np.fromiter((index[i] for i in history.seen if i in index),
                                                                  dtype=np.int64)]
                requests.append((context, seen[0] if len(seen) == 1 else np.concatenate(seen), event.item_id))
                contexts.append(context)
                history.apply(event, ranker.config.history)
                if event.item_id in index:
                    seen.append(np.array([index[event.item_id]]))
            tested = ranker.observe_many(requests, self.k, fusion_only=not self.test_every_event, situations=situations)
            ranker.learn([Interaction(e, c, s) for e, c, s in zip(chunk, contexts, situations, strict=True)],
                         [test.hits for test in tested])
            out += [StepResult([], True, s, test.rank, None, test.hits)
                    for s, test in zip(sessions, tested, strict=True)]
        return out
