"""Reading the model's update log back from a real Kafka broker."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Producer

from operators.model.update_log import ensure_log_topic, read_updates
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
