"""End-to-end throughput of the job on the local cluster, against the same logic without Flink.

    python bench/e2e_throughput.py [--events 20000] [--job-args "--bundle-size 5000"]

Needs the local services (deploy/local/services up). Pushes the first N events of the log
through the job on fresh topics (progress: the output topic's end offset, bench/jobrun.py)
and, as the baseline measured in the same run, through the same stages in-process
(jobs/offline.py). Prints one JSON line; writes bench/results/e2e_throughput.{json,png}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.jobrun import DEFAULT_DATA, load_input, run_job  # noqa: E402
from jobs.offline import OfflinePipeline  # noqa: E402


def offline_rate(payloads: list[bytes]) -> float:
    pipeline = OfflinePipeline(test_every_event=False)   # the job's work: output lists, sampled tests
    start = time.perf_counter()
    pipeline.run(payloads)
    return len(payloads) / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--job-args", default="", help="extra job flags, e.g. '--bundle-size 5000'")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "e2e_throughput")
    args = parser.parse_args()
    loaded = load_input(args.data, args.events)
    if loaded is None:
        return 2
    payloads, keys = loaded

    baseline = offline_rate(payloads)
    run = run_job(payloads, keys, args.job_args.split(), "job")
    rate = run.events_per_sec
    result = {"events": len(payloads), "offline_logic_events_per_sec": round(baseline, 1),
              "job_events_per_sec": round(rate, 1), "job_over_offline": round(rate / baseline, 3),
              "first_output_after_submit_s": run.first_output_s, "all_output_after_submit_s": run.all_output_s,
              "data": args.data.name,
              "job_args": args.job_args}
    print(json.dumps(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    if run.samples[-1][1] < len(payloads):
        print(f"bench: only {run.samples[-1][1]} of {len(payloads)} outputs; read the TaskManager log",
              file=sys.stderr)
        return 1
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4))
        ax.plot([t for t, _ in run.samples], [n for _, n in run.samples],
                label=f"job on local Flink ({rate:,.0f} ev/s)")
        t0 = run.first_output_s or 0.0
        ax.plot([t0, t0 + len(payloads) / baseline], [0, len(payloads)], "--",
                label=f"same logic without Flink ({baseline:,.0f} ev/s)")
        ax.set_xlabel("seconds since job submission")
        ax.set_ylabel("recommendations written")
        ax.set_title(f"End-to-end throughput, {args.data.name}, first {len(payloads):,} events")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.out.with_suffix(".png"), dpi=100)
    except ImportError:
        print("bench: matplotlib missing; no plot", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
