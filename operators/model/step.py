"""One model step for one event, shared by the Flink operator and the offline tools.

Test, then learn (DESIGN.md §6): the ranker is first asked where the event's item stands in
the user's top-k (which feeds its fusion weights), then learns the event, then recommends.

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

from dataclasses import dataclass, field

from operators.features.spec import FeatureConfig
from operators.features.user import SessionFeatures
from operators.features.windows import WindowFeatures
from operators.model.history import UserState
from operators.model.online import Interaction, OnlineRanker
from operators.model.updates import ModelUpdate
from operators.records import Event, Recommendation


@dataclass(frozen=True)
class StepResult:
    recommendations: list[Recommendation]
    learned: bool               # False: the shared model already held the event (a replay)
    session: SessionFeatures    # the user's sequence and session as of the event
    rank: int | None            # the event's item in the top-k before learning: 0.., -1 absent, None not asked
    update: ModelUpdate | None = None   # what the update log records, when the event was learned


@dataclass
class ModelStep:
    ranker: OnlineRanker
    k: int = 10
    features: FeatureConfig = field(default_factory=FeatureConfig)
    test_every_event: bool = True   # False (the job): test only the events the fusion measures
    lineage: str = ""               # tags the updates (updates.py); the job sets it

    def process(self, event: Event, user: UserState, window: WindowFeatures | None,
                watermark: int | None = None, recommend: bool = True) -> StepResult:
        """Take the event into the user's state (``user`` is updated in place), test and learn
        it unless the shared model already holds it, and return the user's top-k (unless
        ``recommend`` is False: evaluation only needs the test).

        ``watermark`` is the model's input watermark (None offline): it tells the shared model
        which replayed events it already holds (progress.py)."""
        ranker = self.ranker
        ranker.progress.advance(watermark)
        session = user.activity.observe(event.item_id, event.event_type, event.ts, self.features.session_gap_ms,
                                        self.features.sequence_length)
        history = user.history
        rank, update = None, None
        observed = ranker.observed
        ranker.fusion.last_measurement = None
        if not ranker.progress.contains(event):
            rank = ranker.observe(history.recent, history.seen, event.item_id, self.k,
                                  fusion_only=not self.test_every_event)
        context = tuple(history.recent)
        learned = ranker.learn([Interaction(event, context)]) > 0
        if learned:
            hits = ranker.fusion.last_measurement
            update = ModelUpdate(self.lineage, ranker.learned_events, event, context, ranker.progress.watermark,
                                 ranker.observed != observed, None if hits is None else tuple(bool(h) for h in hits))
        history.apply(event, ranker.config.history)
        recs = ranker.recommend(history.recent, self.k, exclude=history.seen) if recommend else []
        return StepResult(recs, learned, session, rank, update)
