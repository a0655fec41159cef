"""Per-user sequence and session features, kept in the model operator's keyed state.

They depend on the order of a user's events, so they are computed where that order is known:
the feature SQL hands each user's events to the model operator sorted by event time (its last
join is keyed by user and emits in event-time order), which is also the order the offline
tools replay a log in. Computing them there costs no extra keyed-state round trip: the model
operator reads and writes the user's state once per event anyway.

>>> a = UserActivity()
>>> f = a.observe("i1", "view", ts=0, gap_ms=1_000)
>>> f.session_index, f.session_events, f.recent_items
(0, 1, ())
>>> f = a.observe("i2", "click", ts=500, gap_ms=1_000)
>>> f.session_index, f.session_events, f.gap_ms, [r[0] for r in f.recent_items]
(0, 2, 500, ['i1'])
>>> a.observe("i3", "view", ts=5_000, gap_ms=1_000).session_index   # idle > gap: a new session
1
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class SessionFeatures:
    """A user's sequence and session as of one event (the event itself is not in ``recent_items``)."""

    recent_items: tuple[tuple[str, str, int], ...]   # (item_id, event_type, ts), oldest first
    session_index: int          # 0 for the user's first session
    session_start_ts: int
    session_events: int         # events in this session so far, this one included
    gap_ms: int | None          # since the user's previous event; None for the first

    def as_dict(self) -> dict[str, object]:
        return {"recent_items": [list(r) for r in self.recent_items], "session_index": self.session_index,
                "session_start_ts": self.session_start_ts, "session_events": self.session_events,
                "gap_ms": self.gap_ms}


@dataclass
class UserActivity:
    recent: list[tuple[str, str, int]] = field(default_factory=list)
    session_index: int = -1
    session_start_ts: int = 0
    session_events: int = 0
    last_ts: int | None = None

    def observe(self, item_id: str, event_type: str, ts: int, gap_ms: int, max_recent: int = 20) -> SessionFeatures:
        """Features as of this event, then take the event in. Events come in event-time order;
        one that is older than the previous (an equal-time tie broken the other way) continues
        the current session."""
        gap = None if self.last_ts is None else ts - self.last_ts
        if gap is None or gap > gap_ms:
            self.session_index += 1
            self.session_start_ts = ts
            self.session_events = 0
        self.session_events += 1
        features = SessionFeatures(tuple(self.recent), self.session_index, self.session_start_ts,
                                   self.session_events, gap)
        self.recent.append((item_id, event_type, ts))
        del self.recent[:-max_recent]
        self.last_ts = ts if self.last_ts is None else max(self.last_ts, ts)
        return features
