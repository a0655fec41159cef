"""Raw messages, valid and hostile, for comparing the two implementations of "would the
cleaner accept this?": the Python cleaner and the Kafka source's event-time function (JVM).

Hand-picked cases cover each rule and each way a lenient JSON parser differs from Python's
(NaN, trailing data, comments, single quotes, escapes, duplicate keys, bytes that are not
UTF-8); seeded mutations of valid events add a few hundred more.
"""

from __future__ import annotations

import json
import random
from typing import Any

T = 1_700_000_000_000


def event(**fields: Any) -> bytes:
    doc: dict[str, Any] = {"event_id": "e1", "user_id": "u1", "item_id": "i1", "event_type": "view",
                           "value": None, "ts": T}
    doc.update(fields)
    return json.dumps({k: v for k, v in doc.items() if v is not ...}).encode()


PLAIN = b'{"event_id":"e","user_id":"u","item_id":"i","event_type":"view","ts":1700000000000'

CASES: list[bytes] = [
    event(), event(value=3.5), event(value=-0.5e-3), event(value=1e300), event(value=7),
    event(context={"a": {"b": [1, 2]}}), event(ts=T + 100_000), event(ts=T + 400_000), event(ts=1),
    event(ts="1700000000000"), event(ts=1.7e12), event(ts=float(T)), event(ts=True), event(ts=...),
    event(user_id=""), event(user_id="a\u0001b"), event(user_id="a\u0085b"), event(user_id="x" * 256),
    event(user_id="x" * 257), event(user_id=["a"]), event(user_id=None), event(user_id=7),
    event(event_type="foo"), event(event_type=3), event(value=True), event(value="3"), event(context=[1]),
    event(context="x"), event(context=None), event(user_id="é☃"), event(user_id='q"uote'),
    event(user_id="\U0001F600" * 128), event(user_id="\U0001F600" * 257), event(heartbeat_ts=T),
    json.dumps({"event_id": "e", "user_id": "é", "item_id": "i", "event_type": "click", "ts": T},
               ensure_ascii=False).encode(),
    PLAIN + b',"value":NaN}', PLAIN + b',"value":Infinity}', PLAIN + b',"value":1e999}',
    PLAIN + b',"value":' + b"9" * 400 + b"}", PLAIN + b',"value":1.}', PLAIN + b',"value":.5}',
    PLAIN + b"} x", PLAIN + b"}}", PLAIN + b"}{}", PLAIN + b",}", PLAIN + b", /* c */ \"value\":1}",
    PLAIN + b',"ts":1}', PLAIN.replace(b'"ts":', b'"ts":1,"ts":') + b"}", PLAIN + b',\n"ts":1}',
    PLAIN.replace(b'"ts"', b'"\\u0074s"') + b"}", PLAIN.replace(b":1700000000000", b":01700000000000") + b"}",
    PLAIN.replace(b":1700000000000", b":-1700000000000") + b"}", PLAIN + b',"context":' + b'{"a":' * 15 + b"1"
    + b"}" * 15 + b"}", PLAIN + b',"context":' + b'{"a":' * 16 + b"1" + b"}" * 16 + b"}",
    PLAIN + b',"x":' + b"[" * 20 + b"]" * 20 + b"}", b"  " + PLAIN + b"}\n\t ", b"\xef\xbb\xbf" + PLAIN + b"}",
    PLAIN.replace(b'"u"', b'"u\\ud800"') + b"}", PLAIN.replace(b'"u"', b'"\\ud83d\\ude00"') + b"}",
    PLAIN.replace(b'"u"', b'"u\\u0000"') + b"}", PLAIN.replace(b'"u"', b'"u\tv"') + b"}",
    PLAIN.replace(b'"u"', b'"u\\/v"') + b"}", PLAIN.replace(b'"u"', b'"u\\qv"') + b"}",
    b"\xff\xfe" + PLAIN + b"}", PLAIN.replace(b'"u"', b'"u\xff"') + b"}",
    PLAIN.replace(b'"u"', b'"\xed\xa0\x80"') + b"}",
    b"{'event_id':'e','user_id':'u','item_id':'i','event_type':'view','ts':1700000000000}",
    b'{"heartbeat_ts":1700000000000}', b'{"heartbeat_ts":1700000000100,"x":[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]}',
    b'{"heartbeat_ts":"1700000000000"}', b'{"heartbeat_ts":1700000000000,"event_id":"x"}',
    b'{"heartbeat_ts":1700000000000,"event_id":null}', b'{"heartbeat_ts":1}', b'{"heartbeat_ts":null}',
    b"[1,2]", b"", b"null", b"{}", b'"s"', b"1", PLAIN + b"", b"[" * 5000 + b"]" * 5000,
    b'{"event_id":"big","pad":"' + b"x" * 1_100_000 + b'"}',
]


def mutations(n: int, seed: int = 7) -> list[bytes]:
    """Valid events with one random byte-level change each: dropped, doubled or replaced bytes."""
    rnd = random.Random(seed)
    alphabet = b'{}[]",:0123456789.-eE \\tnulfasx\x00\xff'
    out = []
    for k in range(n):
        raw = bytearray(event(event_id=f"e{k}", value=rnd.choice([None, 2.5, 4]),
                              context=rnd.choice([..., {"d": "web"}])))
        for _ in range(rnd.randrange(1, 3)):
            at = rnd.randrange(len(raw))
            op = rnd.randrange(3)
            if op == 0:
                del raw[at]
            elif op == 1:
                raw.insert(at, raw[at])
            else:
                raw[at] = rnd.choice(alphabet)
        out.append(bytes(raw))
    return out
