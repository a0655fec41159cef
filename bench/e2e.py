"""End-to-end benchmark of the job on the local stack, with its floor measured in the same run.

    python -m bench.e2e --events N [--rate R] [--live] [--data PATH] [--job-args "..."] [--json] [--no-floor]
                        [--parallelism 1,2]

Needs the local services (deploy/local/services up); starts nothing else. For the floor
(bench/floor_job.py: the job's Kafka source and exactly-once sink with one stateless Python map
between) and then the job once per ``--parallelism`` (each on an input topic with that many
partitions; above 1 the model is shared, replica.py), on fresh topics (input and output with
LogAppendTime):
submit, wait until it runs, produce the first N events of the log (``--rate`` events/s, or as
fast as the producer can with ``--rate 0``) and a final heartbeat, read every output
record (read_committed) and the input's append times, then cancel. The events keep the log's
times: seven months in 100,000 MovieLens events, so event time runs far ahead of the clock,
an event waits for the watermark only until a few more events arrive, and every hour of
event time (about 20 events) fires every feature window. ``--live`` stamps each event with
the clock as it is written and keeps event time moving with heartbeats, as a live stream
does: the watermark's wait (the out-of-orderness bound) is then part of every event's
latency, and the windows fire at the pace of the clock.

Measured, for each run:
- events/s over the whole run: N / (last output append - first input append); and, labelled as
  such, the steady-state rate between the 10 % and 90 % outputs;
- latency of every event: its recommendation's append time - its input's append time
  (p50/p95/p99/max; and, labelled as steady state, p50/p99 of the events output between the
  10 % and 90 % outputs, which leaves out the job's warm-up), and the *visible* latency
  (when a read_committed reader got it: this includes the wait for the checkpoint that
  commits the transaction);
- CPU seconds and peak RSS of each process (Kafka, Cassandra, JobManager, TaskManager, its
  Python workers, this benchmark's producer/consumer);
- checkpoints (count, duration, size) and model snapshots (count, size, cut and write time);
- the job's dead letters by reason: a run ends when every event has a recommendation or a
  dead letter (e.g. ``rate_limited`` by the bot guard), and exits 1 unless every one has.
The last stdout line is JSON. Writes bench/results/e2e.{json,png} and a row in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from confluent_kafka import Consumer, TopicPartition  # noqa: E402
from tqdm import tqdm  # noqa: E402

from bench.jobrun import DEFAULT_DATA, load_input  # noqa: E402
from jobs import grant  # noqa: E402
from jobs.kafka_io import consumer, ensure_topics, producer  # noqa: E402
from operators.connections import security  # noqa: E402
from tests.integration.harness import (  # noqa: E402
    ADMIN_SECURITY,
    BOOTSTRAP,
    JOB_SECURITY,
    REPO,
    RUN_DIR,
    Pipeline,
    drop_keyspace,
    flink_cli,
    rest,
)

LOG_APPEND = {"message.timestamp.type": "LogAppendTime"}
TICK = os.sysconf("SC_CLK_TCK")


# -- processes -----------------------------------------------------------------------------

def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            out += [int(c) for c in (task / "children").read_text().split()]
    return out


def _descendants(pid: int) -> list[int]:
    todo, seen = _children(pid), []
    while todo:
        p = todo.pop()
        seen.append(p)
        todo += _children(p)
    return seen


def _pid_file(name: str) -> int | None:
    try:
        return int((RUN_DIR / f"{name}.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _taskmanagers() -> list[int]:
    found = subprocess.run(["pgrep", "-f", "TaskManagerRunner"], capture_output=True, text=True).stdout
    return [int(p) for p in found.split()]


def process_groups() -> dict[str, list[int]]:
    """Which pids make up each part of the stack, now (Python workers come and go)."""
    groups: dict[str, list[int]] = {"bench": [os.getpid()]}
    for name in ("kafka", "cassandra"):
        pid = _pid_file(name)
        if pid:
            groups[name] = [pid]
    jm = _pid_file("flink")
    if jm:
        groups["flink-jobmanager"] = [jm]
    tms = _taskmanagers()
    groups["flink-taskmanager"] = tms
    groups["python-workers"] = [c for tm in tms for c in _descendants(tm)]
    return groups


def _cpu_and_rss(pid: int) -> tuple[float, float] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        rss_kb = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                      if line.startswith("VmRSS:"))
    except (OSError, StopIteration, IndexError, ValueError):
        return None
    return (int(stat[11]) + int(stat[12])) / TICK, rss_kb / 1024


class ResourceSampler(threading.Thread):
    """CPU seconds used during the run and peak RSS, per process group, sampled every second."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.group_of: dict[int, str] = {}
        self.peak_rss: dict[str, float] = {}
        self.stop = threading.Event()
        self.started = time.monotonic()
        self.initial = True
        self.sample()

    def sample(self) -> None:
        rss: dict[str, float] = {}
        for group, pids in process_groups().items():
            for pid in pids:
                got = _cpu_and_rss(pid)
                if got is None:
                    continue
                # a process there at the start counts from then; one started later, from zero
                self.first.setdefault(pid, got[0] if self.initial else 0.0)
                self.last[pid], self.group_of[pid] = got[0], group
                rss[group] = rss.get(group, 0.0) + got[1]
        for group, mb in rss.items():
            self.peak_rss[group] = max(self.peak_rss.get(group, 0.0), mb)
        self.initial = False

    def run(self) -> None:
        while not self.stop.wait(1.0):
            self.sample()

    def summary(self) -> dict[str, dict[str, float]]:
        self.stop.set()
        self.sample()
        wall = time.monotonic() - self.started
        cpu: dict[str, float] = {}
        for pid, group in self.group_of.items():
            cpu[group] = cpu.get(group, 0.0) + self.last[pid] - self.first.get(pid, 0.0)
        return {g: {"cpu_s": round(cpu.get(g, 0.0), 1), "cpu_pct_of_one_core": round(100 * cpu.get(g, 0.0) / wall),
                    "rss_peak_mb": round(self.peak_rss.get(g, 0.0))} for g in sorted(set(cpu) | set(self.peak_rss))}


# -- one run -------------------------------------------------------------------------------

@dataclass
class Output:
    append_ms: dict[str, int] = field(default_factory=dict)     # event_id -> output append time
    seen_ms: dict[str, int] = field(default_factory=dict)       # event_id -> when we read it


class DeadLetterCounter(threading.Thread):
    """Counts the job's dead letters (read_committed) by reason, once per source position."""

    def __init__(self, topic: str) -> None:
        super().__init__(daemon=True)
        self.topic = topic
        self.positions: dict[tuple[int, int], str] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        c = consumer(BOOTSTRAP, self.topic, f"e2e-{self.topic}", security_file=ADMIN_SECURITY)
        try:
            while not self.stop.is_set():
                for msg in c.consume(1000, 0.5):
                    if not msg.error():
                        doc = json.loads(msg.value() or b"{}")
                        source = doc.get("source", {})
                        self.positions[(source.get("partition"), source.get("offset"))] = doc.get("reason", "?")
        finally:
            c.close()

    def by_reason(self) -> dict[str, int]:
        return dict(Counter(self.positions.values()))


class OutputReader(threading.Thread):
    """Reads the output until every event has a recommendation or (``dead_letters``) a dead letter."""

    def __init__(self, topic: str, expected: int, bar: tqdm, dead_letters: DeadLetterCounter | None) -> None:
        super().__init__(daemon=True)
        self.topic, self.expected, self.bar, self.dead_letters = topic, expected, bar, dead_letters
        self.out = Output()
        self.stop = threading.Event()

    def accounted(self) -> int:
        return len(self.out.append_ms) + (len(self.dead_letters.positions) if self.dead_letters else 0)

    def run(self) -> None:
        c = consumer(BOOTSTRAP, self.topic, f"e2e-{self.topic}", security_file=ADMIN_SECURITY)
        try:
            while not self.stop.is_set() and self.accounted() < self.expected:
                for msg in c.consume(1000, 0.5):
                    if msg.error():
                        continue
                    event_id = json.loads(msg.value() or b"{}").get("event_id")
                    if event_id and event_id not in self.out.append_ms:
                        self.out.append_ms[event_id] = msg.timestamp()[1]
                        self.out.seen_ms[event_id] = int(time.time() * 1000)
                        self.bar.update(1)
        finally:
            c.close()


def input_append_times(topic: str, partitions: int) -> dict[str, int]:
    c = Consumer({**security(ADMIN_SECURITY).librdkafka(BOOTSTRAP), "group.id": f"e2e-in-{topic}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(partitions)}
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    times: dict[str, int] = {}
    done: set[int] = {p for p, end in ends.items() if end == 0}
    while len(done) < partitions:
        for msg in c.consume(5000, 1.0):
            if msg.error():
                continue
            partition, offset = msg.partition() or 0, msg.offset() or 0
            if offset + 1 >= ends[partition]:
                done.add(partition)
            event_id = json.loads(msg.value() or b"{}").get("event_id")
            if event_id:
                times[event_id] = msg.timestamp()[1]
    c.close()
    return times


def produce(topic: str, payloads: list[bytes], keys: list[bytes], rate: float, label: str,
            live: bool = False, partitions: int = 1) -> threading.Event | None:
    """Write the input. Without ``live``, the events keep the log's own times and a final
    heartbeat a minute of event time after the newest moves the watermark past them. With
    ``live``, each event's ``ts`` is the clock when it is written, as in a live stream, and a
    clock thread writes a heartbeat at the current time every 200 ms until the returned
    event is set (as a live stream's next events would move event time). Heartbeats go to
    each of the topic's ``partitions`` (the watermark is the slowest partition's)."""
    prod = producer(BOOTSTRAP, ADMIN_SECURITY)

    def send(**message: Any) -> None:   # waits while the producer's queue (100,000 messages) is full
        while True:
            try:
                prod.produce(topic, **message)
                break
            except BufferError:
                prod.poll(0.05)
        prod.poll(0)

    start = time.monotonic()
    for n, (key, value) in enumerate(tqdm(list(zip(keys, payloads, strict=True)), desc=f"{label} in",
                                          unit="ev", file=sys.stderr, mininterval=1.0)):
        if live:
            value = json.dumps({**json.loads(value), "ts": int(time.time() * 1000)}).encode()
        send(value=value, key=key)
        if rate > 0:
            ahead = (n + 1) / rate - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)
    if not live:
        newest = max(json.loads(v)["ts"] for v in payloads)
        for partition in range(partitions):
            send(value=json.dumps({"heartbeat_ts": newest + 60_000}).encode(), partition=partition)
        prod.flush(120)
        return None
    stop = threading.Event()

    def clock() -> None:
        while not stop.wait(0.2):
            for partition in range(partitions):
                send(value=json.dumps({"heartbeat_ts": int(time.time() * 1000)}).encode(), partition=partition)
        prod.flush(30)

    threading.Thread(target=clock, name="producer-clock", daemon=True).start()
    return stop


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] if ordered else float("nan")


def start_job(p: Pipeline, script: Path, parallelism: int) -> str:
    """Create ``p``'s topics (input with ``parallelism`` partitions; input and output with
    log-append time), submit ``script`` at ``parallelism`` and wait until it runs; its job id."""
    ensure_topics(BOOTSTRAP, [p.topics["input"]], partitions=parallelism, config=LOG_APPEND,
                  security_file=ADMIN_SECURITY)
    ensure_topics(BOOTSTRAP, [p.topics["output"]], config=LOG_APPEND, security_file=ADMIN_SECURITY)
    ensure_topics(BOOTSTRAP, [p.topics["dlq"]], security_file=ADMIN_SECURITY)
    if JOB_SECURITY:     # the secured stack (bench/secure_cost.py): the job's ACLs and Cassandra role
        assert grant.main(["--admin-security-file", ADMIN_SECURITY, "--principal", "streamrec",
                           "--partitions", str(parallelism), *p.job_args()]) == 0
        grant.secure_cassandra(Path(ADMIN_SECURITY).parent, "127.0.0.1", p.cassandra_port, p.name,
                               "{'class': 'SimpleStrategy', 'replication_factor': 1}")
    out = flink_cli("run", "-d", "-py", str(script), *p.job_args(), "--parallelism", str(parallelism))
    job = out.rsplit("JobID ", 1)[1].split()[0]
    p.jobs.append(job)
    p.wait_running(job, timeout=180)
    return job


def run_once(script: Path, label: str, payloads: list[bytes], keys: list[bytes], rate: float,
             job_args: list[str], idle_timeout: float, live: bool = False, parallelism: int = 1) -> dict[str, Any]:
    p = Pipeline(snapshot_every=5000, extra_args=job_args, partitions=parallelism)
    try:
        job = start_job(p, script, parallelism)
        sampler = ResourceSampler()
        sampler.start()
        with tqdm(total=len(payloads), desc=f"{label} out", unit="ev", file=sys.stderr, mininterval=1.0) as bar:
            dead_letters = DeadLetterCounter(p.topics["dlq"]) if script.name == "recommend.py" else None
            if dead_letters is not None:
                dead_letters.start()
            reader = OutputReader(p.topics["output"], len(payloads), bar, dead_letters)
            reader.start()
            clock = produce(p.topics["input"], payloads, keys, rate, label, live, parallelism)
            last, last_change = -1, time.monotonic()
            while reader.is_alive() and time.monotonic() - last_change < idle_timeout:
                reader.join(1.0)
                if len(reader.out.append_ms) != last:
                    last, last_change = len(reader.out.append_ms), time.monotonic()
            reader.stop.set()
            reader.join(5)
            if dead_letters is not None:
                dead_letters.stop.set()
                dead_letters.join(5)
            if clock is not None:
                clock.set()
        resources = sampler.summary()
        checkpoints = checkpoint_stats(job)
        model = model_metrics(job) if script.name == "recommend.py" else {}
    finally:
        p.cancel_all()
        drop_keyspace(p.name)
    inputs = input_append_times(p.topics["input"], parallelism)
    got = reader.out
    latency = [got.append_ms[e] - inputs[e] for e in got.append_ms if e in inputs]
    visible = [got.seen_ms[e] - inputs[e] for e in got.seen_ms if e in inputs]
    first_in = min(inputs.values())
    last_out = max(got.append_ms.values()) if got.append_ms else first_in
    outs = sorted(got.append_ms.values())
    steady, steady_latency = float("nan"), []
    if len(outs) >= 10:
        t10, t90 = outs[len(outs) // 10], outs[(9 * len(outs)) // 10]
        steady = 0.8 * len(outs) / ((t90 - t10) / 1000) if t90 > t10 else float("nan")
        steady_latency = [got.append_ms[e] - inputs[e] for e in got.append_ms
                          if e in inputs and t10 <= got.append_ms[e] <= t90]
    return {
        "label": label, "parallelism": parallelism, "events": len(payloads), "outputs": len(got.append_ms),
        "dead_letters": dead_letters.by_reason() if dead_letters is not None else {},
        "events_per_sec": round(len(got.append_ms) / max((last_out - first_in) / 1000, 1e-9), 1),
        "steady_state_events_per_sec": round(steady, 1),
        "latency_ms": {q: round(percentile(latency, float(q[1:])), 1) for q in ("p50", "p95", "p99")}
        | {"max": max(latency, default=float("nan"))},
        "visible_latency_ms": {q: round(percentile(visible, float(q[1:])), 1) for q in ("p50", "p95", "p99")},
        "steady_state_latency_ms": {q: round(percentile(steady_latency, float(q[1:])), 1) for q in ("p50", "p99")},
        "processes": resources, "checkpoints": checkpoints, "model": model,
        "timeline": timeline(inputs, got),
    }


def checkpoint_stats(job: str) -> dict[str, Any]:
    try:
        stats = rest(f"/jobs/{job}/checkpoints")
    except OSError:
        return {}
    summary = stats.get("summary", {})
    duration = summary.get("end_to_end_duration", {})
    size = summary.get("checkpointed_size", summary.get("state_size", {}))
    return {"completed": stats.get("counts", {}).get("completed"), "duration_ms_avg": duration.get("avg"),
            "duration_ms_max": duration.get("max"), "size_bytes_avg": size.get("avg"),
            "size_bytes_max": size.get("max")}


def model_metrics(job: str) -> dict[str, Any]:
    vertex = next((v["id"] for v in rest(f"/jobs/{job}")["vertices"] if "model-recommend" in v["name"]), None)
    if vertex is None:
        return {}
    wanted = ("snapshots_written", "snapshot_last_write_ms", "snapshot_last_cut_ms", "learned")
    ids = [m["id"] for m in rest(f"/jobs/{job}/vertices/{vertex}/metrics") if m["id"].rsplit(".", 1)[-1] in wanted]
    values = rest(f"/jobs/{job}/vertices/{vertex}/metrics?get={','.join(ids)}") if ids else []
    return {v["id"].rsplit(".", 1)[-1]: float(v["value"]) for v in values}


def timeline(inputs: dict[str, int], got: Output) -> list[dict[str, float | None]]:
    """Per second of output append time: outputs, p50 and p99 latency."""
    if not got.append_ms:
        return []
    start = min(inputs.values())
    bins: dict[int, list[int]] = {}
    for e, t in got.append_ms.items():
        if e in inputs:
            bins.setdefault((t - start) // 1000, []).append(t - inputs[e])
    # every second, empty ones too (no output: 0 outputs, no latency), or a plot would draw a
    # line across the gaps
    return [{"s": s, "outputs": len(bins.get(s, [])),
             "p50_ms": statistics.median(bins[s]) if s in bins else None,
             "p99_ms": percentile(bins[s], 99) if s in bins else None}
            for s in range(max(bins) + 1 if bins else 0)]


# -- report --------------------------------------------------------------------------------

def plot(runs: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    for run in runs:
        xs = [b["s"] for b in run["timeline"]]
        top.plot(xs, [b["outputs"] for b in run["timeline"]],
                 label=f"{run['label']} ({run['events_per_sec']:,.0f} ev/s)")
        nan = float("nan")
        bottom.plot(xs, [b["p50_ms"] if b["p50_ms"] is not None else nan for b in run["timeline"]],
                    label=f"{run['label']} p50")
        bottom.plot(xs, [b["p99_ms"] if b["p99_ms"] is not None else nan for b in run["timeline"]], "--",
                    label=f"{run['label']} p99")
    top.set_ylabel("outputs per second")
    top.legend()
    bottom.set_ylabel("input append -> output append (ms)")
    bottom.set_yscale("log")
    bottom.set_xlabel("seconds since the first input record")
    bottom.legend(fontsize="small")
    top.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def parallelism_note(summary: dict[str, Any]) -> str:
    """' (parallelism 2)' for a run above parallelism 1.

    >>> parallelism_note({"parallelism": 2}), parallelism_note({"parallelism": 1})
    (' (parallelism 2)', '')
    """
    level = summary.get("parallelism", 1)
    return f" (parallelism {level})" if level > 1 else ""


def dead_letter_note(summary: dict[str, Any]) -> str:
    """' (19,717 outputs, 283 dead letters: rate_limited 283)' when some events got no recommendation.

    >>> dead_letter_note({"outputs": 19_717, "dead_letters": {"rate_limited": 283}})
    ' (19,717 outputs, 283 dead letters: rate_limited 283)'
    >>> dead_letter_note({"outputs": 10, "dead_letters": {}})
    ''
    """
    counts = summary.get("dead_letters") or {}
    if not counts:
        return ""
    reasons = ", ".join(f"{reason} {n:,}" for reason, n in sorted(counts.items()))
    return f" ({summary['outputs']:,} outputs, {sum(counts.values()):,} dead letters: {reasons})"


def add_results_row(summary: dict[str, Any], command: str) -> None:
    path = ROOT / "bench" / "RESULTS.md"
    if not path.exists():
        path.write_text("# Benchmark results\n\nEach row: one run of the command beside it, on this project's 2-core "
                        "machine with Kafka, Cassandra and Flink on it.\n\n## End to end (`bench/e2e.py`)\n\n"
                        "| date | commit | events | input rate | job ev/s (whole run) | steady state ev/s | floor ev/s "
                        "| job / floor | p50 / p99 ms (append to append; steady state when given) "
                        "| visible p99 ms | command |\n"
                        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
    commit = measured_commit("bench/e2e.py", "bench/floor_job.py")
    row = (f"| {time.strftime('%Y-%m-%d')} | {commit} | {summary['events']:,} | "
           f"{summary['rate'] or 'unthrottled'}{', live times' if summary.get('live') else ''} | "
           f"{summary['events_per_sec']:,.0f} | "
           f"{summary['steady_state_events_per_sec']:,.0f} | "
           f"{summary['floor_events_per_sec'] or float('nan'):,.0f} | "
           f"{summary['ratio_to_floor']} | {summary['p50_ms']:,.0f} / {summary['p99_ms']:,.0f} "
           f"(steady {summary['steady_state_p50_ms']:,.0f} / {summary['steady_state_p99_ms']:,.0f}) | "
           f"{summary['visible_p99_ms']:,.0f} | `{command}`{parallelism_note(summary)}{dead_letter_note(summary)} |\n")
    insert_row(path, "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n", row)


def measured_commit(*benches: str) -> str:
    """The short commit measured, with ``+`` when the job's code or ``benches`` have uncommitted changes."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=ROOT).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "operators", "jobs", "jvm",
                            "deploy", *benches], capture_output=True, text=True, cwd=ROOT)
    return commit + ("+" if dirty.stdout.strip() else "")


def insert_row(path: Path, marker: str, row: str) -> None:
    """Put ``row`` first under the table whose header ends with ``marker`` (newest first), or at the end."""
    text = path.read_text()
    path.write_text(text.replace(marker, marker + row, 1) if marker in text else text + row)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=0.0, help="input events/s; 0 = as fast as possible")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--job-args", default="", help="extra job flags, e.g. '--bundle-size 10000'")
    parser.add_argument("--no-floor", action="store_true", help="skip the floor run")
    parser.add_argument("--live", action="store_true",
                        help="stamp each event with the time it is written (a live stream) instead of its log time")
    parser.add_argument("--json", action="store_true", help="print only the JSON line on stdout")
    parser.add_argument("--idle-timeout", type=float, default=180, help="give up after this long without output")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "e2e")
    parser.add_argument("--parallelism", default="1",
                        help="the job's parallelism; a comma list (e.g. 1,2) runs the job once at each, in this run")
    args = parser.parse_args(argv)
    levels = [int(x) for x in args.parallelism.split(",")]
    loaded = load_input(args.data, args.events)
    if loaded is None:
        return 2
    payloads, keys = loaded
    job_args = shlex.split(args.job_args)
    runs = []
    if not args.no_floor:
        runs.append(run_once(ROOT / "bench" / "floor_job.py", "floor", payloads, keys, args.rate, job_args,
                             args.idle_timeout, args.live))
    for level in levels:
        runs.append(run_once(REPO / "jobs" / "recommend.py", "job" if len(levels) == 1 else f"job p={level}",
                             payloads, keys, args.rate, job_args, args.idle_timeout, args.live, level))
    floor = runs[0] if not args.no_floor else None
    jobs = runs[1:] if floor else runs
    summaries = [summarise(job, floor, args) for job in jobs]
    summary = {**summaries[0], "by_parallelism": summaries[1:],
               "runs": [{k: v for k, v in r.items() if k != "timeline"} for r in runs]}
    command = "python -m bench.e2e " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({**summary, "command": command,
                                                         "timelines": {r["label"]: r["timeline"] for r in runs}},
                                                        indent=2) + "\n")
    plot(runs, args.out.with_suffix(".png"), f"{args.data.name}, {len(payloads):,} events, "
         f"input {'unthrottled' if not args.rate else f'{args.rate:,.0f} ev/s'}")
    for one in summaries:
        add_results_row(one, command)
    if not args.json:
        for r in runs:
            print(f"{r['label']}: {r['outputs']:,}/{len(payloads):,} out, dead letters {r['dead_letters']}, "
                  f"{r['events_per_sec']:,.0f} ev/s whole run, "
                  f"{r['steady_state_events_per_sec']:,.0f} ev/s steady state, latency p50 {r['latency_ms']['p50']} "
                  f"p99 {r['latency_ms']['p99']} ms", file=sys.stderr)
    print(json.dumps(summary))
    # Every event accounted for: a recommendation or a dead letter (e.g. rate_limited by the bot guard).
    return 0 if all(j["outputs"] + sum(j["dead_letters"].values()) == len(payloads) for j in jobs) else 1


def summarise(job: dict[str, Any], floor: dict[str, Any] | None, args: argparse.Namespace) -> dict[str, Any]:
    """One job run's figures (with the floor's, measured in the same invocation)."""
    return {
        "events": job["events"], "outputs": job["outputs"], "dead_letters": job["dead_letters"],
        "rate": args.rate, "live": args.live, "parallelism": job["parallelism"],
        "events_per_sec": job["events_per_sec"], "steady_state_events_per_sec": job["steady_state_events_per_sec"],
        "floor_events_per_sec": floor["events_per_sec"] if floor else None,
        "ratio_to_floor": round(job["events_per_sec"] / floor["events_per_sec"], 3) if floor else None,
        "p50_ms": job["latency_ms"]["p50"], "p95_ms": job["latency_ms"]["p95"], "p99_ms": job["latency_ms"]["p99"],
        "max_ms": job["latency_ms"]["max"], "visible_p99_ms": job["visible_latency_ms"]["p99"],
        "steady_state_p50_ms": job["steady_state_latency_ms"]["p50"],
        "steady_state_p99_ms": job["steady_state_latency_ms"]["p99"],
        "data": args.data.name, "job_args": args.job_args,
    }


if __name__ == "__main__":
    sys.exit(main())
