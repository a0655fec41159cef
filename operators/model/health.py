"""The model's health guard: when the online metric drops or a parameter goes non-finite, the
model rolls back to its last good state by itself.

Every ``guard_every`` learned events (at exact multiples of ``learned_events``, so at the same
versions in every replica and in every replay of the update log) the ranker asks
``HealthGuard.check``:

- a non-finite parameter (NaN or Inf anywhere in the learned state) is always bad;
- the served-list hit rate (test-then-learn, evaluation.py) of the last ``guard_short_ms`` of
  event time, against the ``guard_long_ms`` before it: bad when the short window has at least
  ``guard_min_tests`` tests, the trailing one too, and the short rate is below
  ``guard_ratio`` times the trailing rate.

Healthy, the state at this check becomes the *good* copy. Bad, the ranker's learned parts go
back to the good copy (online.py ``OnlineRanker._check_health``); the events it had taken stay
taken (never learned twice, and the version keeps counting), and the short window's tests are
dropped so that the restored model is judged on its own lists. The guard's counters, its
rollbacks and the good copy (when it differs from the state around it) are part of the
snapshot, so a restart, a replay or another replica reaches the same decisions.

The hit of each event travels with it (``Interaction.served``, ``ModelUpdate.served``): the
guard sees exactly what the replicas' log says.

>>> guard = HealthGuard(short_ms=10, long_ms=100, ratio=0.5, min_tests=4)
>>> for ts in range(0, 80):
...     guard.count(ts, 1 if ts % 2 else 0)          # a hit rate of 0.5 ...
>>> guard.check(None) is None
True
>>> for ts in range(80, 92):
...     guard.count(ts, 0)                           # ... then none
>>> guard.check(None)
'hit rate of the last 10 ms 0.0000 (0/10) < 0.5 x the 100 ms before 0.4878 (40/82)'
>>> guard.check("embeddings")
'non-finite parameters in embeddings'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

UNTESTED = -1        # Interaction.served: the user had not been served a list before the event


@dataclass
class Rollback:
    version: int          # the ranker's learned_events when it rolled back
    to_version: int       # the good copy's version
    event_ts: int | None  # the newest event time the guard had counted
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"version": self.version, "to_version": self.to_version, "event_ts": self.event_ts,
                "reason": self.reason}


@dataclass
class HealthGuard:
    short_ms: int = 3_600_000
    long_ms: int = 86_400_000
    ratio: float = 0.7
    min_tests: int = 200
    buckets: dict[int, list[int]] = field(default_factory=dict)   # start ms -> [tested, hits]
    newest_ts: int | None = None
    rollbacks: list[Rollback] = field(default_factory=list)

    @property
    def bucket_ms(self) -> int:
        return max(1, self.short_ms // 4)

    def count(self, ts: int, served: int) -> None:
        """One event's served-list test: ``served`` 1 hit, 0 miss, UNTESTED not tested."""
        if served == UNTESTED:
            return
        start = ts - ts % self.bucket_ms
        tested_hits = self.buckets.setdefault(start, [0, 0])
        tested_hits[0] += 1
        tested_hits[1] += served
        if self.newest_ts is None or ts > self.newest_ts:
            self.newest_ts = ts
            oldest = ts - self.short_ms - self.long_ms - self.bucket_ms
            for old in [b for b in self.buckets if b < oldest]:
                del self.buckets[old]

    def _window(self, since: int, until: int) -> tuple[int, int]:
        tested = hits = 0
        for start, (t, h) in self.buckets.items():
            if since <= start < until:
                tested, hits = tested + t, hits + h
        return tested, hits

    def _split(self) -> int:
        """Where the short window starts (a bucket boundary)."""
        assert self.newest_ts is not None
        newest = self.newest_ts - self.newest_ts % self.bucket_ms
        return newest + self.bucket_ms - self.short_ms

    def check(self, nonfinite: str | None) -> str | None:
        """Why the model is bad now (None: healthy). ``nonfinite``: the part of the model with a
        NaN or Inf, if any."""
        if nonfinite:
            return f"non-finite parameters in {nonfinite}"
        if self.newest_ts is None:
            return None
        split = self._split()
        st, sh = self._window(split, split + self.short_ms)
        lt, lh = self._window(split - self.long_ms, split)
        if st < self.min_tests or lt < self.min_tests:
            return None
        short, long = sh / st, lh / lt
        if short < self.ratio * long:
            return (f"hit rate of the last {_span(self.short_ms)} {short:.4f} ({sh}/{st}) < {self.ratio:g} x "
                    f"the {_span(self.long_ms)} before {long:.4f} ({lh}/{lt})")
        return None

    def rolled_back(self, version: int, to_version: int, reason: str) -> Rollback:
        """Record a rollback and drop the short window's tests: the model it judged is gone."""
        if self.newest_ts is not None:
            split = self._split()
            for start in [b for b in self.buckets if b >= split]:
                del self.buckets[start]
        rollback = Rollback(version, to_version, self.newest_ts, reason)
        self.rollbacks.append(rollback)
        return rollback

    def to_state(self) -> dict[str, Any]:
        return {"buckets": [[b, t, h] for b, (t, h) in sorted(self.buckets.items())], "newest_ts": self.newest_ts,
                "rollbacks": [r.as_dict() for r in self.rollbacks]}

    def load(self, state: dict[str, Any]) -> None:
        self.buckets = {int(b): [int(t), int(h)] for b, t, h in state["buckets"]}
        self.newest_ts = None if state["newest_ts"] is None else int(state["newest_ts"])
        self.rollbacks = [Rollback(int(r["version"]), int(r["to_version"]),
                                   None if r["event_ts"] is None else int(r["event_ts"]), str(r["reason"]))
                          for r in state["rollbacks"]]


def _span(ms: int) -> str:
    """A duration for people.

    >>> _span(3_600_000), _span(86_400_000), _span(90_000), _span(10)
    ('1 h', '24 h', '1.5 min', '10 ms')
    """
    if ms % 3_600_000 == 0:
        return f"{ms // 3_600_000} h"
    if ms >= 60_000:
        return f"{ms / 60_000:g} min"
    return f"{ms} ms"
