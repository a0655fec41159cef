"""A small hand-made stream with out-of-order events and its exact expected features.

Shared by the unit test (offline builder), the local-Flink test (the SQL) and the integration
test (the real job), so all three are held to the same numbers. Windows: short 10 min sliding by
1 min, long 60 min sliding by 5 min; sessions split after 5 idle minutes.
"""

from __future__ import annotations

from operators.features.spec import FEATURE_COLUMNS, FeatureConfig
from operators.records import Event, SourcePosition

T = 1_699_999_200_000          # a whole hour, so every slide boundary is a round number
S, M = 1_000, 60_000
CONFIG = FeatureConfig(short_window_ms=10 * M, short_slide_ms=M, long_window_ms=60 * M, long_slide_ms=5 * M,
                       session_gap_ms=5 * M, sequence_length=3, idle_state_ttl_ms=60 * M)
MAX_OUT_OF_ORDERNESS_MS = 2 * M

# (event_id, user, item, type, ts - T) in arrival order; the comments say what each one tests
ARRIVALS = [
    ("e1", "u1", "a", "view", 30 * S),
    ("e2", "u2", "a", "click", 70 * S),
    ("e3", "u1", "b", "view", 50 * S),          # 20 s out of order
    ("e4", "u1", "a", "purchase", 2 * M),       # exactly on a slide boundary: its own slide does not count
    ("e5", "u3", "a", "view", 2 * M - 1),       # last ms of a slide: the window up to it counts, itself included
    ("e6", "u2", "b", "view", 8 * M),
    ("e7", "u1", "a", "view", 15 * M),          # u1 idle 13 min: a new session
    ("e8", "u2", "a", "rating", 14 * M),        # a minute out of order
    ("e9", "u1", "c", "add_to_cart", 15 * M + 30 * S),
]


def events() -> list[Event]:
    return [Event(eid, u, i, t, 4.0 if t == "rating" else None, T + dt, SourcePosition(0, n))
            for n, (eid, u, i, t, dt) in enumerate(ARRIVALS)]


def payloads() -> list[dict[str, object]]:
    return [{"event_id": e.event_id, "user_id": e.user_id, "item_id": e.item_id, "event_type": e.event_type,
             "value": e.value, "ts": e.ts} for e in events()]


# The order the model sees them in: event time (the watermark releases them sorted).
MODEL_ORDER = ["e1", "e3", "e2", "e5", "e4", "e6", "e8", "e7", "e9"]

# Worked out by hand from the definitions in operators/features/spec.py.
EXPECTED: dict[str, dict[str, object]] = {
    # short window of e1..e3 ends at T+0 or T+1min: only events before it count
    "e1": {"item_all_short": 0, "item_all_long": 0, "user_all_short": 0, "active_items": 0,
           "session_index": 0, "session_events": 1, "recent": []},
    "e3": {"item_all_short": 0, "user_all_short": 0, "active_items": 0, "session_index": 0, "session_events": 2,
           "recent": ["a"]},
    "e2": {"item_all_short": 1, "item_view_short": 1, "user_all_short": 0, "active_items": 2,
           "item_trending": 1.0, "recent": []},
    # e5 at T+2min-1: window [T-8min, T+2min) holds e1, e2 and e5 itself
    "e5": {"item_all_short": 3, "item_view_short": 2, "item_click_short": 1, "user_all_short": 1,
           "active_items": 2, "item_trending": 3.0},
    # e4 at T+2min: same window, so the same counts as e5; u1 had e1 and e3 in it
    "e4": {"item_all_short": 3, "user_all_short": 2, "user_view_short": 2, "item_all_long": 0,
           "session_events": 3, "recent": ["a", "b"]},
    # e6 at T+8min: short window [T-2min, T+8min): e1..e5; long windows end at T+5min: e1..e5
    "e6": {"item_all_short": 1, "item_all_long": 1, "user_all_short": 1, "user_all_long": 1,
           "active_items": 2, "item_trending": 1 / (1 * 10 / 60 + 1)},
    # e8 at T+14min: short window [T+4min, T+14min): only e6 (item b), so item a has 0
    "e8": {"item_all_short": 0, "item_all_long": 4, "item_purchase_long": 1, "user_all_short": 1,
           "active_items": 1, "item_trending": 0.0, "session_index": 2, "gap_ms": 6 * M},   # u2 idle twice
    # e7 at T+15min: short window [T+5min, T+15min): e6, e8 (item a: e8 only); long [T-45min, T+15min)
    "e7": {"item_all_short": 1, "item_rating_short": 1, "item_all_long": 5, "user_all_short": 0,
           "user_all_long": 3, "active_items": 2, "session_index": 1, "session_events": 1, "gap_ms": 13 * M,
           "recent": ["a", "b", "a"]},
    "e9": {"item_all_short": 0, "user_all_short": 0, "user_all_long": 3, "session_index": 1,
           "session_events": 2, "gap_ms": 30 * S, "recent": ["b", "a", "a"]},
}


def check(event_id: str, features: dict[str, object], window_only: bool = False) -> list[str]:
    """The expected values ``features`` gets wrong ("recent" compares item ids only);
    ``window_only``: just the window features (the SQL's part)."""
    wrong = []
    for name, want in EXPECTED[event_id].items():
        if window_only and name not in FEATURE_COLUMNS:
            continue
        got = features.get(name) if name != "recent" else [r[0] for r in features["recent_items"]]  # type: ignore[index, union-attr]
        if isinstance(want, float) and isinstance(got, int | float) and abs(got - want) < 1e-9:
            continue
        if got != want:
            wrong.append(f"{event_id}.{name}: expected {want!r}, got {got!r}")
    return wrong
