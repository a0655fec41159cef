"""Model snapshots in Cassandra: create the schema, list snapshots, show one, roll back to one.

    python -m jobs.models [--cassandra-hosts 127.0.0.1 --cassandra-port 9042 --keyspace streamrec
                           --model-name default [--variant NAME]] schema [--replication "{'class': ...}"]
    python -m jobs.models ... list [--limit 20]
    python -m jobs.models ... show VERSION
    python -m jobs.models ... rollback VERSION

``schema`` creates the keyspace (with the given replication) and the tables if missing, and
adds columns a newer release needs; it is idempotent, and the job does the same at start with
``--cassandra-replication``. ``rollback`` copies an older complete snapshot as the newest
version, under a new lineage (the update log written after the old one is not applied), so
the job loads it at its next start (a shared model: every replica, replica.py); stop the
job first (``make savepoint-stop``), or its next snapshot supersedes the copy. Nothing is
deleted. ``--variant NAME`` addresses an A/B variant's model (the job's ``--variants``;
stored as ``MODEL.NAME``): each variant rolls back on its own. Output is JSON lines; exit 2
with one line for a bad argument, an unknown or incomplete version, or an unreachable
Cassandra.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from typing import Any

from jobs.config import JobConfig
from operators.model.snapshot_store import SnapshotInfo, SnapshotStore
from operators.model.variants import DEFAULT, Variant, model_name
from operators.security import KeyFileError, WrongKey, snapshot_keys


def _describe(info: SnapshotInfo) -> dict[str, Any]:
    out = dataclasses.asdict(info)
    out["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(info.created_ms / 1000))
    # the health guard's rollbacks in the model's history: version, to_version, event_ts, reason
    out["rollbacks"] = json.loads(info.rollbacks) if info.rollbacks else []
    return out


def main(argv: list[str] | None = None) -> int:
    defaults = JobConfig.from_args([])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cassandra-hosts", default=defaults.cassandra_hosts)
    parser.add_argument("--cassandra-port", type=int, default=defaults.cassandra_port)
    parser.add_argument("--keyspace", default=defaults.keyspace)
    parser.add_argument("--model-name", default=defaults.model_name)
    parser.add_argument("--variant", default="", help="an A/B variant's model (the job's --variants): its name")
    parser.add_argument("--snapshot-key-file", default=defaults.snapshot_key_file,
                        help="key files of encrypted snapshots, comma-separated (the job's; the first encrypts)")
    parser.add_argument("--security-file", default=defaults.security_file,
                        help="credentials and TLS for Cassandra (the job's; operators/connections.py)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("schema", help="create keyspace and tables (idempotent)").add_argument(
        "--replication", default=defaults.cassandra_replication, help="CQL replication map for a new keyspace")
    listing = sub.add_parser("list", help="newest first: version, time, size, positions")
    listing.add_argument("--limit", type=int, default=20)
    for name in ("show", "rollback"):
        sub.add_parser(name).add_argument("version", type=int)
    args = parser.parse_args(argv)
    model = model_name(args.model_name, Variant(args.variant or DEFAULT, 1.0))
    try:
        keys = snapshot_keys(args.snapshot_key_file)
    except KeyFileError as exc:
        print(f"models: {exc}", file=sys.stderr)
        return 2
    try:
        store = SnapshotStore.connect([h.strip() for h in args.cassandra_hosts.split(",") if h.strip()],
                                      args.cassandra_port, args.keyspace, model,
                                      create_schema=args.command != "schema", keys=keys,
                                      security_file=args.security_file)
    except Exception as exc:  # noqa: BLE001 - any driver error: one line, exit 2
        print(f"models: cannot reach Cassandra at {args.cassandra_hosts}:{args.cassandra_port}: {exc}",
              file=sys.stderr)
        return 2
    try:
        if args.command == "schema":
            try:
                store.ensure_schema(args.replication)
            except ValueError as exc:
                print(f"models: {exc}", file=sys.stderr)
                return 2
            print(json.dumps({"keyspace": args.keyspace, "replication": args.replication, "schema": "ready"}))
            return 0
        if args.command == "list":
            for row in store.list(limit=args.limit):
                print(json.dumps(_describe(row)))
            return 0
        info = store.manifest(args.version)
        if info is None:
            print(f"models: no version {args.version} of model {model!r}", file=sys.stderr)
            return 2
        try:
            blob = store.read(info)
        except WrongKey as exc:
            print(f"models: {exc}", file=sys.stderr)
            return 2
        if args.command == "show":
            print(json.dumps({**_describe(info), "complete": blob is not None}))
            return 0
        if blob is None:
            print(f"models: version {args.version} is incomplete (missing or corrupt chunks); not rolled back",
                  file=sys.stderr)
            return 2
        copy = store.save(blob, info.positions, info.learned_events, info.source, lineage="",
                          shard=info.shard, shards=info.shards, digest=info.digest, log_offset=info.log_offset)
        print(json.dumps({"rolled_back_to": info.version, **_describe(copy)}))
        print(f"models: version {copy.version} is a copy of {info.version}; the job loads it at its next start",
              file=sys.stderr)
        return 0
    finally:
        store.close()


if __name__ == "__main__":
    sys.exit(main())
