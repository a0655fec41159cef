"""Flink adapter of the model stage: moves records, keeps the users' keyed state, and calls
the model's lifecycle (lifecycle.py: restore, replay, snapshot cadence, lineage).

Two-tier state (DESIGN.md §4): each user's history, sequence and session are Flink keyed state
(checkpointed, rescalable, expired after ``user_state_ttl_ms`` idle); the shared ranker lives in
this operator's memory. Three things keep the ranker exact across failures:

- every event the ranker takes (learned at its batch's boundary, online.py) goes to the update
  log (``UPDATE_TAG`` -> an exactly-once Kafka sink, updates.py), committed with each checkpoint;
- every ``snapshot_every_events`` learned events (and on close) a snapshot is cut and a
  background thread writes it to Cassandra, retrying with back-off (writer.py): a slow or
  absent Cassandra never stalls recommendations;
- on open the lifecycle loads the newest complete snapshot for this subtask, applies the
  committed updates after it, and from then on the step skips replayed events the ranker
  already holds (progress.py), while the user's keyed state, which Flink restored together
  with the source offsets, takes every event it is given.

With several subtasks (``shared_model``, replica.py) each subtask holds a replica of one model:
it answers and proposes its users' events, and learns only from the committed update log, read
every ``replica_poll_ms``, in log order, so every replica is the same model at the same offset.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

from pyflink.common import Row, Types
from pyflink.datastream import KeyedProcessFunction, OutputTag, RuntimeContext, TimerService
from pyflink.datastream.state import ValueStateDescriptor

from operators.features.spec import FeatureConfig
from operators.model.evaluation import NOT_EVALUATED
from operators.model.history import UserState
from operators.model.lifecycle import ModelLifecycle, Placement
from operators.model.metadata import load_titles, recommendation_json
from operators.model.online import OnlineConfig, Tally
from operators.model.replica import ReplicaLifecycle, shares_model
from operators.model.snapshot_store import DEFAULT_REPLICATION, SnapshotStore
from operators.model.step import ModelStep
from operators.model.update_log import MIN_RETENTION_MS, KafkaLogTail, ensure_log_topic, read_updates
from operators.records import EVALUATION_COLUMNS
from operators.rows import KEYED_JSON_ROW, USER_EVENT_NUMBER, row_to_event, row_to_window_features, watermark_or_none
from operators.state_ttl import idle_state_ttl

UPDATE_TAG = OutputTag("model-updates", KEYED_JSON_ROW)
log = logging.getLogger(__name__)


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
    update_log_min_retention_ms: int = MIN_RETENTION_MS
    shared_model: str = "auto"                   # one model for all subtasks (replica.shares_model)
    replica_poll_ms: int = 200                   # a replica applies the committed log this often
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


def _process_age_s() -> str:
    """Seconds since this process started (Linux /proc), for the open log line; "?" elsewhere."""
    try:
        with open("/proc/self/stat") as stat, open("/proc/uptime") as uptime:
            started_ticks = int(stat.read().rsplit(")", 1)[1].split()[19])
            return f"{float(uptime.read().split()[0]) - started_ticks / os.sysconf('SC_CLK_TCK'):.1f}"
    except (OSError, ValueError, IndexError):
        return "?"


class RecommendFunction(KeyedProcessFunction):
    """Keyed by user: learn from the event, then emit the user's top-k as JSON
    (rows.RECOMMENDATION_ROW: the record, then the columns the metrics SQL sums)."""

    def __init__(self, settings: ModelSettings) -> None:
        self.settings = settings

    def open(self, runtime_context: RuntimeContext) -> None:
        s = self.settings
        descriptor = ValueStateDescriptor("user", Types.PICKLED_BYTE_ARRAY())
        descriptor.enable_time_to_live(idle_state_ttl(s.user_state_ttl_ms))
        self.user_state = runtime_context.get_state(descriptor)
        self.shard, shards = subtask_of(runtime_context)
        # Starting without the newest snapshot and log would later overwrite them with a model
        # that forgot everything, so an unreachable Cassandra or Kafka fails the task here and
        # Flink retries it (with its restart strategy's back-off).
        started = time.monotonic()
        store = SnapshotStore.connect(s.cassandra_hosts, s.cassandra_port, s.keyspace, s.model_name,
                                      replication=s.cassandra_replication)
        connected = time.monotonic()
        ensure_log_topic(s.bootstrap_servers, s.update_topic, min_retention_ms=s.update_log_min_retention_ms)
        checked = time.monotonic()
        placement = Placement(s.model_name, s.source_topic, self.shard, shards)
        read_log = lambda lineage, since_ms: read_updates(s.bootstrap_servers, s.update_topic, lineage, since_ms)  # noqa: E731
        self.replica: ReplicaLifecycle | None = None
        self.tail: KafkaLogTail | None = None
        if shares_model(s.shared_model, shards, next(iter(store.list(limit=1)), None)):
            self.tail = KafkaLogTail(s.bootstrap_servers, s.update_topic)
            self.replica = ReplicaLifecycle(store, self.tail, placement, s.ranker, s.snapshot_every_events,
                                            s.snapshot_retain, s.close_timeout_s, read_log=read_log)
            self.lifecycle: ModelLifecycle = self.replica
        else:
            self.lifecycle = ModelLifecycle(store, read_log, placement, s.ranker, s.snapshot_every_events,
                                            s.snapshot_retain, s.close_timeout_s)
        self.ranker = self.lifecycle.open()
        restored = time.monotonic()
        # Where a restart's time goes (README "Recovery time"): the worker's age covers its
        # start, the Beam harness and this operator's imports.
        log.info("model %s/%d: opened in %.1f s (Cassandra %.1f s, log topic %.1f s, restore %.1f s);"
                 " Python worker started %s s before", s.model_name, self.shard, restored - started,
                 connected - started, checked - connected, restored - checked, _process_age_s())
        self.tally = Tally()            # this subtask's observed events, when it proposes to a shared model
        self.next_poll = 0.0            # monotonic time of the next read of the log
        self.poll_timer_at = 0          # processing time of the live poll timer (0: none)
        if s.item_metadata:
            self.ranker.titles = load_titles(s.item_metadata)
        # The job tests only the events that feed the fusion; jobs.evaluate tests every one.
        self.step = ModelStep(self.ranker, s.k, s.features, test_every_event=False, lineage=self.lifecycle.lineage)

        metrics = runtime_context.get_metrics_group().add_group("model")
        self.learned = metrics.counter("learned")
        self.skipped = metrics.counter("skipped_already_in_snapshot")
        # test-then-learn on the served lists (evaluation.py): their ratio is the hit rate
        self.tested = metrics.counter("online_tested")
        self.hits = metrics.counter("online_hits")
        for name, gauge in self.lifecycle.metrics().items():
            metrics.gauge(name, gauge)

    def process_element(self, value: Row, ctx: KeyedProcessFunction.Context) -> Iterator[tuple[OutputTag, Row] | Row]:
        s = self.settings
        event = row_to_event(value)
        window = row_to_window_features(value)
        data = self.user_state.value()
        user = UserState.restore(data) if data is not None else UserState()
        watermark = watermark_or_none(ctx.timer_service().current_watermark())
        if self.replica is not None:
            self._poll(ctx.timer_service())
            result = self.step.propose(event, user, window, watermark, self.tally)
        else:
            result = self.step.process(event, user, window, watermark)
        (self.learned if result.learned else self.skipped).inc()
        self.user_state.update(user.snapshot())
        record = {
            "user_id": event.user_id,
            "items": [recommendation_json(r) for r in result.recommendations],
            "model_version": self.ranker.learned_events,
            "snapshot_version": self.lifecycle.snapshot_version,
            "model_shard": self.shard,
            "variant": s.model_name,
            "event_id": event.event_id,
            "event_ts": event.ts,
            "emitted_ts": int(time.time() * 1000),
        }
        evaluation = record["evaluation"] = (result.evaluation or NOT_EVALUATED).as_dict()
        self.tested.inc(evaluation["tested"])
        self.hits.inc(evaluation["hit"])
        if s.emit_features:
            record["features"] = {**window.as_dict(), **result.session.as_dict(),
                                  "user_event_number": value[USER_EVENT_NUMBER]}
        yield Row(event.user_id, json.dumps(record), s.model_name, event.ts,
                  *(evaluation[name] for name, _ in EVALUATION_COLUMNS))
        if result.update is not None:
            yield UPDATE_TAG, Row(self.lifecycle.lineage, result.update.to_json())
        if self.replica is None:
            self.lifecycle.after_event()    # a replica's model changes, and is cut, only in its fold

    def _poll(self, timers: TimerService) -> None:
        """Apply the committed log when ``replica_poll_ms`` has passed since the last read, and
        keep one processing-time timer pending, so that an idle replica also follows the log and
        subtask 0 cuts the shared snapshots when its own users are quiet."""
        now = time.monotonic()
        if now >= self.next_poll:
            assert self.replica is not None
            self.replica.catch_up()
            self.next_poll = now + self.settings.replica_poll_ms / 1000
        now_ms = timers.current_processing_time()
        if self.poll_timer_at <= now_ms:
            self.poll_timer_at = now_ms + self.settings.replica_poll_ms
            timers.register_processing_time_timer(self.poll_timer_at)

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext) -> Iterator[Row]:
        """A poll timer (on whichever user's key it was set); emits nothing (a generator all the
        same: process mode iterates what on_timer returns). Timers restored from a checkpoint,
        or moved here by a rescale, may run alongside the live one: one older than the live
        timer stops its chain, so one chain remains."""
        if self.replica is not None and timestamp >= self.poll_timer_at:
            self.poll_timer_at = 0
            self._poll(ctx.timer_service())
        yield from ()

    def close(self) -> None:
        lifecycle = getattr(self, "lifecycle", None)
        if lifecycle is not None:
            lifecycle.close()
            lifecycle.store.close()
        tail = getattr(self, "tail", None)
        if tail is not None:
            tail.close()
