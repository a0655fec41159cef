"""Flink adapter of the feature stage: runs the window-feature SQL on the cleaned event stream."""

from __future__ import annotations

from collections.abc import Iterator

from pyflink.common import Row, Types
from pyflink.datastream import KeyedProcessFunction, RuntimeContext
from pyflink.datastream.state import ValueStateDescriptor
from pyflink.table import StreamTableEnvironment, Table

from operators.features.spec import FeatureConfig
from operators.features.sql import feature_statements
from operators.features.windows import SlicedCounts


def configure_sql(t_env: StreamTableEnvironment, config: FeatureConfig) -> None:
    table_config = t_env.get_config()
    table_config.set("table.local-time-zone", "UTC")   # HOP windows align in this zone
    table_config.set("table.exec.state.ttl", f"{config.idle_state_ttl_ms} ms")


def window_features(t_env: StreamTableEnvironment, events: str, config: FeatureConfig) -> Table:
    """The view ``events`` (EVENT_COLUMNS, ``rowtime``, ``global_key``; only events ahead of the
    watermark, see operators.cleaning.flink.split_late) enriched with the window features, so
    the windows drop nothing silently."""
    *views, query = feature_statements(config, events)
    for statement in views:
        t_env.execute_sql(statement)
    return t_env.sql_query(query)


class PythonItemCountsFunction(KeyedProcessFunction):
    """Benchmark baseline only (bench/feature_cost.py, ``--stages features-python``): the item
    counts of the SQL, computed instead in a Python operator keyed by item, to measure what
    doing window features in Python would cost. It does less than the SQL (no user or global
    features, no event-time ordering), so the comparison flatters it."""

    def __init__(self, config: FeatureConfig) -> None:
        self.config = config

    def open(self, runtime_context: RuntimeContext) -> None:
        self.state = runtime_context.get_state(ValueStateDescriptor("item-counts", Types.PICKLED_BYTE_ARRAY()))

    def process_element(self, value: Row, ctx: KeyedProcessFunction.Context) -> Iterator[Row]:
        counts = self.state.value()
        if counts is None:
            counts = (SlicedCounts(*self.config.window("short")), SlicedCounts(*self.config.window("long")))
        item, ts = value[2], value[5]
        out = []
        for window in counts:
            window.add(item, ts, value[3])
            out.append(window.window(item, ts)[-1])
            window.prune(ts - self.config.long_window_ms)
        self.state.update(counts)
        yield Row(value[1], f"{value[0]},{out[0]},{out[1]}")
