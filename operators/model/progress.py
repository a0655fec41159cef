"""Which events the shared model already holds, so a replay after a restart skips them.

The feature stage hands events to the model in event-time order, not offset order, so "every
offset up to X" does not describe what was learned. Watermarks do: an event at or before the
model's watermark ``W`` reached the model before ``W`` did (later ones would be late, and the
cleaning stage rejects late events before the windows). So the learned set is every event at or
before ``W`` plus the few learned events after ``W``, kept by position until ``W`` passes them.
``offsets`` (partition -> highest learned offset) is for people reading snapshot listings.

>>> from operators.records import Event, SourcePosition
>>> p = LearnedEvents()
>>> e = Event("e", "u", "i", "view", None, 500, SourcePosition(0, 7))
>>> p.contains(e), p.add(e), p.contains(e)
(False, None, True)
>>> p.advance(400); p.above
{(0, 7): 500}
>>> p.advance(500); p.above, p.contains(Event("x", "u", "i", "view", None, 450, SourcePosition(0, 3)))
({}, True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from operators.records import Event


@dataclass
class LearnedEvents:
    watermark: int | None = None
    above: dict[tuple[int, int], int] = field(default_factory=dict)   # (partition, offset) -> ts
    offsets: dict[int, int] = field(default_factory=dict)

    def contains(self, event: Event) -> bool:
        p = event.position
        if p.partition < 0:           # offline input has no positions and is never replayed
            return False
        if self.watermark is not None and event.ts <= self.watermark:
            return True
        return (p.partition, p.offset) in self.above

    def add(self, event: Event) -> None:
        p = event.position
        if p.partition < 0:
            return
        if self.watermark is None or event.ts > self.watermark:
            self.above[(p.partition, p.offset)] = event.ts
        self.offsets[p.partition] = max(self.offsets.get(p.partition, -1), p.offset)

    def advance(self, watermark: int | None) -> None:
        """The model operator's input watermark moved to ``watermark``."""
        if watermark is None or (self.watermark is not None and watermark <= self.watermark):
            return
        self.watermark = watermark
        if self.above:
            self.above = {k: ts for k, ts in self.above.items() if ts > watermark}

    def to_state(self) -> dict[str, object]:
        return {"watermark": self.watermark, "above": [[p, o, ts] for (p, o), ts in sorted(self.above.items())],
                "offsets": dict(self.offsets)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> LearnedEvents:
        return cls(None if state["watermark"] is None else int(state["watermark"]),
                   {(int(p), int(o)): int(ts) for p, o, ts in state["above"]},
                   {int(p): int(o) for p, o in state["offsets"].items()})
