"""Validation of one raw message against the input schema (operators/cleaning/schema.py).

Every input yields exactly one result: an :class:`Event` or a :class:`Rejection` with a
machine-readable reason. The cleaner never raises on any input bytes.

>>> cleaner = EventCleaner()
>>> ok = cleaner.clean(b'{"event_id":"e1","user_id":"u1","item_id":"i1",'
...                    b'"event_type":"view","value":null,"ts":1700000000000}', now_ms=1700000000000)
>>> ok.item_id, ok.ts
('i1', 1700000000000)
>>> cleaner.clean(b'not json').reason
'not_json'
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import math
import re
import time
from typing import Any

from operators.cleaning.event_time import event_time
from operators.cleaning.schema import SCHEMAS, SchemaLimits
from operators.records import Event, Heartbeat, Rejection, SourcePosition
from operators.security import Pseudonymizer

_UNKNOWN = SourcePosition()
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_DLQ_PAYLOAD_LIMIT = 64 * 1024     # a dead letter carries at most this much of the original


class EventCleaner:
    """Turns raw payloads into :class:`Event` or :class:`Rejection`. With ``pseudonyms``, an
    event's user id is its pseudonym (the original sealed in ``reply_to``) and a rejection's
    payload has its user id pseudonymised (security.Pseudonymizer)."""

    def __init__(self, limits: SchemaLimits | None = None, schema_version: str = "v1",
                 pseudonyms: Pseudonymizer | None = None) -> None:
        if schema_version not in SCHEMAS:
            raise ValueError(f"unknown schema version {schema_version!r}; known: {sorted(SCHEMAS)}")
        self.limits = limits or SchemaLimits()
        self.schema = SCHEMAS[schema_version]
        self.pseudonyms = pseudonyms
        self._decoder = json_decoder()

    def clean(self, payload: bytes, position: SourcePosition = _UNKNOWN, now_ms: int | None = None,
              ) -> Event | Heartbeat | Rejection:
        """``now_ms`` is the ingestion clock: the Kafka record timestamp in the job
        (reproducible on replay), the wall clock offline by default. A ``ts`` more than
        ``max_future_skew_ms`` ahead of it is rejected; up to that, the event's time is clamped
        to it (operators/cleaning/event_time.py)."""
        result = self._clean(payload, position, now_ms)
        p = self.pseudonyms
        if p is None or isinstance(result, Heartbeat):
            return result
        if isinstance(result, Event):
            e = result
            return Event(e.event_id, p(e.user_id), e.item_id, e.event_type, e.value, e.ts, e.position,
                         p.seal(e.user_id))
        return dataclasses.replace(result, payload=p.scrub(result.payload))

    def _clean(self, payload: bytes, position: SourcePosition, now_ms: int | None) -> Event | Heartbeat | Rejection:
        doc = decode_object(self._decoder, payload, position, self.limits)
        if isinstance(doc, Rejection):
            return doc
        if "heartbeat_ts" in doc and "event_id" not in doc:
            problem = self._check_ts(doc.get("heartbeat_ts"), "heartbeat_ts", now_ms) or self._check_depth(doc)
            if problem is not None:
                return Rejection(problem[0], problem[1], payload, position)
            return Heartbeat(event_time(doc["heartbeat_ts"], now_ms), position)
        problem = self._check(doc, now_ms)
        if problem is not None:
            return Rejection(problem[0], problem[1], payload, position)
        value = doc.get("value")
        return Event(doc["event_id"], doc["user_id"], doc["item_id"], doc["event_type"],
                     None if value is None else float(value), event_time(doc["ts"], now_ms), position)

    def _check(self, doc: dict[str, Any], now_ms: int | None) -> tuple[str, str] | None:
        for field in self.schema.required_ids:
            problem = check_id(doc, field, self.limits)
            if problem is not None:
                return problem
        event_type = doc.get("event_type")
        if event_type is None:
            return "missing_field", "event_type is required"
        if type(event_type) is not str:
            return "wrong_type", f"event_type must be a string, got {_json_type(event_type)}"
        if event_type not in self.schema.event_types:
            return "unknown_event_type", (f"event_type {event_type[:50]!r} is not one of "
                                          f"{sorted(self.schema.event_types)}")
        problem = self._check_ts(doc.get("ts"), "ts", now_ms)
        if problem is not None:
            return problem
        value = doc.get("value")
        if value is not None:
            if type(value) not in (int, float):
                return "wrong_type", f"value must be a number or null, got {_json_type(value)}"
            if not _finite(value):
                return "bad_value", "value must be finite (and within the float range)"
        context = doc.get("context")
        if context is not None and type(context) is not dict:
            return "wrong_type", f"context must be an object, got {_json_type(context)}"
        return self._check_depth(doc)

    def _check_depth(self, doc: dict[str, Any]) -> tuple[str, str] | None:
        limit = self.limits.max_depth
        if any(type(v) in (dict, list) for v in doc.values()) and _depth(doc, limit) > limit:
            return "too_deep", f"JSON nested deeper than {limit}"
        return None


    def _check_ts(self, ts: object, name: str, now_ms: int | None) -> tuple[str, str] | None:
        lim = self.limits
        if ts is None:
            return "missing_field", f"{name} is required"
        if type(ts) is not int:
            return "wrong_type", f"{name} must be an integer (epoch milliseconds), got {_json_type(ts)}"
        if ts < lim.min_ts_ms:
            return "ts_too_old", f"{name} {ts} is before {lim.min_ts_ms}"
        now = int(time.time() * 1000) if now_ms is None else now_ms
        if ts > now + lim.max_future_skew_ms:
            return "ts_in_future", f"{name} {ts} is {ts - now} ms ahead of the ingestion clock {now}"
        return None


def json_decoder() -> json.JSONDecoder:
    """Strict JSON: NaN and Infinity literals are refused."""
    return json.JSONDecoder(parse_constant=_refuse_constant)


def decode_object(decoder: json.JSONDecoder, payload: bytes, position: SourcePosition,
                  limits: SchemaLimits) -> dict[str, Any] | Rejection:
    """A payload as a JSON object, or the rejection saying why it is not one (size, UTF-8,
    JSON, object: the checks every input record passes first)."""
    if len(payload) > limits.max_message_bytes:
        return Rejection("too_large", f"message is {len(payload)} bytes, limit {limits.max_message_bytes}",
                         payload, position)
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejection("not_utf8", f"payload is not UTF-8: {exc.reason} at byte {exc.start}", payload, position)
    try:
        doc = decoder.decode(text)
    except RecursionError:
        return Rejection("too_deep", "JSON nesting exceeds the parser's limit", payload, position)
    except ValueError as exc:
        return Rejection("not_json", f"payload is not JSON: {str(exc)[:200]}", payload, position)
    if not isinstance(doc, dict):
        return Rejection("not_object", f"payload is JSON {type(doc).__name__}, not an object", payload, position)
    return doc


def check_id(doc: dict[str, Any], field: str, limits: SchemaLimits) -> tuple[str, str] | None:
    """(reason, message) when ``doc[field]`` is not a valid id: present, a string, non-empty,
    at most ``max_id_length`` characters, no control characters."""
    value = doc.get(field)
    if value is None:
        return "missing_field", f"{field} is required"
    if type(value) is not str:
        return "wrong_type", f"{field} must be a string, got {_json_type(value)}"
    if not value:
        return "bad_id", f"{field} is empty"
    if len(value) > limits.max_id_length:
        return "bad_id", f"{field} is longer than {limits.max_id_length} characters"
    if _CONTROL.search(value):
        return "bad_id", f"{field} holds control characters"
    return None


def _finite(value: int | float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:     # an integer beyond the float range: it could not be a float value
        return False


def _json_type(value: object) -> str:
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "array",
            dict: "object", type(None): "null"}.get(type(value), type(value).__name__)


def _depth(doc: object, limit: int) -> int:
    """Nesting depth of a parsed document, stopping once past ``limit``."""
    deepest, stack = 0, [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return deepest


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def dead_letter(rejection: Rejection, source_topic: str, now_ms: int | None = None) -> dict[str, Any]:
    """The dead-letter record for a rejection: original payload (base64 when not UTF-8; cut to
    64 KiB with its size and sha256 when larger), reason, message, source position, time, and
    the rejection's reason-specific details (a late event: ``watermark``, ``behind_ms``)."""
    raw = rejection.payload
    record: dict[str, Any] = {"reason": rejection.reason, "message": rejection.message, **rejection.details}
    if len(raw) > _DLQ_PAYLOAD_LIMIT:
        record.update(payload_truncated=True, payload_size=len(raw),
                      payload_sha256=hashlib.sha256(raw).hexdigest())
        raw = raw[:_DLQ_PAYLOAD_LIMIT]
    try:
        record.update(payload=raw.decode("utf-8"), payload_encoding="utf-8")
    except UnicodeDecodeError:
        record.update(payload=base64.b64encode(raw).decode("ascii"), payload_encoding="base64")
    record["source"] = {"topic": source_topic, "partition": rejection.position.partition,
                        "offset": rejection.position.offset}
    record["rejected_ts"] = int(time.time() * 1000) if now_ms is None else now_ms
    return record


def dead_letter_json(rejection: Rejection, source_topic: str, now_ms: int | None = None) -> str:
    return json.dumps(dead_letter(rejection, source_topic, now_ms), ensure_ascii=False)
