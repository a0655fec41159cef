"""Bootstrap from a Parquet history into Cassandra, then the real job (Kafka, Cassandra, Flink)
goes on from it: it restores the bootstrap's snapshot, learns no event of the history twice,
and meets each user with the history the bootstrap wrote."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from jobs.bootstrap import main as bootstrap_main
from jobs.kafka_io import producer
from jobs.parquet_io import EVENTS, ParquetSink
from jobs.tail import main as tail_main
from tests.integration.harness import BOOTSTRAP, Pipeline, prometheus, snapshot_store, stream

pytestmark = pytest.mark.integration

HISTORY, LIVE = 400, 200


def test_the_job_goes_on_from_a_bootstrap_without_learning_an_event_twice(pipeline: Pipeline, tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    events = stream(HISTORY + LIVE, users=30, items=60)
    cut = events[HISTORY - 1]["ts"]
    log = tmp_path / "history.parquet"
    with ParquetSink(log, EVENTS, rows_per_batch=128) as sink:     # the whole log, the cut inside it
        for e in events:
            sink.add(e)
    pipeline.learn_every, pipeline.snapshot_every = 16, 100
    args = pipeline.job_args()
    started = time.monotonic()
    assert bootstrap_main(["--input", str(log), "--until", str(cut), *args]) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    print(f"bootstrap: {summary['events_read']} events in {time.monotonic() - started:.1f} s "
          f"({summary['events_per_sec']} ev/s in the pipeline), {summary['users']} users")
    assert (summary["learned"], summary["after_cut"], summary["until_ms"]) == (HISTORY, LIVE, cut)
    history_users = {e["user_id"] for e in events[:HISTORY]}
    assert summary["users"] == len(history_users)

    # The topic from its start, as a team replaying its history would: the job skips the
    # events the bootstrap holds and learns the rest, once each.
    pipeline.extra_args += ["--emit-features", "1"]
    pipeline.send(events)
    pipeline.submit()
    recs = pipeline.read("output", len(events))
    assert [r["event_id"] for r in recs] == [e["event_id"] for e in events]
    assert [r["model_version"] for r in recs] == [HISTORY] * HISTORY + list(range(HISTORY + 1, HISTORY + LIVE + 1))

    # The lists as Parquet for analysis, read back from the topic by jobs.tail
    assert tail_main([pipeline.topics["output"], "--from-beginning", "--max", str(len(events)),
                      "--timeout", "60", "--out", str(tmp_path / "recs.parquet")]) == 0
    table = pq.read_table(tmp_path / "recs.parquet")
    assert table.column("event_id").to_pylist() == [e["event_id"] for e in events]
    assert table.column("model_version").to_pylist() == [r["model_version"] for r in recs]
    assert [len(items) for items in table.column("items").to_pylist()] == [len(r["items"]) for r in recs]

    # Every user of the history was found on first sight, none missed, none unreadable.
    deadline, found = time.monotonic() + 30, {}
    while time.monotonic() < deadline:
        found = {name.rsplit("_", 1)[-1]: value for name, _, value in prometheus(job_name=pipeline.name)
                 if "_model_bootstrap_histories_" in name}
        if found.get("found") == len(history_users):
            break
        time.sleep(1)
    live_only = {e["user_id"] for e in events[HISTORY:]} - history_users
    assert found == {"found": len(history_users), "missing": len(live_only), "failed": 0}
    # ... and the user's state carried on: the job's first output for a user already knows their
    # history (the time from their newest event in the bootstrap; a user met afresh has none)
    user = events[0]["user_id"]
    newest_in_history = max(e["ts"] for e in events[:HISTORY] if e["user_id"] == user)
    assert recs[0]["features"]["gap_ms"] == events[0]["ts"] - newest_in_history

    # The job continued the bootstrap's lineage: its snapshots hold all events.
    store = snapshot_store(pipeline.name)
    try:
        deadline = time.monotonic() + 60
        while (newest := store.list()[0]).learned_events < len(events) and time.monotonic() < deadline:
            time.sleep(0.5)
        versions = store.list()
    finally:
        store.close()
    bootstrapped = next(i for i in versions if i.version == summary["snapshot"]["version"])
    assert newest.learned_events == len(events) and newest.lineage == bootstrapped.lineage

    # Forgetting a user deletes their bootstrapped row too: their next first sight finds nothing.
    prod = producer(BOOTSTRAP)
    prod.produce(pipeline.topics["control"], value=json.dumps({"forget_user": user, "request_id": "r-1"}).encode())
    assert prod.flush(30) == 0
    store = snapshot_store(pipeline.name)
    try:
        query = f"SELECT user_id FROM {pipeline.name}.user_histories WHERE model = %s AND user_id = %s"
        deadline = time.monotonic() + 60
        while store.session.execute(query, ("default", user)).one() is not None and time.monotonic() < deadline:
            time.sleep(0.5)
        assert store.session.execute(query, ("default", user)).one() is None
        other = next(e["user_id"] for e in events[:HISTORY] if e["user_id"] != user)
        assert store.session.execute(query, ("default", other)).one() is not None     # only theirs goes
    finally:
        store.close()
