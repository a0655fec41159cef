"""One model step for one event, shared by the Flink operator and the offline tools.

>>> from operators.records import Event
>>> from operators.model.ranker import RankerConfig
>>> step = ModelStep(CooccurrenceRanker(RankerConfig()), k=3, recent_items=20)
>>> user = UserState()
>>> result = step.process(Event("e1", "u", "x", "view", None, 1), user, window=None)
>>> result.recommendations, result.learned, result.session.session_events
([], True, 1)
>>> user.history.recent
['x']
"""

from __future__ import annotations

from dataclasses import dataclass, field

from operators.features.spec import FeatureConfig
from operators.features.user import SessionFeatures
from operators.features.windows import WindowFeatures
from operators.model.history import UserState
from operators.model.ranker import CooccurrenceRanker
from operators.records import Event, Recommendation


@dataclass(frozen=True)
class StepResult:
    recommendations: list[Recommendation]
    learned: bool               # False: the shared model already held the event (a replay)
    session: SessionFeatures    # the user's sequence and session as of the event


@dataclass
class ModelStep:
    ranker: CooccurrenceRanker
    k: int
    recent_items: int
    features: FeatureConfig = field(default_factory=FeatureConfig)

    def process(self, event: Event, user: UserState, window: WindowFeatures | None,
                watermark: int | None = None) -> StepResult:
        """Take the event into the user's state (``user`` is updated in place), learn it unless
        the shared model already holds it, and return the user's top-k.

        ``watermark`` is the model's input watermark (None offline): it tells the shared model
        which replayed events it already holds (progress.py)."""
        self.ranker.progress.advance(watermark)
        session = user.activity.observe(event.item_id, event.event_type, event.ts, self.features.session_gap_ms,
                                        self.features.sequence_length)
        learned = self.ranker.learn(event, user.history.recent, window)
        user.history.apply(event, self.recent_items)
        recs = self.ranker.recommend(user.history.recent, self.k, now_ts=event.ts, exclude=user.history.seen)
        return StepResult(recs, learned, session)
