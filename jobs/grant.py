"""Create a job's topics and grant its Kafka principal what the job needs, and nothing else,
as an administrator of a secured cluster (README "Security and privacy"):

    python -m jobs.grant --admin-security-file admin.json --principal streamrec [job flags]

The job flags (``--input-topic``, ``--output-topic``, ...; jobs/config.py) name the topics,
the consumer group and the transactional-id prefix, as the job will see them. The ACLs
(:func:`job_acls`):

- Read, Describe on the input and control topics and on the consumer group (the source
  commits its offsets to the group at each checkpoint);
- Write, Describe on the recommendations, dead-letter, update-log and metrics topics, and on
  the transactional ids that start with the job's prefix (prefixed pattern: the exactly-once
  sinks' producers);
- Read on the update-log topic and DescribeConfigs on it: the model replays its own log at a
  restart (it reads with generated consumer groups that commit nothing, so no group ACL) and
  checks the log's retention at start.

The topics are created here (the update log as the job would make it), so the job needs no
Create permission.

    python -m jobs.grant cassandra --secrets DIR [--cassandra-port 9042] [--keyspace streamrec]

secures a fresh Cassandra with PasswordAuthenticator (``deploy/local/services up --secure``):
an ``admin`` superuser in place of the default ``cassandra`` one (which loses login and
superuser), and a ``streamrec`` role that may only create, alter, read and write tables in
the job's keyspace (:data:`JOB_KEYSPACE_PERMISSIONS`). Passwords come from DIR's files.
Idempotent. Exit 0 on success, 2 with one line on an error.
"""

from __future__ import annotations

import argparse
import ssl
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobs.config import JobConfig
from jobs.kafka_io import ensure_topics
from operators.model.update_log import ensure_log_topic


@dataclass(frozen=True)
class Grant:
    resource: str          # TOPIC, GROUP or TRANSACTIONAL_ID
    name: str
    prefixed: bool
    operation: str         # READ, WRITE, DESCRIBE, DESCRIBE_CONFIGS


def job_acls(config: JobConfig) -> list[Grant]:
    """What the job's principal may do, given its configuration.

    >>> c = JobConfig(input_topic="in", output_topic="out", consumer_group="g", transactional_id_prefix="tx")
    >>> [(g.resource, g.name, g.operation) for g in job_acls(c) if g.name == "in"]
    [('TOPIC', 'in', 'READ'), ('TOPIC', 'in', 'DESCRIBE')]
    >>> [(g.name, g.prefixed, g.operation) for g in job_acls(c) if g.resource == "TRANSACTIONAL_ID"]
    [('tx', True, 'WRITE'), ('tx', True, 'DESCRIBE')]
    """
    read = [config.input_topic, config.control_topic_name]
    write = [config.output_topic, config.dlq_topic, config.update_log_topic, config.metrics_topic_name]
    grants = [Grant("TOPIC", t, False, op) for t in read for op in ("READ", "DESCRIBE")]
    grants += [Grant("GROUP", config.consumer_group, False, op) for op in ("READ", "DESCRIBE")]
    # READ on what it writes: a restarted exactly-once sink (POOLING) finds the transactions its
    # failed attempt left open with DescribeProducers on its topics, which Kafka authorises as READ
    grants += [Grant("TOPIC", t, False, op) for t in write for op in ("WRITE", "DESCRIBE", "READ")]
    grants += [Grant("TOPIC", config.update_log_topic, False, "DESCRIBE_CONFIGS")]
    grants += [Grant("TRANSACTIONAL_ID", config.tx_prefix, True, op) for op in ("WRITE", "DESCRIBE")]
    return grants


def apply(bootstrap: str, admin_security_file: str, principal: str, grants: list[Grant],
          timeout: float = 30.0) -> None:
    from confluent_kafka.admin import (
        AclBinding,
        AclOperation,
        AclPermissionType,
        AdminClient,
        ResourcePatternType,
        ResourceType,
    )

    from operators.connections import security

    admin = AdminClient(security(admin_security_file).librdkafka(bootstrap))
    bindings = [AclBinding(ResourceType[g.resource], g.name,
                           ResourcePatternType.PREFIXED if g.prefixed else ResourcePatternType.LITERAL,
                           f"User:{principal}", "*", AclOperation[g.operation], AclPermissionType.ALLOW)
                for g in grants]
    for binding, future in admin.create_acls(bindings, request_timeout=timeout).items():
        try:
            future.result(timeout)
        except Exception as exc:
            raise RuntimeError(f"could not create the ACL {binding}: {exc}") from exc


JOB_KEYSPACE_PERMISSIONS = ("CREATE", "ALTER", "SELECT", "MODIFY")


def secure_cassandra(secrets: Path, host: str, port: int, keyspace: str, replication: str,
                     timeout_s: float = 60.0) -> None:
    from cassandra import AuthenticationFailed
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import Cluster, NoHostAvailable

    def password(name: str) -> str:
        return (secrets / f"{name}.password").read_text().strip()

    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(secrets / "ca.pem"))

    def session(user: str, secret: str) -> Any:
        cluster = Cluster([host], port=port, protocol_version=5, ssl_context=context,
                          auth_provider=PlainTextAuthProvider(user, secret))
        return cluster.connect()

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            admin = session("admin", password("cassandra-admin"))
            break
        except NoHostAvailable as exc:
            if not any(isinstance(e, AuthenticationFailed) for e in exc.errors.values()):
                raise
        try:       # first start: the default superuser makes the admin (its setup takes a moment)
            default = session("cassandra", "cassandra")
        except NoHostAvailable:
            if time.monotonic() > deadline:
                raise RuntimeError("Cassandra accepts neither the admin role nor the default superuser") from None
            time.sleep(1)
            continue
        default.execute("CREATE ROLE IF NOT EXISTS admin WITH SUPERUSER = true AND LOGIN = true AND PASSWORD = %s",
                        (password("cassandra-admin"),))
        default.cluster.shutdown()
    admin.execute("ALTER ROLE cassandra WITH SUPERUSER = false AND LOGIN = false")
    admin.execute("CREATE ROLE IF NOT EXISTS streamrec WITH LOGIN = true AND PASSWORD = %s",
                  (password("cassandra-streamrec"),))
    admin.execute(f"CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = {replication}")
    for permission in JOB_KEYSPACE_PERMISSIONS:
        admin.execute(f"GRANT {permission} ON KEYSPACE {keyspace} TO streamrec")
    admin.cluster.shutdown()


def main_cassandra(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="jobs.grant cassandra")
    parser.add_argument("--secrets", required=True, type=Path)
    parser.add_argument("--cassandra-host", default="127.0.0.1")
    parser.add_argument("--cassandra-port", type=int, default=9042)
    parser.add_argument("--keyspace", default=JobConfig.keyspace)
    parser.add_argument("--replication", default=JobConfig.cassandra_replication)
    args = parser.parse_args(argv)
    try:
        secure_cassandra(args.secrets, args.cassandra_host, args.cassandra_port, args.keyspace, args.replication)
    except Exception as exc:  # noqa: BLE001 - any driver error: one line, exit 2
        print(f"grant: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print(f"grant: Cassandra roles admin and streamrec ({', '.join(JOB_KEYSPACE_PERMISSIONS)} on {args.keyspace})")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["cassandra"]:
        return main_cassandra(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--admin-security-file", required=True,
                        help="an administrator's connection settings (operators/connections.py)")
    parser.add_argument("--principal", required=True, help="the job's Kafka user (User:<principal>)")
    parser.add_argument("--partitions", type=int, default=1, help="of the input and control topics")
    args, job_flags = parser.parse_known_args(argv)
    config = JobConfig.from_args(job_flags)
    try:
        admin_file = args.admin_security_file
        ensure_topics(config.bootstrap_servers, [config.input_topic, config.control_topic_name],
                      partitions=args.partitions, security_file=admin_file)
        ensure_topics(config.bootstrap_servers, [config.output_topic, config.dlq_topic, config.metrics_topic_name],
                      security_file=admin_file)
        ensure_log_topic(config.bootstrap_servers, config.update_log_topic,
                         min_retention_ms=config.update_log_min_retention_ms, security_file=admin_file)
        grants = job_acls(config)
        apply(config.bootstrap_servers, admin_file, args.principal, grants)
    except (RuntimeError, ValueError, OSError) as exc:
        print(f"grant: {exc}", file=sys.stderr)
        return 2
    print(f"grant: {len(grants)} ACLs for User:{args.principal} on {config.input_topic} -> {config.output_topic}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
