"""The job cut short after one of its stages, for benchmarks that price each stage
(bench/cleaning_cost.py, bench/feature_cost.py, bench/feature_state.py). Submit like the job:

    flink run -py bench/stages_job.py --stages VARIANT [the job's flags ...]

Variants: ``passthrough`` copies the source to the output in the JVM only; ``validate``,
``clean`` and ``features`` stop after that stage and write the surviving events' ids (every
feature for ``features``, or the planner would prune the joins); ``features-python`` runs a
Python item counter keyed by item after cleaning, the baseline the feature SQL is measured
against. Rejected records go to the dead-letter topic as in the job. No model, no update log.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `flink run -py bench/stages_job.py` runs this file as a script
    sys.path.insert(0, str(ROOT))

from pyflink.common import Types  # noqa: E402
from pyflink.datastream import DataStream  # noqa: E402
from pyflink.table import StatementSet, StreamTableEnvironment, Table  # noqa: E402
from pyflink.table.expressions import col  # noqa: E402

from jobs.config import JobConfig  # noqa: E402
from jobs.recommend import Build, featured, guarded, main, validated  # noqa: E402
from operators.cleaning.flink import DLQ_TAG  # noqa: E402
from operators.features.flink import PythonItemCountsFunction, configure_sql  # noqa: E402
from operators.features.spec import FEATURE_COLUMNS  # noqa: E402
from operators.rows import KEYED_JSON_ROW  # noqa: E402

VARIANTS = ("passthrough", "validate", "clean", "features-python", "features")


def cut_after(variant: str) -> Build:
    """A pipeline builder (jobs.recommend.main's ``build``) that stops after ``variant``."""
    if variant not in VARIANTS:
        raise SystemExit(f"--stages must be one of {', '.join(VARIANTS)}, not {variant!r}")

    def build(t_env: StreamTableEnvironment, source_table: str, recs_sink: str, dlq_sink: str,
              config: JobConfig, _updates_sink: str = "") -> StatementSet:
        statements = t_env.create_statement_set()
        configure_sql(t_env, config.feature_config())
        if variant == "passthrough":
            statements.add_insert_sql(f"INSERT INTO {recs_sink} SELECT CAST(`offset` AS STRING), "
                                      f"CAST(payload AS STRING) FROM {source_table}")
            return statements

        def to_sinks(out: Table, dead: DataStream) -> StatementSet:
            statements.add_insert(recs_sink, out)
            statements.add_insert(dlq_sink, t_env.from_data_stream(dead))
            return statements

        def ids_of(survivors: DataStream) -> Table:
            return t_env.from_data_stream(survivors).select(col("user_id"), col("event_id"))

        valid = validated(t_env, source_table, config)
        if variant == "validate":
            return to_sinks(ids_of(valid), valid.get_side_output(DLQ_TAG))
        events, dead_letters = guarded(valid, config)
        if variant == "clean":
            return to_sinks(ids_of(events), dead_letters)
        if variant == "features-python":
            baseline = events.key_by(lambda r: r[2], key_type=Types.STRING()) \
                .process(PythonItemCountsFunction(config.feature_config()), output_type=KEYED_JSON_ROW) \
                .name("features-python-baseline").uid("features-python-baseline")
            return to_sinks(t_env.from_data_stream(baseline), dead_letters)
        enriched, dead_letters = featured(t_env, events, dead_letters, config)
        t_env.create_temporary_view("enriched_events", enriched)
        values = ", ".join(f"KEY '{c}' VALUE `{c}`" for c in ["event_id", "ts", *FEATURE_COLUMNS])
        return to_sinks(t_env.sql_query(f"SELECT user_id, JSON_OBJECT({values}) FROM enriched_events"), dead_letters)

    return build


def split_stages(argv: list[str]) -> tuple[str, list[str]]:
    """``--stages VARIANT`` and the job's own flags.

    >>> split_stages(["--k", "5", "--stages", "clean", "--job-name", "x"])
    ('clean', ['--k', '5', '--job-name', 'x'])
    """
    if "--stages" not in argv or argv.index("--stages") + 1 >= len(argv):
        raise SystemExit(f"usage: flink run -py bench/stages_job.py --stages {{{'|'.join(VARIANTS)}}} [job flags]")
    at = argv.index("--stages")
    return argv[at + 1], argv[:at] + argv[at + 2:]


if __name__ == "__main__":
    chosen, job_args = split_stages(sys.argv[1:])
    main(job_args, build=cut_after(chosen), with_model=False)
