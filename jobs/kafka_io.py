"""Small Kafka helpers for the job's submission, the command-line tools and tests
(confluent-kafka). ``security_file``: operators/connections.py ("": plaintext)."""

from __future__ import annotations

from collections.abc import Iterable

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from operators.connections import security


def ensure_topics(bootstrap: str, topics: Iterable[str], partitions: int = 1, timeout: float = 30.0,
                  config: dict[str, str] | None = None, security_file: str = "") -> None:
    """Create the topics that do not exist yet (one replica: the local broker), with topic
    ``config`` (e.g. ``{"message.timestamp.type": "LogAppendTime"}``)."""
    admin = AdminClient(security(security_file).librdkafka(bootstrap))
    existing = set(admin.list_topics(timeout=timeout).topics)
    wanted = [NewTopic(t, num_partitions=partitions, replication_factor=1, config=config or {})
              for t in topics if t not in existing]
    if not wanted:
        return
    for topic, future in admin.create_topics(wanted, request_timeout=timeout).items():
        try:
            future.result(timeout)
        except Exception as exc:  # a concurrent creator is fine
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise RuntimeError(f"could not create topic {topic}: {exc}") from exc


def topic_partitions(bootstrap: str, topic: str, timeout: float = 30.0, security_file: str = "") -> int | None:
    """How many partitions ``topic`` has; None when it does not exist."""
    metadata = AdminClient(security(security_file).librdkafka(bootstrap)).list_topics(topic, timeout=timeout)
    found = metadata.topics.get(topic)
    if found is None or found.error is not None:
        return None
    return len(found.partitions)


def producer(bootstrap: str, security_file: str = "") -> Producer:
    return Producer({**security(security_file).librdkafka(bootstrap), "linger.ms": 20, "enable.idempotence": True,
                     "compression.type": "lz4", "message.max.bytes": 16_000_000})


def consumer(bootstrap: str, topic: str, group: str, from_beginning: bool = True, subscribe: bool = True,
             security_file: str = "") -> Consumer:
    """A read_committed consumer: it sees only what exactly-once sinks committed. Subscribed to
    ``topic`` unless ``subscribe`` is False (the caller assigns partitions itself: a group
    subscription would later replace that assignment with its own)."""
    c = Consumer({**security(security_file).librdkafka(bootstrap), "group.id": group,
                  "isolation.level": "read_committed",
                  "auto.offset.reset": "earliest" if from_beginning else "latest",
                  "enable.auto.commit": False})
    if subscribe:
        c.subscribe([topic])
    return c
