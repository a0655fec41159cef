"""End-to-end throughput of the job on the local cluster, against the same logic without Flink.

    python bench/e2e_throughput.py [--events 20000] [--data ../shared/data/ml-100k/u.data]

Needs the local services (deploy/local/services up). Replays the first N events of the log
into fresh topics, submits the job, and times the recommendations arriving on the output
topic (read_committed, so outputs appear in checkpoint-sized steps). Baseline, measured in the
same run: the same three stages in-process (jobs/offline.py). Prints one JSON line; writes
bench/results/e2e_throughput.json and a plot of outputs over time (.png).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jobs.kafka_io import consumer, producer  # noqa: E402
from jobs.offline import OfflinePipeline  # noqa: E402
from jobs.replay import read_events  # noqa: E402
from tests.integration.harness import BOOTSTRAP, Pipeline, drop_keyspace  # noqa: E402


def offline_rate(payloads: list[bytes]) -> float:
    pipeline = OfflinePipeline()
    start = time.perf_counter()
    pipeline.run(payloads)
    return len(payloads) / (time.perf_counter() - start)


def job_rate(payloads: list[bytes], keys: list[bytes], checkpoint_ms: int, job_args: list[str],
             ) -> tuple[float, list[tuple[float, int]], int]:
    from tqdm import tqdm

    p = Pipeline(snapshot_every=5000)
    p.create_topics()
    try:
        prod = producer(BOOTSTRAP)
        for key, value in zip(keys, payloads, strict=True):
            while True:
                try:
                    prod.produce(p.topics["input"], value=value, key=key)
                    break
                except BufferError:
                    prod.poll(0.1)
        prod.flush(60)
        c = consumer(BOOTSTRAP, p.topics["output"], f"bench-{uuid.uuid4().hex}")
        submitted = time.monotonic()
        args = p.job_args()
        args[args.index("--checkpoint-interval-ms") + 1] = str(checkpoint_ms)
        from tests.integration.harness import REPO, flink_cli

        out = flink_cli("run", "-d", "-py", str(REPO / "jobs" / "recommend.py"), *args, *job_args)
        p.jobs.append(out.rsplit("JobID ", 1)[1].split()[0])
        # Processing progress from the model operator's input count (Flink REST; the REST
        # metrics refresh every ~10 s, hence the steps in the plot): output on a read_committed
        # topic arrives in checkpoint-sized steps, so it would measure the checkpoint interval.
        from tests.integration.harness import rest

        samples: list[tuple[float, int]] = [(0.0, 0)]
        received = 0
        with tqdm(total=len(payloads), desc="model operator", unit="ev", file=sys.stderr) as bar:
            stalled_since = time.monotonic()
            while samples[-1][1] < len(payloads) and time.monotonic() - stalled_since < 180:
                while (msg := c.poll(0.05)) is not None:
                    received += 0 if msg.error() else 1
                vertex = next((v for v in rest(f"/jobs/{p.jobs[-1]}")["vertices"]
                               if v["name"].startswith("model-recommend")), None)
                done = vertex["metrics"]["read-records"] if vertex else 0
                if done > samples[-1][1]:
                    stalled_since = time.monotonic()
                    bar.update(done - samples[-1][1])
                samples.append((time.monotonic() - submitted, done))
                time.sleep(0.5)
        deadline = time.monotonic() + 60          # outputs of the last checkpoint
        while received < len(payloads) and time.monotonic() < deadline:
            msg = c.poll(0.5)
            received += 0 if msg is None or msg.error() else 1
        c.close()
    finally:
        p.cancel_all()
        drop_keyspace(p.name)
    # Steady state: from the first sample with progress to the first with everything processed.
    moving = [(t, n) for t, n in samples if n > 0]
    if len(moving) < 2 or received < len(payloads):
        return float("nan"), samples, received
    t0, n0 = moving[0]
    t1, n1 = next((t, n) for t, n in moving if n >= len(payloads))
    return (n1 - n0) / (t1 - t0), samples, received


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "ml-100k" / "u.data")
    parser.add_argument("--checkpoint-interval-ms", type=int, default=2000)
    parser.add_argument("--job-args", default="", help="extra job flags, e.g. '--bundle-size 5000'")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "e2e_throughput")
    args = parser.parse_args()
    if not args.data.is_file():
        print(f"bench: {args.data} not found; pass --data (e.g. a file from python -m jobs.sample)", file=sys.stderr)
        return 2
    events = [e for e in read_events(args.data, limit=args.events) if isinstance(e, dict)]
    payloads = [json.dumps(e).encode() for e in events]
    keys = [str(e["user_id"]).encode() for e in events]

    baseline = offline_rate(payloads)
    rate, samples, received = job_rate(payloads, keys, args.checkpoint_interval_ms, args.job_args.split())
    result = {"events": len(payloads), "received": received,
              "offline_logic_events_per_sec": round(baseline, 1), "job_events_per_sec": round(rate, 1),
              "job_over_offline": round(rate / baseline, 3),
              "first_event_processed_after_submit_s": next((round(t, 1) for t, n in samples if n), None),
              "data": str(args.data.name), "checkpoint_interval_ms": args.checkpoint_interval_ms,
              "job_args": args.job_args}
    print(json.dumps(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    if received < len(payloads):
        print(f"bench: only {received} of {len(payloads)} recommendations arrived; read the TaskManager log",
              file=sys.stderr)
        return 1
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4))
        ax.plot([t for t, _ in samples], [n for _, n in samples], label=f"job on local Flink ({rate:,.0f} ev/s)")
        t0 = next(t for t, n in samples if n)
        ax.plot([t0, t0 + len(payloads) / baseline], [0, len(payloads)], "--",
                label=f"same logic without Flink ({baseline:,.0f} ev/s)")
        ax.set_xlabel("seconds since job submission")
        ax.set_ylabel("events through the model operator")
        ax.set_title(f"End-to-end throughput, {args.data.name}, first {len(payloads):,} events")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.out.with_suffix(".png"), dpi=100)
    except ImportError:
        print("bench: matplotlib missing; no plot", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
