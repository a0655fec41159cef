"""Snapshot writes off the per-event path: one background thread, at most one snapshot waiting.

The model operator cuts a snapshot (copies the ranker's state) between two events and hands it
here; ``submit`` never blocks. The thread serialises it and writes it to Cassandra; when that fails it retries
with exponential back-off. A newer snapshot replaces a waiting older one (it contains
everything the older one does), so memory stays bounded at two copies however long Cassandra
is away, and the job keeps recommending meanwhile: the update log (updates.py), not the
snapshot, is what keeps a failure from losing learned events.

>>> saved = []
>>> w = SnapshotWriter(lambda s: saved.append(s.learned_events) or s.learned_events, name="doc")
>>> w.submit(PendingSnapshot(ModelState({}), {}, 5, "L"))
>>> w.close(timeout=5), saved, w.written, w.failures
(True, [5], 1, 0)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from operators.model.online import ModelState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PendingSnapshot:
    state: ModelState                 # serialised and hashed by the writer thread
    positions: dict[int, int]
    learned_events: int
    lineage: str
    cut_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    log_offset: int = -1              # a shared model's: the update-log offset it continues from
    rollbacks: str = ""               # the health guard's rollbacks so far (JSON; SnapshotInfo.rollbacks)


class SnapshotWriter:
    def __init__(self, save: Callable[[PendingSnapshot], Any], name: str = "model",
                 first_backoff_s: float = 1.0, max_backoff_s: float = 15.0,
                 on_saved: Callable[[Any], None] | None = None) -> None:
        self._save, self._on_saved, self.name = save, on_saved, name
        self.first_backoff_s, self.max_backoff_s = first_backoff_s, max_backoff_s
        self._cond = threading.Condition()
        self._pending: PendingSnapshot | None = None
        self._busy = False
        self._closing = False
        # read by metric gauges and logs
        self.written = self.failures = self.superseded = 0
        self.last_write_ms = 0      # how long the newest successful write took (compress + Cassandra)
        self.consecutive_failures = 0
        self.last_written_events = -1
        self.last_error = ""
        self._thread = threading.Thread(target=self._run, name=f"snapshot-writer-{name}", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        """Snapshots cut but not yet in Cassandra (0, 1 or 2)."""
        with self._cond:
            return int(self._pending is not None) + int(self._busy)

    def submit(self, snapshot: PendingSnapshot) -> None:
        with self._cond:
            if self._pending is not None:
                self.superseded += 1
            self._pending = snapshot
            self._cond.notify_all()

    def close(self, timeout: float) -> bool:
        """Try to write what is waiting for up to ``timeout`` s, then stop. True if nothing was
        left unwritten."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            while (self._pending is not None or self._busy) and time.monotonic() < deadline:
                self._cond.wait(max(0.0, deadline - time.monotonic()))
            left = self._pending is not None or self._busy
            self._pending = None
            self._cond.notify_all()
        self._thread.join(timeout=max(0.0, deadline - time.monotonic()) + 0.1)
        if left:
            log.warning("snapshot writer %s: closed with an unwritten snapshot (%s); the update log covers it",
                        self.name, self.last_error or "timeout")
        return not left

    def _run(self) -> None:
        backoff = self.first_backoff_s
        while True:
            with self._cond:
                while self._pending is None and not self._closing:
                    self._cond.wait()
                if self._pending is None:
                    return
                snapshot, self._pending, self._busy = self._pending, None, True
            started = time.monotonic()
            try:
                result = self._save(snapshot)
            except Exception as exc:  # noqa: BLE001 - any Cassandra/driver failure: retry later
                self.failures += 1
                self.consecutive_failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"[:500]
                log.warning("snapshot writer %s: write of %d events failed (%d in a row), retrying in %.0f s: %s",
                            self.name, snapshot.learned_events, self.consecutive_failures, backoff, self.last_error)
                with self._cond:
                    self._busy = False
                    if self._pending is None:
                        self._pending = snapshot            # retry it unless a newer one came
                    else:
                        self.superseded += 1
                    self._cond.notify_all()
                    # closing: retry soon until close() gives up; otherwise back off (close wakes it)
                    self._cond.wait(min(backoff, 1.0) if self._closing else backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
                continue
            backoff = self.first_backoff_s
            if self.consecutive_failures:
                log.info("snapshot writer %s: writes resumed after %d failures", self.name, self.consecutive_failures)
            self.consecutive_failures = 0
            self.written += 1
            self.last_write_ms = round((time.monotonic() - started) * 1000)
            self.last_written_events = snapshot.learned_events
            if self._on_saved is not None:
                self._on_saved(result)
            with self._cond:
                self._busy = False
                self._cond.notify_all()
