"""The feature stage's Flink SQL, as text (no pyflink import: the statements are plain strings).

For each entity (item, user) and window (short, long), a HOP window aggregation counts events
per key and slide; a keep-last-row deduplication on the window time turns it into a versioned
view (one row per key, the newest window); an event-time temporal join (``FOR SYSTEM_TIME AS
OF``) gives each event the newest window that ends at or before its own time. A key whose
newest window ended earlier had no events in the window that counts, so its counts are 0. The
same for the global count of distinct active items, on a constant key.

Why HOP + temporal join and not OVER ... RANGE: an OVER window keeps every row of the window
in state and walks them for each new timestamp, which for a 24 h window on a popular item is
unbounded work per event; slide-wise aggregates keep ``size / slide`` counters per key.

The last join is keyed by user and emits in event-time order, so each user's events reach
the model operator sorted by time.

>>> stmts = feature_statements(FeatureConfig(), "events")
>>> [s.split()[3] for s in stmts[:-1]][:2]
['events_item_short_windows', 'events_item_short']
>>> "FOR SYSTEM_TIME AS OF e.rowtime" in stmts[-1]
True
"""

from __future__ import annotations

from operators.cleaning.event_time import sql_interval
from operators.features.spec import COUNTED_TYPES, ENTITIES, FEATURE_COLUMNS, WINDOWS, FeatureConfig

# Columns of the input view, besides `rowtime` (the event-time attribute, TIMESTAMP_LTZ(3)):
# the job's event rows (operators/rows.py), ``ingest_ts`` being the Kafka record's timestamp.
EVENT_COLUMNS = ["event_id", "user_id", "item_id", "event_type", "value", "ts", "partition", "offset", "ingest_ts",
                 "reply_to"]


def _window_view(source: str, name: str, key: str, size: int, slide: int, aggregates: str) -> list[str]:
    hop = f"TABLE(HOP(TABLE {source}, DESCRIPTOR(rowtime), {sql_interval(slide)}, {sql_interval(size)}))"
    return [
        f"CREATE TEMPORARY VIEW {name}_windows AS SELECT {key}, window_time AS vt, {aggregates} "
        f"FROM {hop} GROUP BY {key}, window_start, window_end, window_time",
        # keep the newest window per key: a versioned view for the temporal join
        f"CREATE TEMPORARY VIEW {name} AS SELECT * FROM (SELECT *, ROW_NUMBER() OVER "
        f"(PARTITION BY {key} ORDER BY vt DESC) AS rn FROM {name}_windows) WHERE rn = 1",
    ]


def _counts(entity: str, window: str) -> str:
    per_type = [f"CAST(SUM(CASE WHEN event_type = '{t}' THEN 1 ELSE 0 END) AS BIGINT) AS {entity}_{t}_{window}"
                for t in COUNTED_TYPES]
    return ", ".join([*per_type, f"COUNT(*) AS {entity}_all_{window}"])


def _as_of(alias: str, slide: int) -> str:
    """True when the joined row is the window that ends at or before the event's time (spec.window_end)."""
    return f"{alias}.vt = TO_TIMESTAMP_LTZ((e.ts + 1) - MOD(e.ts + 1, {slide}) - 1, 3)"


def feature_statements(config: FeatureConfig, source: str) -> list[str]:
    """DDL for the helper views over ``source``, then the query that enriches each event.

    ``source`` is a view with :data:`EVENT_COLUMNS`, ``rowtime`` and ``global_key`` (the constant 1,
    the key of the global count). Set ``table.local-time-zone`` to UTC: windows over a
    TIMESTAMP_LTZ column align to the session time zone."""
    statements: list[str] = []
    joins: list[str] = []
    selected: list[str] = [f"e.`{c}`" for c in EVENT_COLUMNS]
    for entity in ENTITIES:
        for window in WINDOWS:
            size, slide = config.window(window)
            alias = f"w_{entity}_{window}"
            view = f"{source}_{entity}_{window}"
            statements += _window_view(source, view, f"{entity}_id", size, slide, _counts(entity, window))
            joins.append(f"LEFT JOIN {view} FOR SYSTEM_TIME AS OF e.rowtime AS {alias} "
                         f"ON e.{entity}_id = {alias}.{entity}_id")
            selected += [f"CASE WHEN {_as_of(alias, slide)} THEN {alias}.{entity}_{kind}_{window} ELSE 0 END "
                         f"AS {entity}_{kind}_{window}" for kind in (*COUNTED_TYPES, "all")]
        if entity == "item":   # global count on the way, before the user joins (see module doc)
            size, slide = config.window("short")
            view = f"{source}_active"
            distinct = "COUNT(DISTINCT item_id) AS active_items"
            statements += _window_view(source, view, "global_key", size, slide, distinct)
            joins.append(f"LEFT JOIN {view} FOR SYSTEM_TIME AS OF e.rowtime AS ac ON e.global_key = ac.global_key")
            active = f"CASE WHEN {_as_of('ac', slide)} THEN ac.active_items ELSE 0 END AS active_items"
    short_all = f"CASE WHEN {_as_of('w_item_short', config.short_slide_ms)} THEN w_item_short.item_all_short ELSE 0 END"
    long_all = f"CASE WHEN {_as_of('w_item_long', config.long_slide_ms)} THEN w_item_long.item_all_long ELSE 0 END"
    ratio = config.short_window_ms / config.long_window_ms
    selected.append(f"CAST({short_all} AS DOUBLE) / (CAST({long_all} AS DOUBLE) * {ratio!r} + 1.0) AS item_trending")
    selected.append(active)
    joined = f"SELECT {', '.join(selected)}, e.rowtime FROM {source} AS e {' '.join(joins)}"
    # The joins emit a user's events in arrival order; this OVER re-emits them per user in
    # event-time order (ties in arrival order) and numbers them.
    columns = ", ".join(f"`{c}`" for c in [*EVENT_COLUMNS, *FEATURE_COLUMNS])
    statements.append(f"SELECT {columns}, COUNT(*) OVER (PARTITION BY user_id ORDER BY rowtime "
                      f"ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS user_event_number FROM ({joined})")
    return statements
