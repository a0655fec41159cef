"""Snapshot store schema on a real Cassandra node."""

from __future__ import annotations

import uuid

import pytest

from tests.integration.harness import CASSANDRA_PORT, drop_keyspace, snapshot_store

pytestmark = pytest.mark.integration


def test_a_keyspace_from_an_older_release_gets_the_new_columns() -> None:
    from cassandra.cluster import Cluster

    keyspace = "t" + uuid.uuid4().hex[:10]
    cluster = Cluster(["127.0.0.1"], port=CASSANDRA_PORT, protocol_version=5)
    session = cluster.connect()
    try:
        session.execute(f"CREATE KEYSPACE {keyspace} WITH replication = "
                        "{'class': 'SimpleStrategy', 'replication_factor': 1}")
        session.execute(f"CREATE TABLE {keyspace}.snapshot_manifests (model text, version bigint, created_ms bigint,"
                        " size bigint, chunks int, sha256 text, PRIMARY KEY (model, version))"
                        " WITH CLUSTERING ORDER BY (version DESC)")     # the first release's table
        session.execute(f"INSERT INTO {keyspace}.snapshot_manifests (model, version, created_ms, size, chunks, sha256)"
                        " VALUES ('default', 1, 0, 0, 1, 'x')")
        store = snapshot_store(keyspace)
        try:
            assert [(i.version, i.source, i.learned_events) for i in store.list()] == [(1, "", 0)]
            info = store.save(b"blob", {0: 3}, 4, "topic")
            assert store.load_latest() == (info, b"blob")
        finally:
            store.close()
    finally:
        cluster.shutdown()
        drop_keyspace(keyspace)


def test_models_command_lists_shows_and_rolls_back() -> None:
    import json
    import subprocess
    import sys

    from tests.integration.harness import REPO

    keyspace = "t" + uuid.uuid4().hex[:10]
    store = snapshot_store(keyspace)

    def models(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "jobs.models", "--cassandra-port", str(CASSANDRA_PORT),
                               "--keyspace", keyspace, *args], capture_output=True, text=True, timeout=120, cwd=REPO)

    try:
        first = store.save(b"one", {0: 9}, 10, "topic")
        store.save(b"two", {0: 19}, 20, "topic")
        listed = [json.loads(line) for line in models("list").stdout.splitlines()]
        assert [(m["version"], m["learned_events"], m["positions"]) for m in listed] == [
            (2, 20, {"0": 19}), (1, 10, {"0": 9})]
        shown = json.loads(models("show", "1").stdout)
        assert shown["complete"] and shown["size"] == 3
        rolled = models("rollback", "1")
        assert rolled.returncode == 0, rolled.stderr
        latest = store.load_latest()
        assert latest is not None and latest[1] == b"one" and latest[0].version == 3
        assert latest[0].learned_events == first.learned_events and latest[0].positions == first.positions
        missing = models("show", "42")
        assert missing.returncode == 2 and "no version 42" in missing.stderr
    finally:
        store.close()
        drop_keyspace(keyspace)
