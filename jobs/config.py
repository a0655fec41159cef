"""Job configuration: flags override environment variables, which override defaults.

Defaults match deploy/local (Kafka on 127.0.0.1:9092, Cassandra on 127.0.0.1:9042).
Every field ``name`` can be set by ``--name VALUE`` or by ``STREAMREC_NAME``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from dataclasses import dataclass, fields

from operators.cleaning.guard import GuardConfig
from operators.cleaning.schema import SchemaLimits
from operators.features.spec import FeatureConfig
from operators.model.online import OnlineConfig
from operators.model.snapshot_store import DEFAULT_REPLICATION
from operators.model.variants import Variant, parse_variants

_KINDS: dict[object, type] = {"int": int, int: int, "float": float, float: float}
# how long a checkpoint stays aligned before it turns unaligned, by default at parallelism 1
# (JobConfig.aligned_checkpoint_timeout_ms; the value measured in README "Recovery time")
UNALIGNED_AFTER_MS = 500


@dataclass(frozen=True)
class JobConfig:
    bootstrap_servers: str = "127.0.0.1:9092"
    input_topic: str = "interactions"
    dlq_topic: str = "interactions-dlq"
    output_topic: str = "recommendations"
    update_topic: str = ""                # the model's update log; default: <output topic>-model-updates
    # requests to the job, e.g. {"forget_user": ..., "request_id": ...} (cleaning/control.py);
    # default: <input topic>-control. Acknowledgements go to the metrics topic.
    control_topic: str = ""
    consumer_group: str = "streamrec"
    # > 0: a first start (no checkpoint, no savepoint) reads the input from the records appended
    # at or after this time (epoch ms) instead of the consumer group's offsets; e.g. after a
    # bootstrap (jobs.bootstrap). A restore from a checkpoint or savepoint keeps its offsets.
    start_from_timestamp_ms: int = 0
    cassandra_hosts: str = "127.0.0.1"
    cassandra_port: int = 9042
    keyspace: str = "streamrec"
    cassandra_replication: str = DEFAULT_REPLICATION   # for a new keyspace
    model_name: str = "default"
    k: int = 10
    # cleaning: defaults and meaning in operators/cleaning/schema.py and guard.py
    max_message_bytes: int = SchemaLimits.max_message_bytes
    max_depth: int = SchemaLimits.max_depth
    max_id_length: int = SchemaLimits.max_id_length
    min_ts_ms: int = SchemaLimits.min_ts_ms
    max_future_skew_ms: int = SchemaLimits.max_future_skew_ms
    dedupe_ttl_ms: int = GuardConfig.dedupe_ttl_ms
    max_dedupe_ids: int = GuardConfig.max_dedupe_ids
    rate_limit: int = GuardConfig.rate_limit
    rate_window_ms: int = GuardConfig.rate_window_ms
    max_out_of_orderness_ms: int = GuardConfig.max_out_of_orderness_ms
    # 0 (off): event time moves only by records and heartbeats (README "Event time"). With a
    # timeout, a partition without records this long (processing time) stops holding the
    # watermark back, but the source can then turn idle while its last records are still on
    # their way through the job, and a feature join may hold them for good (measured: README).
    source_idle_timeout_ms: int = 0
    # model: defaults and meaning in operators/model/online.py
    model_seed: int = OnlineConfig.seed
    model_history: int = OnlineConfig.history
    mmr_lambda: float = OnlineConfig.mmr_lambda
    model_learn_every: int = OnlineConfig.learn_every   # events per learning batch (README "The model")
    item_metadata: str = ""               # titles for explanations: u.item, movies.csv or JSON lines
    # The model's health guard (operators/model/health.py): a check every model_guard_every
    # learned events (-1: every snapshot_every_events, so every snapshot holds a checked model
    # and no second copy; 0: off) rolls the model back to the last good check on a NaN/Inf or
    # when the served-list hit rate of the last short window falls below ratio x the long one's.
    model_guard_every: int = -1
    model_guard_short_ms: int = 3_600_000
    model_guard_long_ms: int = 86_400_000
    model_guard_ratio: float = 0.7
    model_guard_min_tests: int = 200
    # A/B variants (operators/model/variants.py): 'control=0.5,treatment=0.5:{"mmr_lambda": 0.7}'
    # or @FILE; each its own model, snapshots and metrics; users assigned by hash(salt, user id)
    variants: str = ""
    variant_salt: str = ""
    # features: defaults and meaning in operators/features/spec.py
    short_window_ms: int = FeatureConfig.short_window_ms
    short_slide_ms: int = FeatureConfig.short_slide_ms
    long_window_ms: int = FeatureConfig.long_window_ms
    long_slide_ms: int = FeatureConfig.long_slide_ms
    session_gap_ms: int = FeatureConfig.session_gap_ms
    sequence_length: int = FeatureConfig.sequence_length
    idle_state_ttl_ms: int = FeatureConfig.idle_state_ttl_ms
    user_state_ttl_ms: int = 30 * 86_400_000
    emit_features: int = 0                 # 1: each recommendation record carries the event's features
    # online evaluation (operators/model/evaluation.py): the metrics topic (default
    # <output topic>-metrics) gets, per variant, a tumbling window of metrics_window_ms (0: no
    # metrics topic) and a sliding one of metrics_sliding_ms every metrics_slide_ms (0: none)
    metrics_topic: str = ""
    metrics_window_ms: int = 60_000
    metrics_sliding_ms: int = 3_600_000
    metrics_slide_ms: int = 300_000
    checkpoint_interval_ms: int = 10_000
    # Above 0, a checkpoint starts aligned and turns unaligned after this long: after a restart
    # its barrier then overtakes the backlog queued before the model instead of waiting behind
    # it, so output (committed per checkpoint) flows sooner (README "Recovery time"). 0: always
    # aligned. -1, the default: UNALIGNED_AFTER_MS at parallelism 1, aligned above it. A replica
    # judges a replayed event by the watermark of the subtask it reaches, which never passes an
    # event still queued on that subtask's own channels (operators/model/progress.py), so a
    # restore at the same parallelism is exact either way; a *rescale* from a retained unaligned
    # checkpoint is exact only when one subtask wrote the model (parallelism 1), since its
    # channel state then reaches subtasks judged by the newest old watermark.
    aligned_checkpoint_timeout_ms: int = -1
    snapshot_every_events: int = 5_000
    snapshot_retain: int = 5              # complete snapshots kept per model subtask
    # a full snapshot at least every this many; those between hold only the rows changed since
    # (delta.py; 1: every snapshot whole)
    snapshot_full_every: int = 4
    # Snapshot chunks encrypted at rest with AES-256-GCM (operators/security.py): key files of 32
    # random bytes, comma-separated; the first encrypts, all decrypt (rotation: new key first).
    # Only the paths travel with the job; each TaskManager reads the files. "": plaintext.
    snapshot_key_file: str = ""
    # Pseudonymous user ids (operators/security.py): a key file of 32 random bytes. Right after
    # cleaning, user ids become keyed HMAC-SHA256 pseudonyms, so keyed state, snapshots, the update
    # log, metrics and dead letters never hold the original; the output record carries it. "": off.
    pseudonym_key_file: str = ""
    # Credentials and TLS for Kafka and Cassandra (operators/connections.py): a JSON file naming
    # secret files; one set of settings for the SQL connector, confluent-kafka and the Cassandra
    # driver. Only the path travels with the job. "": plaintext, no credentials.
    security_file: str = ""
    # The update-log topic must keep updates this long (update_log.MIN_RETENTION_MS): more than the
    # longest time between snapshots plus the longest outage a restart should recover from.
    update_log_min_retention_ms: int = 24 * 3_600_000
    parallelism: int = 1
    # One model across subtasks (operators/model/replica.py): "auto" shares one model through the
    # update log when the parallelism is above 1 or the newest snapshot is already shared (a
    # single subtask otherwise learns in place, without the log's lag); "on" / "off" force it.
    shared_model: str = "auto"
    replica_poll_ms: int = 200            # how often a replica applies what the update log committed
    transactional_id_prefix: str = ""     # default: derived from the output topic
    connector_jar: str = ""               # default: the jar deploy/local/services fetched
    jvm_jar: str = ""                     # default: jvm/target/streamrec-jvm.jar (services fetch builds it)
    python_executable: str = ""           # default: the interpreter running the job
    # "process": a Beam worker process per slot; "thread": Python embedded in the TaskManager
    # (pemja). Thread mode recovers faster (no worker process, harness or gRPC channels to start:
    # README "Recovery time") but crashed the TaskManager JVM in the integration suite (SIGSEGV in
    # take_gil: Flink's metric query thread read a Python gauge of a cancelled task), so it is
    # not the default. It loads the job's Python modules once per TaskManager.
    python_execution_mode: str = "process"
    # The model operator and what follows it (its sinks, the metrics windows) in their own slot
    # sharing group: a job takes two slots per parallel instance, and the model its own Python
    # worker. With slots spread over the TaskManagers (taskmanager.load-balance.mode: SLOTS) every
    # TaskManager runs part of the job, so a lost one's tasks restart on a warm JVM, not on a cold
    # stand-by (README "Recovery time"). "": one group for the whole job.
    model_slot_group: str = "model"
    # Python bundles: small bundles keep every stage of the Python chain busy and the latency
    # low. bench/e2e.py, 20k ml-100k events (bench/RESULTS.md): 1,000 / 100 ms 465-482 ev/s
    # whole run; 10,000 / 500 ms 505; 100,000 / 1 s 222 (everything in one late burst). The
    # model step, not the bundles, is what limits the rate. A bundle that does not fill waits
    # its time at each Python hop: at 1,000 ev/s live, 20 ms instead of 100 took the steady
    # p50 from 2.0 to 1.4 s (README "Benchmarks"); unthrottled, 20k events, 1,159 against
    # 1,236 ev/s (one run each: within noise).
    python_state_cache_size: int = 1000    # keys whose state the Python worker caches
    bundle_size: int = 1000
    bundle_time_ms: int = 20
    job_name: str = "streamrec-recommend"

    @property
    def update_log_topic(self) -> str:
        return self.update_topic or f"{self.output_topic}-model-updates"

    @property
    def control_topic_name(self) -> str:
        return self.control_topic or f"{self.input_topic}-control"

    @property
    def metrics_topic_name(self) -> str:
        return self.metrics_topic or f"{self.output_topic}-metrics"

    def metrics_windows(self) -> list[tuple[str, int, int]]:
        """(kind, size ms, slide ms) of each metrics window; whole seconds, the slide dividing
        the size.

        >>> JobConfig().metrics_windows()
        [('tumble', 60000, 60000), ('sliding', 3600000, 300000)]
        >>> JobConfig(metrics_window_ms=0).metrics_windows(), JobConfig(metrics_slide_ms=0).metrics_windows()
        ([], [('tumble', 60000, 60000)])
        >>> JobConfig(metrics_sliding_ms=1000, metrics_slide_ms=300).metrics_windows()
        Traceback (most recent call last):
        ...
        ValueError: metrics windows must be whole seconds, the slide dividing the size: 1000 ms every 300 ms
        """
        if self.metrics_window_ms <= 0:
            return []
        windows = [("tumble", self.metrics_window_ms, self.metrics_window_ms)]
        if self.metrics_slide_ms > 0:
            windows.append(("sliding", self.metrics_sliding_ms, self.metrics_slide_ms))
        for _, size, slide in windows:
            if size % 1000 or slide % 1000 or size % slide:
                raise ValueError(f"metrics windows must be whole seconds, the slide dividing the size: "
                                 f"{size} ms every {slide} ms")
        return windows

    def execution_settings(self) -> dict[str, str]:
        """Flink settings for how the Python operators run and how checkpoints align.

        >>> def checkpoints(**kw: int) -> list[str]:
        ...     settings = JobConfig(**kw).execution_settings()
        ...     return sorted(v for k, v in settings.items() if k.startswith("execution.checkpointing"))
        >>> checkpoints(), checkpoints(parallelism=2)
        (['500 ms', 'true'], ['0 ms', 'false'])
        >>> checkpoints(parallelism=2, aligned_checkpoint_timeout_ms=200), checkpoints(aligned_checkpoint_timeout_ms=0)
        (['200 ms', 'true'], ['0 ms', 'false'])
        >>> JobConfig(python_execution_mode="threads").execution_settings()  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: --python-execution-mode must be 'thread' or 'process', got 'threads'
        """
        if self.python_execution_mode not in ("thread", "process"):
            raise ValueError(f"--python-execution-mode must be 'thread' or 'process', "
                             f"got {self.python_execution_mode!r}")
        timeout = self.aligned_checkpoint_timeout_ms
        if timeout < -1:
            raise ValueError(f"--aligned-checkpoint-timeout-ms must be -1 (unaligned after {UNALIGNED_AFTER_MS} ms "
                             f"at parallelism 1, else aligned), 0 (always aligned) or more, got {timeout}")
        if timeout == -1:
            timeout = UNALIGNED_AFTER_MS if self.parallelism == 1 else 0
        return {"python.execution-mode": self.python_execution_mode,
                "execution.checkpointing.unaligned.enabled": "true" if timeout > 0 else "false",
                "execution.checkpointing.aligned-checkpoint-timeout": f"{timeout} ms"}

    @property
    def tx_prefix(self) -> str:
        return self.transactional_id_prefix or f"streamrec-{self.output_topic}"

    def check_input_partitions(self, partitions: int) -> None:
        """Refuse a job with more source subtasks than its input topic has partitions, unless
        idleness is on: a source subtask without a partition carries no event time and, with
        no idle timeout, would hold every watermark back for good.

        >>> JobConfig(parallelism=2).check_input_partitions(2)
        >>> JobConfig(parallelism=4).check_input_partitions(2)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: --parallelism 4 exceeds the 2 partitions of the input topic 'interactions': ...
        >>> JobConfig(parallelism=4, source_idle_timeout_ms=10_000).check_input_partitions(2)
        """
        if self.parallelism > partitions and self.source_idle_timeout_ms <= 0:
            raise ValueError(f"--parallelism {self.parallelism} exceeds the {partitions} partitions of the input topic "
                             f"{self.input_topic!r}: a source subtask without a partition would hold event time "
                             "back; add partitions or lower --parallelism")

    def schema_limits(self) -> SchemaLimits:
        return SchemaLimits(**{f.name: getattr(self, f.name) for f in fields(SchemaLimits)})

    def online_config(self) -> OnlineConfig:
        if self.model_learn_every < 1:
            raise ValueError(f"--model-learn-every must be at least 1, got {self.model_learn_every}")
        every = self.snapshot_every_events if self.model_guard_every < 0 else self.model_guard_every
        return OnlineConfig(seed=self.model_seed, history=self.model_history, mmr_lambda=self.mmr_lambda,
                            learn_every=self.model_learn_every, guard_every=every,
                            guard_short_ms=self.model_guard_short_ms, guard_long_ms=self.model_guard_long_ms,
                            guard_ratio=self.model_guard_ratio, guard_min_tests=self.model_guard_min_tests)

    def variant_list(self) -> list[Variant]:
        return parse_variants(self.variants)

    def feature_config(self) -> FeatureConfig:
        return FeatureConfig(**{f.name: getattr(self, f.name) for f in fields(FeatureConfig)})

    def guard_config(self) -> GuardConfig:
        return GuardConfig(**{f.name: getattr(self, f.name) for f in fields(GuardConfig)})

    @classmethod
    def from_args(cls, argv: list[str] | None = None, env: dict[str, str] | None = None) -> JobConfig:
        env = dict(os.environ) if env is None else env
        parser = argparse.ArgumentParser(description="Streaming recommender job")
        for f in fields(cls):
            kind = _KINDS.get(f.type, str)
            parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=kind, default=None)
        args, _unknown = parser.parse_known_args(argv)
        values: dict[str, object] = {}
        for f in fields(cls):
            flag = getattr(args, f.name)
            from_env = env.get(f"STREAMREC_{f.name.upper()}")
            if flag is not None:
                values[f.name] = flag
            elif from_env is not None:
                values[f.name] = _KINDS.get(f.type, str)(from_env)
        return dataclasses.replace(cls(), **values)  # type: ignore[arg-type]
