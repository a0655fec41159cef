"""The job's three stages run in-process on a list of payloads, without Flink.

Same logic, same order as the job (validate + guard -> item window count -> model step), so offline
replay and evaluation give the model what the job gives it.

>>> import json
>>> p = OfflinePipeline()
>>> out = p.run([json.dumps({"event_id": "e", "user_id": "u", "item_id": "i", "event_type": "view",
...                          "value": None, "ts": 10**12}).encode(), b"junk"])
>>> len(out), p.rejected
(1, {'not_json': 1})
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from operators.cleaning.pipeline import CleaningStage
from operators.features import SlidingWindowCounter
from operators.model import CooccurrenceRanker, ModelStep, RankerConfig, UserHistory
from operators.records import Event, Recommendation


@dataclass
class OfflinePipeline:
    k: int = 10
    recent_items: int = 20
    window_ms: int = 3_600_000
    slide_ms: int = 60_000
    ranker_config: RankerConfig = field(default_factory=RankerConfig)

    def __post_init__(self) -> None:
        self.cleaning = CleaningStage()
        self.windows: dict[str, SlidingWindowCounter] = {}
        self.histories: dict[str, UserHistory] = {}
        self.step = ModelStep(CooccurrenceRanker(self.ranker_config), self.k, self.recent_items)
        self.rejected: dict[str, int] = {}

    def process(self, payload: bytes, now_ms: int | None = None) -> tuple[Event, list[Recommendation]] | None:
        result = self.cleaning.process(payload, now_ms=now_ms)
        if not isinstance(result, Event):
            if result is not None:
                self.rejected[result.reason] = self.rejected.get(result.reason, 0) + 1
            return None
        window = self.windows.get(result.item_id)
        if window is None:
            window = self.windows[result.item_id] = SlidingWindowCounter(self.window_ms, self.slide_ms)
        count = window.observe(result.ts)
        history = self.histories.setdefault(result.user_id, UserHistory())
        return result, self.step.process(result, history, count).recommendations

    def run(self, payloads: Iterable[bytes]) -> list[tuple[Event, list[Recommendation]]]:
        return [out for out in map(self.process, payloads) if out is not None]
