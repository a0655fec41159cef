"""The cleaning stage inside the real job: counts on both topics, no failure on hostile input."""

from __future__ import annotations

import time

import pytest

from tests.integration.harness import Pipeline, event, rest

pytestmark = pytest.mark.integration


def test_mixed_stream_gives_right_counts_and_the_job_never_restarts(pipeline: Pipeline) -> None:
    pipeline.extra_args = ["--rate-limit", "5", "--rate-window-ms", "60000", "--max-out-of-orderness-ms", "1000"]
    good = [event(n, f"u{n % 4}", f"i{n % 7}") for n in range(20)]
    hostile: list[dict | bytes] = [
        bytes(range(256)) * 4,                                          # binary garbage
        b'{"event_id":"x","user_id":"u","item_id":"i","event_type":"view","value":NaN,"ts":1}',
        b"[" * 50_000 + b"]" * 50_000,                                  # deeply nested
        b'{"event_id":"big","pad":"' + b"x" * 10_000_000 + b'"}',       # 10 MB
        {**event(90, "u1", "i1"), "user_id": ["not", "an", "id"]},
        {**event(91, "u1", "i1"), "ts": 1_700_000_000_000 + 10**12},    # far in the future
        b"",
    ]
    duplicates = [good[3], good[5]]
    bot = [event(100 + n, "bot", f"i{n}") for n in range(8)]           # 8 in a minute, limit 5
    on_topic = pipeline.send([*good[:10], *hostile, *good[10:], *duplicates, *bot])
    job = pipeline.submit()
    recs = pipeline.read("output", len(good) + 5)

    # A late event: behind the watermark (max ts seen - 1 s) once the first batch is through.
    time.sleep(1)
    late = event(200, "u9", "i1", ts=1_700_000_000_000 - 3_600_000)
    pipeline.send([late])
    dead = pipeline.read("dlq", len(hostile) + 3 + 1, settle=5)
    recs = pipeline.read("output", len(good) + 5, settle=3)

    assert sorted(r["event_id"] for r in recs) == sorted(
        [e["event_id"] for e in good] + [e["event_id"] for e in bot[:5]])
    reasons = sorted(d["reason"] for d in dead)
    assert reasons == sorted(["not_utf8", "not_json", "too_deep", "too_large", "wrong_type", "ts_in_future",
                              "not_json", "rate_limited", "rate_limited", "rate_limited", "late"]), reasons
    sent = len(good) + len(hostile) + len(duplicates) + len(bot) + 1
    assert len(recs) + len(dead) + len(duplicates) == sent                  # conservation
    big = next(d for d in dead if d["reason"] == "too_large")
    assert big["payload_truncated"] and big["payload_size"] > 10_000_000
    assert next(d for d in dead if d["reason"] == "late")["source"]["offset"] == on_topic   # after a heartbeat

    assert rest(f"/jobs/{job}")["state"] == "RUNNING"
    assert pipeline.restarts(job) == 0
    assert guard_metric(job, "guard.duplicates", len(duplicates)) == len(duplicates)
    assert guard_metric(job, "guard.rejected.reason.rate_limited.count", 3) == 3


def guard_metric(job: str, suffix: str, want: int, timeout: float = 30) -> int:
    """A counter of the guard operator, read through the REST API: ``want`` once the REST
    API reports it, else the last value it reported within ``timeout``. The JVM guard
    registers its counters at start, and the REST API refreshes them about once a second,
    so a first reading can still be 0 after the events were processed."""
    vertex = next(v["id"] for v in rest(f"/jobs/{job}")["vertices"] if "clean-guard" in v["name"])
    deadline = time.monotonic() + timeout
    value = None
    while True:
        ids = [m["id"] for m in rest(f"/jobs/{job}/vertices/{vertex}/metrics") if m["id"].endswith(suffix)]
        if ids:
            values = rest(f"/jobs/{job}/vertices/{vertex}/metrics?get={','.join(ids)}")
            value = sum(int(float(v["value"])) for v in values)
            if value == want:
                return value
        if time.monotonic() > deadline:
            if value is None:
                raise AssertionError(f"no metric *{suffix} on the guard operator")
            return value
        time.sleep(1)
