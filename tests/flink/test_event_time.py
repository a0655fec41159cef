"""The Kafka source's event-time function (JVM) against the Python cleaner, and the lateness
split in front of the feature SQL, on a local Flink mini-cluster (no services)."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from pyflink.common import Duration, WatermarkStrategy
from pyflink.common.watermark_strategy import TimestampAssigner
from pyflink.table import DataTypes, EnvironmentSettings, StreamTableEnvironment, TableEnvironment

from jobs.recommend import default_jvm_jar, event_time_function_ddl
from operators.cleaning import EventCleaner, SchemaLimits
from operators.cleaning.event_time import event_time_sql, late_sql
from operators.cleaning.flink import split_late
from operators.features.flink import configure_sql
from operators.features.spec import FeatureConfig
from operators.records import Event, Heartbeat
from operators.rows import CLEAN_ROW
from tests import hostile
from tests.flink import local_stream_env

pytestmark = pytest.mark.flink
INGEST_MS = hostile.T + 1_000


def test_a_record_moves_event_time_exactly_when_the_cleaner_accepts_it() -> None:
    corpus = hostile.CASES + hostile.mutations(400)
    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    env.get_config().set("pipeline.jars", f"file://{default_jvm_jar()}")
    env.get_config().set("parallelism.default", "1")
    env.get_config().set("table.local-time-zone", "UTC")
    env.execute_sql(event_time_function_ddl())
    ingest = dt.datetime.fromtimestamp(INGEST_MS / 1000, dt.UTC).replace(tzinfo=None)
    rows = [(n, bytearray(raw), ingest) for n, raw in enumerate(corpus)]
    table = env.from_elements(rows, DataTypes.ROW([DataTypes.FIELD("n", DataTypes.INT()),
                                                   DataTypes.FIELD("payload", DataTypes.BYTES()),
                                                   DataTypes.FIELD("ingest", DataTypes.TIMESTAMP(3))]))
    env.create_temporary_view("raw_records", table)
    # milliseconds since the epoch as a string: TIMESTAMP_LTZ does not travel back to Python
    query = (f"SELECT n, CAST(TIMESTAMPDIFF(SECOND, TIMESTAMP '1970-01-01 00:00:00', CAST(et AS TIMESTAMP(3))) "
             f"AS BIGINT) * 1000 + EXTRACT(MILLISECOND FROM CAST(et AS TIMESTAMP(3))) FROM (SELECT n, "
             f"{event_time_sql(SchemaLimits(), record_ts='CAST(ingest AS TIMESTAMP_LTZ(3))')} AS et "
             f"FROM raw_records)")
    with env.sql_query(query).execute().collect() as results:
        got = {n: ms for n, ms in results}
    cleaner = EventCleaner()
    differ = []
    for n, raw in enumerate(corpus):
        result = cleaner.clean(raw, now_ms=INGEST_MS)
        want = result.ts if isinstance(result, Event | Heartbeat) else 0
        if got[n] != want:
            differ.append(f"{raw[:120]!r}: JVM {got[n]}, Python {type(result).__name__} {want}")
    assert len(got) == len(corpus)
    assert sum(1 for v in got.values() if v) >= 60          # the corpus has both kinds
    assert not differ, "\n".join(differ)


class _Ts(TimestampAssigner):
    def extract_timestamp(self, value, record_timestamp):  # type: ignore[no-untyped-def]
        return int(value[5])


def test_every_event_is_either_on_time_or_late_and_late_ones_are_behind_the_watermark() -> None:
    env = local_stream_env({"pipeline.auto-watermark-interval": "1 ms"})
    t_env = StreamTableEnvironment.create(env)
    configure_sql(t_env, FeatureConfig())
    rnd = random.Random(3)
    stamps = [hostile.T + 1_000 * n - rnd.choice([0, 0, 0, 2_000, 30_000, 3_600_000]) for n in range(3_000)]
    rows = [(f"e{n}", "u", "i", "view", None, ts, 0, n, -1, "", f"raw-{n}") for n, ts in enumerate(stamps)]
    events = env.from_collection(rows, type_info=CLEAN_ROW).assign_timestamps_and_watermarks(
        WatermarkStrategy.for_bounded_out_of_orderness(Duration.of_millis(5_000))
        .with_timestamp_assigner(_Ts()))
    on_time, _late_dead_letters = split_late(t_env, events, "events", "topic", 5_000)
    query = (f"SELECT event_id, ts, CAST(NULL AS BIGINT) FROM {on_time} UNION ALL "
             f"SELECT `raw`, ts, CAST(TIMESTAMPDIFF(SECOND, TIMESTAMP '1970-01-01 00:00:00', CAST(`watermark` AS "
             f"TIMESTAMP(3))) AS BIGINT) * 1000 + EXTRACT(MILLISECOND FROM CAST(`watermark` AS TIMESTAMP(3))) "
             f"FROM ({late_sql('events')})")
    with t_env.sql_query(query).execute().collect() as results:
        out = [tuple(r) for r in results]
    kept = [e for e, _ts, wm in out if wm is None]
    late = [(e, ts, wm) for e, ts, wm in out if wm is not None]
    assert sorted(kept + [e.replace("raw-", "e") for e, _, _ in late]) == sorted(r[0] for r in rows)
    assert all(ts <= wm for _e, ts, wm in late)
    assert late        # (which ones depends on when the periodic watermark fires)
