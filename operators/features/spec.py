"""What the feature stage computes: its configuration, its columns and the table that documents them.

Window features are counts over event-time sliding windows that *end at or before the event's
own time*: for an event at ``ts`` and a window of ``size`` sliding by ``slide``, the window is
``[E - size, E)`` with ``E = floor((ts + 1) / slide) * slide``, the newest window whose last
millisecond is not after ``ts``. So a feature never counts an event with a later timestamp, and
lags the event by less than one slide. The job computes them with Flink SQL (HOP windows joined
back to each event "as of" its time, :mod:`operators.features.sql`); offline code computes the
same numbers with :class:`operators.features.windows.WindowFeatureBuilder`.

>>> cfg = FeatureConfig(short_window_ms=600_000, short_slide_ms=60_000)
>>> cfg.window_end(119_999, cfg.short_slide_ms), cfg.window_end(120_000, cfg.short_slide_ms)
(120000, 120000)
>>> cfg.window_end(120_001, cfg.short_slide_ms)
120000
>>> WINDOW_COLUMNS[:3]
['item_view_short', 'item_click_short', 'item_add_to_cart_short']
"""

from __future__ import annotations

from dataclasses import dataclass

# Count columns are per event type, plus all types together, in this order.
COUNTED_TYPES = ("view", "click", "add_to_cart", "purchase", "rating")
COUNT_KINDS = (*COUNTED_TYPES, "all")
ENTITIES = ("item", "user")
WINDOWS = ("short", "long")
WINDOW_COLUMNS = [f"{entity}_{kind}_{window}" for entity in ENTITIES for window in WINDOWS for kind in COUNT_KINDS]
FEATURE_COLUMNS = [*WINDOW_COLUMNS, "item_trending", "active_items"]


@dataclass(frozen=True)
class FeatureConfig:
    short_window_ms: int = 3_600_000          # 1 h...
    short_slide_ms: int = 300_000             # ...sliding by 5 min
    long_window_ms: int = 86_400_000          # 24 h...
    long_slide_ms: int = 3_600_000            # ...sliding by 1 h
    session_gap_ms: int = 1_800_000           # a user idle this long starts a new session
    sequence_length: int = 20                 # recent items kept per user
    # Idle keys (items, users) leave the SQL join state after this much processing time; the
    # window aggregates themselves are cleaned by event time. At least the long window, so an
    # expired key could only have had zero counts anyway.
    idle_state_ttl_ms: int = 90_000_000       # 25 h

    def __post_init__(self) -> None:
        for size, slide in ((self.short_window_ms, self.short_slide_ms), (self.long_window_ms, self.long_slide_ms)):
            if size <= 0 or slide <= 0 or size % slide:
                raise ValueError(f"window {size} ms must be a positive multiple of its slide {slide} ms")
        if self.session_gap_ms <= 0 or self.sequence_length <= 0:
            raise ValueError("session_gap_ms and sequence_length must be positive")
        if self.idle_state_ttl_ms < self.long_window_ms:
            raise ValueError("idle_state_ttl_ms must be at least long_window_ms")

    def window(self, name: str) -> tuple[int, int]:
        """(size, slide) of the ``short`` or ``long`` window."""
        return ((self.short_window_ms, self.short_slide_ms) if name == "short"
                else (self.long_window_ms, self.long_slide_ms))

    @staticmethod
    def window_end(ts: int, slide: int) -> int:
        """End (exclusive) of the newest window whose last millisecond is at or before ``ts``."""
        return (ts + 1) // slide * slide

    def trending(self, short_count: int, long_count: int) -> float:
        """Short-window rate against long-window rate: about 1 for a steady item, 0 for a quiet
        one, up to long/short for an item whose whole long-window traffic is recent. The +1
        keeps a handful of events from looking like a surge."""
        return short_count / (long_count * self.short_window_ms / self.long_window_ms + 1.0)


# name, meaning, window, update rule: rendered into the README by `python -m operators.features.spec`.
FEATURE_TABLE: list[tuple[str, str, str, str]] = [
    ("item_<type>_short / _long", "interactions with the event's item, per event type (view, click, add_to_cart, "
     "purchase, rating) and `all`", "short (1 h, slide 5 min) / long (24 h, slide 1 h)",
     "Flink SQL: HOP window count per item, joined to the event as of its time"),
    ("item_trending", "short-window rate of the item against its long-window rate: "
     "`n_short / (n_long * short/long + 1)`", "short and long", "Flink SQL, from the two counts"),
    ("user_<type>_short / _long", "the event's user's interactions, per event type and `all`",
     "short / long", "Flink SQL: HOP window count per user, joined as of the event's time"),
    ("active_items", "distinct items with at least one interaction", "short",
     "Flink SQL: HOP window COUNT(DISTINCT item_id), global, joined as of the event's time"),
    ("recent_items", "the user's last N interactions before this one: item, type, ts", "last N (20) events",
     "Python, model operator's per-user keyed state; events arrive per user in event-time order"),
    ("session_index, session_start_ts, session_events, gap_ms", "gap-based sessions: which session of the user "
     "this event opens or continues, when it started, how many events it holds with this one, time since the "
     "user's previous event", "gap (30 min)", "Python, same keyed state"),
]


def feature_table_markdown() -> str:
    rows = ["| feature | meaning | window | computed by |", "| --- | --- | --- | --- |"]
    rows += [f"| `{name}` | {meaning} | {window} | {how} |" for name, meaning, window, how in FEATURE_TABLE]
    return "\n".join(rows)


if __name__ == "__main__":
    print(feature_table_markdown())
