"""Reading the model's update log (updates.py) back from Kafka when the model operator starts.

The job writes the log through an exactly-once sink, so a ``read_committed`` reader sees
exactly the updates of completed checkpoints. Before reading, it waits (bounded) until no
transaction is open on the log: after a failure the restarted sink commits the last
checkpoint's transaction and aborts the failed attempt's, and the reader must see the first
and not wait forever for the second. Records are keyed by lineage; only the wanted lineage is
parsed. The topic uses log-append time, so ``since_ms`` skips what precedes a snapshot.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from operators.model.updates import ModelUpdate

log = logging.getLogger(__name__)

TOPIC_CONFIG = {"message.timestamp.type": "LogAppendTime", "cleanup.policy": "delete"}


def ensure_log_topic(bootstrap: str, topic: str, timeout: float = 30.0) -> None:
    """Create the update-log topic (one partition, log-append time) unless it exists."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    if topic in admin.list_topics(timeout=timeout).topics:
        return
    future = admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=-1, config=TOPIC_CONFIG)],
                                 request_timeout=timeout)[topic]
    try:
        future.result(timeout)
    except Exception as exc:
        if "TOPIC_ALREADY_EXISTS" not in str(exc):
            raise RuntimeError(f"could not create the update-log topic {topic}: {exc}") from exc


def _consumer(bootstrap: str, isolation: str) -> Consumer:
    return Consumer({"bootstrap.servers": bootstrap, "group.id": f"streamrec-update-log-{uuid.uuid4().hex}",
                     "isolation.level": isolation, "enable.auto.commit": False, "enable.partition.eof": True,
                     "auto.offset.reset": "earliest", "fetch.max.bytes": 52_428_800})


def read_updates(bootstrap: str, topic: str, lineage: str, since_ms: int | None = None,
                 settle_timeout_s: float = 60.0, read_timeout_s: float = 600.0) -> Iterator[ModelUpdate]:
    """The committed updates of ``lineage`` in log order (appended at or after ``since_ms``)."""
    committed, raw = _consumer(bootstrap, "read_committed"), _consumer(bootstrap, "read_uncommitted")
    try:
        partitions = sorted(committed.list_topics(topic, timeout=30).topics[topic].partitions)
        tps = [TopicPartition(topic, p) for p in partitions]
        deadline = time.monotonic() + settle_timeout_s
        while True:   # wait until every transaction on the log is committed or aborted
            open_tx = [tp.partition for tp in tps
                       if committed.get_watermark_offsets(tp, timeout=10, cached=False)[1]
                       < raw.get_watermark_offsets(tp, timeout=10, cached=False)[1]]
            if not open_tx or time.monotonic() > deadline:
                if open_tx:
                    log.warning("update log %s: a transaction is still open on partitions %s after %.0f s; "
                                "reading what is committed", topic, open_tx, settle_timeout_s)
                break
            time.sleep(0.5)
        starts = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions]
        if since_ms is not None:
            found = committed.offsets_for_times([TopicPartition(topic, p, since_ms) for p in partitions], timeout=30)
            # offset -1: nothing appended since then; start at the end (its EOF ends the read)
            starts = [tp if tp.offset >= 0 else TopicPartition(
                topic, tp.partition, committed.get_watermark_offsets(tp, timeout=10, cached=False)[1])
                for tp in found]
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
