"""The feature SQL on a local Flink mini-cluster (no services): exact values on the hand-made
stream, event-time order per user, and the same numbers as the offline builder on a random
out-of-order stream."""

from __future__ import annotations

import random
import sys
from typing import Any

import pytest
from pyflink.common import Configuration, Duration, WatermarkStrategy
from pyflink.common.watermark_strategy import TimestampAssigner
from pyflink.datastream import StreamExecutionEnvironment
from pyflink.table import StreamTableEnvironment

from operators.cleaning.flink import split_late
from operators.features import FEATURE_COLUMNS, FeatureConfig, WindowFeatureBuilder
from operators.features.flink import configure_sql, window_features
from operators.records import Event, SourcePosition
from operators.rows import CLEAN_ROW, ENRICHED_FIELDS, event_to_row
from tests import feature_cases as case

pytestmark = pytest.mark.flink


class EventTime(TimestampAssigner):
    """(The job's events carry the Kafka source's timestamps and watermarks.)"""

    def extract_timestamp(self, value: Any, record_timestamp: int) -> int:
        return int(value[5])


def run_sql(events: list[Event], config: FeatureConfig, bound_ms: int) -> list[dict[str, Any]]:
    conf = Configuration()
    conf.set_string("python.executable", sys.executable)   # workers: this venv, not PATH's python
    env = StreamExecutionEnvironment.get_execution_environment(conf)
    env.set_parallelism(1)
    t_env = StreamTableEnvironment.create(env)
    configure_sql(t_env, config)
    stream = env.from_collection([(*event_to_row(e), "") for e in events], type_info=CLEAN_ROW) \
        .assign_timestamps_and_watermarks(WatermarkStrategy.for_bounded_out_of_orderness(
            Duration.of_millis(bound_ms)).with_timestamp_assigner(EventTime()))
    on_time, _late = split_late(t_env, stream, "events", "topic", bound_ms)
    with window_features(t_env, on_time, config).execute().collect() as rows:
        return [dict(zip(ENRICHED_FIELDS, row, strict=True)) for row in rows]


def test_hand_made_stream_gives_the_expected_window_features() -> None:
    out = run_sql(case.events(), case.CONFIG, case.MAX_OUT_OF_ORDERNESS_MS)
    assert [r["event_id"] for r in out] == case.MODEL_ORDER      # released in event-time order
    wrong = [w for r in out for w in case.check(r["event_id"], r, window_only=True)]
    assert not wrong, "\n".join(wrong)


def test_sql_matches_the_offline_builder_and_keeps_each_users_events_in_time_order() -> None:
    rnd = random.Random(11)
    config = FeatureConfig(short_window_ms=600_000, short_slide_ms=60_000, long_window_ms=3_600_000,
                           long_slide_ms=300_000, idle_state_ttl_ms=3_600_000)
    t, events = case.T, []
    for n in range(400):
        t += rnd.randrange(0, 40_000)
        jitter = rnd.randrange(0, 30_000)                    # out of order, within the bound
        events.append(Event(f"e{n}", f"u{rnd.randrange(12)}", f"i{rnd.randrange(25)}",
                            rnd.choice(["view", "click", "purchase", "rating"]), None, t - jitter,
                            SourcePosition(0, n)))
    out = run_sql(events, config, bound_ms=60_000)

    builder = WindowFeatureBuilder(config)
    for e in events:
        builder.add(e)
    by_id = {e.event_id: e for e in events}
    assert sorted(r["event_id"] for r in out) == sorted(by_id)
    for r in out:
        expected = builder.features(by_id[r["event_id"]]).as_dict()
        got = {c: r[c] for c in FEATURE_COLUMNS}
        assert got == pytest.approx(expected), r["event_id"]
    last_ts: dict[str, int] = {}
    for r in out:
        assert r["ts"] >= last_ts.get(r["user_id"], 0), f"{r['user_id']} out of order"
        last_ts[r["user_id"]] = r["ts"]
