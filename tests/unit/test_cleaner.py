import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from operators.cleaning import EventCleaner, dead_letter_json
from operators.records import Event, Rejection, SourcePosition

GOOD = {"event_id": "e1", "user_id": "u1", "item_id": "i1", "event_type": "click", "value": None, "ts": 1000}


def payload(**changes: object) -> bytes:
    doc = {**GOOD, **changes}
    return json.dumps({k: v for k, v in doc.items() if v is not ...}).encode()


def test_valid_event_keeps_every_field_and_position() -> None:
    result = EventCleaner().clean(payload(value=4.5, event_type="rating"), SourcePosition(2, 41))
    assert result == Event("e1", "u1", "i1", "rating", 4.5, 1000, SourcePosition(2, 41))


@pytest.mark.parametrize(("raw", "reason"), [
    (b"\xff\xfe", "not_utf8"),
    (b"{not json", "not_json"),
    (b'{"ts": NaN}', "not_json"),
    (b"[1, 2]", "not_object"),
    (payload(user_id=...), "missing_field"),
    (payload(ts=...), "missing_field"),
    (payload(event_type=...), "missing_field"),
    (payload(user_id=7), "wrong_type"),
    (payload(item_id=["a"]), "wrong_type"),
    (payload(ts="1000"), "wrong_type"),
    (payload(ts=True), "wrong_type"),
    (payload(value="5"), "wrong_type"),
    (payload(value=True), "wrong_type"),
    (payload(event_type="like"), "unknown_event_type"),
    (payload(user_id=""), "bad_id"),
    (payload(item_id="x" * 300), "bad_id"),
])
def test_each_rule_rejects_with_its_reason(raw: bytes, reason: str) -> None:
    result = EventCleaner().clean(raw)
    assert isinstance(result, Rejection)
    assert result.reason == reason
    assert result.payload == raw


def test_huge_float_is_rejected_as_not_finite() -> None:
    result = EventCleaner().clean(b'{"event_id":"e","user_id":"u","item_id":"i","event_type":"view",'
                                  b'"value":1e999,"ts":1}')
    assert isinstance(result, Rejection) and result.reason == "bad_value"


def test_dead_letter_keeps_payload_reason_and_source() -> None:
    rejection = EventCleaner().clean(b"\xff oops", SourcePosition(0, 9))
    assert isinstance(rejection, Rejection)
    record = json.loads(dead_letter_json(rejection, "interactions", now_ms=5))
    assert record["reason"] == "not_utf8"
    assert record["payload_encoding"] == "base64"
    assert base64.b64decode(record["payload"]) == b"\xff oops"
    assert record["source"] == {"topic": "interactions", "partition": 0, "offset": 9}
    assert record["rejected_ts"] == 5


@given(st.binary(max_size=300))
def test_any_bytes_give_exactly_one_result_and_never_raise(raw: bytes) -> None:
    assert isinstance(EventCleaner().clean(raw), Event | Rejection)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                 max_size=3)))
def test_any_json_document_gives_one_result(doc: object) -> None:
    raw = json.dumps(doc).encode()
    assert isinstance(EventCleaner().clean(raw), Event | Rejection)


def test_deeply_nested_json_is_rejected_not_raised() -> None:
    raw = b"[" * 100_000 + b"]" * 100_000
    result = EventCleaner().clean(raw)
    assert isinstance(result, Rejection)
