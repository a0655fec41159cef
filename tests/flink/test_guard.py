"""The JVM guard the job runs (jvm/.../GuardFunction.java) against the Python guard the offline
tools run (operators/cleaning/guard.py), event for event, on a local Flink mini-cluster."""

from __future__ import annotations

import json
import random

import pytest
from pyflink.common import Types
from pyflink.datastream import StreamExecutionEnvironment

from jobs.recommend import default_jvm_jar
from operators.cleaning.flink import guard_in_jvm
from operators.cleaning.guard import EventGuard, GuardConfig, UserGuardState
from operators.records import Event
from operators.rows import CLEAN_ROW
from tests import hostile
from tests.flink import local_stream_env

pytestmark = pytest.mark.flink
CONFIG = GuardConfig(dedupe_ttl_ms=4_000, max_dedupe_ids=80, rate_limit=6, rate_window_ms=1_000)


def _stream(n: int, seed: int = 5) -> list[tuple]:
    """CLEAN_ROW rows of a few users: bursts past the rate limit, out-of-order times, retried
    ids (soon, and after the dedupe horizon), and one user with more ids than are kept."""
    rnd = random.Random(seed)
    rows: list[tuple] = []
    clock = {u: hostile.T for u in ("a", "b", "c", "bot")}
    for offset in range(n):
        user = rnd.choice(["a", "b", "c", "bot", "bot"])
        clock[user] += rnd.choice([0, 1, 30, 90, 200, 1_500]) if user == "bot" else rnd.choice([50, 400, 2_000])
        ts = clock[user] - rnd.choice([0, 0, 0, 700, 5_000])
        earlier = [r for r in rows[-200:] if r[1] == user]
        retry = earlier and rnd.random() < 0.15      # a retry of an earlier event, under its own id
        event_id = rnd.choice(earlier)[0] if retry else f"{user}-{offset}"
        rows.append((event_id, user, f"i{rnd.randrange(20)}", "view", None, ts, 0, offset, -1, "", f"raw-{offset}"))
    return rows


def _python_verdicts(rows: list[tuple]) -> dict[int, str | None]:
    guard, states = EventGuard(CONFIG), {}
    return {r[7]: guard.check(states.setdefault(r[1], UserGuardState()), Event(r[0], r[1], r[2], r[3], r[4], r[5]))
            for r in rows}


def _env() -> StreamExecutionEnvironment:
    # The test's maps after the job's own Python map would be fused with it under one uid.
    env = local_stream_env({"python.operator-chaining.enabled": "false"})
    env.add_jars(f"file://{default_jvm_jar()}")
    return env


def test_the_jvm_guard_decides_every_event_as_the_python_guard_does() -> None:
    rows = _stream(4_000)
    env = _env()
    events, dead_letters = guard_in_jvm(env.from_collection(rows, type_info=CLEAN_ROW), "topic", CONFIG)
    out_type = Types.TUPLE([Types.LONG(), Types.STRING()])
    forwarded = events.map(lambda r: (r[7], "forwarded"), output_type=out_type)
    rejected = dead_letters.map(lambda r: (json.loads(r[0])["source"]["offset"], json.loads(r[0])["reason"]),
                                output_type=out_type)
    with forwarded.union(rejected).execute_and_collect() as results:
        got = {offset: verdict for offset, verdict in results}

    want = _python_verdicts(rows)
    jvm = {offset: None if v == "forwarded" else v for offset, v in got.items()}
    jvm.update({offset: "duplicate" for offset in want if offset not in got})   # dropped, no record
    assert jvm == want
    kinds = list(want.values())     # the stream exercises every decision, or the test proves little
    assert kinds.count("duplicate") >= 50 and kinds.count("rate_limited") >= 50 and kinds.count(None) >= 1_000


def test_the_dead_letter_of_a_rate_limited_event_keeps_its_payload_and_position() -> None:
    rows = [(f"e{n}", "u", "i", "view", None, hostile.T, 3, 100 + n, hostile.T, "", f'{{"n": {n}}}') for n in range(8)]
    env = _env()
    _events, dead_letters = guard_in_jvm(env.from_collection(rows, type_info=CLEAN_ROW), "interactions", CONFIG)
    with dead_letters.execute_and_collect() as results:
        letters = [json.loads(r[0]) for r in results]
    assert [(d["reason"], d["payload"], d["source"]) for d in letters] == [
        ("rate_limited", f'{{"n": {n}}}', {"topic": "interactions", "partition": 3, "offset": 100 + n})
        for n in range(6, 8)]
