"""The job's three stages run in-process on a list of payloads, without Flink.

Same logic, same order as the job, so offline replay and evaluation give the model what the job
gives it: validate + guard (late events judged against the same bounded-out-of-orderness
watermark), window features as of each event's time, then the model step, with events handed
to the model in event-time order once the watermark has passed them, as the feature SQL does.

>>> import json
>>> p = OfflinePipeline()
>>> out = p.run([json.dumps({"event_id": "e", "user_id": "u", "item_id": "i", "event_type": "view",
...                          "value": None, "ts": 10**12}).encode(), b"junk"])
>>> len(out), p.rejected
(1, {'not_json': 1})
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field

from operators.cleaning.guard import GuardConfig
from operators.cleaning.pipeline import CleaningStage
from operators.features import FeatureConfig, WindowFeatureBuilder, WindowFeatures
from operators.model import ModelStep, OnlineConfig, OnlineRanker, StepResult, UserState
from operators.records import Event


@dataclass(frozen=True)
class ModelInput:
    """One event as the model saw it, with what it answered."""

    event: Event
    window: WindowFeatures
    result: StepResult


@dataclass
class OfflinePipeline:
    k: int = 10
    features: FeatureConfig = field(default_factory=FeatureConfig)
    guard: GuardConfig = field(default_factory=GuardConfig)
    model: OnlineConfig = field(default_factory=OnlineConfig)
    recommend: bool = True      # False: test-then-learn only (evaluation), no output lists
    test_every_event: bool = True   # False: test only what the fusion measures, as the job does

    def __post_init__(self) -> None:
        self.cleaning = CleaningStage(guard=self.guard)
        self.windows = WindowFeatureBuilder(self.features)
        self.users: dict[str, UserState] = {}
        self.step = ModelStep(OnlineRanker(self.model), self.k, self.features, self.test_every_event)
        self.rejected: dict[str, int] = {}
        self._pending: list[tuple[int, int, Event]] = []    # (ts, arrival, event): a min-heap
        self._arrivals = 0

    def process(self, payload: bytes, now_ms: int | None = None) -> list[ModelInput]:
        """Clean one payload; return what the model processed as a result (possibly nothing,
        possibly several events the watermark released)."""
        result = self.cleaning.process(payload, now_ms=now_ms)
        if isinstance(result, Event):
            self.windows.add(result)
            heapq.heappush(self._pending, (result.ts, self._arrivals, result))
            self._arrivals += 1
        elif result is not None:
            self.rejected[result.reason] = self.rejected.get(result.reason, 0) + 1
        return self._release(self.cleaning.watermarks.watermark())   # heartbeats move it too

    def flush(self) -> list[ModelInput]:
        """End of input: release what is still waiting for the watermark."""
        return self._release(None)

    def _release(self, watermark: int | None) -> list[ModelInput]:
        out = []
        while self._pending and (watermark is None or self._pending[0][0] <= watermark):
            _ts, _n, event = heapq.heappop(self._pending)
            window = self.windows.features(event)
            user = self.users.setdefault(event.user_id, UserState())
            out.append(ModelInput(event, window, self.step.process(event, user, window, recommend=self.recommend)))
        if watermark is not None:
            self.windows.prune(watermark)
        return out

    def run(self, payloads: Iterable[bytes]) -> list[ModelInput]:
        out = [m for payload in payloads for m in self.process(payload)]
        return out + self.flush()
