"""Print records of a topic as they arrive (read_committed), e.g.

    python -m jobs.tail recommendations [--from-beginning] [--max N] [--timeout S]
    python -m jobs.tail recommendations --skip-existing --expect 100000 --ready-file F

``--expect N`` shows a progress bar of N records and prints every ``--every``-th one; at the
end it prints a JSON summary with the end-to-end rate. ``--skip-existing`` starts at the
topic's current end, and ``--ready-file`` is touched once that position is fixed, so that a
script can start producing only after the reader knows where to begin.

``--out FILE.parquet`` also writes every record read to a Parquet file for analysis
(jobs/parquet_io.py: on the recommendations topic one row per list with its items; on any
other topic, metrics or dead letters, the record's JSON with its topic, partition, offset and
``kind``), e.g. ``python -m jobs.tail recommendations --from-beginning --timeout 10 --out recs.parquet``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("topic", nargs="?", default="recommendations")
    parser.add_argument("--bootstrap-servers", default="127.0.0.1:9092")
    parser.add_argument("--security-file", default=os.environ.get("STREAMREC_SECURITY_FILE", ""),
                        help="Kafka credentials and TLS (operators/connections.py)")
    parser.add_argument("--from-beginning", action="store_true")
    parser.add_argument("--skip-existing", action="store_true", help="start at the current end of the topic")
    parser.add_argument("--ready-file", type=Path, help="touched once the start position is fixed")
    parser.add_argument("--max", type=int, default=0, help="stop after N records (0 = never)")
    parser.add_argument("--expect", type=int, default=0, help="show progress towards N records, then stop")
    parser.add_argument("--every", type=int, default=5000, help="with --expect: print every N-th record")
    parser.add_argument("--timeout", type=float, default=0.0, help="stop after S seconds idle (0 = never)")
    parser.add_argument("--raw", action="store_true", help="print values as they are")
    parser.add_argument("--out", type=Path, help="also write the records to this Parquet file")
    args = parser.parse_args(argv)

    from confluent_kafka import TopicPartition
    from tqdm import tqdm

    from jobs.kafka_io import consumer, ensure_topics

    ensure_topics(args.bootstrap_servers, [args.topic], security_file=args.security_file)
    c = consumer(args.bootstrap_servers, args.topic, f"tail-{uuid.uuid4()}", args.from_beginning,
                 subscribe=not args.skip_existing, security_file=args.security_file)
    if args.skip_existing:
        meta = c.list_topics(args.topic, timeout=30).topics[args.topic]
        starts = [TopicPartition(args.topic, p, c.get_watermark_offsets(TopicPartition(args.topic, p),
                                                                        timeout=30)[1])
                  for p in sorted(meta.partitions)]
        c.assign(starts)
    if args.ready_file:
        args.ready_file.touch()
    sink = _ParquetOut(args.out) if args.out else None
    limit = args.expect or args.max
    bar = tqdm(total=args.expect, desc="recommendations", unit="rec", file=sys.stderr) if args.expect else None
    seen, last, first_at = 0, time.monotonic(), None
    try:
        while not limit or seen < limit:
            msg = c.poll(0.5)
            if msg is None:
                if args.timeout and time.monotonic() - last > args.timeout:
                    break
                continue
            if msg.error():
                print(f"tail: {msg.error()}", file=sys.stderr)
                continue
            seen, last = seen + 1, time.monotonic()
            first_at = first_at or last
            value = msg.value() or b""
            if sink is not None:
                sink(args.topic, msg.partition() or 0, msg.offset() or 0, msg.timestamp()[1], value)
            if bar is not None:
                bar.update(1)
                if seen % args.every:
                    continue
            text = value.decode("utf-8", "replace") if args.raw else _pretty(value)
            (bar.write if bar is not None else print)(text)
    except KeyboardInterrupt:
        pass
    finally:
        c.close()
        if bar is not None:
            bar.close()
        if sink is not None:
            print(f"tail: wrote {sink.close()} records to {args.out}"
                  + (f" ({sink.skipped} records that are not lists left out)" if sink.skipped else ""), file=sys.stderr)
    if args.expect:
        span = (last - first_at) if first_at else 0.0
        print(json.dumps({"records": seen, "expected": args.expect, "seconds": round(span, 1),
                          "records_per_sec": round(seen / span, 1) if span else None}))
        return 0 if seen >= args.expect else 1
    return 0


class _ParquetOut:
    """Records of one topic into a Parquet file: recommendation rows when the records are
    lists (jobs/parquet_io.RECOMMENDATIONS), else generic record rows (RECORDS); the first
    record decides, so one file has one schema."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sink: Any = None
        self.lists = False
        self.skipped = 0        # records that are not lists, on a topic of lists

    def __call__(self, topic: str, partition: int, offset: int, timestamp_ms: int, value: bytes) -> None:
        from jobs.parquet_io import RECOMMENDATIONS, RECORDS, ParquetSink, recommendation_row, record_row
        row = recommendation_row(value) if self.sink is None or self.lists else None
        if self.sink is None:
            self.lists = row is not None
            self.sink = ParquetSink(self.path, RECOMMENDATIONS if self.lists else RECORDS)
        if row is not None:
            self.sink.add(row)
        elif self.lists:
            self.skipped += 1
        else:
            self.sink.add(record_row(topic, partition, offset, timestamp_ms, value))

    def close(self) -> int:
        if self.sink is None:
            return 0
        self.sink.close()
        return int(self.sink.written)


def _pretty(value: bytes) -> str:
    try:
        rec = json.loads(value)
        items = ", ".join(_describe(i) for i in rec.get("items", [])[:5])
        return f"user {rec['user_id']:>6} after {rec['event_id']}: {items}  [model {rec['model_version']}]"
    except (ValueError, KeyError, TypeError):
        return value.decode("utf-8", "replace")



def _describe(item: dict[str, Any]) -> str:
    """``id (reason)``, plus what it relates to in the user's history when the model says."""
    related = item.get("related_title") or item.get("related_item")
    return f"{item['item_id']} ({item['reason']}{f', like {related}' if related else ''})"


if __name__ == "__main__":
    sys.exit(main())
