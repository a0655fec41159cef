"""Flink adapter of the feature stage: runs the window-feature SQL on the cleaned event stream."""

from __future__ import annotations

from pyflink.datastream import DataStream
from pyflink.table import Schema, StreamTableEnvironment, Table

from operators.features.spec import FeatureConfig
from operators.features.sql import feature_statements


def window_features(t_env: StreamTableEnvironment, events: DataStream, config: FeatureConfig,
                    name: str = "clean_events") -> Table:
    """``events`` (EVENT_ROW, with timestamps and watermarks) enriched with the window features.

    The SQL takes the stream's own watermarks (SOURCE_WATERMARK): the guard already sent every
    event at or behind them to the dead-letter topic, so the windows drop nothing silently."""
    table_config = t_env.get_config()
    table_config.set("table.local-time-zone", "UTC")   # HOP windows align in this zone
    table_config.set("table.exec.state.ttl", f"{config.idle_state_ttl_ms} ms")
    table = t_env.from_data_stream(events, Schema.new_builder()
                                   .column_by_expression("rowtime", "TO_TIMESTAMP_LTZ(ts, 3)")
                                   .column_by_expression("global_key", "1")
                                   .watermark("rowtime", "SOURCE_WATERMARK()")
                                   .build())
    t_env.create_temporary_view(name, table)
    *views, query = feature_statements(config, name)
    for statement in views:
        t_env.execute_sql(statement)
    return t_env.sql_query(query)
