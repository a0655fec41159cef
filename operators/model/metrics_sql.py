"""Flink SQL that turns the evaluation columns of the model's output rows (records.EVALUATION_COLUMNS,
beside each record, which carries them as its ``evaluation``) into the metrics topic: per
variant, sums and rates over event-time windows, a tumbling one and, optionally, a sliding one
(README "Online evaluation"). The windows live in Flink's state, so they are exact across
restarts and add up every model subtask's events; a window is emitted once the watermark
passes its end.

>>> print(metrics_query("recs_view", [("tumble", 60_000, 60_000)])[:62])
SELECT 'tumble' AS kind, `variant`, UNIX_TIMESTAMP(DATE_FORMAT
"""

from __future__ import annotations

from operators.cleaning.event_time import sql_interval

# The metrics topic's record, in order: evaluation.window_totals gives the same keys offline.
SINK_COLUMNS = [
    ("kind", "STRING"), ("variant", "STRING"), ("window_start", "BIGINT"), ("window_end", "BIGINT"),
    ("events", "BIGINT"), ("tested", "BIGINT"), ("hits", "BIGINT"), ("ndcg_sum", "DOUBLE"), ("rr_sum", "DOUBLE"),
    ("lists", "BIGINT"), ("diversity_sum", "DOUBLE"), ("novelty_sum", "DOUBLE"), ("lagged", "BIGINT"),
    ("model_lag_ms_sum", "BIGINT"), ("recall_at_k", "DOUBLE"), ("ndcg_at_k", "DOUBLE"), ("mrr", "DOUBLE"),
    ("diversity", "DOUBLE"), ("novelty", "DOUBLE"), ("model_lag_ms", "DOUBLE")]


def _epoch_ms(column: str) -> str:
    # window_start / window_end are TIMESTAMP(3) in the session zone, which configure_sql sets
    # to UTC; the windows are whole seconds (JobConfig.metrics_windows checks it).
    return f"UNIX_TIMESTAMP(DATE_FORMAT({column}, 'yyyy-MM-dd HH:mm:ss')) * 1000"


def _rate(num: str, den: str) -> str:
    return f"CAST(SUM({num}) AS DOUBLE) / NULLIF(SUM({den}), 0)"


def metrics_query(view: str, windows: list[tuple[str, int, int]]) -> str:
    """One SELECT per (kind, size ms, slide ms) window over ``view`` (``variant``, ``rowtime``
    and evaluation.COLUMNS), unioned."""
    selects = []
    for kind, size, slide in windows:
        table = (f"TUMBLE(TABLE {view}, DESCRIPTOR(rowtime), {sql_interval(size)})" if size == slide else
                 f"HOP(TABLE {view}, DESCRIPTOR(rowtime), {sql_interval(slide)}, {sql_interval(size)})")
        selects.append(
            f"SELECT '{kind}' AS kind, `variant`, {_epoch_ms('window_start')} AS window_start, "
            f"{_epoch_ms('window_end')} AS window_end, COUNT(*) AS events, "
            "CAST(SUM(tested) AS BIGINT) AS tested, CAST(SUM(hit) AS BIGINT) AS hits, SUM(ndcg) AS ndcg_sum, "
            "SUM(rr) AS rr_sum, CAST(SUM(listed) AS BIGINT) AS lists, SUM(diversity) AS diversity_sum, "
            "SUM(novelty) AS novelty_sum, CAST(SUM(lagged) AS BIGINT) AS lagged, "
            "CAST(SUM(model_lag_ms) AS BIGINT) AS model_lag_ms_sum, "
            f"{_rate('hit', 'tested')} AS recall_at_k, {_rate('ndcg', 'tested')} AS ndcg_at_k, "
            f"{_rate('rr', 'tested')} AS mrr, {_rate('diversity', 'listed')} AS diversity, "
            f"{_rate('novelty', 'listed')} AS novelty, {_rate('model_lag_ms', 'lagged')} AS model_lag_ms "
            f"FROM TABLE({table}) GROUP BY `variant`, window_start, window_end")
    return " UNION ALL ".join(selects)


def metrics_sink_ddl(table: str, connector_options: str) -> str:
    """The metrics topic's table: JSON records with SINK_COLUMNS (``connector_options``: the
    Kafka connector, topic, servers, delivery guarantee)."""
    columns = ", ".join(f"`{name}` {kind}" for name, kind in SINK_COLUMNS)     # VARIANT is a type name
    return f"CREATE TEMPORARY TABLE {table} ({columns}) WITH ({connector_options}, 'format' = 'json')"
