"""One model step for one event, shared by the Flink operator and the offline tools.

>>> from operators.records import Event
>>> from operators.model.ranker import RankerConfig
>>> step = ModelStep(CooccurrenceRanker(RankerConfig()), k=3, recent_items=20)
>>> h = UserHistory()
>>> step.process(Event("e1", "u", "x", "view", None, 1), h, window_count=1)
StepResult(recommendations=[], learned=True, history_changed=True)
>>> h.recent
['x']
"""

from __future__ import annotations

from dataclasses import dataclass

from operators.model.history import UserHistory
from operators.model.ranker import CooccurrenceRanker
from operators.records import Event, Recommendation


@dataclass(frozen=True)
class StepResult:
    recommendations: list[Recommendation]
    learned: bool            # False: the shared model already held the event (a replay)
    history_changed: bool    # False: the user's history already held it


@dataclass
class ModelStep:
    ranker: CooccurrenceRanker
    k: int
    recent_items: int

    def process(self, event: Event, history: UserHistory, window_count: int | None) -> StepResult:
        """Learn the event (unless the shared model already holds it), add it to the user's history
        (unless the history already holds it: the two can stand at different positions after a
        restore) and return the user's top-k. ``history`` is updated in place."""
        learned = self.ranker.learn(event, history.recent, window_count)
        changed = history.apply(event, self.recent_items)
        recs = self.ranker.recommend(history.recent, self.k, now_ts=event.ts, exclude=history.seen)
        return StepResult(recs, learned, changed)
