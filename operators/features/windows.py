"""Window features computed in Python: the offline twin of the job's Flink SQL.

:class:`WindowFeatureBuilder` gives the numbers the SQL in :mod:`operators.features.sql` gives,
for the same events (tests/flink/test_features_sql.py checks it). It keeps per-slide counts per
key, the way Flink's sliced HOP windows do, and answers for an event from the slides of the
windows that end at or before the event's time (see :mod:`operators.features.spec`), so the
order in which events within the out-of-orderness bound are added does not matter.

>>> from operators.records import Event
>>> b = WindowFeatureBuilder(FeatureConfig(short_window_ms=600_000, short_slide_ms=60_000))
>>> events = [Event(f"e{n}", "u", "i", "view", None, ts) for n, ts in enumerate([0, 59_999, 70_000])]
>>> for e in events:
...     b.add(e)
>>> [b.features(e).count("item", "short") for e in events]
[0, 2, 2]
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from operators.features.spec import COUNT_KINDS, ENTITIES, WINDOW_COLUMNS, WINDOWS, FeatureConfig
from operators.records import Event

_KIND_INDEX = {kind: n for n, kind in enumerate(COUNT_KINDS)}
_ALL = _KIND_INDEX["all"]


@dataclass(frozen=True, slots=True)
class WindowFeatures:
    """The window features of one event, ``counts`` in :data:`WINDOW_COLUMNS` order."""

    counts: tuple[int, ...]
    item_trending: float
    active_items: int

    def count(self, entity: str, window: str, kind: str = "all") -> int:
        return self.counts[_column_index(entity, window, kind)]

    def as_dict(self) -> dict[str, float | int]:
        out: dict[str, float | int] = dict(zip(WINDOW_COLUMNS, self.counts, strict=True))
        out["item_trending"] = self.item_trending
        out["active_items"] = self.active_items
        return out

    @classmethod
    def from_columns(cls, values: list[int | None], item_trending: float | None,
                     active_items: int | None) -> WindowFeatures:
        """From the SQL output, where a key with no window yet is NULL."""
        return cls(tuple(v or 0 for v in values), item_trending or 0.0, active_items or 0)


def _column_index(entity: str, window: str, kind: str) -> int:
    return (ENTITIES.index(entity) * len(WINDOWS) + WINDOWS.index(window)) * len(COUNT_KINDS) + _KIND_INDEX[kind]


class SlicedCounts:
    """Per-key counts per event type in slides of ``slide`` ms, for windows of ``size`` ms."""

    def __init__(self, size: int, slide: int) -> None:
        self.size, self.slide = size, slide
        self.slices: dict[str, dict[int, list[int]]] = defaultdict(dict)   # key -> slide start -> counts

    def add(self, key: str, ts: int, kind: str) -> None:
        start = ts - ts % self.slide
        counts = self.slices[key].get(start)
        if counts is None:
            counts = self.slices[key][start] = [0] * len(COUNT_KINDS)
        counts[_KIND_INDEX[kind]] += 1
        counts[_ALL] += 1

    def window(self, key: str, ts: int) -> list[int]:
        """Counts over the newest window that ends at or before ``ts``."""
        end = FeatureConfig.window_end(ts, self.slide)
        total = [0] * len(COUNT_KINDS)
        for start, counts in self.slices.get(key, {}).items():
            if end - self.size <= start < end:
                for n, c in enumerate(counts):
                    total[n] += c
        return total

    def prune(self, before_ts: int) -> None:
        """Forget slides no window at or after ``before_ts`` can contain; drop empty keys."""
        horizon = before_ts - self.size
        for key in list(self.slices):
            slices = self.slices[key]
            for start in [s for s in slices if s + self.slide <= horizon]:
                del slices[start]
            if not slices:
                del self.slices[key]


class WindowFeatureBuilder:
    """Add events as they come (within the out-of-orderness bound), ask for an event's features
    once every event before it has been added (in the job: once the watermark passed it)."""

    def __init__(self, config: FeatureConfig | None = None) -> None:
        self.config = config or FeatureConfig()
        self.counts = {(entity, window): SlicedCounts(*self.config.window(window))
                       for entity in ENTITIES for window in WINDOWS}
        self.active: dict[int, set[str]] = defaultdict(set)     # slide start -> items active in it
        self._pruned_at = 0

    def add(self, event: Event) -> None:
        for (entity, _window), counts in self.counts.items():
            counts.add(event.item_id if entity == "item" else event.user_id, event.ts, event.event_type)
        slide = self.config.short_slide_ms
        self.active[event.ts - event.ts % slide].add(event.item_id)

    def features(self, event: Event) -> WindowFeatures:
        values: list[int] = []
        for entity in ENTITIES:
            for window in WINDOWS:
                values += self.counts[(entity, window)].window(
                    event.item_id if entity == "item" else event.user_id, event.ts)
        trending = self.config.trending(values[_column_index("item", "short", "all")],
                                        values[_column_index("item", "long", "all")])
        size, slide = self.config.window("short")
        end = FeatureConfig.window_end(event.ts, slide)
        active: set[str] = set()
        for start, items in self.active.items():
            if end - size <= start < end:
                active |= items
        return WindowFeatures(tuple(values), trending, len(active))

    def prune(self, watermark: int) -> None:
        """Drop what no event after ``watermark`` can need: bounded memory for idle keys."""
        if watermark - self._pruned_at < self.config.short_window_ms:   # a full scan: not too often
            return
        self._pruned_at = watermark
        for counts in self.counts.values():
            counts.prune(watermark)
        horizon = watermark - self.config.short_window_ms
        for start in [s for s in self.active if s + self.config.short_slide_ms <= horizon]:
            del self.active[start]

    def state_size(self) -> int:
        """Slides held, all keys together (what bench/feature_state.py plots)."""
        return sum(len(s) for c in self.counts.values() for s in c.slices.values()) + len(self.active)
