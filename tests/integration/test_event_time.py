"""Event time on the real job (README "Event time"): a producer with a fast clock cannot make
anyone else late, a slow one makes only its own events late, a lagging partition is not late,
and no operator drops a row silently (the fixtures check Flink's numLateRecordsDropped)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from jobs.kafka_io import producer
from tests.integration.harness import BOOTSTRAP, Pipeline

pytestmark = pytest.mark.integration
BOUND_MS = 5_000          # --max-out-of-orderness-ms these scenarios are written for (the default is 500)


@pytest.fixture
def pipeline(pipeline: Pipeline) -> Pipeline:
    """The conftest pipeline at BOUND_MS: the clock scenarios stage producers seconds apart."""
    pipeline.extra_args = [*pipeline.extra_args, "--max-out-of-orderness-ms", str(BOUND_MS)]
    return pipeline


def now_ms() -> int:
    return int(time.time() * 1000)


def live(n: int, user: str, ts: int | None = None) -> dict[str, Any]:
    return {"event_id": f"{user}-{n}", "user_id": user, "item_id": f"i{n % 13}", "event_type": "click",
            "value": None, "ts": now_ms() if ts is None else ts}


def release(pipeline: Pipeline) -> int:
    """Wait until the events sent so far are more than the bound old, then send a heartbeat
    stamped now on every partition: the watermark passes them and the job hands them on."""
    time.sleep(BOUND_MS / 1000 + 1.5)
    prod = producer(BOOTSTRAP)
    for partition in range(pipeline.partitions):
        prod.produce(pipeline.topics["input"], value=json.dumps({"heartbeat_ts": now_ms()}).encode(),
                     partition=partition)
    assert prod.flush(30) == 0
    return pipeline.partitions


@pytest.mark.parametrize("ahead_ms", [120_000, 299_000])
def test_a_fast_clock_makes_nobody_late(pipeline: Pipeline, report: Callable[[str], None], ahead_ms: int) -> None:
    pipeline.submit()
    sent = 0
    # 1. the skewed event, then 100 other users' events over the next 7 seconds
    skewed = [live(0, "fast", ts=now_ms() + ahead_ms)]
    sent += pipeline.send(skewed, heartbeat=False)
    spread = [live(1, f"a{n}") for n in range(100)]
    for n in range(0, 100, 10):
        sent += pipeline.send(spread[n:n + 10], heartbeat=False)
        time.sleep(0.7)
    # 2. the same in one burst: the skewed event and, at once, 100 more
    burst = [live(2, "fast", ts=now_ms() + ahead_ms), *[live(3, f"b{n}") for n in range(100)]]
    sent += pipeline.send(burst, heartbeat=False)
    sent += release(pipeline)

    normal = spread + burst[1:]
    recs = pipeline.read("output", len(normal) + 2, timeout=180)
    dead = pipeline.read("dlq", 0, settle=3)
    by_id = {r["event_id"]: r for r in recs}
    assert sorted(by_id) == sorted(e["event_id"] for e in [*normal, skewed[0], burst[0]])   # none late
    assert len(recs) == len(by_id)
    assert dead == []
    assert len(recs) + len(dead) + pipeline.partitions == sent        # conservation (+ the heartbeats)
    # The documented outcome for the skewed events: recommended, their time clamped to their
    # record's Kafka timestamp, so they never moved the watermark past the ingestion clock.
    appended = pipeline.input_timestamps()
    for e in (skewed[0], burst[0]):
        assert appended[e["event_id"]] < e["ts"]
        assert by_id[e["event_id"]]["event_ts"] == appended[e["event_id"]]
    report(f"clock {ahead_ms / 1000:.0f} s ahead: {len(normal)} normal events all recommended, none late; "
           f"skewed events clamped to append time")


def test_a_slow_clock_makes_only_its_own_events_late(pipeline: Pipeline) -> None:
    pipeline.submit()
    sent = pipeline.send([live(0, f"warm{n}") for n in range(5)], heartbeat=False)
    time.sleep(1.5)                      # a first watermark exists
    normal, slow = [], []
    for n in range(20):
        normal += [live(n, f"u{n % 7}-{n}"), live(n, f"v{n % 5}-{n}")]
        slow.append(live(n, "slow", ts=now_ms() - 3_600_000))
        sent += pipeline.send([normal[-2], slow[-1], normal[-1]], heartbeat=False)
        time.sleep(0.2)
    sent += release(pipeline)

    recs = pipeline.read("output", 5 + len(normal), timeout=180)
    dead = pipeline.read("dlq", len(slow), settle=3)
    assert sorted(r["event_id"] for r in recs) == sorted([f"warm{n}-0" for n in range(5)]
                                                        + [e["event_id"] for e in normal])
    assert sorted(json.loads(d["payload"])["event_id"] for d in dead) == sorted(e["event_id"] for e in slow)
    for d in dead:
        assert d["reason"] == "late" and "clock may be behind" in d["message"]
        assert 3_590_000 < d["behind_ms"] < 3_700_000 and d["watermark"] > 0
    assert len(recs) + len(dead) + pipeline.partitions == sent


def test_a_lagging_partition_in_a_bulk_replay_is_not_late(new_pipeline: Callable[..., Pipeline]) -> None:
    # Four partitions, one source subtask. Partition 3 is appended last, so a reader that kept
    # one watermark for all its partitions would run ahead of it; per-partition watermarks wait.
    pipeline = new_pipeline(partitions=4)
    t0, per_partition = 1_700_000_000_000, 1_000
    prod = producer(BOOTSTRAP)
    events = {p: [live(n, f"p{p}u{n % 50}", ts=t0 + 600 * n + 37 * p) for n in range(per_partition)]
              for p in range(4)}
    for p in (0, 1, 2, 3):
        for e in events[p]:
            prod.produce(pipeline.topics["input"], value=json.dumps(e).encode(), partition=p)
        assert prod.flush(30) == 0
        if p == 2:
            time.sleep(2)
    end = {"heartbeat_ts": t0 + 600 * per_partition + BOUND_MS + 1_000}
    for p in range(4):
        prod.produce(pipeline.topics["input"], value=json.dumps(end).encode(), partition=p)
    assert prod.flush(30) == 0
    pipeline.submit()

    total = 4 * per_partition
    recs = pipeline.read("output", total, timeout=300)
    dead = pipeline.read("dlq", 0, settle=3)
    assert dead == []
    assert sorted(r["event_id"] for r in recs) == sorted(e["event_id"] for p in events.values() for e in p)
