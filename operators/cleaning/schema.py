"""Input schema v1 (DESIGN.md §5) and its validation limits.

One Kafka message = one UTF-8 JSON object:

    {"event_id": "e-123", "user_id": "u-42", "item_id": "sku-9", "event_type": "purchase",
     "value": 19.99, "ts": 1700000000000, "context": {"device": "ios"}}

| field | type | rule |
| --- | --- | --- |
| event_id, user_id, item_id | string | non-empty, at most ``max_id_length`` characters, no control characters |
| event_type | string | one of view, click, add_to_cart, purchase, rating |
| value | number or null | finite when present (ratings: the stars; purchases: the amount) |
| ts | integer | epoch milliseconds, ``>= min_ts_ms`` and ``<= now + max_future_skew_ms`` |
| context | object | optional; free-form; nesting depth of the whole message at most ``max_depth`` |

Other fields are ignored (so producers can add fields before a v2 exists). Booleans are not
numbers; lists and objects are not ids. A v2 is added as another entry of ``SCHEMAS`` beside
v1, with its own validator, selected by the job's ``--schema-version``.
"""

from __future__ import annotations

from dataclasses import dataclass

from operators.records import EVENT_TYPES


@dataclass(frozen=True)
class SchemaLimits:
    max_message_bytes: int = 1_048_576
    max_depth: int = 16
    max_id_length: int = 256
    min_ts_ms: int = 631_152_000_000            # 1990-01-01: MovieLens logs start in the 1990s
    max_future_skew_ms: int = 300_000           # 5 minutes ahead of the ingestion clock


@dataclass(frozen=True)
class SchemaV1:
    version: str = "v1"
    required_ids: tuple[str, ...] = ("event_id", "user_id", "item_id")
    event_types: frozenset[str] = EVENT_TYPES


SCHEMAS = {"v1": SchemaV1()}

# Machine-readable reasons a record can be rejected for, with what each means.
REASONS = {
    "too_large": "message above max_message_bytes",
    "not_utf8": "payload is not valid UTF-8",
    "not_json": "payload is not JSON (NaN and Infinity literals are not JSON)",
    "too_deep": "JSON nested deeper than max_depth",
    "not_object": "JSON value is not an object",
    "missing_field": "a required field is absent or null",
    "wrong_type": "a field has the wrong JSON type",
    "unknown_event_type": "event_type is not one of the schema's types",
    "bad_id": "an id is empty, too long or holds control characters",
    "ts_too_old": "ts before min_ts_ms",
    "ts_in_future": "ts beyond max_future_skew_ms ahead of the ingestion clock",
    "bad_value": "value is not a finite number",
    "late": "event time behind the watermark by more than the allowed lateness",
    "rate_limited": "the user exceeded the event-time rate limit (bot guard)",
    "unknown_control": "a control-topic record asks for nothing the job knows (cleaning/control.py)",
    "internal_error": "the cleaning code failed on this record (a bug: the record is kept here)",
}
