"""Run the cleaning stage on a file, without Flink: one message a line in, three outputs.

    python -m jobs.clean --input IN.jsonl --out OUT.jsonl --dlq DLQ.jsonl [--now-ms MS]
    python -m jobs.clean --input IN.parquet --out OUT.parquet --dlq DLQ.jsonl

Accepted lines are written to OUT unchanged; rejected ones to DLQ as dead-letter records
(reason, message, original payload, line number as offset). A Parquet input (by name or
content; columns in jobs/parquet_io.py) is read a record batch at a time, each row judged as
the JSON object the job would read from Kafka, its row number the offset; OUT is Parquet
when its name ends in ``.parquet``, else JSON lines. The last line of stdout is a JSON
summary ``{"in", "out", "dlq", "duplicates", "by_reason", "seconds", "events_per_sec"}``.
Exit 0 even when records are rejected; 2 for unusable arguments or an unreadable input.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

from jobs.parquet_io import EVENTS, ParquetSchemaError, ParquetSink, iter_parquet_events
from jobs.replay import detect_format
from operators.cleaning.cleaner import dead_letter_json
from operators.cleaning.guard import GuardConfig
from operators.cleaning.pipeline import CleaningStage
from operators.cleaning.schema import SchemaLimits
from operators.records import Event, Rejection, SourcePosition


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:   # one line, exit 2
        print(f"clean: {message}", file=sys.stderr)
        raise SystemExit(2)


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--dlq", type=Path, required=True)
    parser.add_argument("--now-ms", type=int, default=None,
                        help="ingestion clock for the future-skew rule (default: now)")
    parser.add_argument("--source", default=None, help="name recorded as the DLQ source topic")
    for name, default in vars(SchemaLimits()).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=default)
    for name, default in vars(GuardConfig()).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=default)
    args = parser.parse_args(argv)
    try:
        payloads = _payloads(args.input)
        first = next(payloads, None)
    except (OSError, ParquetSchemaError) as exc:
        print(f"clean: cannot read {args.input}: {getattr(exc, 'strerror', None) or exc}", file=sys.stderr)
        return 2
    now_ms = args.now_ms if args.now_ms is not None else int(time.time() * 1000)
    stage = CleaningStage(SchemaLimits(**{k: getattr(args, k) for k in vars(SchemaLimits())}),
                          GuardConfig(**{k: getattr(args, k) for k in vars(GuardConfig())}))
    topic = args.source or str(args.input)
    start = time.perf_counter()
    try:
        with _output(args.out) as out, args.dlq.open("w", encoding="utf-8") as dlq:
            for line_no, payload in itertools.chain([first] if first else [], payloads):
                result = stage.process(payload, SourcePosition(0, line_no), now_ms)
                if isinstance(result, Event):
                    out(payload)
                elif isinstance(result, Rejection):
                    dlq.write(dead_letter_json(result, topic, now_ms))
                    dlq.write("\n")
    except (OSError, ParquetSchemaError) as exc:
        print(f"clean: {exc}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - start
    summary = stage.counts()
    summary.update(seconds=round(seconds, 3), events_per_sec=round(summary["in"] / seconds) if seconds else None)
    print(json.dumps(summary))
    return 0


def _payloads(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line or row number, payload) of every non-blank line or every row."""
    if detect_format(path) == "parquet":
        for row_no, row in enumerate(iter_parquet_events(path)):
            yield row_no, json.dumps(row, ensure_ascii=False).encode("utf-8", "surrogateescape")
        return
    with path.open("rb") as source:
        for line_no, line in enumerate(source):
            payload = line[:-1] if line.endswith(b"\n") else line
            if payload.strip():
                yield line_no, payload


@contextlib.contextmanager
def _output(path: Path) -> Iterator[Callable[[bytes], None]]:
    """Where accepted payloads go: Parquet rows (EVENTS) for a ``.parquet`` name, else lines."""
    if path.suffix == ".parquet":
        with ParquetSink(path, EVENTS) as sink:
            yield lambda payload: sink.add(json.loads(payload))
    else:
        with path.open("wb") as out:
            def line(payload: bytes) -> None:
                out.write(payload + b"\n")
            yield line


if __name__ == "__main__":
    sys.exit(main())
