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
