"""One model, N replicas: every model subtask holds the same model, the fold of the committed
update log in log order (DESIGN.md §4, README "One model across subtasks").

Users stay keyed to subtasks; the model is shared. Each subtask tests and answers its own
users' events with its replica and *proposes* every event the model does not hold yet
(``ModelStep.propose``): the update goes to the update log through the exactly-once sink, as
in the one-subtask design, but the replica does not learn it there. Every replica reads the
committed log (one partition: one order for all readers) and applies each update of its
lineage, its own subtask's included, in log order and unconditionally. So:

- replicas at the same log offset hold the same model (same digest): the log is the only
  thing that changes them, and applying an update is deterministic (updates.py);
- ``model_version`` (the ranker's ``learned_events``) counts the updates applied: one global,
  contiguous number, whatever the parallelism;
- a restart or a rescale to any parallelism needs no merge: every new replica loads the newest
  shared snapshot and applies the log after the offset it records;
- freshness: an event shapes lists (on every subtask, its own included) once its checkpoint
  commits the update and the replica polls it: a checkpoint interval or more (measured by
  bench/freshness.py: p50 25 s at a 10 s interval, start-up backlog included);
- exactly once: the log holds an update for exactly the events before the checkpoint the job
  restarts from (the sink aborts the rest, which the rewound source feeds again), so the fold
  learns each event once. What a replica proposes is checked against what the fold holds
  (progress.py) only to skip events fed again after a restore from an *older* savepoint,
  whose updates are already in the log. Each update names its writer (subtask, parallelism),
  and an event is judged by the watermark of the subtask it reaches: a subtask's own input
  watermark never passes an event still queued on its channels, even when an unaligned barrier
  overtook that event and a restore feeds it again from the checkpoint's channel state after
  another subtask's updates, at a later watermark, were committed. The fold itself must not
  skip: two subtasks' updates of one checkpoint land in either order.

Subtask 0 is the snapshot writer: every ``snapshot_every_events`` applied updates it cuts a
snapshot that records the log offset it continues from (``SnapshotInfo.log_offset``). When no
shared snapshot exists (first start, or a job that ran one model per subtask before), subtask 0
founds the lineage (from the newest per-subtask snapshot and its log, when there is one) and
writes its first snapshot before any event; the other subtasks wait for it.

Every ``digest_every`` applied updates a replica hashes its model (``OnlineRanker.digest``)
and reports it with its version, as it does at the version it restored at start: replicas
report equal digests at equal versions.

>>> from operators.model.snapshot_store import MemoryTables, SnapshotStore
>>> store, log = SnapshotStore(MemoryTables()), MemoryLog()
>>> first = ReplicaLifecycle(store, log, Placement("m", "clicks", 0, 2))
>>> first.open().learned_events, [(i.version, i.shard, i.shards, i.log_offset) for i in store.list()]
(0, [(1, 0, 0, 0)])
>>> second = ReplicaLifecycle(store, log, Placement("m", "clicks", 1, 2))
>>> second.open() is not None and second.lineage == first.lineage
True
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from operators.model.lifecycle import ModelLifecycle, Placement, ReadLog, WriterFactory, background_writer
from operators.model.online import OnlineConfig, OnlineRanker
from operators.model.snapshot_store import SnapshotInfo, SnapshotStore
from operators.model.update_log import UpdateLogTruncated
from operators.model.updates import ModelUpdate, apply

log = logging.getLogger(__name__)

SHARED_SLOT = (0, 0)     # (shard, shards) of the shared model's snapshots: written for every subtask


SHARING = ("auto", "on", "off")


def shares_model(setting: str, shards: int, newest: SnapshotInfo | None) -> bool:
    """Whether the model subtasks share one model (``--shared-model``): "auto" does when there
    are several subtasks, or when the newest snapshot is already shared (a shared model stays
    shared after a rescale to one subtask: its log holds what the snapshot lacks).

    >>> shares_model("auto", 1, None), shares_model("auto", 2, None), shares_model("off", 3, None)
    (False, True, False)
    >>> shares_model("auto", 1, SnapshotInfo(4, 0, 0, 1, "", log_offset=120))
    True
    """
    if setting not in SHARING:
        raise ValueError(f"--shared-model must be one of {', '.join(SHARING)}, got {setting!r}")
    if setting != "auto":
        return setting == "on"
    return shards > 1 or (newest is not None and newest.shared)


class UpdateLogTail(Protocol):
    """The committed update log as a replica reads it (update_log.KafkaLogTail; MemoryLog)."""

    def end(self) -> int:
        """The offset after the last committed update, once no transaction is open."""
        ...

    def read(self, start: int, wait: bool) -> Iterable[tuple[int, ModelUpdate]]:
        """Committed updates at ``start`` and after, with their offsets, in log order: all of
        them to the end (``wait``), or those at hand now without waiting."""
        ...


@dataclass
class MemoryLog:
    """``UpdateLogTail`` in memory, for tests: ``commit`` appends a transaction's updates.
    Offsets step by 2 per transaction's end, as a Kafka commit marker takes one."""

    records: list[tuple[int, ModelUpdate]] = field(default_factory=list)
    next_offset: int = 0
    low: int = 0                      # the first retained offset (deleted before it)

    def commit(self, updates: Iterable[ModelUpdate]) -> None:
        for update in updates:
            self.records.append((self.next_offset, update))
            self.next_offset += 1
        self.next_offset += 1         # the transaction marker

    def end(self) -> int:
        return self.next_offset

    def read(self, start: int, wait: bool) -> list[tuple[int, ModelUpdate]]:
        if start < self.low:
            raise UpdateLogTruncated(f"updates from offset {start} were deleted (the oldest kept is {self.low})")
        return [(o, u) for o, u in self.records if o >= start]


def rollback_lineage(model: str, version: int) -> str:
    """The lineage the replicas of ``model`` give a rollback copy of ``version`` (a copy has
    none). A/B variants' models (``base.variant``, variants.py) share one update log, so
    theirs carries the model's name; a job's single model keeps the name it always had.

    >>> rollback_lineage("default", 7), rollback_lineage("default.treatment", 7)
    ('rollback-7', 'rollback-default.treatment-7')
    """
    return f"rollback-{model}-{version}" if "." in model else f"rollback-{version}"


class ReplicaLifecycle(ModelLifecycle):
    """Start, fold and snapshots of one replica of the shared model."""

    def __init__(self, store: SnapshotStore, tail: UpdateLogTail, placement: Placement,
                 config: OnlineConfig | None = None, snapshot_every_events: int = 5_000, retain: int = 5,
                 close_timeout_s: float = 30.0, writer: WriterFactory = background_writer,
                 clock: Callable[[], float] = time.time, read_log: ReadLog = lambda lineage, since: (),
                 digest_every: int | None = None, on_digest: Callable[[int, str], None] | None = None,
                 founder_wait_s: float = 300.0, sleep: Callable[[float], None] = time.sleep,
                 full_every: int = 1) -> None:
        super().__init__(store, read_log, placement, config, snapshot_every_events, retain, close_timeout_s,
                         writer, clock, full_every)
        self.tail = tail
        self.next_offset = 0                 # the log offset of the next update to apply
        self.other_lineages = 0              # updates passed over: another lineage's (a rollback's past)
        self.digest_every = digest_every or snapshot_every_events
        self.digests: list[tuple[int, str]] = []      # (model version, digest), newest last (bounded)
        self._on_digest = on_digest
        self.founder_wait_s, self._sleep = founder_wait_s, sleep

    @property
    def writes_snapshots(self) -> bool:
        return self.placement.shard == 0

    @property
    def log_offset(self) -> int:
        return self.next_offset

    def cut_now(self) -> int | None:
        """None: a shared model is cut at multiples of ``snapshot_every_events`` only, so that
        its versions are the same at any parallelism; a forget waits for the next one."""
        return None

    @property
    def slot(self) -> tuple[int, int]:
        return SHARED_SLOT

    # -- start --------------------------------------------------------------------------------
    def open(self) -> OnlineRanker:
        """Load the shared model (founding it if this is subtask 0 and there is none), apply
        the committed log after it, and return the replica's ranker."""
        info, founded = self._start()
        self.restored_from = info
        self.snapshot_version = info.version if info is not None and not founded else 0
        self.snapshot_digest = info.digest if info is not None and not founded else ""
        if info is not None and not founded:
            # The restored version too: a replica that reached it before a failure reported
            # it alone (its peers restore it rather than apply it), so compare it here.
            self._record_digest()
        started = time.monotonic()
        self.replayed = self._fold(self.tail.read(self.next_offset, wait=True))
        log.info("model %s: replica at log offset %d, version %d (%d updates applied at start in %.1f s)",
                 self.name, self.next_offset, self.ranker.learned_events, self.replayed, time.monotonic() - started)
        if self.writes_snapshots:
            self.writer = self._writer_factory(self._write, self.name, self._saved)
        self.cut_events = self.ranker.learned_events
        if founded:
            # Written before any event and on this thread: the other subtasks wait for it.
            self._saved(self._write(self._cut()))
        elif self.writer is not None and self.replayed:
            self.writer.submit(self._cut())
        # Cuts at multiples of snapshot_every_events: the same versions at any parallelism.
        self.next_snapshot_at = (self.cut_events // self.snapshot_every_events + 1) * self.snapshot_every_events
        return self.ranker

    def _start(self) -> tuple[SnapshotInfo | None, bool]:
        """Set ranker, lineage and log offset from the newest usable shared snapshot; subtask 0
        founds one when there is none. Returns the snapshot started from, and whether this
        start founded the lineage."""
        deadline = time.monotonic() + self.founder_wait_s
        while True:
            shared = self.store.load_shared()
            ranker = None if shared is None else self._ranker_from(*shared)
            if shared is not None and ranker is not None:
                info = shared[0]
                self._check_source(info, ranker)
                # A rollback copy has no lineage (jobs.models): every replica names the new one alike.
                self.ranker = ranker
                self.lineage = info.lineage or rollback_lineage(self.placement.model_name, info.version)
                self.next_offset = info.log_offset
                return info, False
            if self.writes_snapshots:
                return self._found(), True
            if time.monotonic() > deadline:
                raise RuntimeError(f"model {self.name}: no usable shared snapshot after {self.founder_wait_s:.0f} s; "
                                   "subtask 0 writes it when it starts (see its log)")
            self._sleep(0.5)

    def _found(self) -> SnapshotInfo | None:
        """A new lineage at the log's end, from the newest model of one subtask (with its
        log, as that design restores it) or empty."""
        base: SnapshotInfo | None = None
        self.next_offset = self.tail.end()
        for info in self.store.list(limit=1_000):
            if info.shared:
                continue
            blob = self.store.read(info, quiet=True)
            ranker = None if blob is None else self._ranker_from(info, blob)
            if ranker is not None:
                self._replay_lineage(info, ranker)
                self._check_source(info, ranker)
                self.ranker, base = ranker, info
                break
        else:
            self.ranker = OnlineRanker(self.config)
        self.lineage = uuid.uuid4().hex
        log.info("model %s: founding the shared model's lineage %s at log offset %d, from %s", self.name,
                 self.lineage, self.next_offset, "empty" if base is None else f"snapshot v{base.version}")
        return base

    # -- while running ------------------------------------------------------------------------
    def catch_up(self, wait: bool = False) -> int:
        """Apply what the log committed since the last call (all of it to the end with
        ``wait``); cut a snapshot when due (subtask 0). Returns how many updates it applied."""
        return self._fold(self.tail.read(self.next_offset, wait))

    def _fold(self, records: Iterable[tuple[int, ModelUpdate]]) -> int:
        applied = 0
        for offset, update in records:
            if offset < self.next_offset:
                continue
            self.next_offset = offset + 1
            if update.lineage != self.lineage:
                self.other_lineages += 1
                continue
            apply(self.ranker, update, check=False)
            applied += 1
            if self.ranker.learned_events % self.digest_every == 0:
                self._record_digest()
            self.after_event()      # cut at the same versions whatever the batches read
        return applied

    def _record_digest(self) -> None:
        version, digest = self.ranker.learned_events, self.ranker.digest()
        self.digests = [*self.digests[-99:], (version, digest)]
        log.info("model %s (lineage %s): replica digest at version %d (log offset %d): %s", self.name,
                 self.lineage, version, self.next_offset, digest)
        if self._on_digest is not None:
            self._on_digest(version, digest)

    def _newest_digest(self) -> tuple[int, str]:
        return self.digests[-1] if self.digests else (0, "0")

    def metrics(self) -> dict[str, Callable[[], Any]]:
        """The lifecycle's gauges, and the replica's version, log offset and newest digest
        (its first 48 bits) with the version it was taken at."""
        return {**super().metrics(),
                "model_version": lambda: self.ranker.learned_events,
                "log_offset": lambda: self.next_offset,
                "replica_digest": lambda: int(self._newest_digest()[1][:12], 16),
                "replica_digest_version": lambda: self._newest_digest()[0]}
