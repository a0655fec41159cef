"""Per-user state kept in Flink keyed state: recent items, seen items, applied positions.

>>> from operators.records import Event, SourcePosition
>>> h = UserHistory()
>>> h.apply(Event("e1", "u", "i1", "view", None, 1, SourcePosition(0, 7)), max_recent=2)
True
>>> h.apply(Event("e1", "u", "i1", "view", None, 1, SourcePosition(0, 7)), max_recent=2)  # replayed
False
>>> h.recent
['i1']
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field

from operators.records import Event


@dataclass
class UserHistory:
    recent: list[str] = field(default_factory=list)   # most recent last, distinct
    seen: set[str] = field(default_factory=set)
    offsets: dict[int, int] = field(default_factory=dict)  # partition -> last applied offset

    def contains(self, event: Event) -> bool:
        p = event.position
        return p.partition >= 0 and p.offset <= self.offsets.get(p.partition, -1)

    def apply(self, event: Event, max_recent: int) -> bool:
        """Add the event unless this history already holds it (a replay); True if added."""
        if self.contains(event):
            return False
        if event.position.partition >= 0:
            self.offsets[event.position.partition] = event.position.offset
        self.seen.add(event.item_id)
        if event.item_id in self.recent:
            self.recent.remove(event.item_id)
        self.recent.append(event.item_id)
        del self.recent[:-max_recent]
        return True

    def snapshot(self) -> bytes:
        return pickle.dumps((self.recent, self.seen, self.offsets), protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def restore(cls, data: bytes) -> UserHistory:
        recent, seen, offsets = pickle.loads(data)
        return cls(recent, seen, offsets)
