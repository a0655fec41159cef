"""Flink adapter of the model stage.

Two-tier state (DESIGN.md §4): each user's history, sequence and session are Flink keyed state
(checkpointed, rescalable, expired after ``user_state_ttl_ms`` idle); the shared ranker lives in
this operator's memory and is snapshotted to Cassandra every ``snapshot_every_events`` learned
events and when the operator closes (stop-with-savepoint, cancel). On open it restores the newest
complete snapshot; events that snapshot already contains (progress.py) are not learned again,
while the user's keyed state, which Flink restored together with the source offsets, takes
every event it is given.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

from pyflink.common import Row, Types
from pyflink.common.time import Time
from pyflink.datastream import KeyedProcessFunction, RuntimeContext
from pyflink.datastream.state import StateTtlConfig, ValueStateDescriptor

from operators.features.spec import FeatureConfig
from operators.model.history import UserState
from operators.model.metadata import load_titles, recommendation_json
from operators.model.online import OnlineConfig, OnlineRanker
from operators.model.progress import LearnedEvents
from operators.model.snapshot_store import SnapshotStore
from operators.model.step import ModelStep
from operators.rows import USER_EVENT_NUMBER, row_to_event, row_to_window_features, watermark_or_none

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSettings:
    cassandra_hosts: list[str]
    cassandra_port: int
    keyspace: str
    model_name: str
    source_topic: str
    k: int = 10
    snapshot_every_events: int = 5_000
    user_state_ttl_ms: int = 30 * 86_400_000     # a user idle this long (processing time) starts over
    emit_features: bool = False                  # add the event's features to each output record
    ranker: OnlineConfig = OnlineConfig()
    item_metadata: str = ""                      # titles for reasons (jobs/metadata.py formats)
    features: FeatureConfig = FeatureConfig()


class RecommendFunction(KeyedProcessFunction):
    """Keyed by user: learn from the event, then emit the user's top-k as JSON."""

    def __init__(self, settings: ModelSettings) -> None:
        self.settings = settings

    def open(self, runtime_context: RuntimeContext) -> None:
        s = self.settings
        descriptor = ValueStateDescriptor("user", Types.PICKLED_BYTE_ARRAY())
        descriptor.enable_time_to_live(StateTtlConfig.new_builder(Time.milliseconds(s.user_state_ttl_ms)).build())
        self.user_state = runtime_context.get_state(descriptor)
        metrics = runtime_context.get_metrics_group().add_group("model")
        self.learned = metrics.counter("learned")
        self.skipped = metrics.counter("skipped_already_in_snapshot")
        self.snapshot_failures = metrics.counter("snapshot_failures")
        self.snapshot_version = 0
        metrics.gauge("snapshot_version", lambda: self.snapshot_version)
        # Starting without the newest snapshot would later overwrite it with a model that
        # forgot everything, so an unreachable Cassandra fails the task (Flink retries).
        self.store = SnapshotStore.connect(s.cassandra_hosts, s.cassandra_port, s.keyspace, s.model_name)
        latest = self.store.load_latest()
        restored = None
        if latest is not None:
            try:
                restored = OnlineRanker.restore(latest[1], s.ranker)
            except (ValueError, KeyError) as exc:
                # A snapshot of an older model format (an upgrade): it stays in Cassandra as
                # history, and the new model starts empty under the next version number.
                log.warning("model %s: snapshot v%d is not usable by this model (%s); starting empty",
                            s.model_name, latest[0].version, exc)
        if latest is None or restored is None:
            self.ranker = OnlineRanker(s.ranker)
            log.info("model %s: starting empty", s.model_name)
        else:
            info = latest[0]
            self.ranker = restored
            self.snapshot_version = info.version
            if info.source != s.source_topic:
                # Offsets of another topic say nothing about this one: learn everything here.
                log.warning("model %s: snapshot v%d was taken on topic %r, not %r; its positions are ignored",
                            s.model_name, info.version, info.source, s.source_topic)
                self.ranker.progress = LearnedEvents()
            log.info("model %s: restored snapshot v%d (%d events, positions %s)",
                     s.model_name, info.version, info.learned_events, info.positions)
        if s.item_metadata:
            self.ranker.titles = load_titles(s.item_metadata)
        # The job tests only the events that feed the fusion; jobs.evaluate tests every one.
        self.step = ModelStep(self.ranker, s.k, s.features, test_every_event=False)
        self.snapshotted_events = self.ranker.learned_events
        self.next_snapshot_at = self.snapshotted_events + s.snapshot_every_events

    def process_element(self, value: Row, ctx: KeyedProcessFunction.Context) -> Iterator[Row]:
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
            "variant": s.model_name,
            "event_id": event.event_id,
            "event_ts": event.ts,
            "emitted_ts": int(time.time() * 1000),
        }
        if s.emit_features:
            record["features"] = {**window.as_dict(), **result.session.as_dict(),
                                  "user_event_number": value[USER_EVENT_NUMBER]}
        yield Row(event.user_id, json.dumps(record))
        if self.ranker.learned_events >= self.next_snapshot_at:
            self._snapshot()

    def _snapshot(self) -> None:
        try:
            info = self.store.save(self.ranker.snapshot(), self.ranker.positions, self.ranker.learned_events,
                                   self.settings.source_topic)
        except Exception:  # noqa: BLE001 - Cassandra trouble must not stop recommendations
            self.snapshot_failures.inc()
            log.exception("model %s: snapshot failed; will retry", self.settings.model_name)
            self.next_snapshot_at = self.ranker.learned_events + max(1, self.settings.snapshot_every_events // 4)
            return
        self.snapshot_version = info.version
        self.snapshotted_events = info.learned_events
        self.next_snapshot_at = info.learned_events + self.settings.snapshot_every_events
        log.info("model %s: wrote snapshot v%d (%d bytes, positions %s)", self.settings.model_name,
                 info.version, info.size, info.positions)

    def close(self) -> None:
        if getattr(self, "ranker", None) is not None and self.ranker.learned_events > self.snapshotted_events:
            self._snapshot()
        if getattr(self, "store", None) is not None:
            self.store.close()
