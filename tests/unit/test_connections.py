"""One security file, three kinds of client (operators/connections.py), and the job's ACLs
(jobs/grant.py): settings as each client spells them, secrets read from their files and never
shown, bad files refused with the file's name only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobs.config import JobConfig
from jobs.grant import Grant, job_acls
from operators.connections import SHADED_KAFKA, Security, SecurityFileError

SECRET = 'pa"ss\\word'      # quotes and a backslash: the JAAS string must escape them


def security_file(tmp_path: Path, **overrides: object) -> Path:
    (tmp_path / "kafka.password").write_text(SECRET + "\n")
    (tmp_path / "store.password").write_text("store-secret")
    (tmp_path / "cassandra.password").write_text("cql-secret")
    (tmp_path / "ca.pem").write_text("not parsed here")
    (tmp_path / "truststore.p12").write_bytes(b"\0")
    doc = {"kafka": {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "username": "streamrec",
                     "password_file": "kafka.password", "ca_file": "ca.pem", "truststore": "truststore.p12",
                     "truststore_password_file": "store.password"},
           "cassandra": {"username": "job", "password_file": "cassandra.password"}}
    for section, values in overrides.items():
        doc[section] = values  # type: ignore[assignment]
    path = tmp_path / "security.json"
    path.write_text(json.dumps(doc))
    return path


def test_one_file_gives_each_client_its_spelling_of_the_same_settings(tmp_path: Path) -> None:
    s = Security.from_file(security_file(tmp_path))
    assert s.librdkafka("h:9") == {"bootstrap.servers": "h:9", "security.protocol": "SASL_SSL",
                                   "sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": "streamrec",
                                   "sasl.password": SECRET, "ssl.ca.location": str(tmp_path / "ca.pem")}
    java = s.connector_properties()
    assert java["security.protocol"] == "SASL_SSL" and java["sasl.mechanism"] == "SCRAM-SHA-512"
    assert java["sasl.jaas.config"] == (f"{SHADED_KAFKA}org.apache.kafka.common.security.scram.ScramLoginModule"
                                        ' required username="streamrec" password="pa\\"ss\\\\word";')
    assert java["ssl.truststore.location"] == str(tmp_path / "truststore.p12")
    assert java["ssl.truststore.password"] == "store-secret" and java["ssl.truststore.type"] == "PKCS12"
    cql = s.cassandra_options()
    assert set(cql) == {"auth_provider"} and cql["auth_provider"].password == "cql-secret"
    assert "secret" not in repr(s) and SECRET not in repr(s)


def test_no_file_means_plaintext_without_credentials() -> None:
    s = Security()
    assert s.librdkafka("h:9") == {"bootstrap.servers": "h:9"}
    assert s.connector_properties() == {} and s.cassandra_options() == {}


@pytest.mark.parametrize("overrides", [
    {"kafka": {"security_protocol": "SASL_SSL", "sasl_mechanism": "GSSAPI", "username": "u",
               "password_file": "kafka.password", "ca_file": "ca.pem", "truststore": "truststore.p12"}},
    {"kafka": {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN", "username": "u"}},
    {"kafka": {"security_protocol": "SSL", "ca_file": "ca.pem"}},
    {"kafka": {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN", "username": "u",
               "password_file": "absent.password"}},
    {"cassandra": {"username": "job"}},
    {"cassandra": {"ca_file": "absent.pem"}},
])
def test_an_unusable_security_file_is_refused_at_once(tmp_path: Path, overrides: dict[str, object]) -> None:
    with pytest.raises(SecurityFileError) as error:
        Security.from_file(security_file(tmp_path, **overrides))
    assert SECRET not in str(error.value) and "cql-secret" not in str(error.value)


def test_the_job_is_granted_its_topics_group_and_transactions_and_nothing_else() -> None:
    config = JobConfig(input_topic="in", output_topic="out", dlq_topic="dlq", consumer_group="g",
                       transactional_id_prefix="tx")
    grants = job_acls(config)
    assert len(set(grants)) == len(grants)
    by_resource = {(g.resource, g.name, g.prefixed): set() for g in grants}
    for g in grants:
        by_resource[(g.resource, g.name, g.prefixed)].add(g.operation)
    assert by_resource == {
        ("TOPIC", "in", False): {"READ", "DESCRIBE"},
        ("TOPIC", "in-control", False): {"READ", "DESCRIBE"},
        ("GROUP", "g", False): {"READ", "DESCRIBE"},
        ("TOPIC", "out", False): {"WRITE", "DESCRIBE", "READ"},
        ("TOPIC", "dlq", False): {"WRITE", "DESCRIBE", "READ"},
        ("TOPIC", "out-metrics", False): {"WRITE", "DESCRIBE", "READ"},
        ("TOPIC", "out-model-updates", False): {"WRITE", "DESCRIBE", "READ", "DESCRIBE_CONFIGS"},
        ("TRANSACTIONAL_ID", "tx", True): {"WRITE", "DESCRIBE"},
    }
    assert Grant("TOPIC", "in", False, "WRITE") not in grants      # producers own the input
