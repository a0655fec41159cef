"""Flink row types between the stages, and conversions to the pure records."""

from __future__ import annotations

from pyflink.common import Row, Types

from operators.features.spec import FEATURE_COLUMNS, WINDOW_COLUMNS
from operators.features.sql import EVENT_COLUMNS
from operators.features.windows import WindowFeatures
from operators.records import EVALUATION_COLUMNS, Event, SourcePosition

EVENT_FIELDS = EVENT_COLUMNS
EVENT_TYPES = [Types.STRING(), Types.STRING(), Types.STRING(), Types.STRING(), Types.DOUBLE(),
               Types.LONG(), Types.INT(), Types.LONG(), Types.LONG(), Types.STRING()]
EVENT_ROW = Types.ROW_NAMED(EVENT_FIELDS, EVENT_TYPES)
# A validated event still carrying its original payload, for dead letters of the guard.
CLEAN_ROW = Types.ROW_NAMED(EVENT_FIELDS + ["raw"], EVENT_TYPES + [Types.STRING()])
# An event with the window features as of its own timestamp (operators/features/sql.py).
ENRICHED_FIELDS = [*EVENT_FIELDS, *FEATURE_COLUMNS, "user_event_number"]
_N_EVENT, _N_COUNTS = len(EVENT_FIELDS), len(WINDOW_COLUMNS)
USER_EVENT_NUMBER = ENRICHED_FIELDS.index("user_event_number")
# What PyFlink's timer service reports before the first watermark (Long.MIN_VALUE, or close).
NO_WATERMARK = -(2**62)


def watermark_or_none(watermark: int) -> int | None:
    return None if watermark <= NO_WATERMARK else watermark


# A message for a Kafka sink table: key and JSON value.
KEYED_JSON_ROW = Types.ROW_NAMED(["msg_key", "payload"], [Types.STRING(), Types.STRING()])
JSON_ROW = Types.ROW_NAMED(["payload"], [Types.STRING()])
# A control-topic request to the model, keyed by user (cleaning/control.py ForgetUser)
CONTROL_ROW = Types.ROW_NAMED(["user_id", "request_id"], [Types.STRING(), Types.STRING()])
# The model's output: the recommendation record (KEYED_JSON_ROW's columns), then its variant,
# event time, the items served (after metrics_sql.SERVED_MARK) and the test-then-learn
# evaluation as typed columns, which the metrics SQL sums without parsing the JSON
# (operators/model/metrics_sql.py).
_SQL_TYPES = {"INT": Types.INT(), "BIGINT": Types.LONG(), "DOUBLE": Types.DOUBLE()}
RECOMMENDATION_ROW = Types.ROW_NAMED(
    ["msg_key", "payload", "variant", "event_ts", "served", *(name for name, _ in EVALUATION_COLUMNS)],
    [Types.STRING(), Types.STRING(), Types.STRING(), Types.LONG(), Types.BASIC_ARRAY(Types.STRING()),
     *(_SQL_TYPES[t] for _, t in EVALUATION_COLUMNS)])


def event_to_row(e: Event) -> Row:
    return Row(e.event_id, e.user_id, e.item_id, e.event_type, e.value, e.ts,
               e.position.partition, e.position.offset, e.position.timestamp, e.reply_to)


def row_to_event(r: Row) -> Event:
    return Event(r[0], r[1], r[2], r[3], r[4], r[5], SourcePosition(r[6], r[7], r[8]), r[9] or "")


def row_to_window_features(r: Row) -> WindowFeatures:
    """The window features of an ENRICHED_FIELDS row."""
    end = _N_EVENT + _N_COUNTS
    return WindowFeatures.from_columns(list(r[_N_EVENT:end]), r[end], r[end + 1])
