"""The job on real Kafka, Cassandra and a Flink standalone cluster (deploy/local/services)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from jobs.kafka_io import consumer, producer
from operators.security import Pseudonymizer, SnapshotKey, WrongKey
from tests.integration.harness import (
    BOOTSTRAP,
    FLINK_LOGS,
    REPO,
    Pipeline,
    dashboard_metrics,
    event,
    prometheus,
    slots_taken,
    snapshot_store,
)

pytestmark = pytest.mark.integration


def test_events_in_recommendations_out(pipeline: Pipeline) -> None:
    pipeline.learn_every = 4      # 12 events: three learning batches
    events = [event(n, f"u{n % 3}", f"i{n % 5}") for n in range(12)]
    pipeline.send(events)
    pipeline.submit()
    recs = pipeline.read("output", len(events))

    assert sorted(r["event_id"] for r in recs) == sorted(e["event_id"] for e in events)
    seen: dict[str, set[str]] = {}
    for e, r in zip(events, recs, strict=True):   # one partition: output keeps input order
        seen.setdefault(e["user_id"], set()).add(e["item_id"])
        assert r["user_id"] == e["user_id"]
        assert not {i["item_id"] for i in r["items"]} & seen[e["user_id"]]
        assert all(i["reason"] for i in r["items"])
        assert r["event_ts"] == e["ts"]
    assert recs[-1]["model_version"] == len(events)
    # Events 1-4 are answered from the empty model (the first batch is learned after event 4):
    # no history, nothing known, no items. Later ones from the model as of their batch's start.
    assert [bool(r["items"]) for r in recs[:5]] == [False] * 4 + [True]
    last_user = events[-1]["user_id"]
    assert {i["item_id"] for i in recs[-1]["items"]} == {f"i{k}" for k in range(5)} - seen[last_user]


def test_malformed_records_go_to_dlq_with_reason(pipeline: Pipeline) -> None:
    good = event(1, "u1", "i1")
    bad: list[dict | bytes] = [b"not json", b"\xff\xfe\x00", {**event(2, "u1", "i2"), "event_type": "like"},
                               {k: v for k, v in event(3, "u1", "i3").items() if k != "user_id"}, b"[1,2]"]
    pipeline.send([bad[0], good, *bad[1:]])
    pipeline.submit()

    dead = pipeline.read("dlq", len(bad))
    assert sorted(d["reason"] for d in dead) == sorted(
        ["not_json", "not_utf8", "unknown_event_type", "missing_field", "not_object"])
    assert {d["source"]["offset"] for d in dead} == {0, 2, 3, 4, 5}
    assert all(d["message"] and d["source"]["topic"] == pipeline.topics["input"] for d in dead)
    recs = pipeline.read("output", 1)
    assert [r["event_id"] for r in recs] == [good["event_id"]]

    # What a platform team scrapes from Flink's Prometheus reporter (deploy/local/services):
    # the model's learned events and the cleaner's rejections by reason, over HTTP.
    deadline = time.monotonic() + 30
    while (len(rejected := prometheus("flink_taskmanager_job_task_operator_cleaning_rejected_reason_count",
                                      job_name=pipeline.name)) < len(bad) and time.monotonic() < deadline):
        time.sleep(1)
    assert sorted((labels["reason"], value) for _, labels, value in rejected) == sorted(
        (d["reason"], 1.0) for d in dead)
    learned = prometheus("flink_taskmanager_job_task_operator_model_learned", job_name=pipeline.name)
    assert [(labels["operator_name"], labels["subtask_index"], value) for _, labels, value in learned] == [
        ("model_recommend", "0", 1.0)]
    # The shipped Grafana dashboard charts only metrics this job exports.
    exported = {name for name, _, _ in prometheus(job_name=pipeline.name)}
    # (Per-variant panels chart a job with --variants: test_evaluation.py.)
    charted = {m for m in dashboard_metrics(REPO / "deploy" / "grafana" / "streamrec.json")
               if "_model_variant_" not in m}
    assert len(charted) >= 12 and not charted - exported, sorted(charted - exported)


@pytest.mark.parametrize("first_layout", ["model-slot-group", "one-slot-group"])
def test_savepoint_stop_and_restore_keeps_state_and_loses_nothing(pipeline: Pipeline, tmp_path: Path,
                                                                  first_layout: str) -> None:
    """``one-slot-group``: the savepoint is taken by the layout of jobs before 2026-12-04 (the whole
    job in one slot sharing group) and restored into today's default (the model in its own):
    README "What a savepoint survives"."""
    pipeline.snapshot_every = 5
    today = list(pipeline.extra_args)
    if first_layout == "one-slot-group":
        pipeline.extra_args = [*today, "--model-slot-group", ""]
    batch1 = [event(n, u, i) for n, (u, i) in enumerate(
        [("u1", "a"), ("u1", "b"), ("u2", "a"), ("u2", "c"), ("u3", "b"), ("u3", "c"), ("u3", "d")])]
    pipeline.send(batch1)
    job = pipeline.submit()
    assert len(pipeline.read("output", len(batch1))) == len(batch1)
    assert slots_taken(job) == (1 if first_layout == "one-slot-group" else 2)

    savepoint = pipeline.stop_with_savepoint(job, tmp_path / "savepoints")
    store = snapshot_store(pipeline.name)
    try:
        at_stop = store.list()[0]
        assert at_stop.learned_events == len(batch1)      # the operator snapshots when it closes
        assert at_stop.positions == {0: len(batch1) - 1}

        batch2 = [event(n, u, i) for n, (u, i) in enumerate(
            [("u1", "c"), ("u4", "a"), ("u2", "d"), ("u4", "b"), ("u1", "e"), ("u5", "a")], start=len(batch1))]
        pipeline.send(batch2)                              # sent while the job is stopped
        pipeline.extra_args = today
        restored = pipeline.submit(savepoint=savepoint)
        recs = pipeline.read("output", len(batch1) + len(batch2))
        assert slots_taken(restored) == 2

        ids = [r["event_id"] for r in recs]
        assert sorted(ids) == sorted(e["event_id"] for e in batch1 + batch2), "lost or duplicated output"
        after = recs[len(batch1):]
        assert [r["model_version"] for r in after] == list(range(len(batch1) + 1, len(batch1) + len(batch2) + 1))
        u1_last = [r for r in after if r["user_id"] == "u1"][-1]
        assert not {i["item_id"] for i in u1_last["items"]} & {"a", "b", "c", "e"}   # history survived
        latest = store.list()[0]
        assert latest.version > at_stop.version
        assert latest.learned_events >= len(batch1) + 5
    finally:
        store.close()


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_fresh_job_bootstraps_model_from_newest_snapshot(pipeline: Pipeline, tmp_path: Path, encrypted: bool) -> None:
    pipeline.snapshot_every = 5
    pipeline.learn_every = 2
    key = SnapshotKey(bytes(range(32)))
    if encrypted:          # the job's snapshots sealed at rest (README "Security and privacy")
        (tmp_path / "snapshot.key").write_bytes(bytes(range(32)))
        pipeline.extra_args += ["--snapshot-key-file", str(tmp_path / "snapshot.key")]
    first = [event(n, f"u{n}", "hit" if n % 2 else f"i{n}") for n in range(10)]
    pipeline.send(first)
    pipeline.submit()
    assert len(pipeline.read("output", len(first))) == len(first)
    pipeline.cancel_all()
    store = snapshot_store(pipeline.name)
    try:
        newest = store.list()[0]
        assert newest.key_id == (key.key_id if encrypted else "")
        if encrypted:
            with pytest.raises(WrongKey):
                store.read(newest)                               # a reader without the key gets no model
    finally:
        store.close()
    assert newest.learned_events == len(first)

    # A new deployment: no savepoint, a new consumer group, so it re-reads the topic from the start.
    later = [event(n, "newcomer", "x") for n in range(10, 12)]
    pipeline.send(later)
    pipeline.submit(group=pipeline.name + "-fresh")
    recs = pipeline.read("output", len(first) + len(first) + len(later))

    second_run = recs[len(first):]
    assert {r["snapshot_version"] for r in second_run[:len(first)]} == {newest.version}
    # Replayed events are already in the snapshot: not learned again.
    assert [r["model_version"] for r in second_run] == [len(first)] * len(first) + [11, 12]
    newcomer = second_run[-2]
    assert newcomer["items"][0]["item_id"] == "hit", json.dumps(newcomer)


def test_a_snapshot_from_an_older_model_format_is_kept_and_the_model_starts_empty(pipeline: Pipeline) -> None:
    import io

    import torch

    old = io.BytesIO()
    torch.save({"format": 1, "item_ids": ["x"]}, old)        # what the walking skeleton wrote
    store = snapshot_store(pipeline.name)
    pipeline.snapshot_every = 3          # snapshots while processing, not only when the job closes
    try:
        store.save(old.getvalue(), {0: 99}, 100, pipeline.topics["input"])
        events = [event(n, f"u{n % 2}", f"i{n % 3}") for n in range(6)]
        pipeline.send(events)
        job = pipeline.submit()
        recs = pipeline.read("output", len(events))
        assert [r["model_version"] for r in recs] == list(range(1, len(events) + 1))   # learned from scratch
        assert pipeline.restarts(job) == 0
        versions = store.list()
        assert [v.version for v in versions][-1] == 1 and versions[0].version > 1   # the old one stays
        assert versions[0].learned_events == len(events)
    finally:
        store.close()


def test_more_subtasks_than_input_partitions_is_refused_at_submit(pipeline: Pipeline) -> None:
    # Idleness is off (README "Event time"): a source subtask without a partition would hold
    # the watermark back for good, so flink run fails with the reason instead of stalling.
    with pytest.raises(AssertionError, match="--parallelism 2 exceeds the 1 partitions of the input topic"):
        pipeline.submit(parallelism=2)
    assert pipeline.jobs == []


def test_pseudonymised_job_keeps_original_ids_only_in_its_output(pipeline: Pipeline, tmp_path: Path) -> None:
    """With --pseudonym-key-file, the original user ids reach the output records and nothing
    else: not the update log, not the dead letters, not the snapshots, not the logs."""
    key_file = tmp_path / "pseudonym.key"
    key_file.write_bytes(bytes(range(32)))
    pseudonym = Pseudonymizer.from_file(key_file)
    pipeline.extra_args += ["--pseudonym-key-file", str(key_file)]
    pipeline.snapshot_every, pipeline.learn_every = 5, 2
    users = [f"person-{pipeline.name}-{k}" for k in range(3)]
    events = [event(n, users[n % 3], f"i{n % 5}") for n in range(12)]
    rejected = {**event(12, users[0], "i9"), "event_type": "teleport"}
    pipeline.send([*events, rejected])
    pipeline.submit()

    recs = pipeline.read("output", len(events))
    assert [r["user_id"] for r in recs] == [e["user_id"] for e in events]      # the id the event came with
    assert recs[-1]["items"]                                                     # learned under pseudonyms
    dead = pipeline.read("dlq", 1)
    assert dead[0]["reason"] == "unknown_event_type"
    assert users[0] not in json.dumps(dead[0])                 # the content kept, the user id pseudonymised
    assert json.loads(dead[0]["payload"]) == {**rejected, "user_id": pseudonym(users[0])}
    log_bytes = topic_bytes(f"{pipeline.topics['output']}-model-updates")
    assert log_bytes and all(pseudonym(u).encode() in log_bytes for u in users)
    store = snapshot_store(pipeline.name)
    try:
        newest = store.list()[0]
        snapshot = store.read(newest)
    finally:
        store.close()
    assert snapshot is not None and newest.learned_events == 10           # one every 5 learned events
    logs = b"".join(p.read_bytes() for p in FLINK_LOGS.glob("flink-*"))   # .log and .out, rotated too
    for u in users:
        assert u.encode() not in log_bytes and u.encode() not in snapshot and u.encode() not in logs, u


def topic_bytes(topic: str, idle_s: float = 5.0) -> bytes:
    """Every committed record of ``topic``, keys and values, as one byte string."""
    c = consumer(BOOTSTRAP, topic, f"reader-{uuid.uuid4().hex}")
    out, quiet_since = [], time.monotonic()
    try:
        while time.monotonic() - quiet_since < idle_s:
            m = c.poll(0.5)
            if m is not None and m.error() is None:
                out += [m.key() or b"", m.value() or b""]
                quiet_since = time.monotonic()
    finally:
        c.close()
    return b"\n".join(out)


def test_forgetting_a_user_erases_their_state_and_keeps_them_out_of_snapshots(pipeline: Pipeline,
                                                                            tmp_path: Path) -> None:
    """A forget request on the control topic erases the user's keyed state (their next event
    finds no history), the snapshot it cuts holds no trace of them and covers every update of
    theirs (a restart replays none: tests/unit/test_forget.py), a bad request is a dead letter,
    and the acknowledgement, which names the request and not the user, reaches the metrics topic."""
    key_file = tmp_path / "pseudonym.key"
    key_file.write_bytes(bytes(range(32)))
    pseudonym = Pseudonymizer.from_file(key_file)
    pipeline.extra_args += ["--pseudonym-key-file", str(key_file), "--emit-features", "1"]
    pipeline.snapshot_every, pipeline.learn_every = 1_000, 2     # no scheduled cut: the forget's is the one
    users = [f"person-{pipeline.name}-{k}" for k in range(3)]
    target = users[0]
    events = [event(n, users[n % 3], f"i{n % 5}") for n in range(12)]
    pipeline.send(events)
    pipeline.submit()
    recs = pipeline.read("output", len(events))
    assert [r["user_id"] for r in recs] == [e["user_id"] for e in events]
    assert recs[9]["user_id"] == target and len(recs[9]["features"]["recent_items"]) == 3   # their history

    prod = producer(BOOTSTRAP)
    prod.produce(pipeline.topics["control"], value=json.dumps({"forget_user": target, "request_id": "r-1"}).encode())
    prod.produce(pipeline.topics["control"], value=b'{"forget_user": "' + target.encode() + b'"}')   # no request_id
    assert prod.flush(30) == 0
    ack = next(r for r in metrics_records(pipeline, lambda r: r.get("kind") == "forget_ack"))
    assert ack["request_id"] == "r-1" and ack["erased_user_state"] is True and ack["snapshot_cut_at"] == len(events)
    assert target not in json.dumps(ack) and pseudonym(target) not in json.dumps(ack)
    dead = pipeline.read("dlq", 1)
    assert [(d["reason"], d["source"]["topic"]) for d in dead] == [("missing_field", pipeline.topics["control"])]
    assert target not in json.dumps(dead[0]) and pseudonym(target) in dead[0]["payload"]

    # the snapshot cut at the forget: complete, holding neither the user's id nor pseudonym
    store = snapshot_store(pipeline.name)
    try:
        deadline = time.monotonic() + 60
        while (newest := store.list()[0]).learned_events < len(events) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert newest.learned_events == len(events) and store.complete(newest)
        snapshot = store.read(newest)
    finally:
        store.close()
    assert snapshot is not None
    for marker in (target, pseudonym(target)):
        assert marker.encode() not in snapshot
    # every logged update of the user is in that snapshot: no restart from it replays one
    updates = [json.loads(v) for v in topic_bytes(f"{pipeline.topics['output']}-model-updates").split(b"\n")
               if v.startswith(b"{")]
    theirs = [u["seq"] for u in updates if u["event"][1] == pseudonym(target)]
    assert len(theirs) == 4 and max(theirs) <= newest.learned_events

    # the user comes back: the model starts them afresh
    pipeline.send([event(40, target, "i7")])
    back = pipeline.read("output", len(events) + 1)[-1]
    assert back["user_id"] == target and back["event_id"] == "ev-40"
    assert back["features"]["recent_items"] == [] and back["features"]["gap_ms"] is None


def metrics_records(pipeline: Pipeline, wanted: Callable[[dict[str, Any]], bool],
                    timeout: float = 90) -> Iterator[dict[str, Any]]:
    """The committed records of the job's metrics topic that ``wanted`` accepts, as they come;
    fails after ``timeout`` s without one."""
    c = consumer(BOOTSTRAP, pipeline.topics["metrics"], f"reader-{uuid.uuid4().hex}")
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and m.error() is None:
                record = json.loads(m.value() or b"null")
                if isinstance(record, dict) and wanted(record):
                    yield record
                    deadline = time.monotonic() + timeout
    finally:
        c.close()
    pytest.fail(f"no wanted record on {pipeline.topics['metrics']} within {timeout:.0f} s")
