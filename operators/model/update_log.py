"""Reading the model's update log (updates.py) back from Kafka when the model operator starts.

The job writes the log through an exactly-once sink, so a ``read_committed`` reader sees
exactly the updates of completed checkpoints. Before reading, it waits (bounded) until no
transaction is open on the log: after a failure the restarted sink commits the last
checkpoint's transaction and aborts the failed attempt's, and the reader must see the first
and not wait forever for the second. Records are keyed by lineage; only the wanted lineage is
parsed. The topic uses log-append time, so ``since_ms`` skips what precedes a snapshot.

Retention may delete updates a restart still needs (a snapshot older than the topic's
retention, with updates after it): the reader then fails with ``UpdateLogTruncated``, a clear
error naming the way out, rather than rebuild a model that silently lacks events.
``ensure_log_topic`` also refuses a topic that compacts (which keeps one update per lineage)
or keeps updates for less than ``min_retention_ms``.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from operators.connections import security
from operators.model.updates import ModelUpdate

log = logging.getLogger(__name__)

TOPIC_CONFIG = {"message.timestamp.type": "LogAppendTime", "cleanup.policy": "delete"}
MIN_RETENTION_MS = 24 * 3_600_000


class UpdateLogTruncated(RuntimeError):
    """Updates a restart needs were deleted from the log (retention, or records deleted by hand)."""


def ensure_log_topic(bootstrap: str, topic: str, timeout: float = 30.0,
                     min_retention_ms: int = MIN_RETENTION_MS, security_file: str = "") -> None:
    """Create the update-log topic (one partition, log-append time) unless it exists; check
    that an existing one deletes by time only, and keeps updates at least ``min_retention_ms``."""
    admin = AdminClient(security(security_file).librdkafka(bootstrap))
    if topic not in admin.list_topics(timeout=timeout).topics:
        future = admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=-1, config=TOPIC_CONFIG)],
                                     request_timeout=timeout)[topic]
        try:
            future.result(timeout)
        except Exception as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise RuntimeError(f"could not create the update-log topic {topic}: {exc}") from exc
    entries = _topic_config(admin, topic, timeout)
    problem = log_topic_problem({name: entry.value for name, entry in entries.items()}, min_retention_ms)
    if problem:
        raise RuntimeError(f"update-log topic {topic}: {problem}")


def _topic_config(admin: AdminClient, topic: str, timeout: float) -> dict:
    """A topic's configuration entries. A topic just created may be unknown to the broker that
    answers for a moment (the creation returns before its metadata spreads), so
    UNKNOWN_TOPIC_OR_PART is retried until ``timeout``."""
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    deadline = time.monotonic() + timeout
    while True:
        try:
            return admin.describe_configs([resource], request_timeout=timeout)[resource].result(timeout)
        except Exception as exc:
            code = exc.args[0].code() if exc.args and isinstance(exc.args[0], KafkaError) else None
            if code != KafkaError.UNKNOWN_TOPIC_OR_PART or time.monotonic() > deadline:
                raise
            log.info("update-log topic %s not known to the broker yet; asking again", topic)
            time.sleep(0.2)


def log_topic_problem(config: dict[str, str | None], min_retention_ms: int) -> str:
    """Why a topic with this configuration cannot hold the update log ("" if it can).

    >>> log_topic_problem({"cleanup.policy": "delete", "retention.ms": "604800000"}, 86_400_000)
    ''
    >>> log_topic_problem({"cleanup.policy": "compact"}, 86_400_000)[:40]
    'cleanup.policy=compact keeps one update '
    >>> log_topic_problem({"cleanup.policy": "delete", "retention.ms": "3600000"}, 86_400_000)[:45]
    'retention.ms=3600000 (1.0 h) is shorter than '
    """
    policy = config.get("cleanup.policy") or "delete"
    if "compact" in policy:
        return (f"cleanup.policy={policy} keeps one update per lineage, the model needs all of them; "
                "set cleanup.policy=delete")
    retention = int(config.get("retention.ms") or -1)
    if 0 <= retention < min_retention_ms:
        return (f"retention.ms={retention} ({retention / 3_600_000:.1f} h) is shorter than the "
                f"{min_retention_ms / 3_600_000:.1f} h the job needs: a restart replays every update after the "
                "newest snapshot, so the topic must keep more than the longest time between snapshots plus the "
                "longest outage to recover from (raise retention.ms, or lower --snapshot-every-events and "
                "--update-log-min-retention-ms together)")
    return ""


def truncated_after(first_retained: int, first_since: int, end: int) -> bool:
    """Whether records appended at or after a time may have been deleted from a partition,
    from its first retained offset, the first offset at or after that time (-1: none), and its
    end offset. Log-append time grows with offsets, so records deleted from before the first
    retained one are at or after the time only if no retained record precedes it.

    >>> truncated_after(0, 5, 9)        # nothing deleted
    False
    >>> truncated_after(3, 5, 9)        # deleted records are older than a retained older one
    False
    >>> truncated_after(5, 5, 9)        # the first retained record is already after the time
    True
    >>> truncated_after(9, -1, 9), truncated_after(4, -1, 9)   # all deleted / none since
    (True, False)
    """
    if first_retained == 0:
        return False
    if first_since < 0:
        return first_retained >= end
    return first_since <= first_retained


def _consumer(bootstrap: str, isolation: str, security_file: str) -> Consumer:
    return Consumer({**security(security_file).librdkafka(bootstrap),
                     "group.id": f"streamrec-update-log-{uuid.uuid4().hex}", "isolation.level": isolation,
                     "enable.auto.commit": False, "enable.partition.eof": True,
                     "auto.offset.reset": "earliest", "fetch.max.bytes": 52_428_800})


def _settle(committed: Consumer, raw: Consumer, tps: list[TopicPartition], timeout_s: float) -> None:
    """Wait (bounded) until every transaction on the log is committed or aborted."""
    deadline = time.monotonic() + timeout_s
    while True:
        open_tx = [tp.partition for tp in tps
                   if committed.get_watermark_offsets(tp, timeout=10, cached=False)[1]
                   < raw.get_watermark_offsets(tp, timeout=10, cached=False)[1]]
        if not open_tx or time.monotonic() > deadline:
            if open_tx:
                log.warning("update log %s: a transaction is still open on partitions %s after %.0f s; "
                            "reading what is committed", tps[0].topic, open_tx, timeout_s)
            return
        time.sleep(0.5)


def read_updates(bootstrap: str, topic: str, lineage: str, since_ms: int | None = None,
                 settle_timeout_s: float = 60.0, read_timeout_s: float = 600.0,
                 security_file: str = "") -> Iterator[ModelUpdate]:
    """The committed updates of ``lineage`` in log order (appended at or after ``since_ms``)."""
    committed = _consumer(bootstrap, "read_committed", security_file)
    raw = _consumer(bootstrap, "read_uncommitted", security_file)
    try:
        partitions = sorted(committed.list_topics(topic, timeout=30).topics[topic].partitions)
        tps = [TopicPartition(topic, p) for p in partitions]
        _settle(committed, raw, tps, settle_timeout_s)
        starts = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions]
        if since_ms is not None:
            found = committed.offsets_for_times([TopicPartition(topic, p, since_ms) for p in partitions], timeout=30)
            starts = []
            for tp in found:
                low, high = committed.get_watermark_offsets(tp, timeout=10, cached=False)
                if truncated_after(low, tp.offset, high):
                    raise UpdateLogTruncated(
                        f"update log {topic} partition {tp.partition}: updates appended after {since_ms} (epoch ms) "
                        f"may have been deleted (the oldest kept is offset {low}), so the model cannot be rebuilt "
                        "exactly from its snapshot. Keep the topic longer than the time between snapshots; to go on "
                        "from the snapshot anyway, start a new lineage from it: python -m jobs.models rollback VERSION")
                # offset -1: nothing appended since then; start at the end (its EOF ends the read)
                starts.append(tp if tp.offset >= 0 else TopicPartition(topic, tp.partition, high))
        committed.assign(starts)
        remaining, key = set(partitions), lineage.encode()
        deadline = time.monotonic() + read_timeout_s
        while remaining:
            if time.monotonic() > deadline:
                raise TimeoutError(f"update log {topic}: not read to its end within {read_timeout_s:.0f} s")
            msg = committed.poll(1.0)
            if msg is None:
                continue
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    remaining.discard(msg.partition())
                    continue
                raise RuntimeError(f"update log {topic}: {error}")
            if msg.key() == key:
                yield ModelUpdate.from_json(msg.value() or b"{}")
    finally:
        committed.close()
        raw.close()


class KafkaLogTail:
    """The update log as a replica of the shared model reads it (replica.UpdateLogTail): one
    partition, ``read_committed``, with the offsets the replica's position is counted in.

    A read to the end does not wait for open transactions, unlike ``read_updates``: the other
    subtasks may already be writing theirs, and whatever commits later the replica applies
    when it next polls. ``end`` (where a new lineage starts) does wait."""

    def __init__(self, bootstrap: str, topic: str, settle_timeout_s: float = 60.0,
                 read_timeout_s: float = 600.0, security_file: str = "") -> None:
        self.topic, self.settle_timeout_s, self.read_timeout_s = topic, settle_timeout_s, read_timeout_s
        self.tp = TopicPartition(topic, 0)
        self.committed = _consumer(bootstrap, "read_committed", security_file)
        self._raw = _consumer(bootstrap, "read_uncommitted", security_file)
        self._position = -1          # the offset the consumer reads next (-1: not assigned)

    def end(self) -> int:
        _settle(self.committed, self._raw, [self.tp], self.settle_timeout_s)
        return int(self.committed.get_watermark_offsets(self.tp, timeout=10, cached=False)[1])

    def read(self, start: int, wait: bool) -> list[tuple[int, ModelUpdate]]:
        if start != self._position or wait:     # (re)assigned: a read to the end ends at its EOF
            low, _ = self.committed.get_watermark_offsets(self.tp, timeout=10, cached=False)
            if low > start:
                raise UpdateLogTruncated(
                    f"update log {self.topic}: the shared model continues from offset {start}, but the oldest update "
                    f"kept is at {low} (retention deleted the rest), so the model cannot be rebuilt exactly. Keep the "
                    "topic longer than the time between snapshots; to go on from the snapshot anyway, start a new "
                    "lineage from it: python -m jobs.models rollback VERSION")
            self.committed.assign([TopicPartition(self.topic, 0, start)])
            self._position = start
        out: list[tuple[int, ModelUpdate]] = []
        deadline = time.monotonic() + self.read_timeout_s
        while True:
            messages = self.committed.consume(500, timeout=1.0 if wait else 0)
            at_end = False
            for msg in messages:
                error = msg.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        raise RuntimeError(f"update log {self.topic}: {error}")
                    # The end as it stood then. Records committed since may follow in this same
                    # batch, and the consumer has moved past them: they are taken too, or the
                    # next read would start after them (a replica that skipped updates; found
                    # by the broker-kill test at parallelism 2).
                    at_end = True
                    continue
                offset = int(msg.offset() or 0)
                out.append((offset, ModelUpdate.from_json(msg.value() or b"{}")))
                self._position = offset + 1
            if at_end or (not wait and (not messages or len(out) >= 5_000)):
                return out
            if time.monotonic() > deadline:
                raise TimeoutError(f"update log {self.topic}: not read to its end within {self.read_timeout_s:.0f} s")

    def close(self) -> None:
        self.committed.close()
        self._raw.close()
