"""The snapshot writer: never blocks the caller, retries with back-off, keeps only the newest."""

from __future__ import annotations

import threading
import time

from operators.model.online import ModelState
from operators.model.writer import PendingSnapshot, SnapshotWriter


def snap(n: int) -> PendingSnapshot:
    return PendingSnapshot(ModelState({"n": n}), {0: n}, n, "L")


def wait_for(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_failed_writes_are_retried_with_backoff_and_the_newest_snapshot_wins() -> None:
    down = threading.Event()
    down.set()
    attempts: list[tuple[float, int]] = []
    saved: list[int] = []

    def save(s: PendingSnapshot) -> int:
        attempts.append((time.monotonic(), s.learned_events))
        if down.is_set():
            raise ConnectionError("cassandra down")
        saved.append(s.learned_events)
        return s.learned_events

    w = SnapshotWriter(save, first_backoff_s=0.05, max_backoff_s=0.2)
    started = time.monotonic()
    w.submit(snap(10))
    assert time.monotonic() - started < 0.05          # submit does not wait for Cassandra
    wait_for(lambda: w.failures >= 4)
    gaps = [b[0] - a[0] for a, b in zip(attempts, attempts[1:], strict=False)]
    assert gaps[1] > gaps[0] * 1.5 and max(gaps) < 0.5   # exponential, capped
    w.submit(snap(20))
    w.submit(snap(30))                                # 20 is superseded: 30 contains it
    down.clear()
    wait_for(lambda: w.written == 1)
    assert saved == [30] and w.pending == 0 and w.consecutive_failures == 0
    assert w.superseded >= 2 and w.last_written_events == 30
    assert w.close(timeout=1)


def test_close_gives_up_after_its_timeout_when_cassandra_stays_down() -> None:
    def save(s: PendingSnapshot) -> None:
        raise TimeoutError("no host")

    w = SnapshotWriter(save, first_backoff_s=0.01)
    w.submit(snap(1))
    started = time.monotonic()
    assert w.close(timeout=0.5) is False
    assert time.monotonic() - started < 2.0
    assert "no host" in w.last_error


def test_close_writes_what_is_waiting() -> None:
    saved: list[int] = []
    slow = threading.Event()

    def save(s: PendingSnapshot) -> None:
        slow.wait(0.2)
        saved.append(s.learned_events)

    w = SnapshotWriter(save)
    w.submit(snap(1))
    w.submit(snap(2))
    assert w.close(timeout=5)
    assert saved[-1] == 2
