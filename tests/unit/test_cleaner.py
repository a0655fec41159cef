import base64
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from operators.cleaning import REASONS, EventCleaner, SchemaLimits, dead_letter, dead_letter_json
from operators.cleaning.pipeline import CleaningStage
from operators.records import Event, Heartbeat, Rejection, SourcePosition

T = 1_700_000_000_000
GOOD = {"event_id": "e1", "user_id": "u1", "item_id": "i1", "event_type": "click", "value": None, "ts": T}


def payload(**changes: object) -> bytes:
    doc = {**GOOD, **changes}
    return json.dumps({k: v for k, v in doc.items() if v is not ...}).encode()


def nested_dict(depth: int) -> object:
    """A context object that makes the whole message ``depth + 1`` levels deep."""
    node: object = 1
    for _ in range(depth):
        node = {"k": node}
    return node


def nested_list(depth: int) -> object:
    node: object = 1
    for _ in range(depth):
        node = [node]
    return node


def clean(raw: bytes, **limits: int) -> Event | Rejection:
    return EventCleaner(SchemaLimits(**limits)).clean(raw, now_ms=T)


def test_valid_event_keeps_every_field_and_position() -> None:
    result = EventCleaner().clean(payload(value=4.5, event_type="rating", context={"device": "ios"}),
                                  SourcePosition(2, 41), now_ms=T)
    assert result == Event("e1", "u1", "i1", "rating", 4.5, T, SourcePosition(2, 41))


@pytest.mark.parametrize(("raw", "reason"), [
    (b"\xff\xfe", "not_utf8"),
    (b"{not json", "not_json"),
    (b'{"event_id":"e","user_id":"u","item_id":"i","event_type":"view","value":NaN,"ts":1}', "not_json"),
    (b'{"value": Infinity}', "not_json"),
    (b"[1, 2]", "not_object"),
    (b'"just a string"', "not_object"),
    (payload(user_id=...), "missing_field"),
    (payload(user_id=None), "missing_field"),
    (payload(ts=...), "missing_field"),
    (payload(event_type=...), "missing_field"),
    (payload(user_id=7), "wrong_type"),
    (payload(user_id=True), "wrong_type"),
    (payload(item_id=["a"]), "wrong_type"),
    (payload(event_id={"id": 1}), "wrong_type"),
    (payload(event_type=3), "wrong_type"),
    (payload(ts="1000"), "wrong_type"),
    (payload(ts=True), "wrong_type"),
    (payload(ts=float(T)), "wrong_type"),
    (payload(value="5"), "wrong_type"),
    (payload(value=True), "wrong_type"),
    (payload(value=[1]), "wrong_type"),
    (payload(context="web"), "wrong_type"),
    (payload(event_type="like"), "unknown_event_type"),
    (payload(user_id=""), "bad_id"),
    (payload(item_id="x" * 257), "bad_id"),
    (payload(user_id="bob\x00"), "bad_id"),
    (payload(event_id="a\nb"), "bad_id"),
    (payload(ts=1), "ts_too_old"),
    (payload(ts=T + 300_001), "ts_in_future"),
    (payload(value=12345.5).replace(b"12345.5", b"1e999"), "bad_value"),      # parses to inf
    (payload(value=12345.5).replace(b"12345.5", b"-1e999"), "bad_value"),
    (payload(value=12345.5).replace(b"12345.5", b"9" * 400), "bad_value"),   # was an OverflowError
    (payload(context=nested_dict(17)), "too_deep"),
    (payload(extra=nested_list(17)), "too_deep"),
    (b"[" * 100_000 + b"]" * 100_000, "too_deep"),
    (b'{"heartbeat_ts": "soon"}', "wrong_type"),
    (b'{"heartbeat_ts": 1}', "ts_too_old"),
    (b'{"heartbeat_ts": %d}' % (T + 300_001), "ts_in_future"),
    (b'{"heartbeat_ts": null}', "missing_field"),
    (b'{"heartbeat_ts": %d, "x": %s}' % (T, json.dumps(nested_list(17)).encode()), "too_deep"),
])
def test_each_rule_rejects_with_its_reason(raw: bytes, reason: str) -> None:
    result = clean(raw)
    assert isinstance(result, Rejection), result
    assert result.reason == reason, result.message
    assert result.reason in REASONS and result.message
    assert result.payload == raw


def test_a_heartbeat_is_a_clock_not_an_event() -> None:
    result = clean(b'{"heartbeat_ts": %d}' % T)
    assert isinstance(result, Heartbeat) and result.ts == T
    # a record with an event_id is an event, whatever else it holds
    assert isinstance(clean(payload(heartbeat_ts=T)), Event)


def test_limits_are_configurable() -> None:
    assert isinstance(clean(payload(item_id="x" * 300), max_id_length=300), Event)
    assert clean(payload(), max_message_bytes=20).reason == "too_large"  # type: ignore[union-attr]
    assert isinstance(clean(payload(ts=T + 10**9), max_future_skew_ms=10**9), Event)
    assert clean(payload(ts=T - 1), min_ts_ms=T).reason == "ts_too_old"  # type: ignore[union-attr]


def test_boundaries_are_inclusive() -> None:
    assert isinstance(clean(payload(context=nested_dict(15))), Event)      # 16 levels with the message
    assert isinstance(clean(payload(item_id="x" * 256)), Event)
    assert isinstance(clean(payload(ts=T + 300_000)), Event)
    assert isinstance(clean(payload(value=0)), Event)


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    assert isinstance(clean(payload(source="app", schema="v1")), Event)


def test_unknown_schema_version_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown schema version"):
        EventCleaner(schema_version="v9")


def test_dead_letter_keeps_payload_reason_and_source() -> None:
    rejection = EventCleaner().clean(b"\xff oops", SourcePosition(0, 9))
    assert isinstance(rejection, Rejection)
    record = json.loads(dead_letter_json(rejection, "interactions", now_ms=5))
    assert record["reason"] == "not_utf8"
    assert record["payload_encoding"] == "base64"
    assert base64.b64decode(record["payload"]) == b"\xff oops"
    assert record["source"] == {"topic": "interactions", "partition": 0, "offset": 9}
    assert record["rejected_ts"] == 5


def test_dead_letter_of_a_huge_message_is_cut_with_size_and_hash() -> None:
    raw = b"x" * 10_000_000
    rejection = clean(raw)
    assert isinstance(rejection, Rejection) and rejection.reason == "too_large"
    record = dead_letter(rejection, "t")
    assert record["payload_truncated"] and record["payload_size"] == 10_000_000
    assert len(record["payload"]) == 64 * 1024 and len(record["payload_sha256"]) == 64


valid_ids = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x2FFF, blacklist_characters="\x7f"),
                    min_size=1, max_size=40).filter(lambda s: not any(0x7f <= ord(c) <= 0x9f for c in s))
valid_events = st.fixed_dictionaries({
    "event_id": valid_ids, "user_id": valid_ids, "item_id": valid_ids,
    "event_type": st.sampled_from(["view", "click", "add_to_cart", "purchase", "rating"]),
    "value": st.none() | st.floats(allow_nan=False, allow_infinity=False) | st.integers(-10**6, 10**6),
    "ts": st.integers(631_152_000_000, T),
}, optional={"context": st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3)})


@given(valid_events)
def test_valid_events_are_never_rejected(doc: dict) -> None:
    result = clean(json.dumps(doc).encode())
    assert isinstance(result, Event), result


def mutate(data: st.DataObject, raw: bytes) -> bytes:
    kind = data.draw(st.sampled_from(["flip", "cut", "insert", "keep"]))
    if kind == "keep" or not raw:
        return raw
    at = data.draw(st.integers(0, len(raw) - 1))
    if kind == "flip":
        return raw[:at] + bytes([data.draw(st.integers(0, 255))]) + raw[at + 1:]
    if kind == "cut":
        return raw[:at]
    return raw[:at] + data.draw(st.binary(min_size=1, max_size=8)) + raw[at:]


@settings(max_examples=300)
@given(st.lists(st.one_of(valid_events.map(lambda d: json.dumps(d).encode()), st.binary(max_size=200)),
                max_size=30), st.data())
def test_conservation_and_no_exception_over_mutated_streams(raws: list[bytes], data: st.DataObject) -> None:
    stage = CleaningStage()
    stream = [mutate(data, r) for r in raws]
    stream += data.draw(st.lists(st.sampled_from(stream), max_size=5)) if stream else []  # exact duplicates
    outcomes = [stage.process(r, now_ms=T) for r in stream]
    counts = stage.counts()
    assert counts["in"] == len(stream)
    assert counts["in"] == counts["out"] + counts["dlq"] + counts["duplicates"] + counts["heartbeats"]
    assert counts["out"] == sum(isinstance(o, Event) for o in outcomes)
    assert counts["dlq"] == sum(isinstance(o, Rejection) for o in outcomes)
    assert counts["duplicates"] == sum(o is None for o in outcomes)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                 max_size=3)))
def test_any_json_document_gives_one_result(doc: object) -> None:
    assert isinstance(clean(json.dumps(doc).encode()), Event | Rejection)
