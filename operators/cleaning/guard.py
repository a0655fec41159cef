"""Stateful checks after validation, per user: duplicates and the bot rate limit.

All decisions use event time, never the processing clock, so a replay decides the same way.
The state of one user is a small :class:`UserGuardState` (a dict of them offline). The job runs
the same rules in the JVM (jvm/src/main/java/streamrec/flink/GuardFunction.java, keyed state on
the TaskManager's heap), because a keyed Python operator pays a state round trip per event;
tests/flink/test_guard.py holds the two to the same decision for every event. Late events are
judged after this, once, by the watermark of the first event-time operator
(operators/cleaning/event_time.py), not here.

>>> guard = EventGuard(GuardConfig(rate_limit=2, rate_window_ms=1000))
>>> state = UserGuardState()
>>> from operators.records import Event
>>> [guard.check(state, Event(f"e{n}", "u", "i", "view", None, t))
...  for n, t in [(1, 0), (1, 0), (2, 10), (3, 20), (4, 2000)]]
[None, 'duplicate', None, 'rate_limited', None]
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from operators.records import Event


@dataclass(frozen=True)
class GuardConfig:
    dedupe_ttl_ms: int = 24 * 3_600_000     # an event_id seen within this much event time is a duplicate
    max_dedupe_ids: int = 10_000            # per user; the oldest ids go first beyond this
    rate_limit: int = 300                   # accepted events per user per rate window...
    rate_window_ms: int = 60_000            # ...of event time; more are rate_limited
    # Watermark = max event time seen - this - 1 ms (Flink's bounded out-of-orderness). An event
    # at or behind the watermark is late: the feature windows downstream could not count it.
    # (Used by the source's watermark and the offline tracker; the guard itself needs no clock.)
    # Every event waits this long for its features, so it is the floor of the job's latency:
    # 500 ms (README "Event time" has the measured trade-off; 5,000 was the default before).
    max_out_of_orderness_ms: int = 500


@dataclass
class UserGuardState:
    seen: dict[str, int] = field(default_factory=dict)   # event_id -> ts, insertion ordered
    accepted_ts: list[int] = field(default_factory=list)  # sorted, within the rate window
    max_ts: int | None = None


class EventGuard:
    """Returns None for an event to forward, else ``duplicate`` / ``rate_limited``."""

    def __init__(self, config: GuardConfig) -> None:
        self.config = config

    def check(self, state: UserGuardState, event: Event) -> str | None:
        cfg = self.config
        ts = event.ts
        state.max_ts = ts if state.max_ts is None else max(state.max_ts, ts)
        horizon = state.max_ts - cfg.dedupe_ttl_ms
        if event.event_id in state.seen and state.seen[event.event_id] >= horizon:
            return "duplicate"
        # Remembered whatever happens next, so a retried rejected event is a duplicate, not a
        # second dead letter.
        state.seen.pop(event.event_id, None)
        state.seen[event.event_id] = ts
        self._prune_ids(state, horizon)
        window_start = ts - cfg.rate_window_ms
        acc = state.accepted_ts
        if bisect.bisect_right(acc, ts) - bisect.bisect_right(acc, window_start) >= cfg.rate_limit:
            return "rate_limited"
        bisect.insort(acc, ts)
        del acc[: bisect.bisect_right(acc, state.max_ts - cfg.rate_window_ms)]
        return None

    def _prune_ids(self, state: UserGuardState, horizon: int) -> None:
        seen = state.seen
        while len(seen) > self.config.max_dedupe_ids:
            del seen[next(iter(seen))]
        if len(seen) > 64:    # amortised: expire old ids now and then, not on every event
            first = next(iter(seen))
            if seen[first] < horizon:
                for key in [k for k, t in seen.items() if t < horizon]:
                    del seen[key]
