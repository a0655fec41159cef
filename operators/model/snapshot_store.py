"""Versioned model snapshots in Cassandra.

A snapshot is a blob cut into chunks (no cell above ``chunk_bytes``) plus one manifest row
that is written last: a reader only trusts a version whose manifest exists and whose chunks
are all present and hash to the manifest's sha256, so a half-written snapshot is never read.
Each manifest records the Kafka positions (partition -> offset) the snapshot contains.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
# Manifest columns that releases added after the first one, with their types.
_ADDED_MANIFEST_COLUMNS = [("positions", "map<int, bigint>"), ("learned_events", "bigint"), ("source", "text")]


@dataclass(frozen=True)
class SnapshotInfo:
    version: int
    created_ms: int
    size: int
    chunks: int
    sha256: str
    positions: dict[int, int] = field(default_factory=dict)
    learned_events: int = 0
    source: str = ""          # the topic the positions refer to


class SnapshotStore:
    """Reads and writes snapshots of one model name in one keyspace."""

    def __init__(self, session: Any, keyspace: str, model: str = "default",
                 chunk_bytes: int = 512 * 1024) -> None:
        if not _NAME.match(keyspace):
            raise ValueError(f"keyspace {keyspace!r} must match {_NAME.pattern}")
        self.session, self.keyspace, self.model, self.chunk_bytes = session, keyspace, model, chunk_bytes

    @classmethod
    def connect(cls, hosts: list[str], port: int, keyspace: str, model: str = "default",
                replication: str = "{'class': 'SimpleStrategy', 'replication_factor': 1}",
                connect_timeout: float = 10.0) -> SnapshotStore:
        # imported late: only the job and tools need the driver
        from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
        from cassandra.policies import DCAwareRoundRobinPolicy

        profile = ExecutionProfile(load_balancing_policy=DCAwareRoundRobinPolicy(), request_timeout=30.0)
        cluster = Cluster(hosts, port=port, connect_timeout=connect_timeout, protocol_version=5,
                          execution_profiles={EXEC_PROFILE_DEFAULT: profile})
        session = cluster.connect()
        store = cls(session, keyspace, model)
        store.ensure_schema(replication)
        return store

    def close(self) -> None:
        self.session.cluster.shutdown()

    def ensure_schema(self, replication: str) -> None:
        ks = self.keyspace
        self.session.execute(f"CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = {replication}")
        self.session.execute(
            f"CREATE TABLE IF NOT EXISTS {ks}.snapshot_chunks ("
            " model text, version bigint, chunk int, data blob,"
            " PRIMARY KEY ((model, version), chunk))")
        self.session.execute(
            f"CREATE TABLE IF NOT EXISTS {ks}.snapshot_manifests ("
            " model text, version bigint, created_ms bigint, size bigint, chunks int, sha256 text,"
            " positions map<int, bigint>, learned_events bigint, source text,"
            " PRIMARY KEY (model, version)) WITH CLUSTERING ORDER BY (version DESC)")
        # A keyspace made by an older release lacks the columns added since: add them.
        present = {r.column_name for r in self.session.execute(
            "SELECT column_name FROM system_schema.columns WHERE keyspace_name = %s AND table_name = %s",
            (ks, "snapshot_manifests"))}
        for column, kind in _ADDED_MANIFEST_COLUMNS:
            if column not in present:
                log.warning("snapshot store %s: adding column %s to snapshot_manifests", ks, column)
                self.session.execute(f"ALTER TABLE {ks}.snapshot_manifests ADD {column} {kind}")

    def list(self, limit: int = 100) -> list[SnapshotInfo]:
        rows = self.session.execute(
            f"SELECT version, created_ms, size, chunks, sha256, positions, learned_events, source"
            f" FROM {self.keyspace}.snapshot_manifests WHERE model = %s LIMIT %s", (self.model, limit))
        return [SnapshotInfo(r.version, r.created_ms, r.size, r.chunks, r.sha256,
                             dict(r.positions or {}), r.learned_events or 0, r.source or "") for r in rows]

    def save(self, blob: bytes, positions: dict[int, int], learned_events: int, source: str = "",
             ) -> SnapshotInfo:
        """Write a new version: chunks first, manifest last. Returns its manifest."""
        latest = self.list(limit=1)
        version = latest[0].version + 1 if latest else 1
        chunks = [blob[i:i + self.chunk_bytes] for i in range(0, len(blob), self.chunk_bytes)] or [b""]
        insert = self.session.prepare(
            f"INSERT INTO {self.keyspace}.snapshot_chunks (model, version, chunk, data) VALUES (?, ?, ?, ?)")
        for n, chunk in enumerate(chunks):
            self.session.execute(insert, (self.model, version, n, chunk))
        info = SnapshotInfo(version, int(time.time() * 1000), len(blob), len(chunks),
                            hashlib.sha256(blob).hexdigest(), dict(positions), learned_events, source)
        self.session.execute(
            f"INSERT INTO {self.keyspace}.snapshot_manifests"
            " (model, version, created_ms, size, chunks, sha256, positions, learned_events, source)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (self.model, version, info.created_ms, info.size, info.chunks, info.sha256,
             info.positions, info.learned_events, info.source))
        return info

    def read(self, info: SnapshotInfo) -> bytes | None:
        """The blob of one version, or None when its chunks are missing or corrupt."""
        rows = self.session.execute(
            f"SELECT chunk, data FROM {self.keyspace}.snapshot_chunks WHERE model = %s AND version = %s",
            (self.model, info.version))
        parts = {r.chunk: bytes(r.data or b"") for r in rows}
        if sorted(parts) != list(range(info.chunks)):
            log.warning("snapshot %s v%d: %d of %d chunks present; ignored",
                        self.model, info.version, len(parts), info.chunks)
            return None
        blob = b"".join(parts[i] for i in range(info.chunks))
        if hashlib.sha256(blob).hexdigest() != info.sha256:
            log.warning("snapshot %s v%d: checksum mismatch; ignored", self.model, info.version)
            return None
        return blob

    def load_latest(self) -> tuple[SnapshotInfo, bytes] | None:
        """The newest complete snapshot, skipping incomplete ones; None if there is none."""
        for info in self.list():
            blob = self.read(info)
            if blob is not None:
                return info, blob
        return None
