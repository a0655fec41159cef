"""Freshness of the shared model (operators/model/replica.py): how long after an event arrives
its update shapes the lists of every model subtask.

    python -m bench.freshness [--events N] [--rate R] [--parallelism P] [--job-args "..."] [--json]

Needs the local services (deploy/local/services up). Submits the job at ``--parallelism``
(default 2, so the model is shared) on fresh topics (input with P partitions, output with
LogAppendTime), writes N events of ml-100k at R events/s with live times (each event stamped
with the clock, heartbeats every 200 ms), reads every output record and the update log, then
cancels. The update log's order numbers the model's versions: the n-th update of the shared
lineage makes version n. For each update and each subtask, the freshness is the time from
the event's input append to the first output of that subtask served at version n or later
(its replica had applied the update). Reported per "own" (the subtask that proposed the
event) and "other" subtasks, as p50/p90/p99/max over every update some later output shows,
with the count of updates none showed (the run ended first). Prints one JSON line last;
writes a row in bench/RESULTS.md ("Other benchmarks").
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tqdm import tqdm  # noqa: E402

from bench.e2e import input_append_times, insert_row, measured_commit, percentile, produce, start_job  # noqa: E402
from bench.jobrun import DEFAULT_DATA, load_input  # noqa: E402
from jobs.kafka_io import consumer  # noqa: E402
from operators.model.update_log import KafkaLogTail  # noqa: E402
from tests.integration.harness import BOOTSTRAP, Pipeline, drop_keyspace  # noqa: E402


def read_outputs(topic: str, expected: int, idle_s: float, bar: tqdm) -> list[dict[str, Any]]:
    """Every output record with its append time, until ``expected`` or ``idle_s`` without one."""
    c = consumer(BOOTSTRAP, topic, f"fresh-{topic}")
    out: dict[str, dict[str, Any]] = {}
    last = time.monotonic()
    try:
        while len(out) < expected and time.monotonic() - last < idle_s:
            for msg in c.consume(1000, 0.5):
                if msg.error():
                    continue
                doc = json.loads(msg.value() or b"{}")
                if doc.get("event_id") and doc["event_id"] not in out:
                    out[doc["event_id"]] = {**doc, "append_ms": msg.timestamp()[1]}
                    bar.update(1)
                    last = time.monotonic()
    finally:
        c.close()
    return sorted(out.values(), key=lambda r: r["append_ms"])


def freshness(outputs: list[dict[str, Any]], updates: list[str], inputs: dict[str, int],
              base_version: int) -> dict[str, Any]:
    """Per update (event id, in log order, making version base+1, base+2, ...): the time from
    its input to the first output, on each subtask, served at that version or later. Split in
    two: ``answer_ms``, from its input to its own output (the job's processing latency, backlog
    included), and ``replication_ms``, from its own output to the first output of another
    subtask at that version (the checkpoint that commits the update, the commit and the poll).

    >>> outs = [{"event_id": "a", "model_shard": 0, "model_version": 0, "append_ms": 10},
    ...         {"event_id": "b", "model_shard": 1, "model_version": 0, "append_ms": 12},
    ...         {"event_id": "c", "model_shard": 1, "model_version": 1, "append_ms": 50},
    ...         {"event_id": "d", "model_shard": 0, "model_version": 2, "append_ms": 70}]
    >>> f = freshness(outs, ["a", "b"], {"a": 5, "b": 8, "c": 40, "d": 60}, 0)
    >>> f["own_ms"]["count"], f["own_ms"]["max"], f["own_unseen"], sorted([f["other_ms"]["p50"], f["other_ms"]["max"]])
    (1, 65, 1, [62, 62])
    >>> f["answer_ms"]["max"], f["answer_ms"]["count"], f["replication_ms"]["max"], f["replication_ms"]["count"]
    (5, 2, 58, 2)
    """
    shard_of = {r["event_id"]: r["model_shard"] for r in outputs}
    answered = {r["event_id"]: r["append_ms"] for r in outputs}
    shards = sorted(set(shard_of.values()))
    by_shard = {s: [(r["model_version"], r["append_ms"]) for r in outputs if r["model_shard"] == s] for s in shards}
    own: list[int] = []
    other: list[int] = []
    answer: list[int] = []
    replication: list[int] = []
    unseen: Counter[str] = Counter()
    for n, event_id in enumerate(updates, start=base_version + 1):
        if event_id not in inputs or event_id not in shard_of:
            continue
        answer.append(answered[event_id] - inputs[event_id])
        for s in shards:
            kind = "own" if s == shard_of[event_id] else "other"
            seen = next((t for v, t in by_shard[s] if v >= n), None)
            if seen is None:
                unseen[kind] += 1
            else:
                (own if kind == "own" else other).append(seen - inputs[event_id])
                if kind == "other":
                    replication.append(seen - answered[event_id])

    def summary(values: list[int]) -> dict[str, Any]:
        return {q: percentile(values, float(q[1:])) for q in ("p50", "p90", "p99")} | {"max": max(values, default=0),
                                                                                        "count": len(values)}
    return {"own_ms": summary(own), "other_ms": summary(other), "answer_ms": summary(answer),
            "replication_ms": summary(replication), "own_unseen": unseen["own"],
            "other_unseen": unseen["other"], "shards": len(shards)}


def run(events: int, rate: float, parallelism: int, job_args: list[str]) -> dict[str, Any]:
    loaded = load_input(DEFAULT_DATA, events)
    if loaded is None:
        raise SystemExit(2)
    payloads, keys = loaded
    p = Pipeline(snapshot_every=5000, partitions=parallelism, extra_args=job_args)
    try:
        start_job(p, ROOT / p.entry, parallelism)
        clock = produce(p.topics["input"], payloads, keys, rate, "freshness", live=True, partitions=parallelism)
        with tqdm(total=len(payloads), desc="freshness out", unit="ev", file=sys.stderr, mininterval=1.0) as bar:
            outputs = read_outputs(p.topics["output"], len(payloads), 60, bar)
        if clock is not None:
            clock.set()
    finally:
        p.cancel_all()
        drop_keyspace(p.name)
    tail = KafkaLogTail(BOOTSTRAP, f"{p.topics['output']}-model-updates", settle_timeout_s=5)
    try:
        logged = [u for _, u in tail.read(0, wait=True)]
    finally:
        tail.close()
    lineage = Counter(u.lineage for u in logged).most_common(1)[0][0]
    updates = [u.event.event_id for u in logged if u.lineage == lineage]
    inputs = input_append_times(p.topics["input"], parallelism)
    return {"events": events, "rate": rate, "parallelism": parallelism, "job_args": job_args,
            "outputs": len(outputs), "updates": len(updates),
            **freshness(outputs, updates, inputs, base_version=0)}


def add_results_row(result: dict[str, Any], command: str) -> None:
    path = ROOT / "bench" / "RESULTS.md"
    commit = measured_commit("bench/freshness.py")
    o, t, a, r = result["own_ms"], result["other_ms"], result["answer_ms"], result["replication_ms"]
    row = (f"| freshness | {commit} | parallelism {result['parallelism']}, {result['events']:,} ml-100k events at "
           f"{result['rate']:.0f}/s live ({result['updates']:,} learned): input append to the first list served "
           f"with the update, own subtask p50 / p90 / p99 / max {o['p50']:,} / {o['p90']:,} / {o['p99']:,} / "
           f"{o['max']:,} ms, other subtasks {t['p50']:,} / {t['p90']:,} / {t['p99']:,} / {t['max']:,} ms "
           f"({result['other_unseen']} of {t['count'] + result['other_unseen']} not seen before the run ended); "
           f"of which input to the event's own answer p50 / p99 {a['p50']:,} / {a['p99']:,} ms, and its answer to "
           f"another subtask's first list with it p50 / p99 {r['p50']:,} / {r['p99']:,} ms "
           f"| `{command}` |\n")
    insert_row(path, "| bench | commit | what it measured | command |\n| --- | --- | --- | --- |\n", row)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=6_000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--parallelism", type=int, default=2)
    parser.add_argument("--job-args", default="", help="extra job flags, e.g. '--checkpoint-interval-ms 2000'")
    parser.add_argument("--json", action="store_true", help="print only the JSON line on stdout")
    args = parser.parse_args(argv)
    result = run(args.events, args.rate, args.parallelism, shlex.split(args.job_args))
    command = "python -m bench.freshness " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    add_results_row(result, command)
    if not args.json:
        print(f"own subtask: {result['own_ms']}\nother subtasks: {result['other_ms']}\n"
              f"input to own answer: {result['answer_ms']}\nown answer to another subtask's list: "
              f"{result['replication_ms']}", file=sys.stderr)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
