"""Per-user model state kept in Flink keyed state: recent distinct items and every seen item.

Flink restores keyed state and source offsets together, so this state takes each event exactly
once without tracking positions itself (unlike the shared ranker, see progress.py).

>>> from operators.records import Event
>>> h = UserHistory()
>>> for n, item in enumerate(["i1", "i2", "i1"]):
...     h.apply(Event(f"e{n}", "u", item, "view", None, n), max_recent=2)
>>> h.recent, sorted(h.seen)
(['i2', 'i1'], ['i1', 'i2'])
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field

from operators.features.user import UserActivity
from operators.records import Event


@dataclass
class UserHistory:
    recent: list[str] = field(default_factory=list)   # most recent last, distinct
    seen: set[str] = field(default_factory=set)

    def apply(self, event: Event, max_recent: int) -> None:
        self.seen.add(event.item_id)
        if event.item_id in self.recent:
            self.recent.remove(event.item_id)
        self.recent.append(event.item_id)
        del self.recent[:-max_recent]

    def snapshot(self) -> bytes:
        return pickle.dumps((self.recent, self.seen), protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def restore(cls, data: bytes) -> UserHistory:
        recent, seen = pickle.loads(data)
        return cls(recent, seen)


@dataclass
class UserState:
    """Everything the model operator keeps per user: one keyed-state value, one read and one
    write per event."""

    history: UserHistory = field(default_factory=UserHistory)
    activity: UserActivity = field(default_factory=UserActivity)
    # The situation of the user's next request (ranker.CONTEXT as of their latest event; a
    # plain default, so state pickled before it existed restores with it empty).
    situation: tuple[float, ...] = ()
    # The items of the list last served to the user, best first: what their next event is
    # tested against (evaluation.py); empty until the first list (and in older state).
    served: tuple[str, ...] = ()

    def snapshot(self) -> bytes:
        return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def restore(cls, data: bytes) -> UserState:
        state = pickle.loads(data)
        if not isinstance(state, cls):
            raise TypeError(f"not a UserState: {type(state).__name__}")
        return state
