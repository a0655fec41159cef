"""Snapshot store schema on a real Cassandra node."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness import CASSANDRA_PORT, REPO, drop_keyspace, snapshot_store

pytestmark = pytest.mark.integration


@pytest.fixture
def store() -> Iterator[Any]:
    """A SnapshotStore on a keyspace of its own, dropped afterwards."""
    keyspace = "t" + uuid.uuid4().hex[:10]
    opened = snapshot_store(keyspace)
    yield opened
    opened.close()
    drop_keyspace(keyspace)


def models(keyspace: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m jobs.models`` against ``keyspace`` on the local node."""
    return subprocess.run([sys.executable, "-m", "jobs.models", "--cassandra-port", str(CASSANDRA_PORT),
                           "--keyspace", keyspace, *args], capture_output=True, text=True, timeout=120, cwd=REPO)


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
            assert store.load_for(0, 1) == (info, b"blob", False)    # no lineage: an older release's
        finally:
            store.close()
    finally:
        cluster.shutdown()
        drop_keyspace(keyspace)


def test_models_command_lists_shows_and_rolls_back(store: Any) -> None:
    keyspace = store.keyspace
    first = store.save(b"one", {0: 9}, 10, "topic")
    store.save(b"two", {0: 19}, 20, "topic")
    listed = [json.loads(line) for line in models(keyspace, "list").stdout.splitlines()]
    assert [(m["version"], m["learned_events"], m["positions"]) for m in listed] == [
        (2, 20, {"0": 19}), (1, 10, {"0": 9})]
    shown = json.loads(models(keyspace, "show", "1").stdout)
    assert shown["complete"] and shown["size"] == 3
    rolled = models(keyspace, "rollback", "1")
    assert rolled.returncode == 0, rolled.stderr
    latest = store.load_for(0, 1)
    assert latest is not None and latest[1] == b"one" and latest[0].version == 3
    assert latest[0].learned_events == first.learned_events and latest[0].positions == first.positions
    missing = models(keyspace, "show", "42")
    assert missing.returncode == 2 and "no version 42" in missing.stderr


def test_retention_keeps_the_newest_complete_versions_of_each_writer(store: Any) -> None:
    keyspace = store.keyspace
    mine = [store.save(f"v{n}".encode(), {0: n}, n, "t", "L", shard=0, shards=2).version for n in range(3)]
    abandoned = store._reserve(0, 2)                      # a writer that died after reserving
    store.session.execute(f"INSERT INTO {keyspace}.snapshot_chunks (model, version, chunk, data)"
                          " VALUES ('default', %s, 0, 0x00)", (abandoned,))
    mine.append(store.save(b"v3", {0: 3}, 3, "t", "L", shard=0, shards=2).version)
    other = store.save(b"other", {0: 1}, 1, "t", "M", shard=1, shards=2).version
    newest = store.save(b"v4", {0: 4}, 4, "t", "L", shard=0, shards=2).version

    deleted = store.prune(keep=2, shard=0, shards=2)
    assert deleted == [*mine[:3], abandoned]
    assert [i.version for i in store.list()] == [newest, other, mine[3]]   # the other writer's stays
    left = store.session.execute(f"SELECT version FROM {keyspace}.snapshot_chunks WHERE model = 'default'"
                                 " AND version = %s", (abandoned,)).all()
    assert not left
    assert store.prune(keep=5, shard=0, shards=2) == []    # fewer than 5: nothing goes


def test_an_incremental_snapshot_reads_back_whole_keeps_its_base_and_rolls_back_as_a_full_one(store: Any) -> None:
    import io

    import torch

    from operators.model.delta import encode

    def saved(values: dict[str, Any]) -> bytes:
        buf = io.BytesIO()
        torch.save(values, buf)
        return buf.getvalue()

    base = {"rows": torch.zeros(4_000, 8), "n": 1}
    new = {"rows": base["rows"].clone(), "n": 2}
    new["rows"][17] = 1.0
    full = store.save(saved(base), {0: 9}, 10, "t", "L")
    delta = store.save(encode(base, new), {0: 19}, 20, "t", "L", base=full.version)
    assert delta.size < full.size / 10
    newest = store.list()[0]
    assert newest.base == full.version                  # the manifest column round-trips
    read = store.read(newest)
    assert read is not None
    loaded = torch.load(io.BytesIO(read), weights_only=True)
    assert loaded["n"] == 2 and torch.equal(loaded["rows"], new["rows"])
    assert store.prune(keep=1) == []                    # the delta needs its base
    shown = json.loads(models(store.keyspace, "show", str(delta.version)).stdout)
    assert shown["complete"] and shown["base"] == full.version
    rolled = models(store.keyspace, "rollback", str(delta.version))
    assert rolled.returncode == 0, rolled.stderr
    copy = store.list()[0]
    assert copy.base == -1                                # a rollback copy is whole
    copied = torch.load(io.BytesIO(store.read(copy)), weights_only=True)
    assert copied["n"] == 2 and torch.equal(copied["rows"], new["rows"])
    assert store.prune(keep=1) == [full.version, delta.version]


def test_concurrent_writers_never_share_a_version() -> None:
    from concurrent.futures import ThreadPoolExecutor

    keyspace = "t" + uuid.uuid4().hex[:10]
    stores = [snapshot_store(keyspace) for _ in range(2)]
    try:
        with ThreadPoolExecutor(4) as pool:
            infos = list(pool.map(lambda n: stores[n % 2].save(f"blob{n}".encode(), {}, n, "t", "L", n % 2, 2),
                                  range(12)))
        assert len({i.version for i in infos}) == 12
        for info in infos:
            assert stores[0].read(info) == f"blob{info.learned_events}".encode()
    finally:
        for s in stores:
            s.close()
        drop_keyspace(keyspace)


def test_schema_command_creates_the_keyspace_with_the_given_replication() -> None:
    keyspace = "t" + uuid.uuid4().hex[:10]
    try:
        replication = "{'class': 'NetworkTopologyStrategy', 'datacenter1': 1}"
        for _ in range(2):                                   # idempotent
            done = models(keyspace, "schema", "--replication", replication)
            assert done.returncode == 0, done.stderr
            assert json.loads(done.stdout)["schema"] == "ready"
        store = snapshot_store(keyspace)
        try:
            row = store.session.execute("SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = %s",
                                        (keyspace,)).one()
            assert row.replication["class"].endswith("NetworkTopologyStrategy")
            assert row.replication["datacenter1"] == "1"
            tables = {r.table_name for r in store.session.execute(
                "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s", (keyspace,))}
            assert tables == {"snapshot_versions", "snapshot_chunks", "snapshot_manifests",
                              "user_histories", "bootstraps"}             # the job reads the last two
        finally:
            store.close()
        bad = models(keyspace, "schema", "--replication", "{'class': 'SimpleStrategy'}; DROP KEYSPACE x")
        assert bad.returncode == 2 and "replication" in bad.stderr
    finally:
        drop_keyspace(keyspace)


def test_an_encrypted_snapshot_on_cassandra_needs_its_key(store: Any, tmp_path: Path) -> None:
    from operators.model.snapshot_store import SnapshotStore, compress
    from operators.security import SnapshotKey

    right, wrong = tmp_path / "right.key", tmp_path / "wrong.key"
    right.write_bytes(bytes(range(32)))
    wrong.write_bytes(bytes(range(1, 33)))
    blob = b"encrypted model " * 1_000
    sealed = SnapshotStore(store.tables, keys=[SnapshotKey.from_file(right)])
    info = sealed.save(blob, {0: 9}, 10, "topic", "L")
    stored = store.tables.chunks(info.version)[0]                    # the cell as Cassandra holds it
    assert compress(blob) not in stored and b"encrypted model" not in stored
    assert [i.key_id for i in store.list()] == [info.key_id] != [""]  # the key's id in the manifest
    keyspace = store.keyspace
    shown = models(keyspace, "--snapshot-key-file", str(right), "show", str(info.version))
    assert shown.returncode == 0 and json.loads(shown.stdout)["complete"], shown.stderr
    for args in (["--snapshot-key-file", str(wrong)], []):
        refused = models(keyspace, *args, "show", str(info.version))
        assert refused.returncode == 2 and f"encrypted with key {info.key_id}" in refused.stderr
    rolled = models(keyspace, "--snapshot-key-file", f"{wrong},{right}", "rollback", str(info.version))
    assert rolled.returncode == 0, rolled.stderr                     # rotation: the new key writes the copy
    copy = json.loads(rolled.stdout.splitlines()[0])
    assert copy["key_id"] == SnapshotKey.from_file(wrong).key_id
    assert SnapshotStore(store.tables, keys=[SnapshotKey.from_file(wrong)]).read(store.list()[0]) == blob
