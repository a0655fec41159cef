"""The next architecture's shape, measured with this project's model (README "Benchmarks").

    python bench/udf_shape.py [--data PATH] [--events N] [--bundle N] [--history N]

On a local Flink mini-cluster (no services), MovieLens events sorted by time go through
Flink SQL that keeps each user's last ``--history`` items (``ARRAY_AGG ... OVER (PARTITION BY
user_id ORDER BY rowtime ROWS ...)``, exact JVM keyed state) into one vectorised (pandas)
Python UDF, then a blackhole sink. Three variants in one run, each timed from submission to
the end of input (job start included, so short inputs understate the rates):

- ``sql``: no Python at all (the array's size as the output);
- ``floor``: a pandas UDF that returns a constant per row (the cost of the shape itself:
  Arrow batches to Python and back);
- ``model``: a pandas UDF holding one ``OnlineRanker`` that does what the job does for each
  event, a learning batch at a time: the fusion's test on the measured events
  (``observe_many(fusion_only=True)``), ``learn``, then the top-10 with reasons
  (``recommend_many``) as JSON.

It is a measurement of a candidate design, not the job: no Kafka, no cleaning, no window
features, no snapshots or update log. The last stdout line is JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from pyflink.common import Configuration  # noqa: E402
from pyflink.table import DataTypes, EnvironmentSettings, TableEnvironment  # noqa: E402
from pyflink.table.udf import FunctionContext, ScalarFunction, udf  # noqa: E402

from bench.jobrun import DEFAULT_DATA  # noqa: E402
from jobs.replay import read_events  # noqa: E402

ARGS = [DataTypes.STRING(), DataTypes.STRING(), DataTypes.STRING(), DataTypes.DOUBLE(), DataTypes.BIGINT(),
        DataTypes.ARRAY(DataTypes.STRING())]


class ModelUdf(ScalarFunction):
    """One ranker per subtask; each call gets an Arrow batch of events in arrival order."""

    def __init__(self, history: int) -> None:
        self.history = history

    def open(self, function_context: FunctionContext) -> None:
        from operators.model.online import OnlineRanker

        self.ranker = OnlineRanker()

    def eval(self, event_id: pd.Series, user_id: pd.Series, item_id: pd.Series, rating: pd.Series,
             ts: pd.Series, recent: pd.Series) -> pd.Series:
        from operators.model.online import Interaction
        from operators.records import Event

        ranker, limit = self.ranker, self.ranker.config.history
        rows = list(zip(event_id.tolist(), user_id.tolist(), item_id.tolist(), rating.tolist(), ts.tolist(),
                        recent.tolist(), strict=True))
        out: list[str] = []
        start = 0
        while start < len(rows):
            chunk = rows[start: start + ranker.until_boundary]
            start += len(chunk)
            index = ranker.index          # unchanged within a learning batch
            tests, after, events = [], [], []
            for eid, user, item, value, t, items in chunk:
                items = list(items)       # oldest first, this event last
                before = list(dict.fromkeys(reversed(items[:-1])))[:limit][::-1]
                now = list(dict.fromkeys(reversed(items)))[:limit][::-1]
                seen_before = [index[i] for i in set(items[:-1]) if i in index]
                tests.append((before, np.array(seen_before, dtype=np.int64), item))
                seen = seen_before + ([index[item]] if item in index and item not in items[:-1] else [])
                after.append((now, np.array(seen, dtype=np.int64)))
                events.append(Interaction(Event(eid, user, item, "rating", float(value), int(t)), tuple(before)))
            tested = ranker.observe_many(tests, 10, fusion_only=True)
            ranker.learn(events, [t.hits for t in tested])
            for it, recs in zip(events, ranker.recommend_many(after, 10), strict=True):
                out.append(json.dumps({"user_id": it.event.user_id, "event_id": it.event.event_id,
                                       "items": [{"item_id": r.item_id, "reason": r.reason} for r in recs]}))
        return pd.Series(out)


def constant(event_id: pd.Series, *_: pd.Series) -> pd.Series:
    return pd.Series(['{"items":[]}'] * len(event_id))


def run(variant: str, csv: Path, events: int, bundle: int, history: int) -> dict[str, Any]:
    conf = Configuration()
    for key, value in {"python.fn-execution.bundle.size": bundle, "python.fn-execution.arrow.batch.size": bundle,
                       "python.fn-execution.bundle.time": 1000, "parallelism.default": 1,
                       "python.executable": sys.executable}.items():
        conf.set_string(key, str(value))
    t_env = TableEnvironment.create(EnvironmentSettings.new_instance().in_streaming_mode()
                                    .with_configuration(conf).build())
    t_env.get_config().set("table.local-time-zone", "UTC")
    # A mini-cluster runs the Python worker in this process (loopback): it imports operators/ from ROOT.
    t_env.execute_sql(f"""CREATE TEMPORARY TABLE src (event_id STRING, user_id STRING, item_id STRING,
        rating DOUBLE, ts BIGINT, rowtime AS TO_TIMESTAMP_LTZ(ts, 3),
        WATERMARK FOR rowtime AS rowtime - INTERVAL '5' SECOND)
        WITH ('connector' = 'filesystem', 'path' = '{csv}', 'format' = 'csv')""")
    t_env.execute_sql("CREATE TEMPORARY TABLE sink (user_id STRING, payload STRING) WITH ('connector' = 'blackhole')")
    t_env.execute_sql(f"""CREATE TEMPORARY VIEW hist AS SELECT event_id, user_id, item_id, rating, ts,
        ARRAY_AGG(item_id) OVER (PARTITION BY user_id ORDER BY rowtime
                                 ROWS BETWEEN {history - 1} PRECEDING AND CURRENT ROW) AS recent FROM src""")
    if variant == "sql":
        query = "INSERT INTO sink SELECT user_id, CAST(CARDINALITY(recent) AS STRING) FROM hist"
    else:
        fn = ModelUdf(history) if variant == "model" else constant
        t_env.create_temporary_function("f", udf(fn, input_types=ARGS, result_type=DataTypes.STRING(),
                                                 func_type="pandas"))
        query = "INSERT INTO sink SELECT user_id, f(event_id, user_id, item_id, rating, ts, recent) FROM hist"
    started = time.monotonic()
    t_env.execute_sql(query).wait()
    seconds = time.monotonic() - started
    return {"variant": variant, "events": events, "seconds": round(seconds, 1),
            "events_per_sec": round(events / seconds)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--bundle", type=int, default=1_000, help="bundle and arrow batch size")
    parser.add_argument("--history", type=int, default=100, help="items ARRAY_AGG keeps per user")
    args = parser.parse_args(argv)
    if not args.data.is_file():
        print(f"udf_shape: {args.data} not found; pass --data", file=sys.stderr)
        return 0
    events = sorted((e for e in read_events(args.data, limit=args.events) if isinstance(e, dict)),
                    key=lambda e: e["ts"])
    with tempfile.TemporaryDirectory(prefix="udf-shape-") as tmp:
        csv = Path(tmp) / "events.csv"
        csv.write_text("".join(f"{e['event_id']},{e['user_id']},{e['item_id']},{e['value'] or 0},{e['ts']}\n"
                               for e in events))
        results = []
        for variant in ("sql", "floor", "model"):
            results.append(run(variant, csv, len(events), args.bundle, args.history))
            print(f"udf_shape {variant}: {results[-1]['events_per_sec']:,} ev/s "
                  f"({results[-1]['seconds']} s, job start included)", file=sys.stderr)
    by = {r["variant"]: r["events_per_sec"] for r in results}
    print(json.dumps({"events": len(events), "bundle": args.bundle, "history": args.history, **{
        f"{v}_events_per_sec": n for v, n in by.items()}, "model_to_floor": round(by["model"] / by["floor"], 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
