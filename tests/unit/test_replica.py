"""One model across subtasks (replica.py) without services: N model subtasks, each with its
users' keyed state and a replica of the shared model, one update log (``MemoryLog``) whose
transactions commit at checkpoints in a shuffled order, and the snapshot store on
``MemoryTables``. Replicas poll the log at random moments, so they lag each other by random
amounts, as on a cluster.

Every test ends by checking the two promises: the log holds every event exactly once, and every
replica, having read the log to its end, equals the fold of that log (and so each other)."""

from __future__ import annotations

import copy
import random
import zlib
from collections import Counter

import pytest

from operators.model import OnlineRanker
from operators.model.history import UserState
from operators.model.lifecycle import CLOCK_SKEW_MS, Placement
from operators.model.online import Tally
from operators.model.replica import MemoryLog, ReplicaLifecycle
from operators.model.snapshot_store import MemoryTables, SnapshotStore
from operators.model.step import ModelStep
from operators.model.update_log import UpdateLogTruncated
from operators.model.updates import ModelUpdate, apply
from operators.records import Event
from tests.unit.test_lifecycle import NOW_MS, InlineWriter, Job, UpdateLog
from tests.unit.test_updates import _WINDOWS, SMALL, same_model, stream

EVENTS = stream(480)
CHECKPOINT_EVERY = 40       # events between checkpoints (each commits every subtask's transaction)
SNAPSHOT_EVERY = 100        # applied updates between subtask 0's snapshots
DIGEST_EVERY = 50           # applied updates between the replicas' digests


def shard_of(user: str, shards: int) -> int:
    return zlib.crc32(user.encode()) % shards


class Subtask:
    """One model subtask: a replica, the step that proposes, and its open transaction."""

    def __init__(self, tables: MemoryTables, log: MemoryLog, shard: int, shards: int,
                 digests: dict[int, set[str]]) -> None:
        self.shard = shard
        self.lifecycle = ReplicaLifecycle(
            SnapshotStore(tables, chunk_bytes=16_384), log, Placement("m", "clicks", shard, shards), SMALL,
            SNAPSHOT_EVERY, retain=2, writer=InlineWriter, clock=lambda: NOW_MS / 1000, digest_every=DIGEST_EVERY,
            on_digest=lambda version, digest: digests.setdefault(version, set()).add(digest), founder_wait_s=0)
        self.ranker = self.lifecycle.open()
        self.step = ModelStep(self.ranker, k=10, test_every_event=False, lineage=self.lifecycle.lineage,
                              writer=(shard, shards))
        self.tally = Tally()
        self.open: list[ModelUpdate] = []

    def propose(self, e: Event, users: dict[str, UserState], watermark: int) -> None:
        """The model operator's step for ``e``: its update, if any, joins the open transaction."""
        result = self.step.propose(e, users.setdefault(e.user_id, UserState()), _WINDOWS[e], watermark, self.tally)
        if result.update is not None:
            self.open.append(result.update)


class Cluster:
    """The model operator at parallelism ``shards``: events go to the subtask of their user;
    every ``CHECKPOINT_EVERY`` events a checkpoint commits each subtask's transaction."""

    def __init__(self, tables: MemoryTables, log: MemoryLog, shards: int, position: int = 0,
                 users: dict[str, UserState] | None = None, seed: int = 0) -> None:
        self.tables, self.log, self.position = tables, log, position
        self.users = copy.deepcopy(users or {})
        self.digests: dict[int, set[str]] = {}          # version -> the digests replicas reported there
        self.subtasks = [Subtask(tables, log, shard, shards, self.digests) for shard in range(shards)]
        self.rng = random.Random(seed)
        self.checkpoint = (position, copy.deepcopy(self.users))
        self.versions: list[tuple[int, int]] = []       # (subtask, model_version) of each output, in order

    def run(self, events: list[Event], stop: int | None = None) -> None:
        stop = len(events) if stop is None else stop
        while self.position < stop:
            e = events[self.position]
            sub = self.subtasks[shard_of(e.user_id, len(self.subtasks))]
            if self.rng.random() < 0.4:
                sub.lifecycle.catch_up()
            sub.propose(e, self.users, e.ts - 5_000)
            self.versions.append((sub.shard, sub.ranker.learned_events))
            sub.lifecycle.after_event()
            self.position += 1
            if self.position % CHECKPOINT_EVERY == 0:
                self.commit()

    def commit(self) -> None:
        for sub in self.rng.sample(self.subtasks, len(self.subtasks)):
            self.log.commit(sub.open)
            sub.open = []
        self.checkpoint = (self.position, copy.deepcopy(self.users))

    def crashed(self) -> tuple[int, dict[str, UserState]]:
        """What Flink restarts from: the last checkpoint (open transactions are aborted)."""
        for sub in self.subtasks:
            sub.open = []
        return self.checkpoint

    def stop(self) -> tuple[int, dict[str, UserState]]:
        """Stop with a savepoint: a last checkpoint commits, then every subtask closes."""
        self.commit()
        self.drain()
        for sub in self.subtasks:
            sub.lifecycle.close()
        return self.checkpoint

    def drain(self) -> None:
        for sub in self.subtasks:
            sub.lifecycle.catch_up(wait=True)


def fold(log: MemoryLog, lineage: str) -> OnlineRanker:
    ranker = OnlineRanker(SMALL)
    for _, update in log.records:
        if update.lineage == lineage:
            apply(ranker, update, check=False)
    return ranker


def assert_one_model(cluster: Cluster) -> OnlineRanker:
    """Every event in the log once; every replica, drained, equals the log's fold; and at
    every version a digest was taken, the replicas that reached it agree."""
    cluster.drain()
    lineage = cluster.subtasks[0].lifecycle.lineage
    learned = Counter(u.event.event_id for _, u in cluster.log.records if u.lineage == lineage)
    assert set(learned) == {e.event_id for e in EVENTS}, "an event was never learned"
    assert max(learned.values()) == 1, f"learned twice: {[e for e, n in learned.items() if n > 1][:5]}"
    reference = fold(cluster.log, lineage)
    for sub in cluster.subtasks:
        assert sub.lifecycle.lineage == lineage
        same_model(sub.ranker, reference)
        assert sub.ranker.digest() == reference.digest()
    assert reference.learned_events == len(EVENTS)
    loaded = min(info.learned_events if info is not None and info.shared else 0
                 for sub in cluster.subtasks for info in [sub.lifecycle.restored_from])
    restored = {info.learned_events for sub in cluster.subtasks for info in [sub.lifecycle.restored_from]
                if info is not None and info.shared}
    every = set(range(loaded + 1, len(EVENTS) + 1)) & set(range(0, 10**6, DIGEST_EVERY))
    assert set(cluster.digests) == every | restored
    split = {v: d for v, d in cluster.digests.items() if len(d) > 1}
    assert not split, f"replicas disagree at versions {sorted(split)}"
    return reference


@pytest.mark.parametrize("shards", [2, 3])
def test_replicas_at_the_same_version_hold_the_same_model(shards: int) -> None:
    cluster = Cluster(MemoryTables(), MemoryLog(), shards, seed=shards)
    cluster.run(EVENTS)
    assert_one_model(cluster)
    assert {shard_of(e.user_id, shards) for e in EVENTS} == set(range(shards)), "a subtask got no users"
    # While running, replicas lag each other (an output comes from its replica as it stands):
    # the versions outputs carry never go backwards on one subtask, but do across subtasks.
    for shard in range(shards):
        mine = [v for s, v in cluster.versions if s == shard]
        assert mine == sorted(mine) and mine[-1] > 0
    assert [v for _, v in cluster.versions] != sorted(v for _, v in cluster.versions)


def test_subtask_0_writes_snapshots_that_record_where_in_the_log_they_stand() -> None:
    cluster = Cluster(MemoryTables(), MemoryLog(), 2)
    cluster.run(EVENTS)
    cluster.stop()
    infos = cluster.subtasks[0].lifecycle.store.list()
    assert infos and all(i.shared and (i.shard, i.shards) == (0, 0) for i in infos)
    assert len(infos) == 2, "retain=2 keeps the two newest"
    # Read in batches of any size, the log is cut at multiples of SNAPSHOT_EVERY (and on close).
    assert infos[1].learned_events == len(EVENTS) // SNAPSHOT_EVERY * SNAPSHOT_EVERY
    newest = infos[0]
    assert newest.learned_events == len(EVENTS) and newest.log_offset == cluster.log.records[-1][0] + 1
    restored = OnlineRanker.restore(cluster.subtasks[0].lifecycle.store.read(newest) or b"", SMALL)
    same_model(restored, fold(cluster.log, newest.lineage))


@pytest.mark.parametrize("crash", ["event 15", "event 130", "event 333", "store write 2", "store write 9"])
def test_a_crash_then_a_restart_from_the_checkpoint_learns_every_event_once(crash: str) -> None:
    tables, log = MemoryTables(), MemoryLog()
    kind, number = crash.rsplit(" ", 1)
    cluster = Cluster(tables, log, 2, seed=1)
    if kind == "event":
        cluster.run(EVENTS, stop=int(number))
    else:       # subtask 0's store fails part-way through a snapshot write
        tables.fail_after = int(number) + tables.writes
        with pytest.raises(MemoryTables.StoreDown):
            cluster.run(EVENTS)
        tables.fail_after = None
    position, users = cluster.crashed()
    assert position < len(EVENTS)
    restarted = Cluster(tables, log, 2, position, users, seed=2)
    restarted.run(EVENTS)
    assert_one_model(restarted)


@pytest.mark.parametrize("before, after", [(2, 1), (1, 3), (3, 2)])
def test_rescale_from_a_savepoint_keeps_the_one_model_and_its_version(before: int, after: int) -> None:
    tables, log = MemoryTables(), MemoryLog()
    first = Cluster(tables, log, before, seed=before)
    first.run(EVENTS, stop=280)
    position, users = first.stop()
    model = first.subtasks[0].ranker
    assert model.learned_events == position == 280
    second = Cluster(tables, log, after, position, users, seed=after)
    for sub in second.subtasks:             # every new replica starts as the model that stopped
        same_model(sub.ranker, model)
        assert sub.ranker.digest() == model.digest()
    second.run(EVENTS)
    assert_one_model(second)
    assert min(v for _, v in second.versions) == 280, "the version continues from the savepoint's"


def test_a_restore_from_an_older_savepoint_learns_nothing_twice() -> None:
    tables, log = MemoryTables(), MemoryLog()
    cluster = Cluster(tables, log, 2)
    cluster.run(EVENTS, stop=120)
    older = cluster.checkpoint
    cluster.run(EVENTS, stop=240)
    cluster.stop()
    # Events 120..239 are fed again; the log already holds their updates.
    again = Cluster(tables, log, 3, *older, seed=5)
    again.run(EVENTS)
    assert_one_model(again)


def test_other_subtasks_wait_for_subtask_0_to_found_the_lineage() -> None:
    tables, log = MemoryTables(), MemoryLog()
    log.commit([])                          # the log did not start empty: the lineage starts at its end
    founders: list[ReplicaLifecycle] = []

    def found_meanwhile(_: float) -> None:
        founder = ReplicaLifecycle(SnapshotStore(tables), log, Placement("m", "clicks", 0, 2), SMALL,
                                   writer=InlineWriter)
        founder.open()
        founders.append(founder)

    waiting = ReplicaLifecycle(SnapshotStore(tables), log, Placement("m", "clicks", 1, 2), SMALL,
                               writer=InlineWriter, sleep=found_meanwhile)
    waiting.open()
    assert len(founders) == 1 and waiting.lineage == founders[0].lineage
    assert waiting.next_offset == founders[0].next_offset == log.end() == 1
    assert waiting.writer is None, "only subtask 0 writes snapshots"

    alone = ReplicaLifecycle(SnapshotStore(MemoryTables()), log, Placement("m", "clicks", 1, 2), SMALL,
                             founder_wait_s=0, sleep=lambda _: None)
    with pytest.raises(RuntimeError, match="subtask 0 writes it"):
        alone.open()


def test_the_first_shared_model_continues_a_one_subtask_model_exactly() -> None:
    tables, old_log = MemoryTables(), UpdateLog()
    job = Job(tables, old_log)                 # the one-model-per-subtask design (lifecycle.py)
    job.run(EVENTS[:200])                      # its last 40 updates are logged after its last snapshot
    assert job.lifecycle.snapshot_version and job.ranker.learned_events == 200

    founder = ReplicaLifecycle(SnapshotStore(tables), MemoryLog(), Placement("m", "clicks", 0, 2), SMALL,
                               writer=InlineWriter, clock=lambda: NOW_MS / 1000, read_log=old_log.read)
    same_model(founder.open(), job.ranker)
    assert founder.restored_from is not None and not founder.restored_from.shared
    assert founder.lineage != job.lifecycle.lineage and CLOCK_SKEW_MS > 0


def test_a_rollback_copy_rolls_back_every_replica() -> None:
    tables, log = MemoryTables(), MemoryLog()
    cluster = Cluster(tables, log, 2)
    cluster.run(EVENTS)
    cluster.stop()
    store = cluster.subtasks[0].lifecycle.store
    old = store.list()[-1]
    blob = store.read(old) or b""
    # what `python -m jobs.models rollback VERSION` writes
    store.save(blob, old.positions, old.learned_events, old.source, lineage="", shard=old.shard, shards=old.shards,
               digest=old.digest, log_offset=old.log_offset)
    rolled = Cluster(tables, log, 3, seed=9)
    expected = OnlineRanker.restore(blob, SMALL)
    for sub in rolled.subtasks:
        same_model(sub.ranker, expected)       # the updates after the old snapshot are not applied
        assert sub.lifecycle.lineage == f"rollback-{old.version + 2}"
        assert sub.lifecycle.other_lineages == len(EVENTS) - old.learned_events


def test_a_log_truncated_after_the_snapshot_fails_the_start_clearly() -> None:
    tables, log = MemoryTables(), MemoryLog()
    cluster = Cluster(tables, log, 2)
    cluster.run(EVENTS, stop=160)
    cluster.stop()
    log.low = store_offset = cluster.subtasks[0].lifecycle.store.list()[0].log_offset
    Cluster(tables, log, 2)                    # starting at the retained offset is fine
    log.low = store_offset + 1
    with pytest.raises(UpdateLogTruncated):
        Cluster(tables, log, 2)


def test_an_unaligned_checkpoint_at_parallelism_2_loses_no_event_held_in_its_channel_state() -> None:
    """An unaligned barrier overtakes the events queued in a channel; they go into the
    checkpoint's channel state and reach their subtask after a restore. Here subtask 1's queued
    events stay queued while subtask 0 learns on, its input watermark past them, and the
    checkpoint commits subtask 0's updates. After the restore the replicas have applied those
    updates, yet judge the queued events by subtask 1's watermark, not subtask 0's (progress.py),
    so they are proposed and learned once. Before updates named their writer, all six were
    judged held and never learned (README "Recovery time")."""
    tables, log = MemoryTables(), MemoryLog()
    cluster = Cluster(tables, log, 2, seed=1)
    cluster.run(EVENTS, stop=120)                     # the last aligned checkpoint: position 120
    late_ts = max(e.ts for e in EVENTS[:160])
    queued = [e for e in EVENTS[120:160] if shard_of(e.user_id, 2) == 1]
    assert len(queued) == 6 and max(e.ts for e in queued) <= late_ts
    for e in EVENTS[120:160]:
        if shard_of(e.user_id, 2) == 0:               # subtask 0's watermark has passed every queued event
            cluster.subtasks[0].propose(e, cluster.users, late_ts)
    cluster.position = 160
    cluster.commit()                                  # the unaligned checkpoint: subtask 1's channel state is `queued`
    position, users = cluster.crashed()
    restarted = Cluster(tables, log, 2, position, users, seed=2)
    restarted.drain()                                 # every replica has applied subtask 0's updates
    for e in queued:                                  # restored from the channel state first
        sub = restarted.subtasks[1]
        assert not sub.ranker.progress.contains(e, sub.step.writer)
        assert sub.ranker.progress.contains(e), "the newest watermark (subtask 0's) has passed it"
        sub.propose(e, restarted.users, e.ts - 5_000)
    restarted.run(EVENTS)
    assert_one_model(restarted)


def test_a_rescale_from_an_unaligned_checkpoint_at_parallelism_1_learns_every_event_once() -> None:
    """Why the job turns unaligned checkpoints on by default at parallelism 1 only (jobs/config.py):
    with one writer, the events in a checkpoint's channel state were all queued on that writer's
    own channel, so its watermark, the newest old one by which the subtasks of a new parallelism
    judge them, has passed none of them; restored at parallelism 2, every one is learned once."""
    tables, log = MemoryTables(), MemoryLog()
    cluster = Cluster(tables, log, 1, seed=3)
    cluster.run(EVENTS, stop=120)                     # the last aligned checkpoint: position 120
    learned, queued = EVENTS[120:140], EVENTS[140:160]
    watermark = min(e.ts for e in queued) - 1         # an input watermark stays behind its queued records
    for e in learned:
        cluster.subtasks[0].propose(e, cluster.users, min(e.ts - 5_000, watermark))
    cluster.position = 160
    cluster.commit()                                  # the unaligned checkpoint: its channel state is `queued`
    position, users = cluster.crashed()
    restarted = Cluster(tables, log, 2, position, users, seed=4)
    restarted.drain()
    assert {shard_of(e.user_id, 2) for e in queued} == {0, 1}
    for e in queued:                                  # the channel state, spread over the new subtasks
        sub = restarted.subtasks[shard_of(e.user_id, 2)]
        assert not sub.ranker.progress.contains(e, sub.step.writer)
        sub.propose(e, restarted.users, e.ts - 5_000)
    restarted.run(EVENTS)
    assert_one_model(restarted)
