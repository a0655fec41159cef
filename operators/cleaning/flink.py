"""Flink adapters of the cleaning stage.

``CleanFunction`` (stateless, chained to the source) validates raw Kafka rows;
``GuardFunction`` (keyed by user) drops duplicates and sends late and rate-limited events to
the dead-letter side output. Both count every outcome per reason as Flink metrics, so that
``in == out + dlq + duplicates`` can be checked on a running job.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from pyflink.common import Row, Types
from pyflink.common.time import Time
from pyflink.common.watermark_strategy import TimestampAssigner
from pyflink.datastream import KeyedProcessFunction, OutputTag, ProcessFunction, RuntimeContext
from pyflink.datastream.state import StateTtlConfig, ValueStateDescriptor

from operators.cleaning.cleaner import EventCleaner, dead_letter_json
from operators.cleaning.guard import EventGuard, GuardConfig, UserGuardState
from operators.cleaning.schema import REASONS, SchemaLimits
from operators.records import Event, Heartbeat, Rejection, SourcePosition
from operators.rows import JSON_ROW, event_to_row, row_to_event, watermark_or_none

HEARTBEAT_TYPE = "heartbeat"   # a CLEAN_ROW with this event_type is a heartbeat, not an event
DLQ_TAG = OutputTag("dead-letters", JSON_ROW)
GUARD_DLQ_TAG = OutputTag("guard-dead-letters", JSON_ROW)


class _ReasonCounters:
    def __init__(self, group: Any) -> None:
        self.group = group
        self.counters: dict[str, Any] = {}

    def inc(self, reason: str) -> None:
        counter = self.counters.get(reason)
        if counter is None:
            counter = self.counters[reason] = self.group.add_group("reason", reason).counter("count")
        counter.inc()


def _epoch_ms(value: Any) -> int | None:
    if value is None:
        return None
    if hasattr(value, "to_epoch_milli"):       # pyflink.common.time.Instant (TIMESTAMP_LTZ)
        return int(value.to_epoch_milli())
    if isinstance(value, dt.datetime):
        return int(value.timestamp() * 1000)
    return int(value)


class CleanFunction(ProcessFunction):
    """Rows ``(payload BYTES, partition INT, offset BIGINT, kafka_ts TIMESTAMP_LTZ)`` in;
    events (with the original payload) out; rejections to ``DLQ_TAG``."""

    def __init__(self, source_topic: str, limits: SchemaLimits) -> None:
        self.source_topic, self.limits = source_topic, limits

    def open(self, runtime_context: RuntimeContext) -> None:
        self.cleaner = EventCleaner(self.limits)
        group = runtime_context.get_metrics_group().add_group("cleaning")
        self.accepted = group.counter("accepted")
        self.heartbeats = group.counter("heartbeats")
        self.rejected = _ReasonCounters(group.add_group("rejected"))

    def process_element(self, value: Row, ctx: ProcessFunction.Context) -> Iterator[Any]:
        payload = bytes(value[0]) if value[0] is not None else b""
        position = SourcePosition(value[1], value[2])
        try:
            result: Event | Heartbeat | Rejection = self.cleaner.clean(payload, position, _epoch_ms(value[3]))
        except Exception as exc:  # noqa: BLE001 - a bug here must cost one record, not the job
            result = Rejection("internal_error", f"{type(exc).__name__}: {exc}"[:500], payload, position)
        if isinstance(result, Event):
            self.accepted.inc()
            yield Row(*event_to_row(result), payload.decode("utf-8"))
            return
        if isinstance(result, Heartbeat):   # on to the watermark assigner, then dropped by the guard
            self.heartbeats.inc()
            yield Row("", "", "", HEARTBEAT_TYPE, None, result.ts, position.partition, position.offset, "")
            return
        self.rejected.inc(result.reason)
        yield DLQ_TAG, Row(dead_letter_json(result, self.source_topic))


class EventTimeAssigner(TimestampAssigner):
    def extract_timestamp(self, value: Any, record_timestamp: int) -> int:
        return int(value[5])


class GuardFunction(KeyedProcessFunction):
    """Keyed by user: duplicates are counted and dropped, late and rate-limited events go to
    ``GUARD_DLQ_TAG``, the rest is forwarded without its payload."""

    def __init__(self, source_topic: str, config: GuardConfig) -> None:
        self.source_topic, self.config = source_topic, config

    def open(self, runtime_context: RuntimeContext) -> None:
        self.guard = EventGuard(self.config)
        descriptor = ValueStateDescriptor("guard", Types.PICKLED_BYTE_ARRAY())
        # A user idle (in processing time) for longer than the dedupe horizon needs no state.
        descriptor.enable_time_to_live(StateTtlConfig.new_builder(
            Time.milliseconds(max(self.config.dedupe_ttl_ms, self.config.rate_window_ms))).build())
        self.state = runtime_context.get_state(descriptor)
        group = runtime_context.get_metrics_group().add_group("guard")
        self.forwarded = group.counter("forwarded")
        self.duplicates = group.counter("duplicates")
        self.rejected = _ReasonCounters(group.add_group("rejected"))

    def process_element(self, value: Row, ctx: KeyedProcessFunction.Context) -> Iterator[Any]:
        if value[3] == HEARTBEAT_TYPE:     # it has moved the watermark; nothing else to do
            return
        data = self.state.value()
        state = UserGuardState.restore(data) if data is not None else UserGuardState()
        event = row_to_event(value)
        verdict = self.guard.check(state, event, watermark_or_none(ctx.timer_service().current_watermark()))
        self.state.update(state.snapshot())
        if verdict is None:
            self.forwarded.inc()
            yield Row(*value[:8])
        elif verdict == "duplicate":
            self.duplicates.inc()
        else:
            self.rejected.inc(verdict)
            rejection = Rejection(verdict, REASONS[verdict], value[8].encode("utf-8"), event.position)
            yield GUARD_DLQ_TAG, Row(dead_letter_json(rejection, self.source_topic))
