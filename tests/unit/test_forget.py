"""Forgetting a user without services: the control topic's records are validated like events
(and pseudonymised), a snapshot never holds a user id, and the snapshot a forget cuts is where
every later restart starts, so no replay reads an update from before it."""

from __future__ import annotations

import json

import pytest

from operators.cleaning import dead_letter_json
from operators.cleaning.control import ControlCleaner, ForgetUser
from operators.cleaning.schema import REASONS, SchemaLimits
from operators.model import OnlineRanker
from operators.model.lifecycle import Placement
from operators.model.replica import MemoryLog, ReplicaLifecycle
from operators.model.snapshot_store import MemoryTables, SnapshotStore
from operators.records import Rejection, SourcePosition
from operators.security import Pseudonymizer
from tests.unit.test_lifecycle import EVENTS, SNAPSHOT_EVERY, InlineWriter, Job, UpdateLog
from tests.unit.test_updates import SMALL

KEY = Pseudonymizer(bytes(range(32)))


def test_a_forget_request_is_parsed_and_its_user_pseudonymised() -> None:
    record = b'{"forget_user": "alice", "request_id": "req-7", "note": "ignored"}'
    assert ControlCleaner().clean(record) == ForgetUser("alice", "req-7")
    assert ControlCleaner(pseudonyms=KEY).clean(record) == ForgetUser(KEY("alice"), "req-7")


@pytest.mark.parametrize(("payload", "reason"), [
    (b"not json", "not_json"),
    (b"\xff\xfe", "not_utf8"),
    (b'["forget_user", "alice"]', "not_object"),
    (b'{"forget_user": "alice"}', "missing_field"),
    (b'{"forget_user": 7, "request_id": "r"}', "wrong_type"),
    (b'{"forget_user": "", "request_id": "r"}', "bad_id"),
    (b'{"forget_user": "a\\u0000b", "request_id": "r"}', "bad_id"),
    (b'{"forget_user": "alice", "request_id": "' + b"r" * 300 + b'"}', "bad_id"),
    (b'{"forget_item": "i1", "request_id": "r"}', "unknown_control"),
    (b"x" * 2_000, "too_large"),
])
def test_a_bad_control_record_is_a_rejection_with_a_reason(payload: bytes, reason: str) -> None:
    result = ControlCleaner(SchemaLimits(max_message_bytes=1_000)).clean(payload, SourcePosition(0, 5))
    assert isinstance(result, Rejection) and result.reason == reason and reason in REASONS
    assert result.message and result.payload == payload and result.position == SourcePosition(0, 5)


def test_a_rejected_control_record_keeps_no_original_user_id() -> None:
    payload = b'{"forget_user": "alice", "request_id": 12}'
    result = ControlCleaner(pseudonyms=KEY).clean(payload)
    assert isinstance(result, Rejection) and result.reason == "wrong_type"
    letter = json.loads(dead_letter_json(result, "interactions-control"))
    assert "alice" not in json.dumps(letter)
    assert json.loads(letter["payload"]) == {"forget_user": KEY("alice"), "request_id": 12}
    assert letter["source"]["topic"] == "interactions-control"


def test_the_acknowledgement_names_the_request_and_not_the_user() -> None:
    ack = ForgetUser(KEY("alice"), "req-7").acknowledgement(True, "default", 1, 130, 130, 99)
    assert ack == {"kind": "forget_ack", "request_id": "req-7", "erased_user_state": True, "variant": "default",
                   "model_shard": 1, "model_version": 130, "snapshot_cut_at": 130, "acked_ts": 99}
    assert KEY("alice") not in json.dumps(ack)


def test_a_snapshot_holds_no_user_id_and_restores_to_the_same_model() -> None:
    """The pending batch is the only place the ranker sees user ids; its snapshot drops them
    (learning never reads them: the crash-and-resume tests in test_lifecycle.py restore such
    snapshots and end with the uninterrupted model)."""
    job = Job(MemoryTables(), UpdateLog())
    job.run(EVENTS[:130])
    assert job.ranker.pending and all(it.event.user_id for it, _ in job.ranker.pending)  # the live batch has them
    restored = OnlineRanker.restore(job.ranker.cut().blob())
    assert len(restored.pending) == len(job.ranker.pending)
    assert {it.event.user_id for it, _ in restored.pending} == {""}
    assert restored.digest() == job.ranker.digest()


def test_a_forget_cuts_a_snapshot_now_and_no_restart_replays_an_update_from_before_it() -> None:
    job = Job(MemoryTables(), UpdateLog())
    job.run(EVENTS[:130])              # the last cadence cut at 100
    forgotten = EVENTS[125].user_id
    job.log.committed += job.log.open    # checkpointed
    job.log.open = []
    assert job.lifecycle.store.list()[0].learned_events == SNAPSHOT_EVERY
    assert any(u.event.user_id == forgotten and u.seq > SNAPSHOT_EVERY for u in job.log.committed)

    assert job.lifecycle.cut_now() == 130
    newest = job.lifecycle.store.list()[0]
    assert newest.learned_events == 130
    assert job.lifecycle.cut_now() == 130                          # nothing learned since: no second cut
    assert job.lifecycle.store.list()[0].version == newest.version
    again = Job(job.tables, job.log, job.position, job.users)
    assert again.lifecycle.restored_from is not None and again.lifecycle.restored_from.version == newest.version
    assert again.lifecycle.replayed == 0                            # the forgotten user's updates: never read
    assert again.ranker.digest() == job.ranker.digest()
    # the cadence goes on from the forced cut
    again.run(EVENTS[:130 + SNAPSHOT_EVERY])
    assert again.lifecycle.store.list()[0].learned_events == 130 + SNAPSHOT_EVERY


def test_a_shared_model_leaves_the_cut_to_its_schedule() -> None:
    store = SnapshotStore(MemoryTables())
    replica = ReplicaLifecycle(store, MemoryLog(), Placement("m", "clicks", 0, 2), SMALL, writer=InlineWriter)
    replica.open()
    written = len(store.list())
    assert replica.cut_now() is None and len(store.list()) == written
