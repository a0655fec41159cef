"""How a model subtask starts, keeps its snapshots and stops: restore, replay, snapshot
cadence and lineage, with the snapshot store and the update-log reader injected.

The Flink operator (flink.py) only moves records and calls this; unit tests run it on
``MemoryTables`` and a list as the log, and stop it at any step of a snapshot write.

- ``open`` loads the newest complete snapshot this subtask may start from
  (snapshot_store.candidates), applies the logged updates of its lineage after it
  (updates.replay), and, when it starts a new lineage (first start, rollback copy, changed
  parallelism, unreadable older format), writes that lineage's first snapshot before any
  event, so that a restart finds and continues it;
- ``after_event`` is called after each event: every ``snapshot_every_events`` learned events
  it cuts a snapshot (copies the ranker's state, on the caller's thread) and hands it to the
  writer, which serialises, hashes and writes it off the event path, and retries (writer.py);
- ``close`` cuts what was learned since the last cut and gives the writer a bounded time.

>>> from operators.model.snapshot_store import MemoryTables, SnapshotStore
>>> store = SnapshotStore(MemoryTables())
>>> life = ModelLifecycle(store, read_log=lambda lineage, since_ms: [], placement=Placement("m", "clicks"))
>>> life.open().learned_events, [i.version for i in store.list()]      # a new lineage: snapshot first
(0, [1])
>>> life.close()
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from operators.model.delta import Increments
from operators.model.online import OnlineConfig, OnlineRanker
from operators.model.progress import LearnedEvents
from operators.model.snapshot_store import SnapshotInfo, SnapshotStore
from operators.model.updates import ModelUpdate, replay
from operators.model.writer import PendingSnapshot, SnapshotWriter

log = logging.getLogger(__name__)

CLOCK_SKEW_MS = 60_000     # read the update log from this long before a snapshot was cut

# The committed updates of a lineage, in log order, appended at or after ``since_ms`` (None: all).
ReadLog = Callable[[str, "int | None"], Iterable[ModelUpdate]]


class Writer(Protocol):
    """What the lifecycle needs of a snapshot writer (writer.SnapshotWriter)."""

    written: int
    failures: int
    last_write_ms: int

    @property
    def pending(self) -> int: ...

    def submit(self, snapshot: PendingSnapshot) -> None: ...

    def close(self, timeout: float) -> bool: ...


WriterFactory = Callable[[Callable[[PendingSnapshot], SnapshotInfo], str, Callable[[SnapshotInfo], None]], Writer]


def background_writer(save: Callable[[PendingSnapshot], SnapshotInfo], name: str,
                      on_saved: Callable[[SnapshotInfo], None]) -> Writer:
    return SnapshotWriter(save, name=name, on_saved=on_saved)


@dataclass(frozen=True)
class Placement:
    """Which model, read from which topic, and which of the operator's subtasks this is."""

    model_name: str
    source_topic: str
    shard: int = 0
    shards: int = 1


class ModelLifecycle:
    """Restore, replay, snapshot cadence and lineage of one model subtask."""

    def __init__(self, store: SnapshotStore, read_log: ReadLog, placement: Placement,
                 config: OnlineConfig | None = None, snapshot_every_events: int = 5_000, retain: int = 5,
                 close_timeout_s: float = 30.0, writer: WriterFactory = background_writer,
                 clock: Callable[[], float] = time.time, full_every: int = 1) -> None:
        self.store, self.read_log, self.placement = store, read_log, placement
        self.config = config or OnlineConfig()
        self.snapshot_every_events, self.retain, self.close_timeout_s = snapshot_every_events, retain, close_timeout_s
        self._writer_factory, self._clock = writer, clock
        self.ranker: OnlineRanker        # set by open
        self.lineage = ""
        self.restored_from: SnapshotInfo | None = None
        self.snapshot_version = 0
        self.snapshot_digest = ""
        self.replayed = 0           # logged updates applied at start
        self.last_cut_ms = 0        # how long the newest cut took on the event path
        self.cut_events = 0
        self.next_snapshot_at = 0
        self.writer: Writer | None = None
        # full_every > 1: snapshots in between hold only the rows changed since the last full one
        self.increments = Increments(full_every)

    @property
    def name(self) -> str:
        return f"{self.placement.model_name}/{self.placement.shard}"

    # -- start --------------------------------------------------------------------------------
    def open(self) -> OnlineRanker:
        """Restore the ranker this subtask continues from, start the writer, and make sure the
        lineage it continues has a snapshot. Returns the ranker (which events then update)."""
        self.ranker, self.lineage, info = self._restore()
        self.restored_from = info
        self.snapshot_version = info.version if info is not None else 0
        self.snapshot_digest = info.digest if info is not None else ""
        self.writer = self._writer_factory(self._write, self.name, self._saved)
        self.cut_events = self.ranker.learned_events
        if info is None or info.lineage != self.lineage:
            # Written before any event (not by the writer thread): a failure here fails the
            # start, and Flink retries it, rather than run a lineage no restart could find.
            self._saved(self._write(self._cut()))
        elif self.replayed:
            self.writer.submit(self._cut())      # spares the next start this replay
        self.next_snapshot_at = self.cut_events + self.snapshot_every_events
        return self.ranker

    def _restore(self) -> tuple[OnlineRanker, str, SnapshotInfo | None]:
        """The ranker to start from, its lineage, and the snapshot it came from."""
        p = self.placement
        self.replayed = 0
        chosen = self.store.load_for(p.shard, p.shards)
        if chosen is None:
            log.info("model %s: no snapshot; starting empty", self.name)
            return OnlineRanker(self.config), uuid.uuid4().hex, None
        info, blob, continues = chosen
        ranker = self._ranker_from(info, blob)
        if ranker is None:
            return OnlineRanker(self.config), uuid.uuid4().hex, None
        self._replay_lineage(info, ranker)
        self._check_source(info, ranker)
        if continues:
            return ranker, info.lineage, info
        log.info("model %s: starting a new lineage from snapshot v%d (written by subtask %d of %d)",
                 self.name, info.version, info.shard, info.shards)
        return ranker, uuid.uuid4().hex, info

    def _ranker_from(self, info: SnapshotInfo, blob: bytes) -> OnlineRanker | None:
        """The ranker a snapshot holds; None when its format is not this model's (an upgrade:
        the snapshot stays in the store as history, and the model starts empty under the next
        version number). A restore that gives another model than the one written fails."""
        try:
            ranker = OnlineRanker.restore(blob, self.config)
        except (ValueError, KeyError) as exc:
            log.warning("model %s: snapshot v%d is not usable by this model (%s); starting empty",
                        self.name, info.version, exc)
            return None
        if info.digest and ranker.digest() != info.digest:
            raise RuntimeError(f"model {self.name}: snapshot v{info.version} restores to a model other than the one "
                               "written (digest mismatch): a restore that is not exact would spread to every later "
                               "snapshot; this is a bug to report, with the snapshot (python -m jobs.models show)")
        return ranker

    def _replay_lineage(self, info: SnapshotInfo, ranker: OnlineRanker) -> None:
        """Apply the logged updates of the snapshot's lineage after it (a subtask's own model)."""
        if info.lineage:
            started = time.monotonic()
            self.replayed = replay(ranker, self.read_log(info.lineage, info.created_ms - CLOCK_SKEW_MS), info.lineage)
            log.info("model %s: restored snapshot v%d (%d events) + %d logged updates in %.1f s",
                     self.name, info.version, info.learned_events, self.replayed, time.monotonic() - started)

    def _check_source(self, info: SnapshotInfo, ranker: OnlineRanker) -> None:
        """Offsets of another topic say nothing about this one: learn everything here."""
        if info.source != self.placement.source_topic:
            log.warning("model %s: snapshot v%d was taken on topic %r, not %r; its positions are ignored",
                        self.name, info.version, info.source, self.placement.source_topic)
            ranker.progress = LearnedEvents()

    # -- while running ------------------------------------------------------------------------
    def after_event(self) -> None:
        """After an event: cut a snapshot when ``snapshot_every_events`` more have been learned."""
        if self.writer is not None and self.ranker.learned_events >= self.next_snapshot_at:
            self.writer.submit(self._cut())
            self.next_snapshot_at = self.cut_events + self.snapshot_every_events

    def cut_now(self) -> int | None:
        """Cut a snapshot of everything learned so far now, not at the next multiple of
        ``snapshot_every_events``: once it is written, no start replays an update from before
        this moment (a forgotten user's). Returns the model version it covers; None where this
        subtask does not choose when to cut (replica.py)."""
        if self.writer is None:
            return None
        if self.ranker.learned_events > self.cut_events:
            self.writer.submit(self._cut())
            self.next_snapshot_at = self.cut_events + self.snapshot_every_events
        return self.cut_events

    def _cut(self) -> PendingSnapshot:
        """Copy the ranker's state on the event path (the writer serialises, hashes, compresses
        and writes it)."""
        started = time.monotonic()
        self.cut_events = self.ranker.learned_events
        rollbacks = self.ranker.guard.rollbacks
        pending = PendingSnapshot(self.ranker.cut(), dict(self.ranker.positions), self.ranker.learned_events,
                                  self.lineage, int(self._clock() * 1000), self.log_offset,
                                  json.dumps([r.as_dict() for r in rollbacks]) if rollbacks else "")
        self.last_cut_ms = round((time.monotonic() - started) * 1000)
        return pending

    @property
    def log_offset(self) -> int:
        """Where in the update log a snapshot cut now continues (-1: a subtask's own model,
        which continues its lineage's ``seq``; replica.py overrides)."""
        return -1

    @property
    def slot(self) -> tuple[int, int]:
        """The (shard, shards) its snapshots are written and pruned under."""
        return self.placement.shard, self.placement.shards

    def _write(self, pending: PendingSnapshot) -> SnapshotInfo:
        """Runs on the writer (and once in open): save, then prune old versions."""
        shard, shards = self.slot
        blob, base = self.increments.blob(pending.state.values, pending.state.blob, self._complete)
        info = self.store.save(blob, pending.positions, pending.learned_events,
                               self.placement.source_topic, pending.lineage, shard, shards,
                               created_ms=pending.cut_ms, digest=pending.state.digest(), log_offset=pending.log_offset,
                               rollbacks=pending.rollbacks, base=base)
        self.increments.written(info.version, pending.state.values, info.size, base)
        try:
            self.store.prune(self.retain, shard, shards)
        except Exception:  # noqa: BLE001 - a failed clean-up is retried after the next snapshot
            log.warning("model %s: pruning old snapshots failed", self.name, exc_info=True)
        return info

    def _complete(self, version: int) -> bool:
        info = self.store.manifest(version)
        return info is not None and self.store.complete(info)

    def _saved(self, info: SnapshotInfo) -> None:
        self.snapshot_version, self.snapshot_digest = info.version, info.digest
        log.info("model %s: wrote snapshot v%d (%d events, %d bytes%s, positions %s)", self.name,
                 info.version, info.learned_events, info.size,
                 f", incremental on v{info.base}" if info.base >= 0 else "", info.positions)

    def metrics(self) -> dict[str, Callable[[], Any]]:
        """Gauges for the operator's metric group."""
        return {"snapshot_version": lambda: self.snapshot_version,
                "snapshot_failures": lambda: self.writer.failures if self.writer else 0,
                "snapshot_pending": lambda: self.writer.pending if self.writer else 0,
                "snapshots_written": lambda: self.writer.written if self.writer else 0,
                "snapshot_last_write_ms": lambda: self.writer.last_write_ms if self.writer else 0,
                "snapshot_last_cut_ms": lambda: self.last_cut_ms,
                "updates_replayed_at_start": lambda: self.replayed,
                # the health guard's rollbacks in the model's history (health.py)
                "guard_rollbacks": lambda: len(self.ranker.guard.rollbacks),
                # the newest written snapshot's digest, its first 48 bits (gauges are numbers)
                "snapshot_digest": lambda: int(self.snapshot_digest[:12] or "0", 16)}

    # -- stop ---------------------------------------------------------------------------------
    def close(self) -> None:
        """Cut what was learned since the last cut and let the writer try it for a bounded time
        (what it cannot write, the update log holds)."""
        if self.writer is None:
            return
        if self.ranker.learned_events > self.cut_events:
            self.writer.submit(self._cut())
        self.writer.close(self.close_timeout_s)
        self.writer = None
