"""The secured stack (deploy/local/services up --secure): Kafka with SASL_SSL, SCRAM-SHA-512 and
ACLs, Cassandra with password authentication, role permissions and client TLS, and a Flink
cluster whose JobManager and TaskManager talk TLS. It runs beside the plain one, on its own
ports and folders, for this module; the job talks to both stores with one security file
(operators/connections.py)."""

from __future__ import annotations

import gc
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from jobs import grant
from operators.connections import security
from tests.integration.harness import SERVICES, Pipeline, event, secure_env, snapshot_store

pytestmark = pytest.mark.integration

SECURE_ENV = secure_env()
FLINK_ENV = {k: v for k, v in SECURE_ENV.items() if k.startswith(("FLINK", "STREAMREC"))}


@dataclass(frozen=True)
class Secured:
    secrets: Path
    bootstrap: str = f"127.0.0.1:{SECURE_ENV['KAFKA_PORT']}"
    cassandra_port: int = int(SECURE_ENV["CASSANDRA_PORT"])

    @property
    def job(self) -> str:
        return str(self.secrets / "job-security.json")

    @property
    def admin(self) -> str:
        return str(self.secrets / "admin-security.json")

    def passwords(self) -> list[str]:
        return [p.read_text().strip() for p in self.secrets.glob("*.password")]


def _services(*args: str) -> None:
    subprocess.run([str(SERVICES), *args], env={**os.environ, **SECURE_ENV}, check=True, timeout=600)



@pytest.fixture(scope="module")
def secured() -> Iterator[Secured]:
    _services("up")       # STREAMREC_SECURE=1
    try:
        yield Secured(Path(SECURE_ENV["STREAMREC_RUN"]) / "secure")
    finally:
        # Clients still held by tracebacks (pytest.raises keeps the frame) would otherwise go on
        # reconnecting to the stopped broker, once a second, for the rest of the session.
        gc.collect()
        _services("down", "--wipe")


def _refused_kafka(settings: dict[str, str]) -> bool:
    try:
        AdminClient({**settings, "socket.timeout.ms": 5000}).list_topics(timeout=8)
    except KafkaException:
        return True
    return False


def test_plaintext_and_anonymous_connections_are_refused(secured: Secured) -> None:
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import Cluster, NoHostAvailable

    assert _refused_kafka({"bootstrap.servers": secured.bootstrap})                      # plaintext
    settings = security(secured.job).librdkafka(secured.bootstrap)
    tls_only = {k: v for k, v in settings.items() if not k.startswith("sasl")}
    assert _refused_kafka({**tls_only, "security.protocol": "SSL"})                      # TLS, no login
    wrong = {**security(secured.job).librdkafka(secured.bootstrap), "sasl.password": "not-the-password"}
    assert _refused_kafka(wrong)
    tls = security(secured.job).cassandra_options()["ssl_context"]
    for options in ({}, {"ssl_context": tls},                                            # plaintext, no login
                    {"ssl_context": tls, "auth_provider": PlainTextAuthProvider("cassandra", "cassandra")}):
        cluster = Cluster(["127.0.0.1"], port=secured.cassandra_port, protocol_version=5, connect_timeout=5, **options)
        with pytest.raises(NoHostAvailable):
            cluster.connect()
        cluster.shutdown()


def test_the_job_principal_may_do_what_its_grants_say_and_nothing_else(secured: Secured) -> None:
    from cassandra import Unauthorized

    job = security(secured.job).librdkafka(secured.bootstrap)
    admin = AdminClient(security(secured.admin).librdkafka(secured.bootstrap))
    admin.create_topics([NewTopic("not-granted", 1, 1)])["not-granted"].result(30)
    errors: dict[str, str] = {}

    def delivered(error: KafkaError | None, message: Message) -> None:
        errors[message.topic() or ""] = "" if error is None else error.name()

    producer = Producer(job)
    for topic in ("recommendations", "interactions", "not-granted"):     # granted: Write on the output only
        producer.produce(topic, b"{}", on_delivery=delivered)
    assert producer.flush(30) == 0
    assert errors == {"recommendations": "", "interactions": "TOPIC_AUTHORIZATION_FAILED",
                      "not-granted": "TOPIC_AUTHORIZATION_FAILED"}
    job_admin = AdminClient(job)
    created = job_admin.create_topics([NewTopic("made-by-the-job", 1, 1)])["made-by-the-job"]
    with pytest.raises(KafkaException, match="TOPIC_AUTHORIZATION_FAILED"):
        created.result(30)

    store = snapshot_store("streamrec", port=secured.cassandra_port, security_file=secured.job)
    try:
        session = store.cassandra.session
        assert store.list() == []                              # its keyspace: tables made, read and written
        for statement in ("SELECT * FROM system_auth.roles",
                          "CREATE KEYSPACE elsewhere WITH replication = {'class': 'SimpleStrategy', "
                          "'replication_factor': 1}"):
            with pytest.raises(Unauthorized):
                session.execute(statement)
    finally:
        store.close()


def test_the_job_runs_end_to_end_secured_and_no_secret_reaches_a_log(secured: Secured) -> None:
    """On the TLS Flink cluster, against the secured stores: all output exactly once, snapshots
    written; no password in any log of Flink, Kafka or Cassandra."""
    conf = (Path(SECURE_ENV["STREAMREC_RUN"]) / "flink/conf/config.yaml").read_text()
    assert "security.ssl.internal.enabled: 'true'" in conf
    p = Pipeline(bootstrap=secured.bootstrap, cassandra_port=secured.cassandra_port,
                 security_file=secured.job, admin_security_file=secured.admin, flink_env=FLINK_ENV)
    p.snapshot_every, p.learn_every = 5, 2
    assert grant.main(["--admin-security-file", secured.admin, "--principal", "streamrec", *p.job_args()]) == 0
    grant.secure_cassandra(secured.secrets, "127.0.0.1", secured.cassandra_port, p.name,
                           "{'class': 'SimpleStrategy', 'replication_factor': 1}")
    events = [event(n, f"u{n % 3}", f"i{n % 5}") for n in range(12)]
    try:
        p.send(events)
        p.submit()
        recs = p.read("output", len(events))
        assert [r["event_id"] for r in recs] == [e["event_id"] for e in events]      # exactly once, in order
        assert recs[-1]["items"]
        store = snapshot_store(p.name, port=secured.cassandra_port, security_file=secured.job)
        try:
            assert store.list()[0].learned_events >= 10     # a snapshot every 5 learned events, through TLS
        finally:
            store.close()
    finally:
        p.cancel_all()
    logs = [f for f in (Path(SECURE_ENV["STREAMREC_RUN"]) / "logs").rglob("*") if f.is_file()]
    assert {"kafka", "cassandra", "flink"} <= {f.parent.name for f in logs}
    text = b"".join(f.read_bytes() for f in logs)
    for password in secured.passwords():
        assert password.encode() not in text
    assert json.loads(Path(secured.job).read_text())["kafka"]["username"] == "streamrec"
