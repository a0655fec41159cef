"""Versioned model snapshots in Cassandra.

Tables (``ensure_schema``; ``python -m jobs.models schema`` creates them with a chosen
replication):

- ``snapshot_versions``: a writer reserves its version number here first, with a lightweight
  transaction, so two writers (parallel model subtasks, a rollback) never share a number;
- ``snapshot_chunks``: the blob, zlib-compressed (level 1: a ranker snapshot shrinks about
  4.6x for 0.5 s of the writer thread), cut into chunks, no cell above ``chunk_bytes`` (512 KiB);
- ``snapshot_manifests``: one row per version, written last. A reader only trusts a version
  whose manifest exists and whose chunks are all present and decode to the manifest's sha256,
  so a half-written snapshot is never read.

An incremental snapshot (delta.py) holds only the rows that changed since a full one, its
``base``: reading it composes the two, it is complete only while its base is, and ``prune``
keeps the base of every version it keeps.

Each manifest records the Kafka positions (partition -> highest offset) the snapshot contains,
the number of learned events, the lineage its update log continues (updates.py) and which
model subtask wrote it (``shard`` of ``shards``). ``prune`` keeps the newest N complete
versions of one writer and deletes older ones, manifest first, with their chunks.

The policy (``SnapshotStore``: numbering, chunking, what counts as complete, pruning) is pure;
the three tables are injected (``SnapshotTables``): ``CassandraTables`` in the job and tools,
``MemoryTables`` in unit tests, which can stop a write after any of its steps.

>>> store = SnapshotStore(MemoryTables(), chunk_bytes=4)
>>> info = store.save(b"model bytes", {0: 41}, 42, "clicks", "L")
>>> info.version, info.chunks > 1, store.read(info), store.load_for(0, 1)[2]
(1, True, b'model bytes', True)
"""

from __future__ import annotations

import builtins
import hashlib
import logging
import re
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from operators.connections import security
from operators.security import Keyring, SealBroken, SnapshotKey

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
# Manifest columns that releases added after the first one, with their types.
_ADDED_MANIFEST_COLUMNS = [("positions", "map<int, bigint>"), ("learned_events", "bigint"), ("source", "text"),
                           ("lineage", "text"), ("shard", "int"), ("shards", "int"), ("compression", "text"),
                          ("digest", "text"), ("log_offset", "bigint"), ("rollbacks", "text"), ("base", "bigint"),
                          ("key_id", "text")]
DEFAULT_REPLICATION = "{'class': 'SimpleStrategy', 'replication_factor': 1}"
_REPLICATION = re.compile(r"^\{[\w\s'\":,.-]+\}$")



def compress(blob: bytes) -> bytes:
    """How snapshot chunks are stored ("zlib" in the manifest): level 1, fast on the writer thread."""
    return zlib.compress(blob, 1)

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
    lineage: str = ""         # the update log this snapshot continues (updates.py)
    shard: int = 0            # the model subtask that wrote it...
    shards: int = 1           # ...out of this many
    compression: str = ""     # how the chunks are encoded: "zlib", or "" (raw)
    digest: str = ""          # the model state's hash (OnlineRanker.digest): equal models, equal digests
    log_offset: int = -1      # a shared model's (replica.py): the update-log offset it continues from
    rollbacks: str = ""       # the health guard's rollbacks in this model's history (JSON list; health.py)
    base: int = -1            # an incremental snapshot's: the full version its rows apply to (delta.py)
    key_id: str = ""          # an encrypted snapshot's: the id (not the key) of its AES-256-GCM key (security.py)

    @property
    def shared(self) -> bool:
        """A snapshot of the one model every subtask holds (replica.py), not of one subtask's."""
        return self.log_offset >= 0


class SnapshotTables(Protocol):
    """The three tables of one model name, one operation per CQL statement the store issues."""

    def reserved(self) -> builtins.list[tuple[int, int, int]]:
        """(version, shard, shards) of every reservation, newest first."""

    def reserve(self, version: int, shard: int, shards: int, created_ms: int) -> bool:
        """Claim ``version`` unless someone has (a lightweight transaction); True if claimed."""

    def put_chunk(self, version: int, chunk: int, data: bytes) -> None: ...

    def chunks(self, version: int) -> dict[int, bytes]: ...

    def chunk_numbers(self, version: int) -> builtins.list[int]: ...

    def put_manifest(self, info: SnapshotInfo) -> None: ...

    def manifests(self, limit: int) -> builtins.list[SnapshotInfo]:
        """Newest first."""

    def delete_version(self, version: int) -> None:
        """Manifest, then chunks, then reservation: a reader never sees a manifest without chunks."""

    def close(self) -> None: ...


class CassandraTables:
    """``SnapshotTables`` in a Cassandra keyspace."""

    _COLUMNS = ("version, created_ms, size, chunks, sha256, positions, learned_events, source, lineage, shard, shards,"
                " compression, digest, log_offset, rollbacks, base, key_id")

    def __init__(self, session: Any, keyspace: str, model: str = "default") -> None:
        if not _NAME.match(keyspace):
            raise ValueError(f"keyspace {keyspace!r} must match {_NAME.pattern}")
        self.session, self.keyspace, self.model = session, keyspace, model
        self._insert_chunk: Any = None

    @classmethod
    def connect(cls, hosts: builtins.list[str], port: int, keyspace: str, model: str = "default",
                connect_timeout: float = 10.0, security_file: str = "") -> CassandraTables:
        # imported late: only the job and tools need the driver
        from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
        from cassandra.policies import DCAwareRoundRobinPolicy, ExponentialReconnectionPolicy

        profile = ExecutionProfile(load_balancing_policy=DCAwareRoundRobinPolicy(), request_timeout=30.0)
        # Reconnect within seconds of Cassandra coming back (the default waits up to 10 min).
        cluster = Cluster(hosts, port=port, connect_timeout=connect_timeout, protocol_version=5,
                          execution_profiles={EXEC_PROFILE_DEFAULT: profile},
                          reconnection_policy=ExponentialReconnectionPolicy(1.0, 10.0),
                          **security(security_file).cassandra_options())     # credentials and TLS, if any
        return cls(cluster.connect(), keyspace, model)

    def close(self) -> None:
        self.session.cluster.shutdown()

    def ensure_schema(self, replication: str = DEFAULT_REPLICATION) -> None:
        """Create the keyspace and tables if missing, add columns newer releases need;
        idempotent. An existing keyspace keeps its replication (ALTER KEYSPACE changes it)."""
        if not _REPLICATION.match(replication):
            raise ValueError(f"replication {replication!r} is not a CQL map such as {DEFAULT_REPLICATION}")
        ks = self.keyspace
        if ks not in self.session.cluster.metadata.keyspaces:
            # (a role granted only this keyspace may not CREATE KEYSPACE, even IF NOT EXISTS)
            self.session.execute(f"CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = {replication}")
        self.session.execute(
            f"CREATE TABLE IF NOT EXISTS {ks}.snapshot_versions ("
            " model text, version bigint, shard int, shards int, created_ms bigint,"
            " PRIMARY KEY (model, version)) WITH CLUSTERING ORDER BY (version DESC)")
        self.session.execute(
            f"CREATE TABLE IF NOT EXISTS {ks}.snapshot_chunks ("
            " model text, version bigint, chunk int, data blob,"
            " PRIMARY KEY ((model, version), chunk))")
        self.session.execute(
            f"CREATE TABLE IF NOT EXISTS {ks}.snapshot_manifests ("
            " model text, version bigint, created_ms bigint, size bigint, chunks int, sha256 text,"
            " positions map<int, bigint>, learned_events bigint, source text, lineage text, shard int, shards int,"
            " compression text, digest text, log_offset bigint, rollbacks text, base bigint, key_id text,"
            " PRIMARY KEY (model, version)) WITH CLUSTERING ORDER BY (version DESC)")
        # users' state from a bootstrap (user_histories.py), read on a user's first sight
        self.session.execute(
            f"CREATE TABLE IF NOT EXISTS {ks}.user_histories ("
            " model text, user_id text, state blob, key_id text, PRIMARY KEY ((model, user_id)))")
        self.session.execute(
            f"CREATE TABLE IF NOT EXISTS {ks}.bootstraps ("
            " model text, created_ms bigint, until_ms bigint, events bigint, users bigint, snapshot_version bigint,"
            " source text, PRIMARY KEY (model, created_ms)) WITH CLUSTERING ORDER BY (created_ms DESC)")
        # A keyspace made by an older release lacks the columns added since: add them.
        present = {r.column_name for r in self.session.execute(
            "SELECT column_name FROM system_schema.columns WHERE keyspace_name = %s AND table_name = %s",
            (ks, "snapshot_manifests"))}
        for column, kind in _ADDED_MANIFEST_COLUMNS:
            if column not in present:
                log.warning("snapshot store %s: adding column %s to snapshot_manifests", ks, column)
                self.session.execute(f"ALTER TABLE {ks}.snapshot_manifests ADD {column} {kind}")

    def reserved(self) -> builtins.list[tuple[int, int, int]]:
        return [(r.version, r.shard, r.shards) for r in self.session.execute(
            f"SELECT version, shard, shards FROM {self.keyspace}.snapshot_versions WHERE model = %s", (self.model,))]

    def reserve(self, version: int, shard: int, shards: int, created_ms: int) -> bool:
        applied = self.session.execute(
            f"INSERT INTO {self.keyspace}.snapshot_versions (model, version, shard, shards, created_ms)"
            " VALUES (%s, %s, %s, %s, %s) IF NOT EXISTS", (self.model, version, shard, shards, created_ms)).one()
        return applied is None or bool(applied[0])

    def put_chunk(self, version: int, chunk: int, data: bytes) -> None:
        if self._insert_chunk is None:
            self._insert_chunk = self.session.prepare(
                f"INSERT INTO {self.keyspace}.snapshot_chunks (model, version, chunk, data) VALUES (?, ?, ?, ?)")
        self.session.execute(self._insert_chunk, (self.model, version, chunk, data))

    def chunks(self, version: int) -> dict[int, bytes]:
        return {r.chunk: bytes(r.data or b"") for r in self.session.execute(
            f"SELECT chunk, data FROM {self.keyspace}.snapshot_chunks WHERE model = %s AND version = %s",
            (self.model, version))}

    def chunk_numbers(self, version: int) -> builtins.list[int]:
        return [r.chunk for r in self.session.execute(
            f"SELECT chunk FROM {self.keyspace}.snapshot_chunks WHERE model = %s AND version = %s",
            (self.model, version))]

    def put_manifest(self, info: SnapshotInfo) -> None:
        self.session.execute(
            f"INSERT INTO {self.keyspace}.snapshot_manifests ({self._COLUMNS.replace('version', 'model, version', 1)})"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (self.model, info.version, info.created_ms, info.size, info.chunks, info.sha256,
             info.positions, info.learned_events, info.source, info.lineage, info.shard, info.shards,
             info.compression, info.digest, info.log_offset, info.rollbacks, info.base, info.key_id))

    def manifests(self, limit: int) -> builtins.list[SnapshotInfo]:
        rows = self.session.execute(
            f"SELECT {self._COLUMNS} FROM {self.keyspace}.snapshot_manifests WHERE model = %s LIMIT %s",
            (self.model, limit))
        return [SnapshotInfo(r.version, r.created_ms, r.size, r.chunks, r.sha256, dict(r.positions or {}),
                             r.learned_events or 0, r.source or "", r.lineage or "",
                             r.shard if r.shard is not None else 0, r.shards if r.shards is not None else 1,
                             r.compression or "", r.digest or "",
                             r.log_offset if r.log_offset is not None else -1, r.rollbacks or "",
                             r.base if r.base is not None else -1, r.key_id or "") for r in rows]

    def delete_version(self, version: int) -> None:
        for table in ("snapshot_manifests", "snapshot_chunks", "snapshot_versions"):
            self.session.execute(f"DELETE FROM {self.keyspace}.{table} WHERE model = %s AND version = %s",
                                 (self.model, version))


class MemoryTables:
    """``SnapshotTables`` in memory, for tests: ``fail_after`` (count down, one per write or
    delete) makes a write raise ``StoreDown``, as a writer that dies or loses Cassandra half-way."""

    class StoreDown(ConnectionError):
        pass

    def __init__(self) -> None:
        self.versions: dict[int, tuple[int, int]] = {}
        self.chunk_rows: dict[int, dict[int, bytes]] = {}
        self.manifest_rows: dict[int, SnapshotInfo] = {}
        self.history: builtins.list[SnapshotInfo] = []     # every manifest written, pruned ones too
        self.fail_after: int | None = None
        self.writes = 0          # writes and deletes done

    def _write(self) -> None:
        if self.fail_after is not None:
            if self.fail_after <= 0:
                raise MemoryTables.StoreDown(f"the store went away after write {self.writes}")
            self.fail_after -= 1
        self.writes += 1

    def reserved(self) -> builtins.list[tuple[int, int, int]]:
        return [(v, *self.versions[v]) for v in sorted(self.versions, reverse=True)]

    def reserve(self, version: int, shard: int, shards: int, created_ms: int) -> bool:
        self._write()
        if version in self.versions:
            return False
        self.versions[version] = (shard, shards)
        return True

    def put_chunk(self, version: int, chunk: int, data: bytes) -> None:
        self._write()
        self.chunk_rows.setdefault(version, {})[chunk] = data

    def chunks(self, version: int) -> dict[int, bytes]:
        return dict(self.chunk_rows.get(version, {}))

    def chunk_numbers(self, version: int) -> builtins.list[int]:
        return sorted(self.chunk_rows.get(version, {}))

    def put_manifest(self, info: SnapshotInfo) -> None:
        self._write()
        self.manifest_rows[info.version] = info
        self.history.append(info)

    def manifests(self, limit: int) -> builtins.list[SnapshotInfo]:
        return [self.manifest_rows[v] for v in sorted(self.manifest_rows, reverse=True)[:limit]]

    def delete_version(self, version: int) -> None:
        self._write()
        self.manifest_rows.pop(version, None)
        self._write()
        self.chunk_rows.pop(version, None)
        self._write()
        self.versions.pop(version, None)

    def close(self) -> None:
        pass


class SnapshotStore:
    """Reads and writes snapshots of one model name, in the tables given. With ``keys``
    (security.SnapshotKey), the first encrypts every snapshot written and any of them opens
    one (a rotation: the new key first, the old ones after it until no snapshot needs them);
    reading an encrypted snapshot without its key raises ``security.WrongKey``."""

    def __init__(self, tables: SnapshotTables, chunk_bytes: int = 512 * 1024,
                 keys: Sequence[SnapshotKey] = ()) -> None:
        self.tables, self.chunk_bytes = tables, chunk_bytes
        self.keys = Keyring(keys)

    @classmethod
    def connect(cls, hosts: builtins.list[str], port: int, keyspace: str, model: str = "default",
                replication: str = DEFAULT_REPLICATION, connect_timeout: float = 10.0,
                create_schema: bool = True, keys: Sequence[SnapshotKey] = (), security_file: str = "") -> SnapshotStore:
        tables = CassandraTables.connect(hosts, port, keyspace, model, connect_timeout, security_file)
        if create_schema:
            tables.ensure_schema(replication)
        return cls(tables, keys=keys)

    @property
    def cassandra(self) -> CassandraTables:
        """The Cassandra tables behind this store (tools and integration tests reach CQL here)."""
        if not isinstance(self.tables, CassandraTables):
            raise TypeError(f"this store keeps its snapshots in {type(self.tables).__name__}, not Cassandra")
        return self.tables

    @property
    def keyspace(self) -> str:
        return self.cassandra.keyspace

    @property
    def session(self) -> Any:
        return self.cassandra.session

    def ensure_schema(self, replication: str = DEFAULT_REPLICATION) -> None:
        self.cassandra.ensure_schema(replication)

    def close(self) -> None:
        self.tables.close()

    def list(self, limit: int = 100) -> builtins.list[SnapshotInfo]:
        """Manifests, newest first (complete or not: ``read`` tells)."""
        return self.tables.manifests(limit)

    def manifest(self, version: int, manifests: Sequence[SnapshotInfo] | None = None) -> SnapshotInfo | None:
        """The manifest of ``version``, if written (``manifests``: the store's, if the caller
        has just listed them)."""
        return next((i for i in manifests or self.list(limit=10_000) if i.version == version), None)

    def _reserve(self, shard: int, shards: int) -> int:
        """The next free version number, claimed with a lightweight transaction."""
        newest = [v for v, _, _ in self.tables.reserved()[:1]]
        version = max([0, *newest, *(i.version for i in self.list(limit=1))]) + 1
        while not self.tables.reserve(version, shard, shards, int(time.time() * 1000)):
            version += 1
        return version

    def save(self, blob: bytes, positions: dict[int, int], learned_events: int, source: str = "",
             lineage: str = "", shard: int = 0, shards: int = 1, created_ms: int | None = None,
             digest: str = "", log_offset: int = -1, rollbacks: str = "", base: int = -1) -> SnapshotInfo:
        """Write a new version: reserve its number, chunks, then the manifest. Returns the manifest.
        With ``base``, ``blob`` is a delta on that full version (delta.encode), and reading
        this version composes the two."""
        version = self._reserve(shard, shards)
        stored = compress(blob)
        if self.keys.sealing is not None:
            stored = self.keys.sealing.seal(stored, version)
        chunks = [stored[i:i + self.chunk_bytes] for i in range(0, len(stored), self.chunk_bytes)] or [b""]
        for n, chunk in enumerate(chunks):
            self.tables.put_chunk(version, n, chunk)
        info = SnapshotInfo(version, created_ms or int(time.time() * 1000), len(blob), len(chunks),
                            hashlib.sha256(blob).hexdigest(), dict(positions), learned_events, source,
                            lineage, shard, shards, "zlib", digest, log_offset, rollbacks, base,
                            self.keys.sealing_id)
        self.tables.put_manifest(info)
        return info

    def prune(self, keep: int, shard: int = 0, shards: int = 1) -> builtins.list[int]:
        """Keep the newest ``keep`` complete versions written by (``shard`` of ``shards``);
        delete that writer's older versions, and its abandoned reservations, manifest first.
        Returns the deleted version numbers."""
        if keep < 1:
            raise ValueError("keep must be at least 1")
        every = self.list(limit=10_000)
        mine = [i for i in every if (i.shard, i.shards) == (shard, shards)]
        complete = [i for i in mine if self.complete(i, every)][:keep]
        if len(complete) < keep:
            return []
        oldest_kept = complete[-1].version
        bases = {i.base for i in complete if i.base >= 0}      # the full versions kept deltas apply to
        reserved = {v for v, *writer in self.tables.reserved() if tuple(writer) == (shard, shards)}
        doomed = sorted(({i.version for i in mine if i.version < oldest_kept}
                         | {v for v in reserved if v < oldest_kept}) - bases)
        self.delete(doomed)
        return doomed

    def delete(self, versions: Sequence[int]) -> None:
        for version in versions:
            self.tables.delete_version(version)

    def read(self, info: SnapshotInfo, quiet: bool = False) -> bytes | None:
        """The blob of one version (an incremental one composed with its base), or None when
        its chunks, or its base's, are missing or corrupt."""
        blob = self._stored(info, quiet)
        if blob is None or info.base < 0:
            return blob
        base = self.manifest(info.base)
        base_blob = self._stored(base, quiet) if base is not None and base.base < 0 else None
        if base_blob is None:
            if not quiet:
                log.warning("snapshot v%d: its base v%d is missing or incomplete; ignored", info.version, info.base)
            return None
        from operators.model.delta import compose  # late: torch, which the store's other users need not load
        try:
            return compose(base_blob, blob)
        except Exception as exc:  # noqa: BLE001 - an unreadable delta is an unreadable snapshot
            if not quiet:
                log.warning("snapshot v%d: cannot apply it to v%d (%s); ignored", info.version, info.base, exc)
            return None

    def _stored(self, info: SnapshotInfo, quiet: bool) -> bytes | None:
        """The bytes written for one version, checked against its manifest."""
        parts = self.tables.chunks(info.version)
        if sorted(parts) != builtins.list(range(info.chunks)):
            if not quiet:
                log.warning("snapshot v%d: %d of %d chunks present; ignored", info.version, len(parts), info.chunks)
            return None
        blob = b"".join(parts[i] for i in range(info.chunks))
        if info.key_id:
            opened = self._open(blob, info, quiet)
            if opened is None:
                return None
            blob = opened
        if info.compression == "zlib":
            try:
                blob = zlib.decompress(blob)
            except zlib.error:
                blob = b""          # fails the checksum below
        if hashlib.sha256(blob).hexdigest() != info.sha256:
            if not quiet:
                log.warning("snapshot v%d: checksum mismatch; ignored", info.version)
            return None
        return blob

    def _open(self, sealed: bytes, info: SnapshotInfo, quiet: bool) -> bytes | None:
        """The stored bytes of an encrypted snapshot; None when they fail authentication (a
        torn or tampered snapshot). Without the snapshot's key: WrongKey, never an empty model."""
        key = self.keys.key_for(info.key_id, f"snapshot v{info.version}")
        try:
            return key.open(sealed, info.version, info.key_id)
        except SealBroken as exc:
            if not quiet:
                log.warning("%s; ignored", exc)
            return None

    def _chunks_present(self, info: SnapshotInfo) -> bool:
        return sorted(self.tables.chunk_numbers(info.version)) == builtins.list(range(info.chunks))

    def complete(self, info: SnapshotInfo, manifests: Sequence[SnapshotInfo] | None = None) -> bool:
        """Whether every chunk of ``info`` is present, and of its base if it is incremental
        (``manifests``: the store's, if the caller has just listed them)."""
        if not self._chunks_present(info):
            return False
        if info.base < 0:
            return True
        base = self.manifest(info.base, manifests)
        return base is not None and base.base < 0 and self._chunks_present(base)

    def load_shared(self) -> tuple[SnapshotInfo, bytes] | None:
        """The newest complete snapshot of the shared model (replica.py), if any."""
        for info in self.list(limit=1_000):
            blob = self.read(info) if info.shared else None
            if blob is not None:
                return info, blob
        return None

    def load_for(self, shard: int, shards: int) -> tuple[SnapshotInfo, bytes, bool] | None:
        """The complete snapshot model subtask ``shard`` of ``shards`` starts from, and whether it
        continues that snapshot's lineage (True) or starts a new one from it (see ``candidates``)."""
        for info, continues in candidates(self.list(limit=1_000), shard, shards):
            blob = self.read(info)
            if blob is not None:
                return info, blob, continues
        return None


def candidates(infos: Sequence[SnapshotInfo], shard: int, shards: int) -> list[tuple[SnapshotInfo, bool]]:
    """The snapshots subtask ``shard`` of ``shards`` may start from, best first, each with
    whether it *continues* that snapshot's lineage.

    It continues its own series (same shard, same parallelism) when that series is newer than
    anything written under another parallelism. Otherwise the parallelism changed: it starts a
    new lineage from the newest snapshot of another parallelism (or, if none is readable, from
    its own older one). A snapshot without a lineage (an older release) never continues.

    >>> def s(version, shard=0, shards=1, lineage="L"):
    ...     return SnapshotInfo(version, 0, 0, 1, "", lineage=lineage, shard=shard, shards=shards)
    >>> history = [s(4, 1, 2, "B"), s(3, 0, 2, "A"), s(2), s(1)]        # newest first
    >>> [(i.version, c) for i, c in candidates(history, 0, 2)]          # same parallelism: own series
    [(3, True), (2, False), (1, False)]
    >>> [(i.version, c) for i, c in candidates(history, 0, 1)]          # 2 -> 1: start from the newest
    [(4, False), (3, False), (2, False), (1, False)]
    >>> [(i.version, c) for i, c in candidates([s(2), s(1, 1, 2, "B")], 1, 2)]   # 1 -> 2 again
    [(2, False), (1, False)]
    """
    ordered = sorted(infos, key=lambda i: i.version, reverse=True)
    own = [i for i in ordered if (i.shard, i.shards) == (shard, shards)]
    other = [i for i in ordered if i.shards != shards]
    if own and (not other or own[0].version > other[0].version):
        first = [(i, bool(i.lineage)) for i in own]
        return first + [(i, False) for i in other]
    return [(i, False) for i in other + own]
