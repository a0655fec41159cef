"""Interaction logs and job output as Parquet (pyarrow), read and written in record batches.

Event logs (``EVENTS``; what ``jobs.replay``, ``jobs.evaluate``, ``jobs.clean``,
``jobs.bootstrap`` read and ``jobs.sample --format parquet`` writes), one row per interaction,
the event contract's fields (DESIGN.md §5):

    event_id string, user_id string, item_id string, event_type string,
    value double (null when the event has none), ts int64 (epoch milliseconds; a
    ``timestamp`` column is taken too and converted to milliseconds)

Extra columns are ignored; a missing column is an error that names it. A row becomes the JSON
object the job reads from Kafka, so the cleaning stage judges it exactly as it judges a live
event (a null id becomes a missing field, a dead letter with that reason).

Recommendations (``RECOMMENDATIONS``; ``jobs.tail --out FILE.parquet`` on the output topic):
one row per record, the record's fields as columns and ``items`` as a list of structs
(``item_id, score, reason, related_item, related_title``). Any other topic (metrics, dead
letters, acknowledgements; ``RECORDS``): ``topic, partition, offset, timestamp_ms``, the
record's ``kind`` when it has one, and the record as JSON text in ``value``.

>>> import io
>>> buf = io.BytesIO()
>>> with ParquetSink(buf, EVENTS, rows_per_batch=2) as sink:
...     for n in range(3):
...         sink.add({"event_id": f"e{n}", "user_id": "u", "item_id": "i", "event_type": "view",
...                   "value": None, "ts": 1000 * n})
>>> _ = buf.seek(0)
>>> [e["ts"] for e in iter_parquet_events(buf)]
[0, 1000, 2000]
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

EVENTS = pa.schema([("event_id", pa.string()), ("user_id", pa.string()), ("item_id", pa.string()),
                    ("event_type", pa.string()), ("value", pa.float64()), ("ts", pa.int64())])

_ITEM_FIELDS = ("item_id", "score", "reason", "related_item", "related_title")
_ITEM = pa.struct([(name, pa.float64() if name == "score" else pa.string()) for name in _ITEM_FIELDS])
RECOMMENDATIONS = pa.schema([("user_id", pa.string()), ("event_id", pa.string()), ("event_ts", pa.int64()),
                             ("ingest_ts", pa.int64()), ("emitted_ts", pa.int64()), ("model_version", pa.int64()),
                             ("snapshot_version", pa.int64()), ("model_shard", pa.int32()),
                             ("variant", pa.string()), ("items", pa.list_(_ITEM))])
RECORDS = pa.schema([("topic", pa.string()), ("partition", pa.int32()), ("offset", pa.int64()),
                     ("timestamp_ms", pa.int64()), ("kind", pa.string()), ("value", pa.string())])

Source = str | Path | IO[bytes]


class ParquetSchemaError(ValueError):
    """The file is not an event log this product reads (a missing or unusable column)."""


def _ts_ms(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    if pa.types.is_timestamp(column.type):
        return column.cast(pa.timestamp("ms")).cast(pa.int64())
    if pa.types.is_integer(column.type):
        return column.cast(pa.int64())
    raise ParquetSchemaError(f"column ts is {column.type}; expected int64 epoch milliseconds or a timestamp")


def iter_parquet_events(source: Source, batch_rows: int = 65_536) -> Iterator[dict[str, Any]]:
    """The log's rows as event objects, in file order, one record batch in memory at a time."""
    try:
        file = pq.ParquetFile(source)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ParquetSchemaError(f"not a readable Parquet file: {exc}") from exc
    missing = [name for name in EVENTS.names if name not in file.schema_arrow.names]
    if missing:
        raise ParquetSchemaError(f"the Parquet log lacks column(s) {', '.join(missing)}; "
                                 f"an event log has {', '.join(EVENTS.names)} (jobs/parquet_io.py)")
    for batch in file.iter_batches(batch_size=batch_rows, columns=EVENTS.names):
        columns = {name: batch.column(name) for name in EVENTS.names}
        columns["ts"] = _ts_ms(columns["ts"])
        names = list(columns)
        for row in zip(*(columns[n].to_pylist() for n in names), strict=True):
            yield {n: v for n, v in zip(names, row, strict=True) if v is not None or n == "value"}


def is_parquet(path: Path) -> bool:
    """By the magic bytes, so a log named anything is recognised."""
    try:
        with path.open("rb") as f:
            return f.read(4) == b"PAR1"
    except OSError:
        return False


class ParquetSink:
    """Rows (dicts) appended to a Parquet file of ``schema``, written a row group per
    ``rows_per_batch`` rows, so memory holds one batch whatever the file's length."""

    def __init__(self, where: Source, schema: pa.Schema, rows_per_batch: int = 50_000) -> None:
        self.schema, self.rows_per_batch = schema, rows_per_batch
        self._writer = pq.ParquetWriter(where, schema, compression="zstd")
        self._rows: list[dict[str, Any]] = []
        self.written = 0

    def add(self, row: dict[str, Any]) -> None:
        self._rows.append(row)
        if len(self._rows) >= self.rows_per_batch:
            self.flush()

    def add_columns(self, columns: dict[str, Any]) -> None:
        """A batch given column by column (arrays of equal length), written at once."""
        self.flush()
        table = pa.table(columns, schema=self.schema)
        self._writer.write_table(table)
        self.written += table.num_rows

    def flush(self) -> None:
        if self._rows:
            self._writer.write_table(pa.Table.from_pylist(self._rows, schema=self.schema))
            self.written += len(self._rows)
            self._rows = []

    def close(self) -> None:
        self.flush()
        self._writer.close()

    def __enter__(self) -> ParquetSink:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def recommendation_row(value: bytes) -> dict[str, Any] | None:
    """An output record as a ``RECOMMENDATIONS`` row (None if it is not one)."""
    try:
        record = json.loads(value)
    except ValueError:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("items"), list):
        return None
    row = {name: record.get(name) for name in RECOMMENDATIONS.names}
    row["items"] = [{k: item.get(k) for k in _ITEM_FIELDS} for item in record["items"] if isinstance(item, dict)]
    return row


def record_row(topic: str, partition: int, offset: int, timestamp_ms: int, value: bytes) -> dict[str, Any]:
    """Any topic's record as a ``RECORDS`` row."""
    text = value.decode("utf-8", "replace")
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    kind = doc.get("kind") if isinstance(doc, dict) and isinstance(doc.get("kind"), str) else None
    return {"topic": topic, "partition": partition, "offset": offset, "timestamp_ms": timestamp_ms,
            "kind": kind, "value": text}
