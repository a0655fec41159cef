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
from operators.model.variants import DEFAULT, Variant, assign
from operators.records import Event
from operators.security import Pseudonymizer


@dataclass(frozen=True)
class ModelInput:
    """One event as the model saw it, with what it answered."""

    event: Event
    window: WindowFeatures | None    # None when the pipeline does not compute them (evaluation)
    result: StepResult
    variant: str = DEFAULT           # the model that answered (variants.py)


@dataclass
class OfflinePipeline:
    k: int = 10
    features: FeatureConfig = field(default_factory=FeatureConfig)
    guard: GuardConfig = field(default_factory=GuardConfig)
    model: OnlineConfig = field(default_factory=OnlineConfig)
    recommend: bool = True      # False: test-then-learn only (evaluation), no output lists,
                                # every test of a batch in one vectorised pass (ModelStep.process_many)
    test_every_event: bool = True   # False: test only what the fusion measures, as the job does
    window_features: bool = True    # False: skip them (the ranker's request context then has zeros there)
    variants: tuple[Variant, ...] = (Variant(DEFAULT, 1.0),)   # A/B variants, each its own model (as the job)
    variant_salt: str = ""
    pseudonyms: Pseudonymizer | None = None     # user ids as the job keys them (jobs.bootstrap)

    def __post_init__(self) -> None:
        self.cleaning = CleaningStage(guard=self.guard, pseudonyms=self.pseudonyms)
        self.windows = WindowFeatureBuilder(self.features)
        self.users: dict[str, UserState] = {}
        self.steps = {v.name: ModelStep(OnlineRanker(v.config(self.model)), self.k, self.features,
                                        self.test_every_event) for v in self.variants}
        if len(self.steps) > 1 and not self.recommend:
            raise ValueError("variants need recommend=True (the vectorised evaluation runs one model)")
        self.step = self.steps[self.variants[0].name]    # the model (with one variant)
        self.rejected: dict[str, int] = {}
        self._pending: list[tuple[int, int, Event]] = []    # (ts, arrival, event): a min-heap
        self._arrivals = 0
        self._ready: list[tuple[Event, WindowFeatures | None]] = []   # released, not yet stepped (batched)

    def process(self, payload: bytes, now_ms: int | None = None) -> list[ModelInput]:
        """Clean one payload; return what the model processed as a result (possibly nothing,
        possibly several events the watermark released)."""
        result = self.cleaning.process(payload, now_ms=now_ms)
        if isinstance(result, Event):
            if self.window_features:
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
        released = []
        while self._pending and (watermark is None or self._pending[0][0] <= watermark):
            released.append(heapq.heappop(self._pending)[2])
        windows = [self.windows.features(e) if self.window_features else None for e in released]
        if watermark is not None and self.window_features:
            self.windows.prune(watermark)
        if not self.recommend:
            # Held until a learning batch is complete (or the input ends): the answers are the
            # same however the events are grouped, and a whole batch is one vectorised pass.
            self._ready += zip(released, windows, strict=True)
            if watermark is not None and len(self._ready) < self.step.ranker.until_boundary:
                return []
            ready, self._ready = self._ready, []
            results = self.step.process_many([e for e, _ in ready], self.users, [w for _, w in ready])
            return [ModelInput(e, w, r) for (e, w), r in zip(ready, results, strict=True)]
        out = []
        for e, w in zip(released, windows, strict=True):
            variant = assign(e.user_id, self.variants, self.variant_salt).name
            result = self.steps[variant].process(e, self.users.setdefault(e.user_id, UserState()), w,
                                                 recommend=self.recommend)
            out.append(ModelInput(e, w, result, variant))
        return out

    def run(self, payloads: Iterable[bytes]) -> list[ModelInput]:
        out = [m for payload in payloads for m in self.process(payload)]
        return out + self.flush()
