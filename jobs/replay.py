"""Replay an interaction log into Kafka in timestamp order (ties keep line order).

    python -m jobs.replay PATH [--format auto|movielens-100k|movielens-csv|amazon-ratings|jsonl|parquet]
                               [--topic interactions] [--rate EVENTS_PER_S] [--limit N]
                               [--final-heartbeat-ms MS]

MovieLens ratings and Amazon reviews ("ratings only" files: ``item,user,rating,unix_seconds``,
no header; ``--format amazon-ratings``) become ``rating`` events (value = stars); a Parquet log has the event
fields as columns (jobs/parquet_io.py). Messages are keyed by user id.
After the last event, a heartbeat (``{"heartbeat_ts": last ts + MS}``, default one minute) on
every partition moves the job's event-time clock past the log's end, so the last events are
processed too.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tqdm import tqdm

from jobs.parquet_io import is_parquet, iter_parquet_events


def _movielens_100k(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="latin-1") as f:
        for line in f:
            parts = line.split("\t")
            if len(parts) >= 4:
                user, item, rating, ts = parts[:4]
                yield _rating(user, item, float(rating), int(ts))


def _movielens_csv(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            yield _rating(row["userId"], row["movieId"], float(row["rating"]), int(float(row["timestamp"])))


def _amazon_ratings(path: Path) -> Iterator[dict[str, Any]]:
    """The "ratings only" files of the Amazon review data (McAuley et al., 2014 and 2018):
    ``item,user,rating,unix_seconds`` without a header, one review per row."""
    with path.open(encoding="utf-8", newline="") as f:
        for line, row in enumerate(csv.reader(f), start=1):
            if len(row) != 4:
                raise ValueError(f"line {line}: {len(row)} fields, expected item,user,rating,unix_seconds")
            item, user, rating, ts = row
            yield _rating(user, item, float(rating), int(ts), prefix="az")


def _rating(user: str, item: str, rating: float, ts_seconds: int, prefix: str = "ml") -> dict[str, Any]:
    return {"event_id": f"{prefix}-{user}-{item}-{ts_seconds}", "user_id": user, "item_id": item,
            "event_type": "rating", "value": rating, "ts": ts_seconds * 1000}


def _jsonl(path: Path) -> Iterator[dict[str, Any] | str]:
    """JSON lines; a line that is not an object with an integer ts is passed through as is
    (the job's cleaning stage must see bad input too) and sorted as if its ts were 0."""
    with path.open(encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            try:
                doc = json.loads(line)
            except ValueError:
                yield line
                continue
            yield doc if isinstance(doc, dict) else line


READERS: dict[str, Callable[[Path], Iterator[dict[str, Any] | str]]] = {
    "movielens-100k": _movielens_100k, "movielens-csv": _movielens_csv, "amazon-ratings": _amazon_ratings,
    "jsonl": _jsonl, "parquet": iter_parquet_events}
FORMATS = ["auto", *READERS]


def detect_format(path: Path) -> str:
    if path.suffix == ".parquet" or is_parquet(path):
        return "parquet"
    if path.name == "u.data":
        return "movielens-100k"
    if path.suffix == ".csv":
        return "movielens-csv"
    return "jsonl"


def event_ts(event: dict[str, Any] | str) -> int | None:
    """An event's integer ts, if it has one (a line passed through as is has none)."""
    ts = event.get("ts") if isinstance(event, dict) else None
    return ts if isinstance(ts, int) else None


def read_events(path: Path, fmt: str = "auto", limit: int | None = None) -> list[dict[str, Any] | str]:
    """Events sorted by ts; ties (and unparseable lines) keep their line order."""
    fmt = detect_format(path) if fmt == "auto" else fmt
    events = list(READERS[fmt](path))
    order = sorted(range(len(events)), key=lambda n: (event_ts(events[n]) or 0, n))
    events = [events[n] for n in order]
    return events[:limit] if limit is not None else events


def iter_log(path: Path, fmt: str = "auto") -> Iterator[dict[str, Any] | str]:
    """Events for a run that streams them: a Parquet log in file order, a record batch at a
    time (it must be in event-time order up to the job's out-of-orderness bound, as a topic
    is; later rows are late events); the text formats sorted by ts, as ``read_events``."""
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt == "parquet":
        yield from iter_parquet_events(path)
    else:
        yield from read_events(path, fmt)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", type=Path)
    parser.add_argument("--format", default="auto", choices=FORMATS)
    parser.add_argument("--topic", default="interactions")
    parser.add_argument("--bootstrap-servers", default="127.0.0.1:9092")
    parser.add_argument("--security-file", default=os.environ.get("STREAMREC_SECURITY_FILE", ""),
                        help="Kafka credentials and TLS (operators/connections.py)")
    parser.add_argument("--rate", type=float, default=0.0, help="events per second; 0 = unthrottled")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--final-heartbeat-ms", type=int, default=60_000,
                        help="event time after the last event to send a heartbeat at; 0 = none")
    args = parser.parse_args(argv)
    if not args.path.is_file():
        print(f"replay: no such file: {args.path}", file=sys.stderr)
        return 2

    from jobs.kafka_io import ensure_topics, producer

    try:
        events = read_events(args.path, args.format, args.limit)
    except ValueError as exc:      # ParquetSchemaError: a log this product cannot read
        print(f"replay: {args.path}: {exc}", file=sys.stderr)
        return 2
    ensure_topics(args.bootstrap_servers, [args.topic], security_file=args.security_file)
    prod = producer(args.bootstrap_servers, args.security_file)
    start = time.monotonic()
    for n, event in enumerate(tqdm(events, desc="replay", unit="ev", file=sys.stderr, mininterval=1.0)):
        if isinstance(event, dict):
            key = str(event.get("user_id", "")).encode("utf-8", "surrogateescape")
            value = json.dumps(event, ensure_ascii=False).encode("utf-8", "surrogateescape")
        else:
            key, value = b"", event.encode("utf-8", "surrogateescape")
        while True:
            try:
                prod.produce(args.topic, value=value, key=key)
                break
            except BufferError:
                prod.poll(0.1)
        prod.poll(0)
        if args.rate > 0:
            ahead = (n + 1) / args.rate - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)
    last_ts = max((ts for e in events if (ts := event_ts(e)) is not None), default=None)
    if args.final_heartbeat_ms > 0 and last_ts is not None:
        clock = json.dumps({"heartbeat_ts": last_ts + args.final_heartbeat_ms}).encode()
        # one per partition: with several source subtasks, each one's watermark must move
        for partition in prod.list_topics(args.topic, timeout=30).topics[args.topic].partitions:
            prod.produce(args.topic, value=clock, partition=partition)
    remaining = prod.flush(60)
    elapsed = time.monotonic() - start
    print(json.dumps({"sent": len(events) - remaining, "seconds": round(elapsed, 2),
                      "events_per_sec": round(len(events) / elapsed, 1) if elapsed else None}))
    return 0 if remaining == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
