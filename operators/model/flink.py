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
from dataclasses import dataclass, replace
from typing import Any

from pyflink.common import Row, Types
from pyflink.datastream import KeyedCoProcessFunction, OutputTag, RuntimeContext, TimerService
from pyflink.datastream.state import ValueStateDescriptor

from operators import warmup
from operators.cleaning.control import ForgetUser
from operators.features.spec import FeatureConfig
from operators.model.evaluation import NOT_EVALUATED
from operators.model.history import UserState
from operators.model.lifecycle import ModelLifecycle, Placement
from operators.model.metadata import load_titles, recommendation_json
from operators.model.metrics_sql import SERVED_MARK
from operators.model.online import OnlineConfig, OnlineRanker, Tally
from operators.model.replica import ReplicaLifecycle, shares_model
from operators.model.snapshot_store import DEFAULT_REPLICATION, SnapshotStore
from operators.model.step import ModelStep
from operators.model.update_log import MIN_RETENTION_MS, KafkaLogTail, ensure_log_topic, read_updates
from operators.model.user_histories import CassandraHistoryTables, UserHistories
from operators.model.variants import DEFAULT, Variant, assign, model_name
from operators.records import EVALUATION_COLUMNS
from operators.rows import KEYED_JSON_ROW, USER_EVENT_NUMBER, row_to_event, row_to_window_features, watermark_or_none
from operators.security import pseudonymizer, snapshot_keys
from operators.state_ttl import idle_state_ttl

UPDATE_TAG = OutputTag("model-updates", KEYED_JSON_ROW)
# the health guard's rollbacks and the forget acknowledgements, to the metrics topic
ALERT_TAG = OutputTag("model-alerts", Types.STRING())
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
    snapshot_full_every: int = 4                 # incremental snapshots in between (delta.py)
    snapshot_key_file: str = ""                  # key files that encrypt snapshots (security.snapshot_keys)
    pseudonym_key_file: str = ""                 # the cleaning stage's: opens the original id for the output
    security_file: str = ""                      # Kafka and Cassandra credentials and TLS (connections.py)
    update_log_min_retention_ms: int = MIN_RETENTION_MS
    shared_model: str = "auto"                   # one model for all subtasks (replica.shares_model)
    replica_poll_ms: int = 200                   # a replica applies the committed log this often
    close_timeout_s: float = 30.0                # how long close() tries to write the last snapshot
    user_state_ttl_ms: int = 30 * 86_400_000     # a user idle this long (processing time) starts over
    emit_features: bool = False                  # add the event's features to each output record
    ranker: OnlineConfig = OnlineConfig()
    item_metadata: str = ""                      # titles for reasons (jobs/metadata.py formats)
    features: FeatureConfig = FeatureConfig()
    # A/B variants (variants.py): each its own model, snapshots, lineage and metrics; users
    # assigned by a hash of their id and the salt
    variants: tuple[Variant, ...] = (Variant(DEFAULT, 1.0),)
    variant_salt: str = ""


def subtask_of(runtime_context: RuntimeContext) -> tuple[int, int]:
    """This subtask's index and the operator's parallelism. In thread mode PyFlink 2.2.1 asks
    the Java RuntimeContext for getIndexOfThisSubtask, which Flink 2 moved to getTaskInfo()
    (AttributeError); the Java context behind it answers the Flink 2 way."""
    try:
        return runtime_context.get_index_of_this_subtask(), runtime_context.get_number_of_parallel_subtasks()
    except AttributeError:
        info = runtime_context._runtime_context.getTaskInfo()
        return info.getIndexOfThisSubtask(), info.getNumberOfParallelSubtasks()


_IMPORTED = time.monotonic()      # when this task's operator was unpickled (first use in this interpreter)


def _process_age_s() -> str:
    """Seconds since this process started (Linux /proc), for the open log line; "?" elsewhere."""
    try:
        with open("/proc/self/stat") as stat, open("/proc/uptime") as uptime:
            started_ticks = int(stat.read().rsplit(")", 1)[1].split()[19])
            return f"{float(uptime.read().split()[0]) - started_ticks / os.sysconf('SC_CLK_TCK'):.1f}"
    except (OSError, ValueError, IndexError):
        return "?"


@dataclass
class VariantModel:
    """One variant's model in this subtask: its lifecycle (and, when the model is shared, its
    replica of it and the log tail it follows), ranker, step and counters."""

    variant: Variant
    lifecycle: ModelLifecycle
    replica: ReplicaLifecycle | None
    tail: KafkaLogTail | None
    step: ModelStep
    tally: Tally                 # observed events proposed to a shared model
    learned: Any
    skipped: Any
    tested: Any                  # test-then-learn on the served lists (evaluation.py):
    hits: Any                    # their ratio is the hit rate
    alerted: int = 0             # the guard's rollbacks already sent as alerts (or there at start)
    latency_ms: int = 0          # the latest output's, from its event's Kafka timestamp (a gauge)

    @property
    def ranker(self) -> OnlineRanker:
        return self.step.ranker

    def close(self) -> None:
        self.lifecycle.close()
        self.lifecycle.store.close()
        if self.tail is not None:
            self.tail.close()


class RecommendFunction(KeyedCoProcessFunction):
    """Keyed by user. Input 1, the featured events: learn from the event, then emit the user's
    top-k as JSON (rows.RECOMMENDATION_ROW: the record, then the columns the metrics SQL sums),
    from the model of the user's variant. Input 2, the control topic's forget requests
    (rows.CONTROL_ROW): erase the user's state, acknowledge on ``ALERT_TAG``."""

    def __init__(self, settings: ModelSettings) -> None:
        self.settings = settings

    def open(self, runtime_context: RuntimeContext) -> None:
        s = self.settings
        descriptor = ValueStateDescriptor("user", Types.PICKLED_BYTE_ARRAY())
        descriptor.enable_time_to_live(idle_state_ttl(s.user_state_ttl_ms))
        self.user_state = runtime_context.get_state(descriptor)
        self.shard, self.shards = subtask_of(runtime_context)
        # key files read here, on the TaskManager, once for every variant: only their paths travel
        self.pseudonyms = pseudonymizer(s.pseudonym_key_file)
        self.snapshot_keys = snapshot_keys(s.snapshot_key_file)
        self.models: dict[str, VariantModel] = {}
        group = runtime_context.get_metrics_group().add_group("model")
        started = time.monotonic()
        ensure_log_topic(s.bootstrap_servers, s.update_topic, min_retention_ms=s.update_log_min_retention_ms,
                         security_file=s.security_file)
        log.info("model %s/%d: update log topic checked in %.1f s", s.model_name, self.shard,
                 time.monotonic() - started)
        for variant in s.variants:
            # One variant: the model's metrics as before; several: each under variant=<name>.
            metrics = group if len(s.variants) == 1 else group.add_group("variant", variant.name)
            self.models[variant.name] = self._open_model(variant, metrics)
        self.histories = self._bootstrapped_histories(group)
        self.next_poll = 0.0            # monotonic time of the next read of the log
        self.poll_timer_at = 0          # processing time of the live poll timer (0: none)

    def _bootstrapped_histories(self, metrics: Any) -> UserHistories | None:
        """Users' state from a bootstrap of this model (user_histories.py), when there was one:
        read on the first sight of a user without keyed state."""
        s = self.settings
        store = next(iter(self.models.values())).lifecycle.store
        histories = UserHistories(CassandraHistoryTables(store.session, s.keyspace), s.model_name, self.snapshot_keys)
        bootstraps = histories.bootstraps()
        if not bootstraps:
            return None
        newest = bootstraps[0]
        log.info("model %s/%d: bootstrapped up to event time %d (%d users, snapshot v%d): users' histories are read "
                 "on first sight", s.model_name, self.shard, newest.until_ms, newest.users, newest.snapshot_version)
        metrics.gauge("bootstrap_histories_found", lambda: histories.found)
        metrics.gauge("bootstrap_histories_missing", lambda: histories.missing)
        metrics.gauge("bootstrap_histories_failed", lambda: histories.failed)
        return histories

    def _open_model(self, variant: Variant, metrics: Any) -> VariantModel:
        s = self.settings
        name = model_name(s.model_name, variant)
        # Starting without the newest snapshot and log would later overwrite them with a model
        # that forgot everything, so an unreachable Cassandra or Kafka fails the task here and
        # Flink retries it (with its restart strategy's back-off).
        started = time.monotonic()
        store = SnapshotStore.connect(s.cassandra_hosts, s.cassandra_port, s.keyspace, name,
                                      replication=s.cassandra_replication, keys=self.snapshot_keys,
                                      security_file=s.security_file)
        connected = time.monotonic()
        placement = Placement(name, s.source_topic, self.shard, self.shards)
        config = variant.config(s.ranker)
        read_log = lambda lineage, since_ms: read_updates(s.bootstrap_servers, s.update_topic, lineage,  # noqa: E731
                                                          since_ms, security_file=s.security_file)
        replica: ReplicaLifecycle | None = None
        tail: KafkaLogTail | None = None
        lifecycle: ModelLifecycle
        if shares_model(s.shared_model, self.shards, next(iter(store.list(limit=1)), None)):
            # The variants share the log topic; each replica applies only its own lineage.
            tail = KafkaLogTail(s.bootstrap_servers, s.update_topic, security_file=s.security_file)
            lifecycle = replica = ReplicaLifecycle(store, tail, placement, config, s.snapshot_every_events,
                                                   s.snapshot_retain, s.close_timeout_s, read_log=read_log,
                                                   full_every=s.snapshot_full_every)
        else:
            lifecycle = ModelLifecycle(store, read_log, placement, config, s.snapshot_every_events,
                                       s.snapshot_retain, s.close_timeout_s, full_every=s.snapshot_full_every)
        ranker = lifecycle.open()
        restored = time.monotonic()
        # Where a restart's time goes (README "Recovery time"). In process mode the process is
        # the Python worker, whose age covers its start, the Beam harness and the imports; in
        # thread mode it is the TaskManager's JVM, and the module's age is what says more.
        log.info("model %s/%d: opened in %.1f s (Cassandra %.1f s, restore %.1f s); process started %s s before, "
                 "this module imported %.1f s before; %s", name, self.shard, restored - started, connected - started,
                 restored - connected, _process_age_s(), started - _IMPORTED,
                 warmup.preload.summary() if warmup.preload else "no preload")
        if s.item_metadata:
            ranker.titles = load_titles(s.item_metadata)
        # The job tests only the events that feed the fusion; jobs.evaluate tests every one.
        step = ModelStep(ranker, s.k, s.features, test_every_event=False, lineage=lifecycle.lineage,
                         writer=None if replica is None else (self.shard, self.shards))
        for gauge_name, gauge in lifecycle.metrics().items():
            metrics.gauge(gauge_name, gauge)
        # Rollbacks of the restored snapshot were alerted before it was cut; those of the
        # replayed log may not have been (their output went with the failed checkpoint): they
        # are sent again (at least once; an alert is keyed by variant, lineage and version).
        restored_version = lifecycle.restored_from.learned_events if lifecycle.restored_from is not None else 0
        alerted = sum(1 for r in ranker.guard.rollbacks if r.version <= restored_version)
        model = VariantModel(variant, lifecycle, replica, tail, step, Tally(),
                             learned=metrics.counter("learned"), skipped=metrics.counter("skipped_already_in_snapshot"),
                             tested=metrics.counter("online_tested"), hits=metrics.counter("online_hits"),
                             alerted=alerted)
        metrics.gauge("latency_ms", lambda: model.latency_ms)
        return model

    def process_element1(self, value: Row, ctx: KeyedCoProcessFunction.Context,
                         ) -> Iterator[tuple[OutputTag, Row] | Row]:
        s = self.settings
        event = row_to_event(value)
        window = row_to_window_features(value)
        model = self.models[assign(event.user_id, s.variants, s.variant_salt).name]
        data = self.user_state.value()
        if data is not None:
            user = UserState.restore(data)
        else:       # first sight (or state expired): the user's history from a bootstrap, if any
            user = (self.histories.first_sight(event.user_id) if self.histories else None) or UserState()
        watermark = watermark_or_none(ctx.timer_service().current_watermark())
        if model.replica is not None:
            self._poll(ctx.timer_service())
            result = model.step.propose(event, user, window, watermark, model.tally)
        else:
            result = model.step.process(event, user, window, watermark)
        (model.learned if result.learned else model.skipped).inc()
        self.user_state.update(user.snapshot())
        variant = model.variant.name
        emitted = int(time.time() * 1000)
        # the id the event came with: the output is the one place it is readable again
        user_id = self.pseudonyms.reveal(event.reply_to) if self.pseudonyms and event.reply_to else event.user_id
        record = {
            "user_id": user_id,
            "items": [recommendation_json(r) for r in result.recommendations],
            "model_version": model.ranker.learned_events,
            "snapshot_version": model.lifecycle.snapshot_version,
            "model_shard": self.shard,
            "variant": variant,
            "event_id": event.event_id,
            "event_ts": event.ts,
            "ingest_ts": event.position.timestamp,
            "emitted_ts": emitted,
        }
        evaluated = result.evaluation or NOT_EVALUATED
        if event.position.timestamp >= 0:     # the job's latency: Kafka append (or create) time to this list
            model.latency_ms = emitted - event.position.timestamp
            evaluated = replace(evaluated, latency_ms=model.latency_ms)
        evaluation = record["evaluation"] = evaluated.as_dict()
        model.tested.inc(evaluation["tested"])
        model.hits.inc(evaluation["hit"])
        if s.emit_features:
            record["features"] = {**window.as_dict(), **result.session.as_dict(),
                                  "user_event_number": value[USER_EVENT_NUMBER]}
        yield Row(user_id, json.dumps(record), variant, event.ts,
                  [SERVED_MARK, *(r.item_id for r in result.recommendations)],
                  *(evaluation[name] for name, _ in EVALUATION_COLUMNS))
        if result.update is not None:
            yield UPDATE_TAG, Row(model.lifecycle.lineage, result.update.to_json())
        if model.replica is None:
            model.lifecycle.after_event()    # a replica's model changes, and is cut, only in its fold
        for alert in self._alerts():
            yield ALERT_TAG, alert

    def process_element2(self, value: Row, ctx: KeyedCoProcessFunction.Context) -> Iterator[tuple[OutputTag, str]]:
        """Forget the user this request is keyed by (README "Security and privacy"): their
        history, sequence and session (this operator's keyed state) go at once; the ranker holds
        no per-user rows and its snapshots no user ids, and a model of one subtask cuts a
        snapshot now, so no later start replays the user's updates (a shared model: its next
        scheduled snapshot). The acknowledgement names the request, not the user."""
        request = ForgetUser(value[0], value[1])
        had_state = self.user_state.value() is not None
        self.user_state.clear()
        if self.histories is not None:
            # Not skipped on failure: the task fails and the request comes again after restore.
            self.histories.forget(request.user_id)
        model = self.models[assign(request.user_id, self.settings.variants, self.settings.variant_salt).name]
        cut_version = model.lifecycle.cut_now()
        log.info("model %s/%d: forgot a user for request %s (state %s; snapshot cut at %s)",
                 self.settings.model_name, self.shard, request.request_id, "erased" if had_state else "none",
                 "the next scheduled cut" if cut_version is None else f"version {cut_version}")
        ack = request.acknowledgement(had_state, model.variant.name, self.shard, model.ranker.learned_events,
                                      cut_version, int(time.time() * 1000))
        yield ALERT_TAG, json.dumps(ack)

    def _alerts(self) -> Iterator[str]:
        """The health guard's new rollbacks (any variant's), as metrics-topic records. Every
        replica rolls back alike; subtask 0 speaks for a shared model."""
        for model in self.models.values():
            rollbacks = model.ranker.guard.rollbacks
            for rollback in rollbacks[model.alerted:]:
                log.warning("model %s/%d: health guard rolled the model back from version %d to the state at %d: %s",
                            model_name(self.settings.model_name, model.variant), self.shard, rollback.version,
                            rollback.to_version, rollback.reason)
                if model.replica is None or self.shard == 0:
                    yield json.dumps({"kind": "alert", "alert": "model_rollback", "variant": model.variant.name,
                                      "lineage": model.lifecycle.lineage, "model_shard": self.shard,
                                      **rollback.as_dict(), "emitted_ts": int(time.time() * 1000)})
            model.alerted = len(rollbacks)

    def _poll(self, timers: TimerService) -> None:
        """Apply the committed log when ``replica_poll_ms`` has passed since the last read, and
        keep one processing-time timer pending, so that an idle replica also follows the log and
        subtask 0 cuts the shared snapshots when its own users are quiet."""
        now = time.monotonic()
        if now >= self.next_poll:
            for model in self.models.values():
                if model.replica is not None:
                    model.replica.catch_up()
            self.next_poll = now + self.settings.replica_poll_ms / 1000
        now_ms = timers.current_processing_time()
        if self.poll_timer_at <= now_ms:
            self.poll_timer_at = now_ms + self.settings.replica_poll_ms
            timers.register_processing_time_timer(self.poll_timer_at)

    def on_timer(self, timestamp: int, ctx: KeyedCoProcessFunction.OnTimerContext) -> Iterator[tuple[OutputTag, str]]:
        """A poll timer (on whichever user's key it was set); emits only the alerts of rollbacks
        its fold made. Timers restored from a checkpoint, or moved here by a rescale, may run
        alongside the live one: one older than the live timer stops its chain, so one chain remains."""
        if timestamp >= self.poll_timer_at and any(m.replica is not None for m in self.models.values()):
            self.poll_timer_at = 0
            self._poll(ctx.timer_service())
        for alert in self._alerts():
            yield ALERT_TAG, alert

    def close(self) -> None:
        for model in getattr(self, "models", {}).values():
            model.close()
