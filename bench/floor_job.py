"""The floor of bench/e2e.py: the job's own Kafka source and exactly-once sink with one
stateless Python map in between, nothing else. Submit like the job:

    flink run -py bench/floor_job.py [the job's flags]

The map parses the JSON and writes ``{"user_id", "event_id"}`` keyed by user: the least a
Python stage of this product must do for each event.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pyflink.common import Row  # noqa: E402
from pyflink.datastream import CheckpointingMode, StreamExecutionEnvironment  # noqa: E402
from pyflink.table import StreamTableEnvironment  # noqa: E402

from jobs.config import JobConfig  # noqa: E402
from jobs.recommend import (  # noqa: E402
    check_input_topic,
    event_time_function_ddl,
    flink_configuration,
    kafka_sink_ddl,
    kafka_source_ddl,
)
from operators.rows import KEYED_JSON_ROW  # noqa: E402


def passthrough(row: Row) -> Row:
    try:
        doc = json.loads(bytes(row[0]))
        return Row(str(doc.get("user_id", "")), json.dumps({"user_id": doc.get("user_id"),
                                                            "event_id": doc.get("event_id")}))
    except (ValueError, AttributeError):
        return Row("", "{}")


def main() -> None:
    config = JobConfig.from_args(sys.argv[1:])
    env = StreamExecutionEnvironment.get_execution_environment(flink_configuration(config))
    env.set_parallelism(config.parallelism)
    env.enable_checkpointing(config.checkpoint_interval_ms, CheckpointingMode.EXACTLY_ONCE)
    t_env = StreamTableEnvironment.create(env)
    t_env.get_config().set("table.local-time-zone", "UTC")
    t_env.execute_sql(event_time_function_ddl())
    check_input_topic(config)
    t_env.execute_sql(kafka_source_ddl(config))
    t_env.execute_sql(kafka_sink_ddl(config, "recommendations_sink", config.output_topic, True, "recs"))
    raw = t_env.to_data_stream(t_env.from_path("interactions_source"))
    out = raw.map(passthrough, output_type=KEYED_JSON_ROW).name("floor-map").uid("floor-map")
    t_env.create_statement_set().add_insert("recommendations_sink", t_env.from_data_stream(out)) \
        .attach_as_datastream()
    env.execute(config.job_name)


if __name__ == "__main__":
    main()
