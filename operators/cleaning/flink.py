"""Flink adapters of the cleaning stage.

The Kafka source computes each record's event time and the per-partition watermark in the
JVM (``operators/cleaning/event_time.py``). ``CleanFunction`` (stateless, chained to the
source) validates raw Kafka rows; :func:`guard_in_jvm` keys them by user through the JVM's
``GuardFunction`` (jvm/, the same decisions as guard.py), which drops duplicates and sends
rate-limited events to dead letters (``GuardDeadLetterFunction``); :func:`split_late` hands
the SQL only the events ahead of its watermark and turns the rest into ``late`` dead letters
(``LateDeadLetterFunction``). All count every outcome per reason as Flink metrics, so that
``in == out + dlq + duplicates + heartbeats`` can be checked on a running job.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from pyflink.common import Row
from pyflink.datastream import DataStream, MapFunction, OutputTag, ProcessFunction, RuntimeContext
from pyflink.java_gateway import get_gateway
from pyflink.table import Schema, StreamTableEnvironment

from operators.cleaning.cleaner import EventCleaner, dead_letter_json
from operators.cleaning.control import ControlCleaner, ForgetUser
from operators.cleaning.event_time import late_rejection, late_sql, on_time_sql
from operators.cleaning.guard import GuardConfig
from operators.cleaning.schema import REASONS, SchemaLimits
from operators.records import Event, Heartbeat, Rejection, SourcePosition
from operators.rows import CLEAN_ROW, CONTROL_ROW, JSON_ROW, event_to_row
from operators.security import Pseudonymizer, pseudonymizer

DLQ_TAG = OutputTag("dead-letters", JSON_ROW)


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
    if hasattr(value, "toEpochMilli"):         # thread mode hands over the java.time.Instant itself
        return int(value.toEpochMilli())
    if isinstance(value, dt.datetime):
        return int(value.timestamp() * 1000)
    return int(value)


class CleanFunction(ProcessFunction):
    """Rows ``(payload BYTES, partition INT, offset BIGINT, kafka_ts TIMESTAMP_LTZ)`` in;
    events (with the original payload) out; rejections to ``DLQ_TAG``."""

    def __init__(self, source_topic: str, limits: SchemaLimits, pseudonym_key_file: str = "") -> None:
        self.source_topic, self.limits, self.pseudonym_key_file = source_topic, limits, pseudonym_key_file

    def open(self, runtime_context: RuntimeContext) -> None:
        # the key file is read here, on the TaskManager: only its path travels with the job
        self.pseudonyms = pseudonymizer(self.pseudonym_key_file)
        self.cleaner = EventCleaner(self.limits, pseudonyms=self.pseudonyms)
        group = runtime_context.get_metrics_group().add_group("cleaning")
        self.accepted = group.counter("accepted")
        self.heartbeats = group.counter("heartbeats")
        self.rejected = _ReasonCounters(group.add_group("rejected"))

    def process_element(self, value: Row, ctx: ProcessFunction.Context) -> Iterator[Any]:
        payload = bytes(value[0]) if value[0] is not None else b""
        record_ts = _epoch_ms(value[3])
        position = SourcePosition(value[1], value[2], -1 if record_ts is None else record_ts)
        try:
            result: Event | Heartbeat | Rejection = self.cleaner.clean(payload, position, record_ts)
        except Exception as exc:  # noqa: BLE001 - a bug here must cost one record, not the job
            result = _internal_error(exc, payload, position, self.pseudonyms)
        if isinstance(result, Event):
            self.accepted.inc()
            # the payload the guard's and lateness's dead letters carry (its user id pseudonymised)
            raw = payload if self.pseudonyms is None else self.pseudonyms.scrub(payload)
            yield Row(*event_to_row(result), raw.decode("utf-8"))
            return
        if isinstance(result, Heartbeat):   # it has moved the watermark in the source: done
            self.heartbeats.inc()
            return
        self.rejected.inc(result.reason)
        yield DLQ_TAG, Row(dead_letter_json(result, self.source_topic))


def _internal_error(exc: Exception, payload: bytes, position: SourcePosition,
                    pseudonyms: Pseudonymizer | None) -> Rejection:
    """A bug must cost one record, not the job: the record goes to the dead letters as it came
    (its user id pseudonymised)."""
    return Rejection("internal_error", f"{type(exc).__name__}: {exc}"[:500],
                     payload if pseudonyms is None else pseudonyms.scrub(payload), position)


class ControlFunction(ProcessFunction):
    """Control-topic rows ``(payload BYTES, partition INT, offset BIGINT, ...)`` in; forget
    requests (``CONTROL_ROW``, the user pseudonymised when pseudonyms are on) out, for the model
    operator to key by user; rejected records to ``DLQ_TAG``, naming the control topic."""

    def __init__(self, control_topic: str, limits: SchemaLimits, pseudonym_key_file: str = "") -> None:
        self.control_topic, self.limits, self.pseudonym_key_file = control_topic, limits, pseudonym_key_file

    def open(self, runtime_context: RuntimeContext) -> None:
        self.pseudonyms = pseudonymizer(self.pseudonym_key_file)
        self.cleaner = ControlCleaner(self.limits, self.pseudonyms)
        group = runtime_context.get_metrics_group().add_group("control")
        self.accepted = group.counter("accepted")
        self.rejected = _ReasonCounters(group.add_group("rejected"))

    def process_element(self, value: Row, ctx: ProcessFunction.Context) -> Iterator[Any]:
        payload = bytes(value[0]) if value[0] is not None else b""
        position = SourcePosition(value[1], value[2])
        try:
            result: ForgetUser | Rejection = self.cleaner.clean(payload, position)
        except Exception as exc:  # noqa: BLE001
            result = _internal_error(exc, payload, position, self.pseudonyms)
        if isinstance(result, ForgetUser):
            self.accepted.inc()
            yield Row(result.user_id, result.request_id)
            return
        self.rejected.inc(result.reason)
        yield DLQ_TAG, Row(dead_letter_json(result, self.control_topic))


def control_requests(t_env: StreamTableEnvironment, control_table: str, control_topic: str, limits: SchemaLimits,
                     pseudonym_key_file: str = "") -> tuple[DataStream, DataStream]:
    """The control source's valid requests (CONTROL_ROW) and its dead letters (JSON_ROW)."""
    requests = t_env.to_data_stream(t_env.from_path(control_table)) \
        .process(ControlFunction(control_topic, limits, pseudonym_key_file), output_type=CONTROL_ROW) \
        .name("control-validate").uid("control-validate")
    return requests, requests.get_side_output(DLQ_TAG)


def guard_in_jvm(valid: DataStream, source_topic: str, config: GuardConfig) -> tuple[DataStream, DataStream]:
    """Key ``valid`` (CLEAN_ROW) by user through the JVM guard; return the forwarded events
    (CLEAN_ROW) and the rejected ones as dead letters (JSON_ROW).

    The guard is the JVM's (jvm/.../GuardFunction.java), not a Python operator: a keyed Python
    operator costs a round trip to the JVM's state per event (README "Benchmarks"), and the
    job keeps one such operator, the model. Its decisions are guard.py's, event for event
    (tests/flink/test_guard.py). The streamrec JVM jar must be in the client's class loader
    (``add_jars_to_context_class_loader``) and in ``pipeline.jars``."""
    jvm = get_gateway().jvm
    guard = jvm.streamrec.flink.GuardFunction(config.dedupe_ttl_ms, config.max_dedupe_ids, config.rate_limit,
                                              config.rate_window_ms)
    j_events = valid._j_data_stream.keyBy(jvm.streamrec.flink.UserKey()) \
        .process(guard, CLEAN_ROW.get_java_type_info()).name("clean-guard").uid("clean-guard")
    rejected = DataStream(j_events.getSideOutput(jvm.streamrec.flink.GuardFunction.rejected())) \
        .map(GuardDeadLetterFunction(source_topic), output_type=JSON_ROW) \
        .name("clean-guard-dead-letters").uid("clean-guard-dead-letters")
    return DataStream(j_events), rejected


class GuardDeadLetterFunction(MapFunction):
    """Rows ``(reason, raw, partition, offset)`` the JVM guard rejected -> dead letters."""

    def __init__(self, source_topic: str) -> None:
        self.source_topic = source_topic

    def map(self, value: Row) -> Row:
        reason, raw, partition, offset = value[0], value[1], value[2], value[3]
        rejection = Rejection(reason, REASONS[reason], (raw or "").encode("utf-8"), SourcePosition(partition, offset))
        return Row(dead_letter_json(rejection, self.source_topic))


def split_late(t_env: StreamTableEnvironment, events: DataStream, name: str, source_topic: str,
               bound_ms: int) -> tuple[str, DataStream]:
    """Register ``events`` (CLEAN_ROW, carrying the source's watermarks) as the view ``name``
    with ``rowtime`` and ``global_key`` (the key of the global window counts); return the name
    of the view of its on-time events, the input of the feature SQL, and the stream of
    ``late`` dead letters (JSON_ROW).

    The judgement is ``CURRENT_WATERMARK`` in the operator that feeds the windows, so no
    operator after it can see a row at or behind its own watermark (README "Event time")."""
    table = t_env.from_data_stream(events, Schema.new_builder()
                                   .column_by_expression("rowtime", "TO_TIMESTAMP_LTZ(ts, 3)")
                                   .column_by_expression("global_key", "1")
                                   .watermark("rowtime", "SOURCE_WATERMARK()")
                                   .build())
    t_env.create_temporary_view(name, table)
    t_env.create_temporary_view(f"{name}_on_time", t_env.sql_query(on_time_sql(name)))
    late = t_env.to_data_stream(t_env.sql_query(late_sql(name))) \
        .map(LateDeadLetterFunction(source_topic, bound_ms), output_type=JSON_ROW) \
        .name("clean-late").uid("clean-late")
    return f"{name}_on_time", late


class LateDeadLetterFunction(MapFunction):
    """Rows ``(raw, partition, offset, ts, watermark)`` of late events -> ``late`` dead letters."""

    def __init__(self, source_topic: str, bound_ms: int) -> None:
        self.source_topic, self.bound_ms = source_topic, bound_ms
        self.behind_ms = 0

    def open(self, runtime_context: RuntimeContext) -> None:
        group = runtime_context.get_metrics_group().add_group("lateness")
        self.late = group.counter("late")
        group.gauge("last_behind_ms", lambda: self.behind_ms)   # how far behind the last late event was

    def map(self, value: Row) -> Row:
        raw, partition, offset, ts, watermark = value[0], value[1], value[2], value[3], _epoch_ms(value[4])
        rejection = late_rejection(ts, int(watermark or 0), self.bound_ms, (raw or "").encode("utf-8"),
                                   SourcePosition(partition, offset))
        self.late.inc()
        self.behind_ms = rejection.details["behind_ms"]
        return Row(dead_letter_json(rejection, self.source_topic))
