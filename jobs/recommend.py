"""The streaming recommender job. Submit with:

    flink run -py jobs/recommend.py [--bootstrap-servers HOST:PORT --k 10 ...]

Kafka ``interactions`` -> clean -> window features (Flink SQL) -> model update + top-k
-> Kafka ``recommendations`` (exactly once); rejected input -> ``interactions-dlq``;
every learned event -> the model's update log ``<recommendations>-model-updates`` (exactly once);
model snapshots -> Cassandra; forget requests from ``<interactions>-control`` -> the model
(acknowledged on the metrics topic). Flags and STREAMREC_* variables are listed in jobs/config.py.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `flink run -py jobs/recommend.py` runs this file as a script
    sys.path.insert(0, str(ROOT))

from pyflink.common import Configuration, Types  # noqa: E402
from pyflink.datastream import CheckpointingMode, DataStream, StreamExecutionEnvironment  # noqa: E402
from pyflink.table import Schema, StatementSet, StreamTableEnvironment, Table  # noqa: E402
from pyflink.table.expressions import col  # noqa: E402
from pyflink.util.java_utils import add_jars_to_context_class_loader  # noqa: E402

from jobs.config import JobConfig  # noqa: E402
from jobs.kafka_io import ensure_topics, topic_partitions  # noqa: E402
from operators import warmup  # noqa: E402
from operators.cleaning.event_time import (  # noqa: E402
    EVENT_TIME_CLASS,
    EVENT_TIME_FUNCTION,
    event_time_sql,
    watermark_sql,
)
from operators.cleaning.flink import DLQ_TAG, CleanFunction, control_requests, guard_in_jvm, split_late  # noqa: E402
from operators.connections import security  # noqa: E402
from operators.features.flink import configure_sql, window_features  # noqa: E402
from operators.model.flink import ALERT_TAG, UPDATE_TAG, ModelSettings, RecommendFunction  # noqa: E402
from operators.model.metrics_sql import AB_COLUMNS, ab_query, metrics_query, metrics_sink_ddl, served_rows  # noqa: E402
from operators.model.update_log import ensure_log_topic  # noqa: E402
from operators.rows import CLEAN_ROW, RECOMMENDATION_ROW  # noqa: E402
from operators.security import pseudonymizer, snapshot_keys  # noqa: E402

METRICS_SINK = "metrics_sink"      # the metrics topic's table, when the job has a model
ALERTS_SINK = "alerts_sink"        # the same topic's health-guard alerts (raw JSON records)
AB_SINK = "ab_sink"                # the same topic's A/B z-tests, when the job has several variants
CONTROL_SOURCE = "control_source"  # the control topic (forget requests), when the job has a model


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _kafka_options(config: JobConfig, topic: str) -> str:
    """Connector, topic, brokers and the connection's security (operators/connections.py; its
    secrets read from their files here, at submission, into the job's table options)."""
    secured = "".join(f", 'properties.{name}' = {_sql_string(value)}"
                      for name, value in security(config.security_file).connector_properties().items())
    return (f"'connector' = 'kafka', 'topic' = '{topic}',"
            f" 'properties.bootstrap.servers' = '{config.bootstrap_servers}'{secured}")


def event_time_function_ddl() -> str:
    return f"CREATE TEMPORARY FUNCTION IF NOT EXISTS {EVENT_TIME_FUNCTION} AS '{EVENT_TIME_CLASS}' LANGUAGE JAVA"


def _raw_source_ddl(config: JobConfig, table: str, topic: str, time_columns: str, idle_ms: int,
                    start_ms: int = 0) -> str:
    """A table of ``topic``'s raw records with their partition, offset and append time, read
    exactly once (committed transactions only; offsets in the job's consumer group, or from
    append time ``start_ms`` on a first start), plus ``time_columns`` (event time and the
    watermark); idle after ``idle_ms`` without records (0: never)."""
    idle = f"'scan.watermark.idle-timeout' = '{idle_ms} ms'," if idle_ms > 0 else ""
    startup = (f"'scan.startup.mode' = 'timestamp', 'scan.startup.timestamp-millis' = '{start_ms}'" if start_ms > 0
               else "'scan.startup.mode' = 'group-offsets'")
    return f"""
        CREATE TEMPORARY TABLE {table} (
          payload BYTES,
          `partition` INT METADATA VIRTUAL,
          `offset` BIGINT METADATA VIRTUAL,
          kafka_ts TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL,
          {time_columns}
        ) WITH ({_kafka_options(config, topic)},
          'properties.group.id' = '{config.consumer_group}',
          'properties.isolation.level' = 'read_committed',
          'properties.auto.offset.reset' = 'earliest',
          {startup},
          {idle}
          'format' = 'raw')"""


def kafka_source_ddl(config: JobConfig, table: str = "interactions_source") -> str:
    """Raw bytes plus partition/offset/timestamp: cleaning sees every message (and uses the
    record timestamp as its clock), the model sees each event's position. Event time and the
    watermark are made here, per partition, by the JVM (operators/cleaning/event_time.py):
    only a record the cleaner accepts moves it, never past its own append time. Idleness is
    off unless ``source_idle_timeout_ms`` asks for it (JobConfig), so every source subtask
    needs a partition (``check_input_partitions``)."""
    time_columns = (f"event_time AS {event_time_sql(config.schema_limits())},\n"
                    f"          {watermark_sql('event_time', config.max_out_of_orderness_ms)}")
    return _raw_source_ddl(config, table, config.input_topic, time_columns, config.source_idle_timeout_ms,
                           config.start_from_timestamp_ms)


def control_source_ddl(config: JobConfig, table: str = CONTROL_SOURCE) -> str:
    """The control topic: raw records, read exactly once like the input. It is quiet nearly
    always, so it is idle after a second without records and never holds the model's watermark
    back; while a request is in flight its watermark is the request's append time."""
    return _raw_source_ddl(config, table, config.control_topic_name, "WATERMARK FOR kafka_ts AS kafka_ts", 1_000)


def _exactly_once_options(config: JobConfig, topic: str, tx_suffix: str) -> str:
    """A Kafka sink whose transactions commit with each checkpoint. POOLING reuses a few
    transactional ids per subtask (the default names a new one per checkpoint, which the broker
    keeps for days) and a restart lists its open transactions instead of probing ids."""
    return (f"{_kafka_options(config, topic)}, 'sink.delivery-guarantee' = 'exactly-once',"
            f" 'sink.transactional-id-prefix' = '{config.tx_prefix}-{tx_suffix}',"
            " 'sink.transaction-naming-strategy' = 'POOLING',"
            " 'properties.transaction.timeout.ms' = '600000'")


def kafka_sink_ddl(config: JobConfig, table: str, topic: str, keyed: bool, tx_suffix: str) -> str:
    """An exactly-once Kafka sink of raw strings (keyed: ``msg_key`` is the record key)."""
    key = ("'key.format' = 'raw', 'key.fields' = 'msg_key', 'value.fields-include' = 'EXCEPT_KEY',"
           if keyed else "")
    columns = "msg_key STRING, payload STRING" if keyed else "payload STRING"
    return f"""
        CREATE TEMPORARY TABLE {table} ({columns}) WITH ({_exactly_once_options(config, topic, tx_suffix)}, {key}
          'value.format' = 'raw')"""


def model_settings(config: JobConfig) -> ModelSettings:
    return ModelSettings(
        cassandra_hosts=[h.strip() for h in config.cassandra_hosts.split(",") if h.strip()],
        cassandra_port=config.cassandra_port, keyspace=config.keyspace, model_name=config.model_name,
        source_topic=config.input_topic, bootstrap_servers=config.bootstrap_servers,
        update_topic=config.update_log_topic, cassandra_replication=config.cassandra_replication,
        k=config.k, snapshot_every_events=config.snapshot_every_events, snapshot_retain=config.snapshot_retain,
        snapshot_full_every=config.snapshot_full_every, snapshot_key_file=config.snapshot_key_file,
        pseudonym_key_file=config.pseudonym_key_file, security_file=config.security_file,
        update_log_min_retention_ms=config.update_log_min_retention_ms,
        shared_model=config.shared_model, replica_poll_ms=config.replica_poll_ms,
        user_state_ttl_ms=config.user_state_ttl_ms, emit_features=bool(config.emit_features),
        ranker=config.online_config(), item_metadata=config.item_metadata, features=config.feature_config(),
        variants=tuple(config.variant_list()), variant_salt=config.variant_salt)


def validated(t_env: StreamTableEnvironment, source_table: str, config: JobConfig) -> DataStream:
    """Stage 1a: every source record parsed and checked (stateless); rejects go to its DLQ_TAG
    side output."""
    raw = t_env.to_data_stream(t_env.from_path(source_table))
    return raw.process(CleanFunction(config.input_topic, config.schema_limits(), config.pseudonym_key_file),
                       output_type=CLEAN_ROW) \
        .name("clean-validate").uid("clean-validate")


def guarded(valid: DataStream, config: JobConfig) -> tuple[DataStream, DataStream]:
    """Stage 1b: per user, drop duplicates and reject rate-limited events (in the JVM).
    Returns the surviving events and every rejected record so far (validation's too)."""
    events, rejected = guard_in_jvm(valid, config.input_topic, config.guard_config())
    return events, valid.get_side_output(DLQ_TAG).union(rejected)


def featured(t_env: StreamTableEnvironment, events: DataStream, dead_letters: DataStream,
             config: JobConfig) -> tuple[Table, DataStream]:
    """Stage 2: window features in Flink SQL (item, user and global counts as of each event's
    time); each user's events come out in event-time order. Lateness is judged once, at its
    entry: late events join the dead letters."""
    on_time, late = split_late(t_env, events, "clean_events", config.input_topic, config.max_out_of_orderness_ms)
    return window_features(t_env, on_time, config.feature_config()), dead_letters.union(late)


def build_pipeline(t_env: StreamTableEnvironment, source_table: str, recs_sink: str, dlq_sink: str,
                   config: JobConfig, updates_sink: str = "") -> StatementSet:
    """Wire clean -> features -> model between a source table and the sink tables
    (recommendations, dead letters, and the model's update log unless ``updates_sink`` is "").
    Benchmarks that cut the pipeline short compose the same stages (bench/stages_job.py)."""
    statements = t_env.create_statement_set()
    configure_sql(t_env, config.feature_config())

    # 1. cleaning: validate (stateless), then per user drop duplicates and reject late and
    #    rate-limited events; every rejected record goes to the dead-letter side outputs
    events, dead_letters = guarded(validated(t_env, source_table, config), config)

    # 2. window features in Flink SQL
    enriched, dead_letters = featured(t_env, events, dead_letters, config)

    # 3. model: learn from the event, emit the user's top-k; forget a user on request
    forget, rejected = control_requests(t_env, CONTROL_SOURCE, config.control_topic_name, config.schema_limits(),
                                        config.pseudonym_key_file)
    dead_letters = dead_letters.union(rejected)
    recs = t_env.to_data_stream(enriched).connect(forget) \
        .key_by(lambda r: r[1], lambda r: r[0], key_type=Types.STRING()) \
        .process(RecommendFunction(model_settings(config)), output_type=RECOMMENDATION_ROW) \
        .name("model-recommend").uid("model-recommend")
    if config.model_slot_group:    # downstream operators inherit it (JobConfig.model_slot_group)
        recs = recs.slot_sharing_group(config.model_slot_group)

    if updates_sink:
        # Its own chain: get_side_output adds a Python map, and in thread mode two embedded
        # Python operators chained on one task thread deadlock on the GIL when one of them
        # imports torch (pybind11 takes the thread's first Python thread state, the other's).
        updates = recs.get_side_output(UPDATE_TAG).start_new_chain()
        statements.add_insert(updates_sink, t_env.from_data_stream(updates))
        # The health guard's rollbacks (operators/model/health.py) as alert records in the
        # metrics topic, exactly once like the windows beside them.
        alerts = recs.get_side_output(ALERT_TAG).start_new_chain()
        statements.add_insert(ALERTS_SINK, t_env.from_data_stream(alerts))
    outputs = t_env.from_data_stream(recs, Schema.new_builder()
                                     .column_by_expression("rowtime", "TO_TIMESTAMP_LTZ(event_ts, 3)")
                                     .watermark("rowtime", "SOURCE_WATERMARK()").build())
    statements.add_insert(recs_sink, outputs.select(col("msg_key"), col("payload")))
    statements.add_insert(dlq_sink, t_env.from_data_stream(dead_letters))
    windows = config.metrics_windows()
    if updates_sink and windows:
        # Online evaluation: each record's test-then-learn numbers, summed per variant over
        # event-time windows in SQL (exact across restarts, all subtasks together).
        t_env.create_temporary_view("model_outputs", outputs)
        t_env.create_temporary_view("model_served", t_env.sql_query(served_rows("model_outputs")))
        statements.add_insert(METRICS_SINK, t_env.sql_query(metrics_query("model_served", windows)))
        variants = [v.name for v in config.variant_list()]
        if len(variants) > 1:       # each variant against the first, per window
            statements.add_insert(AB_SINK, t_env.sql_query(ab_query("model_served", windows, variants)))
    return statements


def default_connector_jar() -> str:
    home = Path(os.environ.get("STREAMREC_HOME", Path.home() / ".cache" / "streamrec"))
    return str(home / "artifacts" / "flink-connectors" / "flink-sql-connector-kafka-5.0.0-2.2.jar")


def default_jvm_jar() -> str:
    """The project's own JVM functions (jvm/), built by deploy/local/services fetch."""
    return str(ROOT / "jvm" / "target" / "streamrec-jvm.jar")


def python_bundle() -> Path:
    """A folder holding copies of ``operators/`` and ``jobs/``, shipped to the Python workers.

    Flink puts a shipped folder itself on the workers' PYTHONPATH, so it must *contain* the
    packages; shipping them makes the job's code win over whatever the workers' environment
    has installed (e.g. an older checkout). Its ``sitecustomize.py`` starts importing the
    model's libraries when a worker process starts (operators/warmup.py)."""
    bundle = Path(tempfile.mkdtemp(prefix="streamrec-py-"))
    atexit.register(shutil.rmtree, bundle, True)   # uploaded with the job at submission
    for package in ("operators", "jobs"):
        shutil.copytree(ROOT / package, bundle / package, ignore=shutil.ignore_patterns("__pycache__"))
    (bundle / "sitecustomize.py").write_text(warmup.SITECUSTOMIZE)
    return bundle


def flink_configuration(config: JobConfig) -> Configuration:
    conf = Configuration()
    jars = [(config.connector_jar or default_connector_jar(), "Kafka connector jar", "--connector-jar"),
            (config.jvm_jar or default_jvm_jar(), "streamrec JVM functions jar", "--jvm-jar")]
    for jar, what, flag in jars:
        if not Path(jar).is_file():
            raise SystemExit(f"{what} not found at {jar}; run deploy/local/services fetch or pass {flag}")
    uris = [Path(jar).resolve().as_uri() for jar, _, _ in jars]
    conf.set_string("pipeline.jars", ";".join(uris))
    add_jars_to_context_class_loader(uris)   # the client builds the JVM guard from the jar's classes
    python = config.python_executable or sys.executable
    conf.set_string("python.executable", python)
    conf.set_string("python.client.executable", python)
    for key, value in config.execution_settings().items():
        conf.set_string(key, value)
    conf.set_string("python.state.cache-size", str(config.python_state_cache_size))
    conf.set_string("python.fn-execution.bundle.size", str(config.bundle_size))
    conf.set_string("python.fn-execution.bundle.time", str(config.bundle_time_ms))
    return conf


def check_input_topic(config: JobConfig) -> None:
    """The input topic exists and has a partition for every source subtask (JobConfig.check_input_partitions)."""
    partitions = topic_partitions(config.bootstrap_servers, config.input_topic, security_file=config.security_file)
    if partitions is None:
        raise SystemExit(f"input topic {config.input_topic!r} not found at {config.bootstrap_servers}: "
                         "create it before submitting the job")
    try:
        config.check_input_partitions(partitions)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None


Build = Callable[[StreamTableEnvironment, str, str, str, JobConfig, str], StatementSet]


def main(argv: list[str] | None = None, build: Build = build_pipeline, with_model: bool = True) -> None:
    """Set up the environment, source and sinks, then run ``build`` between them
    (bench/stages_job.py passes a pipeline cut short, without the model)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = JobConfig.from_args(sys.argv[1:] if argv is None else argv)
    try:
        config.metrics_windows()
        config.variant_list()
        config.execution_settings()
        snapshot_keys(config.snapshot_key_file)     # a bad key file stops the submission, not a TaskManager
        pseudonymizer(config.pseudonym_key_file)
        security(config.security_file)
    except (ValueError, OSError) as exc:
        raise SystemExit(str(exc)) from None
    check_input_topic(config)

    # environment
    env = StreamExecutionEnvironment.get_execution_environment(flink_configuration(config))
    env.set_parallelism(config.parallelism)
    env.enable_checkpointing(config.checkpoint_interval_ms, CheckpointingMode.EXACTLY_ONCE)
    env.add_python_file(str(python_bundle()))
    t_env = StreamTableEnvironment.create(env)

    # source and sinks
    t_env.execute_sql(event_time_function_ddl())
    t_env.execute_sql(kafka_source_ddl(config))
    t_env.execute_sql(kafka_sink_ddl(config, "recommendations_sink", config.output_topic, True, "recs"))
    t_env.execute_sql(kafka_sink_ddl(config, "dlq_sink", config.dlq_topic, False, "dlq"))
    updates = ""
    if with_model:
        try:     # before the sink can auto-create it
            ensure_log_topic(config.bootstrap_servers, config.update_log_topic,
                             min_retention_ms=config.update_log_min_retention_ms, security_file=config.security_file)
        except RuntimeError as exc:
            raise SystemExit(str(exc)) from None
        t_env.execute_sql(kafka_sink_ddl(config, "updates_sink", config.update_log_topic, True, "updates"))
        updates = "updates_sink"
        ensure_topics(config.bootstrap_servers, [config.metrics_topic_name], security_file=config.security_file)
        # one partition per source subtask: none of them waits for idleness to start
        ensure_topics(config.bootstrap_servers, [config.control_topic_name], partitions=config.parallelism,
                      security_file=config.security_file)
        t_env.execute_sql(control_source_ddl(config))
        t_env.execute_sql(kafka_sink_ddl(config, ALERTS_SINK, config.metrics_topic_name, False, "alerts"))
        if config.metrics_windows():
            t_env.execute_sql(metrics_sink_ddl(METRICS_SINK, _exactly_once_options(config, config.metrics_topic_name,
                                                                                   "metrics")))
            if len(config.variant_list()) > 1:
                t_env.execute_sql(metrics_sink_ddl(AB_SINK, _exactly_once_options(config, config.metrics_topic_name,
                                                                                  "ab"), AB_COLUMNS))

    # transforms, then run
    build(t_env, "interactions_source", "recommendations_sink", "dlq_sink", config, updates).attach_as_datastream()
    env.execute(config.job_name)


if __name__ == "__main__":
    main()
