"""Flink adapter of the cleaning stage: raw Kafka rows in, events out, rejections to a side output."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pyflink.common import Row
from pyflink.datastream import OutputTag, ProcessFunction, RuntimeContext

from operators.cleaning.cleaner import EventCleaner, dead_letter_json
from operators.records import Event, SourcePosition
from operators.rows import JSON_ROW, event_to_row

DLQ_TAG = OutputTag("dead-letters", JSON_ROW)


class CleanFunction(ProcessFunction):
    """Input rows are ``(payload BYTES, partition INT, offset BIGINT)`` from the Kafka table."""

    def __init__(self, source_topic: str, max_id_length: int = 256) -> None:
        self.source_topic = source_topic
        self.max_id_length = max_id_length

    def open(self, runtime_context: RuntimeContext) -> None:
        self.cleaner = EventCleaner(self.max_id_length)
        self.metrics = runtime_context.get_metrics_group().add_group("cleaning")
        self.accepted = self.metrics.counter("accepted")
        self.rejected: dict[str, Any] = {}

    def process_element(self, value: Row, ctx: ProcessFunction.Context) -> Iterator[Any]:
        payload = bytes(value[0]) if value[0] is not None else b""
        result = self.cleaner.clean(payload, SourcePosition(value[1], value[2]))
        if isinstance(result, Event):
            self.accepted.inc()
            yield event_to_row(result)
            return
        counter = self.rejected.get(result.reason)
        if counter is None:
            counter = self.rejected[result.reason] = self.metrics.add_group("rejected", result.reason) \
                .counter("count")
        counter.inc()
        yield DLQ_TAG, Row(dead_letter_json(result, self.source_topic))
