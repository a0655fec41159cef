"""The model lifecycle (restore, replay, snapshot cadence, lineage) without services: the
snapshot store on ``MemoryTables``, the update log a list, the Flink operator and its
checkpoints played by ``Job``. A crash at any write of a snapshot, then a restart from the last
checkpoint, ends with the model an uninterrupted run has: nothing learned twice, nothing lost."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterable

import pytest

from operators.model import OnlineRanker
from operators.model.history import UserState
from operators.model.lifecycle import ModelLifecycle, Placement
from operators.model.snapshot_store import MemoryTables, SnapshotInfo, SnapshotStore
from operators.model.step import ModelStep
from operators.model.updates import ModelUpdate
from operators.model.writer import PendingSnapshot
from operators.records import Event
from tests.unit.test_updates import _WINDOWS, SMALL, same_model, stream

EVENTS = stream(500)
NOW_MS = 1_000_000
CHECKPOINT_EVERY = 40       # events between Flink checkpoints
SNAPSHOT_EVERY = 100        # learned events between snapshots


class InlineWriter:
    """Writes on the caller's thread, so a store failure surfaces where the test can stop
    the job: the worst timing a background writer could have."""

    def __init__(self, save: Callable[[PendingSnapshot], SnapshotInfo], name: str,
                 on_saved: Callable[[SnapshotInfo], None]) -> None:
        self.save, self.on_saved = save, on_saved
        self.written = self.failures = self.last_write_ms = self.pending = 0

    def submit(self, snapshot: PendingSnapshot) -> None:
        self.on_saved(self.save(snapshot))
        self.written += 1

    def close(self, timeout: float) -> bool:
        return True


class UpdateLog:
    """The exactly-once update log: updates become readable when their checkpoint completes."""

    def __init__(self) -> None:
        self.committed: list[ModelUpdate] = []
        self.open: list[ModelUpdate] = []

    def read(self, lineage: str, since_ms: int | None) -> Iterable[ModelUpdate]:
        assert since_ms is not None and since_ms <= NOW_MS     # appended at NOW_MS: all after the snapshot
        return [u for u in self.committed if u.lineage == lineage]


class Job:
    """The model operator and its checkpoints: source position, users' keyed state and the
    log's open transaction commit together every ``CHECKPOINT_EVERY`` events."""

    def __init__(self, tables: MemoryTables, log: UpdateLog, position: int = 0,
                 users: dict[str, UserState] | None = None, full_every: int = 1) -> None:
        self.tables, self.log, self.position = tables, log, position
        self.users = copy.deepcopy(users or {})
        self.lifecycle = ModelLifecycle(SnapshotStore(tables, chunk_bytes=16_384), log.read, Placement("m", "clicks"),
                                        SMALL, SNAPSHOT_EVERY, retain=1, writer=InlineWriter,
                                        clock=lambda: NOW_MS / 1000, full_every=full_every)
        # 120 items, most of them touched between two snapshots: a delta would not pay, and the
        # writer would store them whole. Keep every delta, so the crashes below hit delta writes.
        self.lifecycle.increments.max_share = 1.0
        self.ranker = self.lifecycle.open()
        self.step = ModelStep(self.ranker, k=10, test_every_event=False, lineage=self.lifecycle.lineage)
        self.checkpoint = (position, copy.deepcopy(self.users))

    def run(self, events: list[Event]) -> None:
        while self.position < len(events):
            e = events[self.position]
            result = self.step.process(e, self.users.setdefault(e.user_id, UserState()), _WINDOWS[e],
                                       watermark=e.ts - 5_000)
            if result.update is not None:
                self.log.open.append(result.update)
            self.lifecycle.after_event()
            self.position += 1
            if self.position % CHECKPOINT_EVERY == 0:
                self.log.committed += self.log.open
                self.log.open = []
                self.checkpoint = (self.position, copy.deepcopy(self.users))

    def crashed(self) -> tuple[int, dict[str, UserState]]:
        """What Flink restarts from: the last checkpoint (the open transaction is aborted)."""
        self.log.open = []
        return self.checkpoint


def uninterrupted(full_every: int = 1) -> tuple[OnlineRanker, list[int], MemoryTables]:
    """The reference model, and the store's write count at the end of each snapshot."""
    tables, ends = MemoryTables(), []
    job = Job(tables, UpdateLog(), full_every=full_every)
    ends.append(tables.writes)
    prune = job.lifecycle.store.prune       # the last step of every snapshot write

    def counted(keep: int, shard: int = 0, shards: int = 1) -> list[int]:
        deleted = prune(keep, shard, shards)
        ends.append(tables.writes)
        return deleted

    job.lifecycle.store.prune = counted     # type: ignore[method-assign]
    job.run(EVENTS)
    return job.ranker, ends, tables


REFERENCE, WRITES_AT_SNAPSHOT_END, REFERENCE_TABLES = uninterrupted()
# Incremental snapshots (a full one every third): full, delta, delta, full, ...
INCREMENTAL, INCREMENTAL_WRITES_AT_SNAPSHOT_END, INCREMENTAL_TABLES = uninterrupted(full_every=3)


def crash_and_resume(fail_after: int, full_every: int = 1) -> tuple[Job, MemoryTables]:
    tables, log = MemoryTables(), UpdateLog()
    tables.fail_after = fail_after
    position, users = 0, {}
    try:
        job = Job(tables, log, full_every=full_every)
        job.run(EVENTS)
        pytest.fail(f"the store never failed (write {fail_after} of {tables.writes})")
    except MemoryTables.StoreDown:
        if "job" in locals():
            position, users = job.crashed()
    tables.fail_after = None                # the store is back; Flink restarts the task
    resumed = Job(tables, log, position, users, full_every=full_every)
    resumed.run(EVENTS)
    return resumed, tables


def stopped_after(checkpoints: int) -> Job:
    """A job stopped cleanly (its closing snapshot written) after ``checkpoints`` checkpoints."""
    job = Job(MemoryTables(), UpdateLog())
    job.run(EVENTS[:CHECKPOINT_EVERY * checkpoints])
    job.lifecycle.close()
    return job


def lifecycle_after(job: Job, placement: Placement) -> ModelLifecycle:
    """A lifecycle on ``job``'s store and log, started as ``placement``."""
    return ModelLifecycle(SnapshotStore(job.tables), job.log.read, placement, SMALL, writer=InlineWriter)


def test_the_reference_run_writes_several_snapshots_and_prunes() -> None:
    assert len(WRITES_AT_SNAPSHOT_END) >= 4             # the lineage's first, then at least 3 by cadence
    assert REFERENCE.learned_events == len(EVENTS)
    assert len(SnapshotStore(REFERENCE_TABLES).list()) == 1          # retain=1: every older one pruned
    # The crash points below (README: 18): the first three snapshots' reservations, chunks and
    # manifests, and the prune deletes of the second and third.
    assert WRITES_AT_SNAPSHOT_END[2] == 18


def test_incremental_snapshots_are_deltas_on_the_full_one_they_keep() -> None:
    assert INCREMENTAL.digest() == REFERENCE.digest()       # snapshots do not change what is learned
    full, delta, delta_2, full_2 = (i for i in sorted(_written(INCREMENTAL_TABLES), key=lambda i: i.version)[:4])
    assert (full.base, delta.base, delta_2.base, full_2.base) == (-1, full.version, full.version, -1)
    assert delta.size < full.size and delta_2.size < full.size
    # retain=1 keeps the newest snapshot and, when it is a delta, the full one it needs
    store = SnapshotStore(INCREMENTAL_TABLES)
    newest = store.list()[0]
    assert {i.version for i in store.list()} == ({newest.version} | ({newest.base} - {-1}))
    chosen = store.load_for(0, 1)
    assert chosen is not None and chosen[0] == newest
    assert OnlineRanker.restore(chosen[1], SMALL).digest() == newest.digest == INCREMENTAL.digest()


def _written(tables: MemoryTables) -> list[SnapshotInfo]:
    """Every manifest ever written, pruned ones too."""
    return list(tables.history)


# Every write of the first three snapshots: the new lineage's first (in open), one by cadence,
# and one by cadence that also prunes the one before it (retain=1); with incremental snapshots,
# of the first four: full, two deltas on it, and the next full one that prunes them all.
@pytest.mark.parametrize(("full_every", "fail_after"),
                         [(1, n) for n in range(WRITES_AT_SNAPSHOT_END[2])]
                         + [(3, n) for n in range(INCREMENTAL_WRITES_AT_SNAPSHOT_END[3])])
def test_a_crash_at_any_write_of_a_snapshot_then_a_restart_gives_the_uninterrupted_model(full_every: int,
                                                                                       fail_after: int) -> None:
    resumed, tables = crash_and_resume(fail_after, full_every)
    same_model(resumed.ranker, REFERENCE)
    assert resumed.ranker.digest() == REFERENCE.digest()
    # The store never offers a torn snapshot: what a start would load is whole and holds
    # exactly the events its manifest says.
    store = SnapshotStore(tables)
    chosen = store.load_for(0, 1)
    assert chosen is not None
    info, blob, _ = chosen
    assert OnlineRanker.restore(blob, SMALL).learned_events == info.learned_events


def test_the_update_log_alone_carries_the_model_while_the_store_is_down() -> None:
    tables, log = MemoryTables(), UpdateLog()
    job = Job(tables, log)
    first = tables.writes
    tables.fail_after = 0                   # every snapshot after the lineage's first fails
    with pytest.raises(MemoryTables.StoreDown):
        job.run(EVENTS)
    position, users = job.crashed()
    tables.fail_after = None
    resumed = Job(tables, log, position, users)
    assert resumed.lifecycle.restored_from is not None and resumed.lifecycle.restored_from.learned_events == 0
    assert resumed.lifecycle.replayed == position      # every checkpointed event, from the log
    assert tables.writes > first                       # the replay is snapshotted at once
    resumed.run(EVENTS)
    same_model(resumed.ranker, REFERENCE)


def test_a_clean_restart_continues_the_lineage_from_the_closing_snapshot() -> None:
    job = stopped_after(5)                  # a stop with savepoint: the last cut is written
    position, users = job.checkpoint
    again = Job(job.tables, job.log, position, users)
    assert again.lifecycle.lineage == job.lifecycle.lineage
    assert again.lifecycle.replayed == 0
    assert again.ranker.digest() == job.ranker.digest()
    again.run(EVENTS)
    same_model(again.ranker, REFERENCE)


def test_a_snapshot_of_another_parallelism_starts_a_new_lineage_from_it() -> None:
    job = stopped_after(4)
    rescaled = lifecycle_after(job, Placement("m", "clicks", shard=1, shards=2))
    ranker = rescaled.open()
    assert rescaled.lineage != job.lifecycle.lineage
    assert ranker.digest() == job.ranker.digest()
    newest = SnapshotStore(job.tables).list()[0]
    assert (newest.lineage, newest.shard, newest.shards) == (rescaled.lineage, 1, 2)   # its series starts at once


def test_a_snapshot_from_another_topic_keeps_the_model_but_not_its_positions() -> None:
    job = stopped_after(2)
    ranker = lifecycle_after(job, Placement("m", "other-topic")).open()
    assert ranker.learned_events == job.ranker.learned_events
    assert ranker.positions == {} and job.ranker.positions != {}


def test_the_digest_tells_models_apart_and_survives_a_snapshot() -> None:
    restored = OnlineRanker.restore(REFERENCE.snapshot(), SMALL)
    assert restored.digest() == REFERENCE.digest()
    job = Job(MemoryTables(), UpdateLog())
    job.run(EVENTS[:-1])                    # one event short
    assert job.ranker.digest() != REFERENCE.digest()


def test_each_snapshot_names_the_digest_of_the_model_it_holds() -> None:
    job = stopped_after(3)
    newest = SnapshotStore(job.tables).list()[0]
    assert newest.learned_events == job.ranker.learned_events
    assert newest.digest == job.ranker.digest()
    assert job.lifecycle.metrics()["snapshot_digest"]() == int(newest.digest[:12], 16)


def test_a_snapshot_that_restores_to_another_model_is_refused() -> None:
    job = stopped_after(3)
    newest = SnapshotStore(job.tables).list()[0]
    job.tables.manifest_rows[newest.version] = dataclasses.replace(newest, digest="0" * 64)
    with pytest.raises(RuntimeError, match="digest mismatch"):
        Job(job.tables, job.log)
