"""Flink SQL that turns the evaluation columns of the model's output rows (records.EVALUATION_COLUMNS,
beside each record, which carries them as its ``evaluation``) into the metrics topic: per
variant, sums and rates over event-time windows, a tumbling one and, optionally, a sliding one
(README "Online evaluation"). The windows live in Flink's state, so they are exact across
restarts and add up every model subtask's events; a window is emitted once the watermark
passes its end.

Catalogue coverage counts the distinct items served in a window, so the query reads the
outputs unnested: each output row's ``served`` column holds ``SERVED_MARK`` and then the items
of its list (rows.RECOMMENDATION_ROW), and UNNEST makes one row per entry; the row of the mark
carries the record's evaluation, the rows of the items carry the items (and zeros).

>>> print(metrics_query("served_view", [("tumble", 60_000, 60_000)])[:62])
SELECT 'tumble' AS kind, `variant`, UNIX_TIMESTAMP(DATE_FORMAT
"""

from __future__ import annotations

from operators.cleaning.event_time import sql_interval
from operators.model.evaluation import MAXED, RATES, SUMMED
from operators.records import EVALUATION_COLUMNS

# The first entry of an output row's ``served`` column: it stands for the record itself (an
# item id is never empty: cleaning rejects it).
SERVED_MARK = ""
_SUM_TYPE = {"INT": "BIGINT", "BIGINT": "BIGINT", "DOUBLE": "DOUBLE"}
_FIELD_TYPE = dict(EVALUATION_COLUMNS)

# The metrics topic's record, in order: evaluation.window_totals gives the same keys offline.
SINK_COLUMNS = [
    ("kind", "STRING"), ("variant", "STRING"), ("window_start", "BIGINT"), ("window_end", "BIGINT"),
    ("events", "BIGINT"), *((name, _SUM_TYPE[_FIELD_TYPE[field]]) for name, field in SUMMED),
    ("items_served", "BIGINT"), *((name, "BIGINT") for name, _ in MAXED), *((rate, "DOUBLE") for rate, _, _ in RATES),
    ("coverage", "DOUBLE")]


def _epoch_ms(column: str) -> str:
    # window_start / window_end are TIMESTAMP(3) in the session zone, which configure_sql sets
    # to UTC; the windows are whole seconds (JobConfig.metrics_windows checks it).
    return f"UNIX_TIMESTAMP(DATE_FORMAT({column}, 'yyyy-MM-dd HH:mm:ss')) * 1000"


def _sum(field: str) -> str:
    return f"CAST(SUM(`{field}`) AS {_SUM_TYPE[_FIELD_TYPE[field]]})"


def served_rows(view: str) -> str:
    """``view``'s output rows (``variant``, ``rowtime``, ``served`` and
    records.EVALUATION_COLUMNS) unnested: one row per ``served`` entry, the mark's with the
    record's evaluation columns, the items' with zeros; ``record`` is 1 on the mark's row."""
    mark = f"served_item = '{SERVED_MARK}'"
    columns = ", ".join(f"CASE WHEN {mark} THEN `{name}` ELSE 0 END AS `{name}`" for name, _ in EVALUATION_COLUMNS)
    return (f"SELECT `variant`, rowtime, CASE WHEN {mark} THEN 1 ELSE 0 END AS record, "
            f"NULLIF(served_item, '{SERVED_MARK}') AS served_item, {columns} "
            f"FROM {view} CROSS JOIN UNNEST(served) AS entries(served_item)")


def metrics_query(view: str, windows: list[tuple[str, int, int]]) -> str:
    """One SELECT per (kind, size ms, slide ms) window over ``view`` (a view of ``served_rows``:
    a window function takes a named table only), unioned: the columns of SINK_COLUMNS."""
    by_field = dict(SUMMED)
    sums = ", ".join(f"{_sum(field)} AS {name}" for name, field in SUMMED)
    maxima = ", ".join(f"CAST(MAX(`{field}`) AS BIGINT) AS {name}" for name, field in MAXED)
    rates = ", ".join(f"CAST(SUM(`{by_field[num]}`) AS DOUBLE) / NULLIF(SUM(`{by_field[den]}`), 0) AS {rate}"
                      for rate, num, den in RATES)
    selects = []
    for kind, size, slide in windows:
        table = (f"TUMBLE(TABLE {view}, DESCRIPTOR(rowtime), {sql_interval(size)})" if size == slide else
                 f"HOP(TABLE {view}, DESCRIPTOR(rowtime), {sql_interval(slide)}, {sql_interval(size)})")
        selects.append(
            f"SELECT '{kind}' AS kind, `variant`, {_epoch_ms('window_start')} AS window_start, "
            f"{_epoch_ms('window_end')} AS window_end, CAST(SUM(record) AS BIGINT) AS events, {sums}, "
            f"COUNT(DISTINCT served_item) AS items_served, {maxima}, "
            f"{rates}, CAST(COUNT(DISTINCT served_item) AS DOUBLE) / NULLIF(MAX(catalogue), 0) AS coverage "
            f"FROM TABLE({table}) GROUP BY `variant`, window_start, window_end")
    return " UNION ALL ".join(selects)


def metrics_sink_ddl(table: str, connector_options: str) -> str:
    """The metrics topic's table: JSON records with SINK_COLUMNS (``connector_options``: the
    Kafka connector, topic, servers, delivery guarantee)."""
    columns = ", ".join(f"`{name}` {kind}" for name, kind in SINK_COLUMNS)     # VARIANT is a type name
    return f"CREATE TEMPORARY TABLE {table} ({columns}) WITH ({connector_options}, 'format' = 'json')"
