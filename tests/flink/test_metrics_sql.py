"""The metrics SQL on a local Flink mini-cluster (no services): model output rows in, and the
same windows out as evaluation.window_totals makes offline, coverage and AUC included."""

from __future__ import annotations

import random
import sys
from dataclasses import replace
from typing import Any

import pytest
from pyflink.common import Configuration, Row, WatermarkStrategy
from pyflink.common.watermark_strategy import TimestampAssigner
from pyflink.datastream import StreamExecutionEnvironment
from pyflink.table import Schema, StreamTableEnvironment

from operators.features.flink import configure_sql
from operators.features.spec import FeatureConfig
from operators.model.evaluation import Evaluation, ab_tests, window_totals
from operators.model.metrics_sql import AB_COLUMNS, SERVED_MARK, SINK_COLUMNS, ab_query, metrics_query, served_rows
from operators.records import EVALUATION_COLUMNS
from operators.rows import RECOMMENDATION_ROW

pytestmark = pytest.mark.flink
MINUTE = 60_000
WINDOWS = [("tumble", 10 * MINUTE, 10 * MINUTE), ("sliding", 30 * MINUTE, 10 * MINUTE)]
INTEGERS = {name for name, kind in SINK_COLUMNS if kind == "BIGINT"}


class EventTime(TimestampAssigner):
    def extract_timestamp(self, value: Any, record_timestamp: int) -> int:
        return int(value[3])


def outputs(n: int, seed: int) -> list[tuple[str, int, dict[str, Any], list[str]]]:
    """(variant, event time, evaluation, items served) of ``n`` made-up outputs in time order."""
    rng = random.Random(seed)
    out, catalogue = [], 20
    for t in range(n):
        catalogue += rng.random() < 0.3
        served = tuple(rng.sample([f"i{j}" for j in range(catalogue)], rng.choice([0, 3, 5])))
        last = rng.choice([(), served, ("i1", "i2", "i3")])
        evaluation = Evaluation.of(last, rng.choice(["i1", "i2", "i9"]), (rng.random() if served else None,
                                                                           rng.random() * 8 if served else None),
                                   rng.choice([None, rng.randrange(0, 5000)]),
                                   rng.choice([None, None, rng.random()]), catalogue)
        evaluation = replace(evaluation, latency_ms=rng.choice([None, rng.randrange(0, 900)]))
        out.append((rng.choice(["a", "b"]), 1_700_000_000_000 + t * 7_000, evaluation.as_dict(), list(served)))
    return out


def run_sql(rows: list[tuple[str, int, dict[str, Any], list[str]]], variants: list[str] | None = None,
            ) -> list[dict[str, Any]]:
    """The metrics query's records of ``rows``, or with ``variants`` its A/B query's."""
    conf = Configuration()
    conf.set_string("python.executable", sys.executable)
    env = StreamExecutionEnvironment.get_execution_environment(conf)
    env.set_parallelism(1)
    t_env = StreamTableEnvironment.create(env)
    configure_sql(t_env, FeatureConfig())
    data = [Row("user", "{}", variant, ts, [SERVED_MARK, *items], *(e[name] for name, _ in EVALUATION_COLUMNS))
            for variant, ts, e, items in rows]
    stream = env.from_collection(data, type_info=RECOMMENDATION_ROW).assign_timestamps_and_watermarks(
        WatermarkStrategy.for_monotonous_timestamps().with_timestamp_assigner(EventTime()))
    table = t_env.from_data_stream(stream, Schema.new_builder()
                                   .column_by_expression("rowtime", "TO_TIMESTAMP_LTZ(event_ts, 3)")
                                   .watermark("rowtime", "SOURCE_WATERMARK()").build())
    t_env.create_temporary_view("model_outputs", table)
    t_env.create_temporary_view("model_served", t_env.sql_query(served_rows("model_outputs")))
    query, columns = ((metrics_query("model_served", WINDOWS), SINK_COLUMNS) if variants is None else
                      (ab_query("model_served", WINDOWS, variants), AB_COLUMNS))
    with t_env.sql_query(query).execute().collect() as result:
        return [dict(zip((name for name, _ in columns), row, strict=True)) for row in result]


def test_the_metrics_sql_makes_the_offline_windows() -> None:
    rows = outputs(1200, seed=7)
    got = {(w["kind"], w["variant"], w["window_start"]): w for w in run_sql(rows)}
    want = {(w["kind"], w["variant"], w["window_start"]): w
            for kind, size, slide in WINDOWS for w in window_totals(rows, size, slide, kind)}
    assert sorted(got) == sorted(want)
    for key, expected in want.items():
        for name, value in expected.items():
            if name in INTEGERS or value is None or isinstance(value, str):
                assert got[key][name] == value, (key, name)
            else:
                assert got[key][name] == pytest.approx(value, rel=1e-9, abs=1e-12), (key, name)
    # a real measurement: windows with AUCs, several items served, coverage below 1, latencies
    assert all(0 < w["ranked"] < w["events"] and 0 < w["coverage"] < 1 and 0 < w["timed"] < w["events"]
               and w["latency_ms"] < w["latency_ms_max"] for w in got.values() if w["events"] > 30)


def test_the_ab_sql_makes_the_offline_z_tests() -> None:
    """Three variants, the first the control."""
    rows = [(["a", "b", "c"][n % 3] if n % 50 else "a", ts, e, items)
            for n, (_, ts, e, items) in enumerate(outputs(900, seed=8))]
    got = {(w["window"], w["variant"], w["window_start"]): w for w in run_sql(rows, ["a", "b", "c"])}
    windows = [w for kind, size, slide in WINDOWS for w in window_totals(rows, size, slide, kind)]
    want = {(w["window"], w["variant"], w["window_start"]): w for w in ab_tests(windows, ["a", "b", "c"])}
    assert sorted(got) == sorted(want)
    for key, expected in want.items():
        assert set(got[key]) == set(expected)
        for name, value in expected.items():
            if value is None or isinstance(value, str | int):
                assert got[key][name] == value, (key, name)
            else:    # the SQL's erfc is Abramowitz and Stegun's, to 1.5e-7
                assert got[key][name] == pytest.approx(value, rel=1e-9, abs=2e-7 if name == "p_value" else 1e-12)
    assert sum(w["z"] is not None for w in got.values()) > len(got) // 2
