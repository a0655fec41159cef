"""Event time: which clock an event runs on, and the one watermark that judges lateness.

The rules (README "Event time"):

1. **An event never happens after it reached Kafka.** Its event time is
   ``min(ts, record timestamp)``: a producer whose clock runs ahead cannot move event time past
   the ingestion clock, so it cannot make anyone else's events late. An event more than
   ``max_future_skew_ms`` ahead is garbage and goes to the dead-letter topic
   (``ts_in_future``); up to that, it is kept with its time clamped. The two limits cannot
   contradict each other: the skew limit only decides dead letter or clamp, and the watermark
   never sees a time ahead of the ingestion clock. (Use ``LogAppendTime`` on the input topic
   when producers set the record timestamp from the same clock as ``ts``.)
2. **One watermark, made in the Kafka source, per partition**: ``max event time - bound - 1 ms``
   per partition, the minimum over partitions, idle partitions ignored after a timeout. Only a
   record that passes the schema checks below moves it, so a rejected record cannot move event
   time (in a bulk replay a garbage record stamped "now" would otherwise make history late).
3. **Lateness is decided once**, right before the first event-time operator, against that
   operator's own watermark (``CURRENT_WATERMARK``): an event at or behind it goes to the
   dead-letter topic as ``late``, and every later operator sees only rows ahead of its
   watermark, so none of them can drop a row.

The source computes event time with a Java function (``jvm/``) that applies the cleaner's
checks with a JSON parser as strict as Python's, so a record moves event time exactly when the
cleaner will accept it (``tests/flink`` runs both on a hostile corpus and compares).

>>> event_time(1_000, ingest_ms=900), event_time(800, ingest_ms=900), event_time(800, ingest_ms=None)
(900, 800, 800)
>>> tracker = WatermarkTracker(5_000)
>>> tracker.observe(10_000); tracker.watermark(), is_late(4_999, tracker.watermark()), is_late(5_000, None)
(4999, True, False)
"""

from __future__ import annotations

from operators.cleaning.schema import SchemaLimits
from operators.records import Rejection, SourcePosition


def event_time(ts: int, ingest_ms: int | None) -> int:
    """The time an event is taken to have happened: its ``ts``, at most its ingestion time."""
    return ts if ingest_ms is None else min(ts, ingest_ms)


def is_late(ts: int, watermark: int | None) -> bool:
    """At the watermark counts as late: the watermark says no such event comes any more."""
    return watermark is not None and ts <= watermark


class WatermarkTracker:
    """Offline stand-in for the job's watermark: max event time seen so far minus the bound
    minus 1 ms, as of before the current event (one stream, one partition). The job emits its
    watermark periodically, so it lags this one: the job calls at most the events this calls
    late."""

    def __init__(self, max_out_of_orderness_ms: int) -> None:
        self.bound = max_out_of_orderness_ms
        self.max_ts: int | None = None

    def watermark(self) -> int | None:
        return None if self.max_ts is None else self.max_ts - self.bound - 1

    def observe(self, ts: int) -> None:
        self.max_ts = ts if self.max_ts is None else max(self.max_ts, ts)


# The source's event-time function (jvm/src/main/java/streamrec/flink/EventTimeFunction.java).
EVENT_TIME_FUNCTION = "streamrec_event_time"
EVENT_TIME_CLASS = "streamrec.flink.EventTimeFunction"


def sql_interval(ms: int) -> str:
    """A Flink SQL interval literal of ``ms`` milliseconds. (The code generator of plain
    expressions refuses a day precision above 2, window functions need more for long windows.)

    >>> sql_interval(90_061_001), sql_interval(100 * 86_400_000)
    ("INTERVAL '1 01:01:01.001' DAY TO SECOND(3)", "INTERVAL '100 00:00:00.000' DAY(6) TO SECOND(3)")
    """
    seconds, millis = divmod(ms, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    precision = "DAY" if days < 100 else "DAY(6)"
    return f"INTERVAL '{days} {hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}' {precision} TO SECOND(3)"


def event_time_sql(limits: SchemaLimits, payload: str = "payload", record_ts: str = "kafka_ts") -> str:
    """SQL for the source's event-time column (``TIMESTAMP_LTZ(3)``): ``min(ts, record_ts)``
    for a record the cleaner accepts as an event or heartbeat, else the epoch, which moves no
    watermark. The checks run in the JVM, in the source (a strict JSON parser and the cleaner's
    rules, at about a microsecond a record); the JSON functions of Flink SQL cost 80 µs a
    record for the same and their parser is more lenient than Python's.

    >>> event_time_sql(SchemaLimits())
    'streamrec_event_time(payload, kafka_ts, 1048576, 16, 256, 631152000000, 300000)'
    """
    lim = limits
    return (f"{EVENT_TIME_FUNCTION}({payload}, {record_ts}, {lim.max_message_bytes}, {lim.max_depth}, "
            f"{lim.max_id_length}, {lim.min_ts_ms}, {lim.max_future_skew_ms})")


def watermark_sql(column: str, max_out_of_orderness_ms: int) -> str:
    """Flink's bounded out-of-orderness watermark (max - bound - 1 ms) as a DDL clause."""
    return f"WATERMARK FOR {column} AS {column} - {sql_interval(max_out_of_orderness_ms + 1)}"


def on_time_sql(view: str) -> str:
    """The events the first event-time operator may see: ahead of its watermark."""
    return (f"SELECT * FROM {view} WHERE CURRENT_WATERMARK(rowtime) IS NULL "
            f"OR rowtime > CURRENT_WATERMARK(rowtime)")


def late_sql(view: str) -> str:
    """The rest, with what a dead letter needs: original payload, position, ts, watermark.
    Both queries read one stream in one order, so each event lands in exactly one of them."""
    return (f"SELECT `raw`, `partition`, `offset`, ts, CURRENT_WATERMARK(rowtime) AS `watermark` FROM {view} "
            f"WHERE rowtime <= CURRENT_WATERMARK(rowtime)")


def late_rejection(ts: int, watermark: int, bound_ms: int, payload: bytes, position: SourcePosition,
                   ) -> Rejection:
    """The dead letter of a late event: how far behind, and the likely cause.

    >>> r = late_rejection(1_000, 61_000, 5_000, b"{}", SourcePosition(0, 7))
    >>> r.reason, r.details, r.message[:48]
    ('late', {'watermark': 61000, 'behind_ms': 60000}, 'ts 1000 is 60000 ms at or behind the watermark 6')
    """
    details = {"watermark": watermark, "behind_ms": watermark - ts}
    return Rejection("late", _late_message(ts, watermark, bound_ms), payload, position, details)


def _late_message(ts: int, watermark: int, bound_ms: int) -> str:
    return (f"ts {ts} is {watermark - ts} ms at or behind the watermark {watermark} (the newest event time "
            f"seen on the slowest partition minus the {bound_ms} ms out-of-orderness bound): the event "
            f"reached Kafka that long after newer ones; its producer's clock may be behind")
