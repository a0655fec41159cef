"""The model's cost per event on the job's one-event path, without Flink.

    python bench/job_path.py [--data ../shared/data/ml-100k/u.data] [--warm 15000] [--events 5000]

The job hands the model one event at a time: a test on the events the fusion measures (every
fourth), the event taken into the learning batch, and a top-10 list with reasons for every
event. This replays ml-100k through the same cleaning and model code that way
(``OfflinePipeline(recommend=True, test_every_event=False)``, window features off: the job
gets them from Flink SQL), learns the first ``--warm`` events untimed, and times the next
``--events`` as a **steady state** (the model is warm, every learning boundary in the window
included). Prints ms per event and events/s, and a JSON line; pinned to one core
(``taskset -c 0``) when available. Exits 2 when the input file is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jobs.offline import OfflinePipeline  # noqa: E402
from jobs.replay import read_events  # noqa: E402

DEFAULT = ROOT.parent / "shared" / "data" / "ml-100k" / "u.data"


def warmed(data: Path, warm: int, more: int, name: str) -> tuple[OfflinePipeline, list[bytes]]:
    """The job's one-event path (lists on, window features off: the job gets them from Flink
    SQL) after learning the first ``warm`` events of ``data``, and the next ``more`` events'
    payloads; this process pinned to one core where it can be."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    events = read_events(data, "movielens-100k", warm + more)
    payloads = [(json.dumps(e) if isinstance(e, dict) else e).encode() for e in events]
    pipeline = OfflinePipeline(recommend=True, window_features=False, test_every_event=False)
    print(f"{name}: warming up on {warm:,} events ...", file=sys.stderr, flush=True)
    for p in payloads[:warm]:
        pipeline.process(p)
    return pipeline, payloads[warm:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT)
    parser.add_argument("--warm", type=int, default=15_000)
    parser.add_argument("--events", type=int, default=5_000)
    args = parser.parse_args()
    if not args.data.is_file():
        print(f"job_path: {args.data} not found; pass --data", file=sys.stderr)
        return 2
    pipeline, payloads = warmed(args.data, args.warm, args.events, "job_path")
    lists = 0
    started = time.perf_counter()
    for p in payloads:
        lists += sum(1 for m in pipeline.process(p) if m.result.recommendations)
    spent = time.perf_counter() - started
    timed = len(payloads)
    result = {"events": timed, "lists": lists, "ms_per_event": round(1000 * spent / timed, 3),
              "events_per_sec": round(timed / spent)}
    print(f"job_path: events {args.warm:,}-{args.warm + timed:,} (steady state): {result['ms_per_event']} ms/event, "
          f"{result['events_per_sec']:,} ev/s, {lists:,} lists")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
