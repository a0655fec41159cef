"""Sliding event-time window counts, kept as per-slide buckets.

One instance holds the buckets of one key (an item). ``observe(ts)`` adds an event and returns
how many events the key has seen so far in the ``window_ms / slide_ms`` slides that end with
the slide holding ``ts``: the count as of the event's own time, never including a later slide.

>>> counter = SlidingWindowCounter(window_ms=3_600_000, slide_ms=60_000)
>>> [counter.observe(t) for t in (0, 30_000, 3_540_000, 3_600_000)]
[1, 2, 3, 2]
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field


@dataclass
class SlidingWindowCounter:
    window_ms: int
    slide_ms: int
    buckets: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.window_ms <= 0 or self.slide_ms <= 0 or self.window_ms % self.slide_ms:
            raise ValueError("window_ms and slide_ms must be positive, window a multiple of slide")

    def observe(self, ts: int) -> int:
        bucket = ts - ts % self.slide_ms
        self.buckets[bucket] = self.buckets.get(bucket, 0) + 1
        return self.count_at(ts)

    def count_at(self, ts: int) -> int:
        """Events in the window ending at ``ts``'s slide; prunes buckets too old to matter."""
        bucket = ts - ts % self.slide_ms
        oldest = bucket - self.window_ms + self.slide_ms
        newest = max(self.buckets, default=bucket)
        # Buckets older than the window of the newest bucket can never count again.
        for b in [b for b in self.buckets if b < newest - self.window_ms + self.slide_ms]:
            del self.buckets[b]
        return sum(c for b, c in self.buckets.items() if oldest <= b <= bucket)

    def snapshot(self) -> bytes:
        return pickle.dumps(self.buckets, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def restore(cls, data: bytes, window_ms: int, slide_ms: int) -> SlidingWindowCounter:
        return cls(window_ms, slide_ms, pickle.loads(data))
