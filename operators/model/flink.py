"""Flink adapter of the model stage.

Two-tier state (DESIGN.md §4): each user's history, sequence and session are Flink keyed state
(checkpointed, rescalable, expired after ``user_state_ttl_ms`` idle); the shared ranker lives in
this operator's memory. Three things keep the ranker exact across failures:

- every event the ranker takes (learned at its batch's boundary, online.py) goes to the update
  log (``UPDATE_TAG`` -> an exactly-once Kafka sink, updates.py), committed with each checkpoint;
- every ``snapshot_every_events`` learned events (and on close) the operator cuts a snapshot
  and a background thread writes it to Cassandra, retrying with back-off (writer.py): a slow
  or absent Cassandra never stalls recommendations;
- on open it loads the newest complete snapshot for its subtask (snapshot_store.candidates),
  applies the committed updates after it, and from then on skips replayed events the ranker
  already holds (progress.py), while the user's keyed state, which Flink restored together
  with the source offsets, takes every event it is given.

A start without a usable snapshot, or under another parallelism than the newest snapshots
were written with, begins a new lineage and writes its first snapshot before processing.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from pyflink.common import Row, Types
from pyflink.datastream import KeyedProcessFunction, OutputTag, RuntimeContext
from pyflink.datastream.state import ValueStateDescriptor

from operators.features.spec import FeatureConfig
from operators.model.history import UserState
from operators.model.metadata import load_titles, recommendation_json
from operators.model.online import OnlineConfig, OnlineRanker
from operators.model.progress import LearnedEvents
from operators.model.snapshot_store import DEFAULT_REPLICATION, SnapshotInfo, SnapshotStore
from operators.model.step import ModelStep
from operators.model.update_log import ensure_log_topic, read_updates
from operators.model.updates import replay
from operators.model.writer import PendingSnapshot, SnapshotWriter
from operators.rows import KEYED_JSON_ROW, USER_EVENT_NUMBER, row_to_event, row_to_window_features, watermark_or_none
from operators.state_ttl import idle_state_ttl

log = logging.getLogger(__name__)

UPDATE_TAG = OutputTag("model-updates", KEYED_JSON_ROW)
CLOCK_SKEW_MS = 60_000     # read the update log from this long before a snapshot was cut


@dataclass(frozen=True)
class ModelSettings:
    cassandra_hosts: list[str]
    cassandra_port: int
    keyspace: str
    model_name: str
    source_topic: str
    bootstrap_servers: str = "127.0.0.1:9092"
    update_topic: str = "model-updates"
    cassandra_replication: str = DEFAULT_REPLICATION
    k: int = 10
    snapshot_every_events: int = 5_000
    snapshot_retain: int = 5                     # complete snapshots kept per model subtask
    close_timeout_s: float = 30.0                # how long close() tries to write the last snapshot
    user_state_ttl_ms: int = 30 * 86_400_000     # a user idle this long (processing time) starts over
    emit_features: bool = False                  # add the event's features to each output record
    ranker: OnlineConfig = OnlineConfig()
    item_metadata: str = ""                      # titles for reasons (jobs/metadata.py formats)
    features: FeatureConfig = FeatureConfig()


def subtask_of(runtime_context: RuntimeContext) -> tuple[int, int]:
    """This subtask's index and the operator's parallelism. In thread mode PyFlink 2.2.1 asks
    the Java RuntimeContext for getIndexOfThisSubtask, which Flink 2 moved to getTaskInfo()
    (AttributeError); the Java context behind it answers the Flink 2 way."""
    try:
        return runtime_context.get_index_of_this_subtask(), runtime_context.get_number_of_parallel_subtasks()
    except AttributeError:
        info = runtime_context._runtime_context.getTaskInfo()
        return info.getIndexOfThisSubtask(), info.getNumberOfParallelSubtasks()


class RecommendFunction(KeyedProcessFunction):
    """Keyed by user: learn from the event, then emit the user's top-k as JSON."""

    def __init__(self, settings: ModelSettings) -> None:
        self.settings = settings

    def open(self, runtime_context: RuntimeContext) -> None:
        s = self.settings
        descriptor = ValueStateDescriptor("user", Types.PICKLED_BYTE_ARRAY())
        descriptor.enable_time_to_live(idle_state_ttl(s.user_state_ttl_ms))
        self.user_state = runtime_context.get_state(descriptor)
        self.shard, self.shards = subtask_of(runtime_context)
        self.last_cut_ms = 0
        # Starting without the newest snapshot and log would later overwrite them with a model
        # that forgot everything, so an unreachable Cassandra or Kafka fails the task here and
        # Flink retries it (with its restart strategy's back-off).
        self.store = SnapshotStore.connect(s.cassandra_hosts, s.cassandra_port, s.keyspace, s.model_name,
                                           replication=s.cassandra_replication)
        ensure_log_topic(s.bootstrap_servers, s.update_topic)
        self.ranker, self.lineage, info = self._restore()
        self.snapshot_version = info.version if info is not None else 0
        if s.item_metadata:
            self.ranker.titles = load_titles(s.item_metadata)
        # The job tests only the events that feed the fusion; jobs.evaluate tests every one.
        self.step = ModelStep(self.ranker, s.k, s.features, test_every_event=False, lineage=self.lineage)
        self.writer = SnapshotWriter(self._write, name=f"{s.model_name}/{self.shard}", on_saved=self._saved)
        self.cut_events = self.ranker.learned_events
        if info is None or info.lineage != self.lineage:
            # A new lineage (first start, rollback copy, changed parallelism) starts its own
            # series before processing, so that a restart finds and continues it.
            self._saved(self._write(self._cut()))
        elif self.replayed:
            self.writer.submit(self._cut())      # spares the next start this replay
        self.next_snapshot_at = self.cut_events + s.snapshot_every_events

        metrics = runtime_context.get_metrics_group().add_group("model")
        self.learned = metrics.counter("learned")
        self.skipped = metrics.counter("skipped_already_in_snapshot")
        metrics.gauge("snapshot_version", lambda: self.snapshot_version)
        metrics.gauge("snapshot_failures", lambda: self.writer.failures)
        metrics.gauge("snapshot_pending", lambda: self.writer.pending)
        metrics.gauge("snapshots_written", lambda: self.writer.written)
        metrics.gauge("snapshot_last_write_ms", lambda: self.writer.last_write_ms)
        metrics.gauge("snapshot_last_cut_ms", lambda: self.last_cut_ms)
        metrics.gauge("updates_replayed_at_start", lambda: self.replayed)

    def _restore(self) -> tuple[OnlineRanker, str, SnapshotInfo | None]:
        """The ranker to start from, its lineage, and the snapshot it came from."""
        s = self.settings
        self.replayed = 0
        chosen = self.store.load_for(self.shard, self.shards)
        if chosen is None:
            log.info("model %s/%d: no snapshot; starting empty", s.model_name, self.shard)
            return OnlineRanker(s.ranker), uuid.uuid4().hex, None
        info, blob, continues = chosen
        try:
            ranker = OnlineRanker.restore(blob, s.ranker)
        except (ValueError, KeyError) as exc:
            # A snapshot of an older model format (an upgrade): it stays in Cassandra as
            # history, and the new model starts empty under the next version number.
            log.warning("model %s: snapshot v%d is not usable by this model (%s); starting empty",
                        s.model_name, info.version, exc)
            return OnlineRanker(s.ranker), uuid.uuid4().hex, None
        if info.lineage:
            started = time.monotonic()
            self.replayed = replay(ranker, read_updates(s.bootstrap_servers, s.update_topic, info.lineage,
                                                        since_ms=info.created_ms - CLOCK_SKEW_MS), info.lineage)
            log.info("model %s/%d: restored snapshot v%d (%d events) + %d logged updates in %.1f s",
                     s.model_name, self.shard, info.version, info.learned_events, self.replayed,
                     time.monotonic() - started)
        if info.source != s.source_topic:
            # Offsets of another topic say nothing about this one: learn everything here.
            log.warning("model %s: snapshot v%d was taken on topic %r, not %r; its positions are ignored",
                        s.model_name, info.version, info.source, s.source_topic)
            ranker.progress = LearnedEvents()
        if continues:
            return ranker, info.lineage, info
        log.info("model %s/%d: starting a new lineage from snapshot v%d (written by subtask %d of %d)",
                 s.model_name, self.shard, info.version, info.shard, info.shards)
        return ranker, uuid.uuid4().hex, info

    def _cut(self) -> PendingSnapshot:
        """Serialise the ranker on the event path (the writer thread compresses and writes it)."""
        started = time.monotonic()
        self.cut_events = self.ranker.learned_events
        pending = PendingSnapshot(self.ranker.snapshot(), dict(self.ranker.positions), self.ranker.learned_events,
                                  self.lineage)
        self.last_cut_ms = round((time.monotonic() - started) * 1000)
        return pending

    def _write(self, pending: PendingSnapshot) -> SnapshotInfo:
        """Runs on the writer thread (and once in open): save, then prune old versions."""
        s = self.settings
        info = self.store.save(pending.blob, pending.positions, pending.learned_events, s.source_topic,
                               pending.lineage, self.shard, self.shards, created_ms=pending.cut_ms)
        try:
            self.store.prune(s.snapshot_retain, self.shard, self.shards)
        except Exception:  # noqa: BLE001 - a failed clean-up is retried after the next snapshot
            log.warning("model %s: pruning old snapshots failed", s.model_name, exc_info=True)
        return info

    def _saved(self, info: SnapshotInfo) -> None:
        self.snapshot_version = info.version
        log.info("model %s/%d: wrote snapshot v%d (%d events, %d bytes, positions %s)", self.settings.model_name,
                 self.shard, info.version, info.learned_events, info.size, info.positions)

    def process_element(self, value: Row, ctx: KeyedProcessFunction.Context) -> Iterator[tuple[OutputTag, Row] | Row]:
        s = self.settings
        event = row_to_event(value)
        window = row_to_window_features(value)
        data = self.user_state.value()
        user = UserState.restore(data) if data is not None else UserState()
        result = self.step.process(event, user, window, watermark_or_none(ctx.timer_service().current_watermark()))
        (self.learned if result.learned else self.skipped).inc()
        self.user_state.update(user.snapshot())
        record = {
            "user_id": event.user_id,
            "items": [recommendation_json(r) for r in result.recommendations],
            "model_version": self.ranker.learned_events,
            "snapshot_version": self.snapshot_version,
            "model_shard": self.shard,
            "variant": s.model_name,
            "event_id": event.event_id,
            "event_ts": event.ts,
            "emitted_ts": int(time.time() * 1000),
        }
        if s.emit_features:
            record["features"] = {**window.as_dict(), **result.session.as_dict(),
                                  "user_event_number": value[USER_EVENT_NUMBER]}
        yield Row(event.user_id, json.dumps(record))
        if result.update is not None:
            yield UPDATE_TAG, Row(self.lineage, result.update.to_json())
        if self.ranker.learned_events >= self.next_snapshot_at:
            self.writer.submit(self._cut())
            self.next_snapshot_at = self.cut_events + s.snapshot_every_events

    def close(self) -> None:
        writer = getattr(self, "writer", None)
        if writer is not None:
            if self.ranker.learned_events > self.cut_events:
                writer.submit(self._cut())
            writer.close(self.settings.close_timeout_s)
        if getattr(self, "store", None) is not None:
            self.store.close()
