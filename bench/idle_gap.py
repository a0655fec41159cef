"""Does every event come out after a quiet spell? The reproducer of the source-idleness stall
(README "Event time", point 2).

    python -m bench.idle_gap [--gaps 5 6 7 7.5 8 8.5 9] [--job-args "--source-idle-timeout-ms 10000"]

Needs the local services (deploy/local/services up). For each gap G, on fresh topics: send 300
events, submit the job, read their 300 recommendations, wait G seconds without input, send
600 more (each batch followed by a heartbeat that moves the watermark past it) and wait up to
90 s for all 900. A batch still missing then gets a heartbeat an hour of event time later and
30 s more. With a 10 s idle timeout, gaps that end as the source turns idle leave the second
batch in the job; with idleness off (the default) every gap delivers. Prints one line per
gap and, last, a JSON summary; exits 1 when any gap stalled.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from jobs.kafka_io import producer  # noqa: E402
from tests.integration.harness import BOOTSTRAP, OutputCounter, Pipeline, stream  # noqa: E402


def one_gap(gap_s: float, job_args: list[str]) -> dict[str, object]:
    p = Pipeline(snapshot_every=100, extra_args=job_args)
    p.create_topics()
    events = stream(900, seed=12)
    try:
        p.send(events[:300])
        p.submit()
        assert len(p.read("output", 300)) == 300, "the first batch did not come out"
        time.sleep(gap_s)
        p.send(events[300:])
        counter = OutputCounter(p)
        try:
            try:
                return {"gap_s": gap_s, "outcome": "delivered", "seconds": round(counter.wait_for(900, timeout=90), 1)}
            except AssertionError:
                stalled_at = counter.count
            clock = producer(BOOTSTRAP)
            clock.produce(p.topics["input"], value=json.dumps({"heartbeat_ts": events[-1]["ts"] + 3_600_000}).encode(),
                          partition=0)
            clock.flush(10)
            try:
                counter.wait_for(900, timeout=30)
                return {"gap_s": gap_s, "outcome": "released by a later heartbeat", "outputs": stalled_at}
            except AssertionError:
                return {"gap_s": gap_s, "outcome": "stalled", "outputs": counter.count}
        finally:
            counter.close()
    finally:
        p.cancel_all()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gaps", type=float, nargs="+", default=[5, 6, 7, 7.5, 8, 8.5, 9])
    parser.add_argument("--job-args", default="", help="extra job flags, e.g. '--source-idle-timeout-ms 10000'")
    args = parser.parse_args(argv)
    results = []
    for gap in args.gaps:
        results.append(one_gap(gap, shlex.split(args.job_args)))
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    delivered = sum(r["outcome"] == "delivered" for r in results)
    print(json.dumps({"job_args": args.job_args, "gaps": len(results), "delivered": delivered, "runs": results}))
    return 0 if delivered == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
