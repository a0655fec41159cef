"""Flink adapter of the feature stage: per-item sliding-window counts in keyed state."""

from __future__ import annotations

from collections.abc import Iterator

from pyflink.common import Row, Types
from pyflink.common.time import Time
from pyflink.datastream import KeyedProcessFunction, RuntimeContext
from pyflink.datastream.state import StateTtlConfig, ValueStateDescriptor

from operators.features.window import SlidingWindowCounter


class ItemWindowFunction(KeyedProcessFunction):
    """Keyed by item; appends ``item_window_count`` as of the event's own timestamp."""

    def __init__(self, window_ms: int, slide_ms: int) -> None:
        self.window_ms, self.slide_ms = window_ms, slide_ms

    def open(self, runtime_context: RuntimeContext) -> None:
        descriptor = ValueStateDescriptor("item-window", Types.PICKLED_BYTE_ARRAY())
        # An item idle for a whole window (in processing time, 1 day at least) holds no count.
        ttl = StateTtlConfig.new_builder(Time.milliseconds(max(self.window_ms, 86_400_000))).build()
        descriptor.enable_time_to_live(ttl)
        self.state = runtime_context.get_state(descriptor)

    def process_element(self, value: Row, ctx: KeyedProcessFunction.Context) -> Iterator[Row]:
        data = self.state.value()
        counter = (SlidingWindowCounter.restore(data, self.window_ms, self.slide_ms) if data is not None
                   else SlidingWindowCounter(self.window_ms, self.slide_ms))
        count = counter.observe(value[5])
        self.state.update(counter.snapshot())
        yield Row(*value, count)
