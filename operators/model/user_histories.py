"""Users' state from a bootstrap (jobs.bootstrap), where the job finds it on first sight.

A bootstrap learns months of history offline and writes, next to the model's snapshot, each
user's ``UserState`` (recent items, seen items, session, situation) to one Cassandra table.
The model operator reads a user's row the first time it meets the user without keyed state
(``UserHistories.first_sight``), so a user's first live list already uses their history and
excludes what they have seen; from then on the state lives in Flink keyed state as always. A
forget request deletes the row with the keyed state (README "Security and privacy").

Rows are keyed by (model name, user id as the job keys users: the pseudonym when pseudonyms
are on). With snapshot keys (security.SnapshotKey) each row is sealed with AES-256-GCM, bound
to its model and user, so a row copied to another user fails to open.

>>> from operators.model.history import UserState
>>> from operators.records import Event
>>> tables = MemoryHistoryTables()
>>> state = UserState()
>>> state.history.apply(Event("e", "u1", "i1", "view", None, 1), max_recent=5)
>>> UserHistories(tables, "default").put_many([("u1", state)])
1
>>> found = UserHistories(tables, "default").first_sight("u1")
>>> found.history.recent, UserHistories(tables, "default").first_sight("u2")
(['i1'], None)
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import astuple, dataclass
from typing import Any, Protocol

from operators.model.history import UserState
from operators.security import Keyring, SealBroken, SnapshotKey

log = logging.getLogger(__name__)

TABLE = "user_histories"


class HistoryTables(Protocol):
    """The one table, one method per CQL statement."""

    def put_many(self, model: str, rows: Sequence[tuple[str, bytes, str]]) -> None:
        """(user id, data, key id) rows, written (or overwritten)."""

    def get(self, model: str, user_id: str) -> tuple[bytes, str] | None: ...

    def delete(self, model: str, user_id: str) -> None: ...

    def put_bootstrap(self, model: str, record: BootstrapRecord) -> None: ...

    def bootstraps(self, model: str) -> list[BootstrapRecord]:
        """Newest first."""


@dataclass(frozen=True)
class BootstrapRecord:
    """One bootstrap of a model: when, up to which event time, how many events and users, and
    the snapshot it wrote (the job reads user histories only for a model that has one)."""

    created_ms: int
    until_ms: int
    events: int
    users: int
    snapshot_version: int
    source: str = ""        # the file it read


class MemoryHistoryTables:
    """``HistoryTables`` in a dict (unit tests, the offline equivalence test)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], tuple[bytes, str]] = {}
        self.records: dict[str, list[BootstrapRecord]] = {}

    def put_many(self, model: str, rows: Sequence[tuple[str, bytes, str]]) -> None:
        for user_id, data, key_id in rows:
            self.rows[(model, user_id)] = (data, key_id)

    def get(self, model: str, user_id: str) -> tuple[bytes, str] | None:
        return self.rows.get((model, user_id))

    def delete(self, model: str, user_id: str) -> None:
        self.rows.pop((model, user_id), None)

    def put_bootstrap(self, model: str, record: BootstrapRecord) -> None:
        self.records.setdefault(model, []).insert(0, record)

    def bootstraps(self, model: str) -> list[BootstrapRecord]:
        return list(self.records.get(model, []))


class CassandraHistoryTables:
    """``HistoryTables`` in the snapshot keyspace (the table is made by
    snapshot_store.CassandraTables.ensure_schema)."""

    def __init__(self, session: Any, keyspace: str) -> None:
        self.session, self.keyspace = session, keyspace
        self._get: Any = None

    def put_many(self, model: str, rows: Sequence[tuple[str, bytes, str]]) -> None:
        from cassandra.concurrent import execute_concurrent_with_args  # the driver only where Cassandra is
        insert = self.session.prepare(f"INSERT INTO {self.keyspace}.{TABLE} (model, user_id, state, key_id)"
                                      " VALUES (?, ?, ?, ?)")
        for ok, result in execute_concurrent_with_args(self.session, insert, [(model, *row) for row in rows],
                                                       concurrency=64, raise_on_first_error=False):
            if not ok:
                raise result

    def get(self, model: str, user_id: str) -> tuple[bytes, str] | None:
        if self._get is None:
            self._get = self.session.prepare(f"SELECT state, key_id FROM {self.keyspace}.{TABLE}"
                                             " WHERE model = ? AND user_id = ?")
        row = self.session.execute(self._get, (model, user_id)).one()
        return None if row is None else (bytes(row.state), row.key_id or "")

    def delete(self, model: str, user_id: str) -> None:
        self.session.execute(f"DELETE FROM {self.keyspace}.{TABLE} WHERE model = %s AND user_id = %s",
                             (model, user_id))

    def put_bootstrap(self, model: str, record: BootstrapRecord) -> None:
        self.session.execute(
            f"INSERT INTO {self.keyspace}.bootstraps (model, created_ms, until_ms, events, users, snapshot_version,"
            " source) VALUES (%s, %s, %s, %s, %s, %s, %s)", (model, *astuple(record)))

    def bootstraps(self, model: str) -> list[BootstrapRecord]:
        rows = self.session.execute(
            f"SELECT created_ms, until_ms, events, users, snapshot_version, source FROM {self.keyspace}.bootstraps"
            " WHERE model = %s", (model,))
        return [BootstrapRecord(r.created_ms, r.until_ms, r.events, r.users, r.snapshot_version, r.source or "")
                for r in rows]


class UserHistories:
    """Users' bootstrapped state for one model name, sealed when ``keys`` are given (the first
    seals, any of them opens, as for snapshots)."""

    def __init__(self, tables: HistoryTables, model: str, keys: Sequence[SnapshotKey] = ()) -> None:
        self.tables, self.model = tables, model
        self.keys = Keyring(keys)
        self.found = self.missing = self.failed = 0    # first sights: with a row, without, unreadable

    def _associated(self, user_id: str) -> bytes:
        return f"streamrec user history {self.model}/{user_id}".encode()

    def put_many(self, users: Iterable[tuple[str, UserState]], batch: int = 5_000) -> int:
        """Write each user's state; returns how many."""
        written, rows = 0, []
        for user_id, state in users:
            data = state.snapshot()
            if self.keys.sealing is not None:
                data = self.keys.sealing.seal_for(data, self._associated(user_id))
            rows.append((user_id, data, self.keys.sealing_id))
            if len(rows) >= batch:
                self.tables.put_many(self.model, rows)
                written, rows = written + len(rows), []
        if rows:
            self.tables.put_many(self.model, rows)
        return written + len(rows)

    def record(self, record: BootstrapRecord) -> None:
        self.tables.put_bootstrap(self.model, record)

    def bootstraps(self) -> list[BootstrapRecord]:
        return self.tables.bootstraps(self.model)

    def first_sight(self, user_id: str) -> UserState | None:
        """The bootstrapped state of a user the job has no keyed state for, if any. A row that
        cannot be read (Cassandra unreachable: the model itself goes on learning; a tampered
        row; a format this release cannot read) is logged and counted, and the user starts
        empty, as without a bootstrap; a row sealed with a key this reader lacks raises
        security.WrongKey (a configuration error, never a silent empty user)."""
        try:
            stored = self.tables.get(self.model, user_id)
        except Exception:  # noqa: BLE001 - the driver's errors are many; the user's history is optional
            self.failed += 1
            log.warning("model %s: reading a bootstrapped user history failed; the user starts without it",
                        self.model, exc_info=self.failed == 1)
            return None
        if stored is None:
            self.missing += 1
            return None
        data, key_id = stored
        if key_id:
            key = self.keys.key_for(key_id, f"the bootstrapped user histories of model {self.model}")
            try:
                data = key.open_for(data, self._associated(user_id), key_id, "a bootstrapped user history")
            except SealBroken as exc:
                self.failed += 1
                log.warning("model %s: %s; the user starts without it", self.model, exc)
                return None
        try:
            state = UserState.restore(data)
        except Exception as exc:  # noqa: BLE001 - any unreadable row: start the user empty, say so
            self.failed += 1
            log.warning("model %s: a bootstrapped user history is unreadable (%s); the user starts without it",
                        self.model, exc)
            return None
        self.found += 1
        return state

    def forget(self, user_id: str) -> None:
        self.tables.delete(self.model, user_id)
