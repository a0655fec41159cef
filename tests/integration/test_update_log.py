"""Reading the model's update log back from a real Kafka broker."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Producer, TopicPartition

from operators.model.update_log import UpdateLogTruncated, ensure_log_topic, read_updates
from operators.model.updates import ModelUpdate
from operators.records import Event, SourcePosition
from tests.integration.harness import BOOTSTRAP

pytestmark = pytest.mark.integration


def update(lineage: str, seq: int) -> ModelUpdate:
    return ModelUpdate(lineage, seq, Event(f"e{seq}", "u", "i", "view", None, seq, SourcePosition(0, seq)),
                       ("a",), seq - 1, True, None)


def test_reader_sees_committed_updates_of_its_lineage_only_and_ends() -> None:
    topic = "log-" + uuid.uuid4().hex[:8]
    ensure_log_topic(BOOTSTRAP, topic)
    assert list(read_updates(BOOTSTRAP, topic, "L")) == []          # an empty log ends at once

    tx = Producer({"bootstrap.servers": BOOTSTRAP, "transactional.id": f"test-{topic}"})
    tx.init_transactions(30)

    def batch(updates: list[ModelUpdate], commit: bool) -> None:
        tx.begin_transaction()
        for u in updates:
            tx.produce(topic, key=u.lineage.encode(), value=u.to_json().encode())
        (tx.commit_transaction if commit else tx.abort_transaction)(30)

    batch([update("L", 1), update("other", 1), update("L", 2)], commit=True)
    batch([update("L", 3)], commit=False)                              # a failed attempt's, aborted
    batch([update("L", 3), update("L", 4)], commit=True)
    assert [u.seq for u in read_updates(BOOTSTRAP, topic, "L")] == [1, 2, 3, 4]
    assert list(read_updates(BOOTSTRAP, topic, "L", since_ms=int(time.time() * 1000) + 600_000)) == []

    # A transaction left open (its producer died): the reader waits for it, bounded, then
    # returns what is committed.
    tx.begin_transaction()
    tx.produce(topic, key=b"L", value=update("L", 5).to_json().encode())
    tx.flush(10)
    started = time.monotonic()
    assert [u.seq for u in read_updates(BOOTSTRAP, topic, "L", settle_timeout_s=3)] == [1, 2, 3, 4]
    assert 3 <= time.monotonic() - started < 30
    tx.abort_transaction(30)


def test_updates_deleted_after_a_snapshot_fail_the_read_with_a_clear_error() -> None:
    from confluent_kafka.admin import AdminClient

    topic = "log-" + uuid.uuid4().hex[:8]
    ensure_log_topic(BOOTSTRAP, topic)
    plain = Producer({"bootstrap.servers": BOOTSTRAP, "enable.idempotence": True})

    def send(seqs: range) -> None:
        for seq in seqs:
            plain.produce(topic, key=b"L", value=update("L", seq).to_json().encode())
        assert plain.flush(30) == 0

    send(range(1, 4))                        # offsets 0-2: before the snapshot
    time.sleep(0.05)
    cut_ms = int(time.time() * 1000)         # the snapshot holds seq 1-3
    time.sleep(0.05)
    send(range(4, 7))                        # offsets 3-5: what a restart must replay

    def delete_before(offset: int) -> None:  # what retention does, a segment at a time
        admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
        for future in admin.delete_records([TopicPartition(topic, 0, offset)]).values():
            future.result(30)

    delete_before(2)                         # older updates only: the replay is whole
    assert [u.seq for u in read_updates(BOOTSTRAP, topic, "L", since_ms=cut_ms)] == [4, 5, 6]
    delete_before(4)                         # seq 4, needed after the snapshot, is gone
    with pytest.raises(UpdateLogTruncated, match="may have been deleted.*jobs.models rollback"):
        list(read_updates(BOOTSTRAP, topic, "L", since_ms=cut_ms))


def test_a_log_topic_that_compacts_or_forgets_too_soon_is_refused() -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    compacted, short = ("log-" + uuid.uuid4().hex[:8] for _ in range(2))
    for name, config in ((compacted, {"cleanup.policy": "compact"}), (short, {"retention.ms": "3600000"})):
        admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1, config=config)])[name].result(30)
    with pytest.raises(RuntimeError, match="cleanup.policy=compact"):
        ensure_log_topic(BOOTSTRAP, compacted)
    with pytest.raises(RuntimeError, match=r"retention.ms=3600000 \(1.0 h\)"):
        ensure_log_topic(BOOTSTRAP, short)
    ensure_log_topic(BOOTSTRAP, short, min_retention_ms=1_800_000)      # a job that snapshots often


def test_a_replicas_tail_reads_committed_updates_with_offsets_past_open_transactions_later() -> None:
    from confluent_kafka.admin import AdminClient

    from operators.model.update_log import KafkaLogTail

    topic = "log-" + uuid.uuid4().hex[:8]
    ensure_log_topic(BOOTSTRAP, topic)
    tail = KafkaLogTail(BOOTSTRAP, topic, settle_timeout_s=3)
    try:
        assert tail.end() == 0 and tail.read(0, wait=True) == []
        first = Producer({"bootstrap.servers": BOOTSTRAP, "transactional.id": f"a-{topic}"})
        second = Producer({"bootstrap.servers": BOOTSTRAP, "transactional.id": f"b-{topic}"})
        for tx in (first, second):
            tx.init_transactions(30)
        first.begin_transaction()
        first.produce(topic, key=b"L", value=update("L", 1).to_json().encode())
        first.commit_transaction(30)
        # Another subtask's transaction is open: a start reads what is committed, at once.
        second.begin_transaction()
        second.produce(topic, key=b"L", value=update("L", 2).to_json().encode())
        second.flush(10)
        started = time.monotonic()
        read = tail.read(0, wait=True)
        assert [(o, u.event.event_id) for o, u in read] == [(0, "e1")]
        assert time.monotonic() - started < 3, "a replica's start waited for another subtask's transaction"
        second.commit_transaction(30)
        polled: list[tuple[int, ModelUpdate]] = []
        deadline = time.monotonic() + 30
        while not polled and time.monotonic() < deadline:      # later polls, never blocking, pick it up
            polled = tail.read(read[-1][0] + 1, wait=False)
        assert [(o, u.event.event_id) for o, u in polled] == [(2, "e2")]   # offset 1: the first commit marker
        end = tail.end()
        assert end > polled[-1][0] and tail.read(end, wait=False) == []

        admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
        for future in admin.delete_records([TopicPartition(topic, 0, 1)]).values():
            future.result(30)
        with pytest.raises(UpdateLogTruncated, match="oldest update kept is at 1.*jobs.models rollback"):
            tail.read(0, wait=True)
    finally:
        tail.close()
