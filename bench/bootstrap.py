"""How fast the batch bootstrap learns a log, its memory, and whether bootstrap-then-stream
recalls as streaming the whole log does.

    python -m bench.bootstrap [--data ../shared/data/ml-100k/u.data] [--cut 0.8]
    python -m bench.bootstrap --sample EVENTS,USERS,ITEMS [--seed 1] [--no-compare]

It runs jobs.bootstrap's code (jobs/bootstrap.py: the job's cleaning, window features and model
step, without Flink) on the first ``--cut`` share of the log, with the snapshot store and the
users' table in memory (Cassandra's write time is not in the rate; the bootstrap CLI prints
its own). ``--sample`` generates a synthetic log first (jobs.sample, Parquet) and bootstraps
all of it. Unless ``--no-compare``, it then compares, on the events after the cut, the
prequential recall@10 of

- stream-only: one pipeline over the whole log (what replaying the log through the job learns);
- bootstrap-then-stream: the bootstrap's snapshot and users' state, then the rest of the log
  with empty feature windows, as the job goes on after a bootstrap.

The last stdout line is JSON: ``bootstrap`` (events, seconds, events_per_sec, users,
peak_rss_mb, snapshot_bytes) and, with the comparison, ``recall_after_cut`` for both and their
difference, and ``learned`` for both (equal: nothing learned twice or lost).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from jobs.bootstrap import bootstrap, resume_offline
from jobs.offline import ModelInput, OfflinePipeline
from jobs.replay import event_ts, iter_log, read_events
from jobs.sample import SampleSpec, write_parquet
from operators.model.snapshot_store import MemoryTables, SnapshotStore
from operators.model.user_histories import MemoryHistoryTables, UserHistories

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k" / "u.data"


def recall_after(inputs: list[ModelInput], cut: int) -> tuple[float, int]:
    ranks = [m.result.rank for m in inputs if m.event.ts > cut and m.result.rank is not None]
    return sum(0 <= r < 10 for r in ranks) / max(len(ranks), 1), len(ranks)


def _payloads(events: list[dict[str, Any] | str]) -> list[bytes]:
    return [(json.dumps(e) if isinstance(e, dict) else e).encode() for e in events]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--sample", default="", help="EVENTS,USERS,ITEMS: bootstrap a synthetic Parquet log instead")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cut", type=float, default=0.8, help="share of the log the bootstrap learns")
    parser.add_argument("--no-compare", action="store_true", help="only the bootstrap's speed and memory")
    args = parser.parse_args(argv)
    out: dict[str, Any] = {}
    events: list[dict[str, Any] | str]
    cut: int | None
    with tempfile.TemporaryDirectory() as scratch:
        if args.sample:
            n, users, items = (int(x) for x in args.sample.split(","))
            path = Path(scratch) / "sample.parquet"
            started = time.perf_counter()
            write_parquet(SampleSpec(events=n, users=users, items=items, seed=args.seed), path, progress=sys.stderr)
            out["sample"] = {"events": n, "users": users, "items": items,
                             "seconds": round(time.perf_counter() - started, 1)}
            source: Any = iter_log(path)        # streamed: never whole in memory
            total, cut = n, None
            events = []
        else:
            if not args.data.is_file():
                print(f"bench.bootstrap: no log at {args.data}; give --data or --sample", file=sys.stderr)
                return 2
            events = read_events(args.data)
            total = len(events)
            head = int(total * args.cut)
            cut = event_ts(events[head - 1])
            source = events
        store, tables = SnapshotStore(MemoryTables()), MemoryHistoryTables()
        histories = UserHistories(tables, "default")
        with tqdm(source, total=total, desc="bootstrap", unit="ev", file=sys.stderr, mininterval=5.0) as bar:
            result = bootstrap(bar, OfflinePipeline(recommend=False, test_every_event=False), store, histories,
                               "interactions", until_ms=cut)
        info = store.list()[0]
        out["bootstrap"] = {"events": result.events_read - result.after_cut, "learned": result.learned,
                            "seconds": result.seconds,
                            "events_per_sec": round((result.events_read - result.after_cut) / result.seconds),
                            "users": result.users, "snapshot_bytes": info.size,
                            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
        print(json.dumps(out["bootstrap"]), file=sys.stderr)
        if not args.no_compare and cut is not None:
            payloads = _payloads(events)
            whole = OfflinePipeline(recommend=False)
            started = time.perf_counter()
            stream_recall, tested = recall_after(whole.run(tqdm(payloads, desc="stream-only", unit="ev",
                                                                file=sys.stderr, mininterval=5.0)), cut)
            stream_s = time.perf_counter() - started
            rest = payloads[result.events_read - result.after_cut:]
            then = resume_offline(store, histories, {e["user_id"] for e in events if isinstance(e, dict)},
                                  OfflinePipeline(recommend=False))
            boot_recall, boot_tested = recall_after(then.run(rest), cut)
            out["compare"] = {"cut_ts": cut, "events_after_cut": len(rest),
                              "recall_after_cut": {"stream_only": round(stream_recall, 4),
                                                   "bootstrap_then_stream": round(boot_recall, 4),
                                                   "difference": round(boot_recall - stream_recall, 4)},
                              "tested": {"stream_only": tested, "bootstrap_then_stream": boot_tested},
                              "learned": {"stream_only": whole.step.ranker.learned_events,
                                          "bootstrap_then_stream": then.step.ranker.learned_events},
                              "stream_only_offline_seconds": round(stream_s, 1)}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
