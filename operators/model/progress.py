"""Which events the shared model already holds, so a replay after a restart skips them.

The feature stage hands events to the model in event-time order, not offset order, so "every
offset up to X" does not describe what was learned. Watermarks do: an event at or before a
model subtask's input watermark ``W`` reached that subtask before ``W`` did (later ones would be
late, and the cleaning stage rejects late events before the windows). So the learned set is
every event at or before a watermark plus the few learned events after it, kept by position
(``above``) until the watermark passes them. ``offsets`` (partition -> highest learned offset)
is for people reading snapshot listings.

Whose watermark: one model subtask's input watermark says nothing about the events still
queued on *another* subtask's channels. An aligned checkpoint's barrier follows, on every
channel, the events at or before every watermark consumed before it, but an unaligned one
overtakes them: it can commit subtask A's update, carrying A's watermark ``W``, while an event
at or before ``W`` for subtask B waits in B's channel (it goes into the checkpoint's channel
state and reaches B after a restore). So the replicas of the shared model, which all read every
subtask's updates (replica.py), keep each writer's watermark apart (``writers``: subtask -> its
newest update's watermark, at the parallelism ``parallelism`` they wrote at) and judge an event
that reaches subtask ``s`` by ``s``'s own: a subtask's input watermark never passes an event
still queued on its own channels. A learned event's position is kept until its own writer's
watermark passes it. ``floor`` holds for every subtask: the single model's own watermark (one
writer), a bootstrap's cut, and, once a new parallelism has moved users between subtasks, the
newest watermark of the writers before it (exact when the restore was from a savepoint or an
aligned checkpoint; README "Recovery time" says which case is not).

>>> from operators.records import Event, SourcePosition
>>> p = LearnedEvents()
>>> e = Event("e", "u", "i", "view", None, 500, SourcePosition(0, 7))
>>> p.contains(e), p.add(e), p.contains(e)
(False, None, True)
>>> p.advance(400); p.above
{(0, 7): (500, -1)}
>>> p.advance(500); p.above, p.contains(Event("x", "u", "i", "view", None, 450, SourcePosition(0, 3)))
({}, True)

Two writers: subtask 0's watermark says nothing of subtask 1's events.

>>> p = LearnedEvents()
>>> p.record(900, (0, 2)); p.record(300, (1, 2))
>>> late = Event("q", "v", "i", "view", None, 600, SourcePosition(0, 9))
>>> p.contains(late, (1, 2)), p.contains(late, (0, 2)), p.watermark
(False, True, 900)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from operators.records import Event

Writer = tuple[int, int]      # (subtask, parallelism) of the replica that proposed an update
NO_WRITER = -1                # a position learned by the single model (or before updates named their writer)


@dataclass
class LearnedEvents:
    floor: int | None = None
    above: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict)  # (partition, offset) -> (ts, subtask)
    offsets: dict[int, int] = field(default_factory=dict)
    writers: dict[int, int] = field(default_factory=dict)             # subtask -> watermark
    parallelism: int = 0                                              # the writers' (0: none yet)

    @property
    def watermark(self) -> int | None:
        """The newest watermark of any writer, or the floor: the single model's watermark, and
        what a new parallelism's subtasks are judged by until the log shows them writing."""
        marks = [m for m in (self.floor, *self.writers.values()) if m is not None]
        return max(marks) if marks else None

    def contains(self, event: Event, writer: Writer | None = None) -> bool:
        """Whether the model holds ``event``, which reaches the subtask ``writer`` (None: the
        model has one writer, or the question is asked offline)."""
        p = event.position
        if p.partition < 0:           # offline input has no positions and is never replayed
            return False
        # At another parallelism users moved between subtasks (or the model has one writer):
        # the newest watermark counts.
        same = writer is not None and writer[1] == self.parallelism
        held = self._level(writer) if same else self.watermark
        return (held is not None and event.ts <= held) or (p.partition, p.offset) in self.above

    def add(self, event: Event, writer: Writer | None = None) -> None:
        """``event`` is learned (proposed by ``writer``, applied after its ``record``)."""
        p = event.position
        if p.partition < 0:
            return
        level = self._level(writer)
        if level is None or event.ts > level:
            self.above[(p.partition, p.offset)] = (event.ts, NO_WRITER if writer is None else writer[0])
        self.offsets[p.partition] = max(self.offsets.get(p.partition, -1), p.offset)

    def _level(self, writer: Writer | None) -> int | None:
        """The watermark that holds for events reaching ``writer``: the floor, raised to the
        writer's own watermark when it writes at the current parallelism."""
        own = self.writers.get(writer[0]) if writer is not None and writer[1] == self.parallelism else None
        return max((m for m in (self.floor, own) if m is not None), default=None)

    def advance(self, watermark: int | None) -> None:
        """The single model operator's input watermark (or a bootstrap's cut) moved to
        ``watermark``: it holds for every event, whichever subtask it reaches."""
        if watermark is None or (self.floor is not None and watermark <= self.floor):
            return
        self.floor = watermark
        self._forget(lambda ts, _: ts <= watermark)

    def record(self, watermark: int | None, writer: Writer | None) -> None:
        """An applied update proposed by ``writer`` at its input ``watermark`` (None: an
        update of the single model, or logged before updates named their writer)."""
        if writer is None:
            self.advance(watermark)
            return
        subtask, parallelism = writer
        if parallelism != self.parallelism:
            # The first update at a new parallelism: the old writers' watermarks become the
            # floor, and the positions above it no longer belong to a subtask of this one.
            self.advance(self.watermark)
            self.above = {k: (ts, NO_WRITER) for k, (ts, _) in self.above.items()}
            self.writers, self.parallelism = {}, parallelism
        own = self.writers.get(subtask)
        if watermark is not None and (own is None or watermark > own):
            self.writers[subtask] = watermark
            self._forget(lambda ts, by: by == subtask and ts <= watermark)

    def _forget(self, passed: Callable[[int, int], bool]) -> None:
        """Drop the positions whose (ts, subtask) ``passed`` says a watermark covers."""
        if self.above:
            self.above = {k: v for k, v in self.above.items() if not passed(*v)}

    def to_state(self) -> dict[str, object]:
        return {"watermark": self.floor,
                "above": [[p, o, ts, by] for (p, o), (ts, by) in sorted(self.above.items())],
                "offsets": dict(self.offsets), "writers": [[s, w] for s, w in sorted(self.writers.items())],
                "parallelism": self.parallelism}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> LearnedEvents:
        """Also reads the state of models saved before updates named their writer."""
        return cls(None if state["watermark"] is None else int(state["watermark"]),
                   {(int(a[0]), int(a[1])): (int(a[2]), int(a[3]) if len(a) > 3 else NO_WRITER)
                    for a in state["above"]},
                   {int(p): int(o) for p, o in state["offsets"].items()},
                   {int(s): int(w) for s, w in state.get("writers", [])}, int(state.get("parallelism", 0)))
