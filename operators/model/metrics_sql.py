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
from operators.model.evaluation import MAXED, MAXED_NAMES, RATES, SUMMED
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
    ("items_served", "BIGINT"), *((name, "BIGINT") for name in MAXED_NAMES),
    *((rate, "DOUBLE") for rate, _, _ in RATES), ("coverage", "DOUBLE")]


def _epoch_ms(column: str) -> str:
    # window_start / window_end are TIMESTAMP(3) in the session zone, which configure_sql sets
    # to UTC; the windows are whole seconds (JobConfig.metrics_windows checks it).
    return f"UNIX_TIMESTAMP(DATE_FORMAT({column}, 'yyyy-MM-dd HH:mm:ss')) * 1000"


def _sum(field: str) -> str:
    return f"CAST(SUM(`{field}`) AS {_SUM_TYPE[_FIELD_TYPE[field]]})"


def _max(field: str, flag: str | None) -> str:
    """The largest ``field`` of the rows whose ``flag`` is 1 (all rows when None: the item rows'
    zeros are no larger than a count)."""
    value = f"`{field}`" if flag is None else f"CASE WHEN `{flag}` = 1 THEN `{field}` END"
    return f"CAST(MAX({value}) AS BIGINT)"


def served_rows(view: str) -> str:
    """``view``'s output rows (``variant``, ``rowtime``, ``served`` and
    records.EVALUATION_COLUMNS) unnested: one row per ``served`` entry, the mark's with the
    record's evaluation columns, the items' with zeros; ``record`` is 1 on the mark's row."""
    mark = f"served_item = '{SERVED_MARK}'"
    columns = ", ".join(f"CASE WHEN {mark} THEN `{name}` ELSE 0 END AS `{name}`" for name, _ in EVALUATION_COLUMNS)
    return (f"SELECT `variant`, rowtime, CASE WHEN {mark} THEN 1 ELSE 0 END AS record, "
            f"NULLIF(served_item, '{SERVED_MARK}') AS served_item, {columns} "
            f"FROM {view} CROSS JOIN UNNEST(served) AS entries(served_item)")


def _window_table(view: str, size: int, slide: int) -> str:
    """The window function over ``view``: tumbling when ``slide`` is ``size``, else sliding."""
    if size == slide:
        return f"TUMBLE(TABLE {view}, DESCRIPTOR(rowtime), {sql_interval(size)})"
    return f"HOP(TABLE {view}, DESCRIPTOR(rowtime), {sql_interval(slide)}, {sql_interval(size)})"


def metrics_query(view: str, windows: list[tuple[str, int, int]]) -> str:
    """One SELECT per (kind, size ms, slide ms) window over ``view`` (a view of ``served_rows``:
    a window function takes a named table only), unioned: the columns of SINK_COLUMNS."""
    by_field = dict(SUMMED)
    sums = ", ".join(f"{_sum(field)} AS {name}" for name, field in SUMMED)
    maxima = ", ".join(f"{_max(field, flag)} AS {name}" for name, field, flag in MAXED)
    rates = ", ".join(f"CAST(SUM(`{by_field[num]}`) AS DOUBLE) / NULLIF(SUM(`{by_field[den]}`), 0) AS {rate}"
                      for rate, num, den in RATES)
    selects = []
    for kind, size, slide in windows:
        table = _window_table(view, size, slide)
        selects.append(
            f"SELECT '{kind}' AS kind, `variant`, {_epoch_ms('window_start')} AS window_start, "
            f"{_epoch_ms('window_end')} AS window_end, CAST(SUM(record) AS BIGINT) AS events, {sums}, "
            f"COUNT(DISTINCT served_item) AS items_served, {maxima}, "
            f"{rates}, CAST(COUNT(DISTINCT served_item) AS DOUBLE) / NULLIF(MAX(catalogue), 0) AS coverage "
            f"FROM TABLE({table}) GROUP BY `variant`, window_start, window_end")
    return " UNION ALL ".join(selects)


# The metrics topic's A/B records (evaluation.ab_tests gives the same offline).
AB_COLUMNS = [
    ("kind", "STRING"), ("window", "STRING"), ("window_start", "BIGINT"), ("window_end", "BIGINT"),
    ("variant", "STRING"), ("control", "STRING"), ("tested", "BIGINT"), ("hits", "BIGINT"),
    ("control_tested", "BIGINT"), ("control_hits", "BIGINT"), ("recall_at_k", "DOUBLE"),
    ("control_recall_at_k", "DOUBLE"), ("z", "DOUBLE"), ("p_value", "DOUBLE")]

# erfc(x) for x >= 0 to 1.5e-7 (Abramowitz and Stegun 7.1.26): Flink SQL has no normal
# distribution function, and the z-test's p-value is erfc(|z| / sqrt 2).
_ERFC_P = 0.3275911
_ERFC_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def _erfc(x: str) -> str:
    t = f"(1.0 / (1.0 + {_ERFC_P} * {x}))"
    poly = f"{_ERFC_A[-1]}"
    for a in reversed(_ERFC_A[:-1]):
        poly = f"({a} + {t} * {poly})"
    return f"({t} * EXP(-({x}) * ({x})) * {poly})"


def _quote(name: str) -> str:
    return "'" + name.replace("'", "''") + "'"


def _sum_of(column: str, variant: str) -> str:
    return f"CAST(SUM(CASE WHEN `variant` = {_quote(variant)} THEN `{column}` ELSE 0 END) AS BIGINT)"


def ab_query(view: str, windows: list[tuple[str, int, int]], variants: list[str]) -> str:
    """Per (kind, size ms, slide ms) window over ``view`` (a view of ``served_rows``) and per
    variant after the first (the control): the two-proportion z-test of its hit rate against
    the control's in that window, as AB_COLUMNS (z and p null where a side has no test or
    the pooled rate is 0 or 1)."""
    control, *others = variants
    selects = []
    for kind, size, slide in windows:
        table = _window_table(view, size, slide)
        for variant in others:
            counts = (f"SELECT window_start, window_end, {_sum_of('tested', variant)} AS n, "
                      f"{_sum_of('hit', variant)} AS h, {_sum_of('tested', control)} AS nc, "
                      f"{_sum_of('hit', control)} AS hc "
                      f"FROM TABLE({table}) GROUP BY window_start, window_end")
            pooled = "CAST(h + hc AS DOUBLE) / (n + nc)"
            z = (f"CASE WHEN n > 0 AND nc > 0 AND h + hc > 0 AND h + hc < n + nc THEN "
                 f"(CAST(h AS DOUBLE) / n - CAST(hc AS DOUBLE) / nc) / "
                 f"SQRT({pooled} * (1 - {pooled}) * (1.0 / n + 1.0 / nc)) END")
            tested = (f"SELECT *, CAST(h AS DOUBLE) / NULLIF(n, 0) AS r, CAST(hc AS DOUBLE) / NULLIF(nc, 0) AS rc, "
                      f"{z} AS z FROM ({counts})")
            selects.append(
                f"SELECT 'ab' AS kind, '{kind}' AS `window`, {_epoch_ms('window_start')} AS window_start, "
                f"{_epoch_ms('window_end')} AS window_end, {_quote(variant)} AS `variant`, "
                f"{_quote(control)} AS control, "
                "n AS tested, h AS hits, nc AS control_tested, hc AS control_hits, r AS recall_at_k, "
                f"rc AS control_recall_at_k, z, {_erfc('ABS(z) / SQRT(2.0)')} AS p_value FROM ({tested})")
    return " UNION ALL ".join(selects)


def metrics_sink_ddl(table: str, connector_options: str, columns_of: list[tuple[str, str]] = SINK_COLUMNS) -> str:
    """The metrics topic's table: JSON records with ``columns_of`` (SINK_COLUMNS, or AB_COLUMNS
    for the A/B records; ``connector_options``: the Kafka connector, topic, servers, delivery
    guarantee)."""
    columns = ", ".join(f"`{name}` {kind}" for name, kind in columns_of)     # VARIANT is a type name
    return f"CREATE TEMPORARY TABLE {table} ({columns}) WITH ({connector_options}, 'format' = 'json')"
