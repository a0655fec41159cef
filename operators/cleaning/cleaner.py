"""Minimal validation of the v1 input contract (DESIGN.md §5).

Every input yields exactly one result: an :class:`Event` or a :class:`Rejection` with a
machine-readable reason. The cleaner never raises on any input bytes.

>>> cleaner = EventCleaner()
>>> ok = cleaner.clean(b'{"event_id":"e1","user_id":"u1","item_id":"i1",'
...                    b'"event_type":"view","value":null,"ts":5}')
>>> ok.item_id, ok.ts
('i1', 5)
>>> cleaner.clean(b'not json').reason
'not_json'
"""

from __future__ import annotations

import base64
import json
import math
import time
from typing import Any

from operators.records import EVENT_TYPES, Event, Rejection, SourcePosition

_ID_FIELDS = ("event_id", "user_id", "item_id")
_UNKNOWN = SourcePosition()


class EventCleaner:
    """Turns raw payloads into :class:`Event` or :class:`Rejection`."""

    def __init__(self, max_id_length: int = 256) -> None:
        self.max_id_length = max_id_length

    def clean(self, payload: bytes, position: SourcePosition = _UNKNOWN) -> Event | Rejection:
        def reject(reason: str, message: str) -> Rejection:
            return Rejection(reason, message, payload, position)

        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            return reject("not_utf8", f"payload is not UTF-8: {exc.reason} at byte {exc.start}")
        try:
            doc = json.loads(text, parse_constant=_refuse_constant)
        except (ValueError, RecursionError) as exc:
            return reject("not_json", f"payload is not JSON: {str(exc)[:200]}")
        if not isinstance(doc, dict):
            return reject("not_object", f"payload is JSON {type(doc).__name__}, not an object")
        for field in _ID_FIELDS:
            problem = self._id_problem(doc, field)
            if problem:
                return reject(*problem)
        event_type = doc.get("event_type")
        if not isinstance(event_type, str):
            return reject("missing_field" if event_type is None else "wrong_type",
                          "event_type must be a string")
        if event_type not in EVENT_TYPES:
            return reject("unknown_event_type", f"event_type {event_type[:50]!r} is not one of "
                          f"{sorted(EVENT_TYPES)}")
        ts = doc.get("ts")
        if "ts" not in doc:
            return reject("missing_field", "ts is required")
        if not _is_int(ts):
            return reject("wrong_type", "ts must be an integer (epoch milliseconds)")
        value = doc.get("value")
        if value is not None:
            if not _is_number(value):
                return reject("wrong_type", "value must be a number or null")
            if not math.isfinite(value):
                return reject("bad_value", "value must be finite")
        assert isinstance(ts, int)
        return Event(doc["event_id"], doc["user_id"], doc["item_id"], event_type,
                     None if value is None else float(value), ts, position)

    def _id_problem(self, doc: dict[str, Any], field: str) -> tuple[str, str] | None:
        if field not in doc or doc[field] is None:
            return "missing_field", f"{field} is required"
        value = doc[field]
        if not isinstance(value, str):
            return "wrong_type", f"{field} must be a string, got {type(value).__name__}"
        if not value:
            return "bad_id", f"{field} is empty"
        if len(value) > self.max_id_length:
            return "bad_id", f"{field} is longer than {self.max_id_length} characters"
        return None


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def dead_letter_json(rejection: Rejection, source_topic: str, now_ms: int | None = None) -> str:
    """The dead-letter record for a rejection, as one JSON line."""
    try:
        payload, encoding = rejection.payload.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        payload, encoding = base64.b64encode(rejection.payload).decode("ascii"), "base64"
    return json.dumps({
        "reason": rejection.reason,
        "message": rejection.message,
        "payload": payload,
        "payload_encoding": encoding,
        "source": {"topic": source_topic, "partition": rejection.position.partition,
                   "offset": rejection.position.offset},
        "rejected_ts": int(time.time() * 1000) if now_ms is None else now_ms,
    }, ensure_ascii=False)
