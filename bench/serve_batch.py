"""What serving lists in batches would buy: the model's cost per top-10 list by batch size.

    python bench/serve_batch.py [--data ../shared/data/ml-100k/u.data] [--warm 15000]
                                [--requests 2048] [--batches 1,4,16,64,256,1024]

The job asks the model for one list per event (``OnlineRanker.recommend``, a batch of one);
``recommend_many`` scores the candidates of many requests in one vectorised pass. This warms
the model on the first ``--warm`` events through the job's one-event path (as
bench/job_path.py), keeps each of the next ``--requests`` events' request (the user's
history, excluded items and situation after the event), then times ``recommend_many`` over
the same requests cut into batches of each size, with the model unchanged between sizes.
Prints ms per list per batch size and the gain over the first size (1 by default); the last stdout line is
JSON ``{"results": [{"batch", "ms_per_list", "lists_per_sec", "gain"}, ...]}``. Pinned to one
core (``taskset``-like, via sched_setaffinity) when available. Exits 2 when the input file
is absent.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.job_path import DEFAULT, warmed  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT)
    parser.add_argument("--warm", type=int, default=15_000)
    parser.add_argument("--requests", type=int, default=2_048)
    parser.add_argument("--batches", default="1,4,16,64,256,1024")
    args = parser.parse_args()
    if not args.data.is_file():
        print(f"serve_batch: {args.data} not found; pass --data", file=sys.stderr)
        return 2
    sizes = [int(b) for b in args.batches.split(",")]
    pipeline, payloads = warmed(args.data, args.warm, args.requests, "serve_batch")
    ranker = pipeline.step.ranker
    requests, situations = [], []
    for p in payloads:
        for m in pipeline.process(p):
            user = pipeline.users[m.event.user_id]
            requests.append((tuple(user.history.recent), ranker.indices(user.history.seen)))
            situations.append(user.situation)
    results: list[dict[str, float]] = []
    for size in sizes:
        started = time.perf_counter()
        for s in range(0, len(requests), size):
            ranker.recommend_many(requests[s: s + size], 10, situations[s: s + size])
        spent = time.perf_counter() - started
        ms = 1000 * spent / len(requests)
        results.append({"batch": size, "ms_per_list": round(ms, 3), "lists_per_sec": round(1000 / ms),
                        "gain": round(results[0]["ms_per_list"] / ms, 2) if results else 1.0})
        print(f"serve_batch: batch {size:5,}: {ms:.3f} ms/list, {1000 / ms:,.0f} lists/s, "
              f"{results[-1]['gain']}x batch {sizes[0]}", flush=True)
    print(json.dumps({"requests": len(requests), "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
