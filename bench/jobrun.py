"""Run the job once on the local cluster over a fixed input and time it (shared by benches).

Progress is the output topic's end offset, sampled every 0.2 s: an exactly-once sink appends
records as it writes them (committed only at checkpoints), so the end offset follows
processing, while a read_committed reader would only see checkpoint-sized steps. (The offset
also counts one commit marker per checkpoint: a few records in 20,000.)
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from confluent_kafka import Consumer, TopicPartition  # noqa: E402

from jobs.kafka_io import producer  # noqa: E402
from jobs.replay import read_events  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "ml-100k" / "u.data"


def load_input(data: Path, limit: int) -> tuple[list[bytes], list[bytes]] | None:
    """The first ``limit`` events of a log as Kafka values and keys (user id); None, with a
    message, when the file is absent."""
    if not data.is_file():
        print(f"bench: {data} not found; pass --data (e.g. a file from python -m jobs.sample)", file=sys.stderr)
        return None
    events = [e for e in read_events(data, limit=limit) if isinstance(e, dict)]
    return [json.dumps(e).encode() for e in events], [str(e["user_id"]).encode() for e in events]
from tests.integration.harness import BOOTSTRAP, REPO, Pipeline, drop_keyspace, flink_cli  # noqa: E402


@dataclass
class Run:
    samples: list[tuple[float, int]] = field(default_factory=list)   # (s since submit, records out)
    expected: int = 0

    @property
    def events_per_sec(self) -> float:
        """Steady-state rate: between the moments the output passes 10 % and 90 % of the
        expected records (linear between samples), leaving out start-up and the last
        checkpoint's wait; not the whole run's rate (bench/e2e.py reports both). A run whose
        whole output lands between two samples gives NaN: give it more events."""
        t10, t90 = self._crossing(0.1), self._crossing(0.9)
        if t10 is None or t90 is None or t90 <= t10:
            return float("nan")
        return 0.8 * self.expected / (t90 - t10)

    def _crossing(self, fraction: float) -> float | None:
        target = fraction * self.expected
        for (t0, n0), (t1, n1) in zip(self.samples, self.samples[1:], strict=False):
            if n0 < target <= n1:
                return t0 + (t1 - t0) * (target - n0) / (n1 - n0)
        return None

    @property
    def all_output_s(self) -> float | None:
        """Seconds from submission until every expected record was written."""
        return next((t for t, n in self.samples if n >= self.expected), None)

    @property
    def first_output_s(self) -> float | None:
        return next((t for t, n in self.samples if n > 0), None)


def run_job(payloads: list[bytes], keys: list[bytes], job_args: list[str], label: str,
            expected: int | None = None, timeout_idle: float = 120) -> Run:
    """Produce the input to fresh topics, submit the job with ``job_args``, wait for
    ``expected`` output records (default: one per input), cancel, clean up."""
    from tqdm import tqdm

    p = Pipeline(snapshot_every=5000, extra_args=job_args,
                 entry="bench/stages_job.py" if "--stages" in job_args else "jobs/recommend.py")
    p.create_topics()
    run = Run(expected=len(payloads) if expected is None else expected)
    try:
        prod = producer(BOOTSTRAP)
        for key, value in zip(keys, payloads, strict=True):
            while True:
                try:
                    prod.produce(p.topics["input"], value=value, key=key)
                    break
                except BufferError:
                    prod.poll(0.1)
        stamps = [json.loads(v).get("ts") for v in payloads]
        newest = max((t for t in stamps if type(t) is int), default=None)
        if newest is not None:   # move event time past the input, or its last events wait for more
            prod.produce(p.topics["input"], value=json.dumps({"heartbeat_ts": newest + 60_000}).encode())
        prod.flush(60)
        watcher = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": f"bench-{p.name}"})
        out = TopicPartition(p.topics["output"], 0)
        start_offset = watcher.get_watermark_offsets(out, timeout=10)[1]
        submitted = time.monotonic()
        submit = flink_cli("run", "-d", "-py", str(REPO / p.entry), *p.job_args())
        p.jobs.append(submit.rsplit("JobID ", 1)[1].split()[0])
        with tqdm(total=run.expected, desc=label, unit="ev", file=sys.stderr) as bar:
            last_change = time.monotonic()
            while True:
                n = watcher.get_watermark_offsets(out, timeout=10, cached=False)[1] - start_offset
                if not run.samples or n > run.samples[-1][1]:
                    bar.update(n - (run.samples[-1][1] if run.samples else 0))
                    last_change = time.monotonic()
                run.samples.append((time.monotonic() - submitted, n))
                if n >= run.expected or time.monotonic() - last_change > timeout_idle:
                    break
                time.sleep(0.2)
        watcher.close()
    finally:
        p.cancel_all()
        drop_keyspace(p.name)
    return run


def compare_stages(payloads: list[bytes], keys: list[bytes], variants: list[str], pairs: list[tuple[str, str]],
                   name: str, title: str) -> dict[str, object]:
    """Run the job once per ``--stages`` variant (bench/stages_job.py; ``full``: the job
    itself) on the same input; print and save a JSON
    summary (events/s, µs per event, and for each (a, b) in ``pairs`` the µs per event b adds
    to a) and a bar chart, as bench/results/<name>.{json,png}."""
    results: dict[str, dict[str, float]] = {}
    for variant in variants:
        run = run_job(payloads, keys, [] if variant == "full" else ["--stages", variant], variant)
        rate = run.events_per_sec
        results[variant] = {"events_per_sec": round(rate, 1), "us_per_event": round(1e6 / rate, 1),
                            "first_output_s": round(run.first_output_s or float("nan"), 1),
                            "all_output_s": round(run.all_output_s or float("nan"), 1)}
    added = {f"{b} - {a}": round(results[b]["us_per_event"] - results[a]["us_per_event"], 1)
             for a, b in pairs}
    summary = {"events": len(payloads), "variants": results, "added_us_per_event": added}
    print(json.dumps(summary))
    out = ROOT / "bench" / "results" / name
    out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.barh(variants, [results[n]["us_per_event"] for n in variants])
    for y, n in enumerate(variants):
        ax.text(results[n]["us_per_event"], y, f" {results[n]['events_per_sec']:,.0f} ev/s", va="center")
    ax.set_xlabel("microseconds per event, steady state (job on local Flink, parallelism 1)")
    ax.set_title(f"{title}, first {len(payloads):,} MovieLens events")
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"), dpi=100)
    return summary


def stage_bench(doc: str, variants: list[str], default_events: int, name: str, title: str,
                against_first: bool) -> int:
    """The command line of a stage-cost bench: ``--events``, ``--data``, ``--variants``; then
    compare_stages, each variant against the first (``against_first``) or the one before it."""
    import argparse

    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=default_events)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--variants", default=",".join(variants))
    args = parser.parse_args()
    loaded = load_input(args.data, args.events)
    if loaded is None:
        return 2
    chosen = args.variants.split(",")
    pairs = ([(chosen[0], v) for v in chosen[1:]] if against_first
             else list(zip(chosen, chosen[1:], strict=False)))
    compare_stages(*loaded, chosen, pairs, name, title)
    return 0
