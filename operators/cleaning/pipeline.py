"""The whole cleaning stage for one stream, in-process: validate, guard per user, then judge
lateness against the watermark of every valid record before (heartbeats included).

The job runs the same steps in the same order: validation in Python, the watermark in the
Kafka source, the guard in a keyed Python operator, lateness in SQL right before the windows
(operators/cleaning/event_time.py). This class serves the offline command (jobs/clean.py),
the offline pipeline and the tests. Counts obey conservation:
``in == out + dlq + duplicates + heartbeats``.

>>> stage = CleaningStage()
>>> ok = b'{"event_id":"e","user_id":"u","item_id":"i","event_type":"view","ts":1000000000000}'
>>> [type(r).__name__ for r in (stage.process(ok, now_ms=10**12), stage.process(ok, now_ms=10**12),
...                             stage.process(b"?", now_ms=10**12))]
['Event', 'NoneType', 'Rejection']
>>> stage.counts()
{'in': 3, 'out': 1, 'dlq': 1, 'duplicates': 1, 'heartbeats': 0, 'by_reason': {'not_json': 1}}
"""

from __future__ import annotations

from typing import Any

from operators.cleaning.cleaner import EventCleaner
from operators.cleaning.event_time import WatermarkTracker, is_late, late_rejection
from operators.cleaning.guard import EventGuard, GuardConfig, UserGuardState
from operators.cleaning.schema import REASONS, SchemaLimits
from operators.records import Event, Heartbeat, Rejection, SourcePosition
from operators.security import Pseudonymizer

_UNKNOWN = SourcePosition()


class CleaningStage:
    def __init__(self, limits: SchemaLimits | None = None, guard: GuardConfig | None = None,
                 pseudonyms: Pseudonymizer | None = None) -> None:
        self.cleaner = EventCleaner(limits, pseudonyms=pseudonyms)
        self.guard = EventGuard(guard or GuardConfig())
        self.watermarks = WatermarkTracker(self.guard.config.max_out_of_orderness_ms)
        self.users: dict[str, UserGuardState] = {}
        self.n_in = self.n_out = self.n_duplicates = self.n_heartbeats = 0
        self.by_reason: dict[str, int] = {}

    def process(self, payload: bytes, position: SourcePosition = _UNKNOWN, now_ms: int | None = None,
                ) -> Event | Rejection | None:
        """The event to forward, the rejection to dead-letter, or None for a duplicate or a
        heartbeat (which only moves the watermark)."""
        self.n_in += 1
        result = self.cleaner.clean(payload, position, now_ms)
        if isinstance(result, Heartbeat):
            self.n_heartbeats += 1
            self.watermarks.observe(result.ts)
            return None
        if isinstance(result, Event):
            state = self.users.get(result.user_id)
            if state is None:
                state = self.users[result.user_id] = UserGuardState()
            verdict = self.guard.check(state, result)
            watermark = self.watermarks.watermark()
            self.watermarks.observe(result.ts)
            if verdict is None and watermark is not None and is_late(result.ts, watermark):
                result = late_rejection(result.ts, watermark, self.watermarks.bound, payload, position)
            elif verdict is None:
                self.n_out += 1
                return result
            elif verdict == "duplicate":
                self.n_duplicates += 1
                return None
            else:
                result = Rejection(verdict, REASONS[verdict], payload, position)
        self.by_reason[result.reason] = self.by_reason.get(result.reason, 0) + 1
        return result

    def counts(self) -> dict[str, Any]:
        return {"in": self.n_in, "out": self.n_out, "dlq": sum(self.by_reason.values()),
                "duplicates": self.n_duplicates, "heartbeats": self.n_heartbeats,
                "by_reason": dict(sorted(self.by_reason.items()))}

