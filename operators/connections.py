"""One set of connection security settings for every client the job and its tools open: the
Flink SQL Kafka connector (Java), confluent-kafka (librdkafka) and cassandra-driver.

A security file is JSON; secrets are never in it but in the files it names (mode 600), read
where the client is made (on the TaskManager for the model operator: only the path travels):

    {"kafka": {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
               "username": "streamrec", "password_file": "kafka-streamrec.password",
               "ca_file": "ca.pem",                        # librdkafka: PEM
               "truststore": "truststore.p12",              # the JVM: PKCS12
               "truststore_password_file": "store.password"},
     "cassandra": {"username": "streamrec", "password_file": "cassandra-streamrec.password",
                   "ca_file": "ca.pem"}}

Relative paths are relative to the security file. Either section may be absent (that store
plaintext and without credentials). ``deploy/local/services up --secure`` writes one for the
local stack (README "Security and privacy").

>>> s = Security()
>>> s.librdkafka("h:1"), s.connector_properties(), s.cassandra_options()
({'bootstrap.servers': 'h:1'}, {}, {})
"""

from __future__ import annotations

import functools
import json
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The SQL connector jar shades the Kafka client: its login modules live under this prefix.
SHADED_KAFKA = "org.apache.flink.kafka.shaded."
_LOGIN_MODULES = {"SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
                  "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
                  "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule"}


class SecurityFileError(ValueError):
    """A security file that cannot be used; the message names the file, never a secret."""


def _secret(path: Path) -> str:
    try:
        value = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise SecurityFileError(f"cannot read secret file {path}: {type(exc).__name__}") from None
    if not value:
        raise SecurityFileError(f"secret file {path} is empty")
    return value


def _jaas_quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class KafkaSecurity:
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = ""
    username: str = ""
    password_file: Path | None = None
    ca_file: Path | None = None
    truststore: Path | None = None
    truststore_password_file: Path | None = None

    @property
    def sasl(self) -> bool:
        return self.security_protocol.startswith("SASL")

    @property
    def tls(self) -> bool:
        return self.security_protocol.endswith("SSL")


@dataclass(frozen=True)
class CassandraSecurity:
    username: str = ""
    password_file: Path | None = None
    ca_file: Path | None = None     # set: client encryption, the server's certificate checked against it


@dataclass(frozen=True)
class Security:
    kafka: KafkaSecurity = KafkaSecurity()
    cassandra: CassandraSecurity | None = None

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Security:
        where = Path(path)
        try:
            doc = json.loads(where.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SecurityFileError(f"cannot read security file {where}: {type(exc).__name__}: {exc}") from None
        if not isinstance(doc, dict) or set(doc) - {"kafka", "cassandra"}:
            raise SecurityFileError(f"security file {where}: expected an object with 'kafka' and/or 'cassandra'")

        def file(section: dict[str, Any], name: str) -> Path | None:
            value = section.get(name)
            return None if value in (None, "") else (where.parent / str(value)).resolve()

        kafka = KafkaSecurity()
        if "kafka" in doc:
            k = doc["kafka"]
            kafka = KafkaSecurity(str(k.get("security_protocol", "PLAINTEXT")), str(k.get("sasl_mechanism", "")),
                                  str(k.get("username", "")), file(k, "password_file"), file(k, "ca_file"),
                                  file(k, "truststore"), file(k, "truststore_password_file"))
            if kafka.sasl and (kafka.sasl_mechanism not in _LOGIN_MODULES or not kafka.username
                               or kafka.password_file is None):
                raise SecurityFileError(f"security file {where}: SASL needs sasl_mechanism (one of "
                                        f"{sorted(_LOGIN_MODULES)}), username and password_file")
            if kafka.tls and (kafka.ca_file is None or kafka.truststore is None):
                raise SecurityFileError(f"security file {where}: TLS needs ca_file (PEM) and truststore (PKCS12)")
        cassandra = None
        if "cassandra" in doc:
            c = doc["cassandra"]
            cassandra = CassandraSecurity(str(c.get("username", "")), file(c, "password_file"), file(c, "ca_file"))
            if bool(cassandra.username) != (cassandra.password_file is not None):
                raise SecurityFileError(f"security file {where}: cassandra needs both username and password_file")
        security = cls(kafka, cassandra)
        security.check()
        return security

    def check(self) -> None:
        """Every secret and certificate file it names is readable (a start fails here, at once)."""
        for path in (self.kafka.password_file, self.kafka.truststore_password_file,
                     *((self.cassandra.password_file,) if self.cassandra else ())):
            if path is not None:
                _secret(path)
        for path in (self.kafka.ca_file, self.kafka.truststore, *((self.cassandra.ca_file,) if self.cassandra else ())):
            if path is not None and not path.is_file():
                raise SecurityFileError(f"certificate file {path} not found")

    # -- clients -------------------------------------------------------------------------------
    def librdkafka(self, bootstrap: str) -> dict[str, Any]:
        """confluent-kafka settings: bootstrap servers plus this security."""
        k = self.kafka
        out: dict[str, Any] = {"bootstrap.servers": bootstrap}
        if k.security_protocol != "PLAINTEXT":
            out["security.protocol"] = k.security_protocol
        if k.sasl:
            assert k.password_file is not None
            out.update({"sasl.mechanisms": k.sasl_mechanism, "sasl.username": k.username,
                        "sasl.password": _secret(k.password_file)})
        if k.tls and k.ca_file is not None:
            out["ssl.ca.location"] = str(k.ca_file)
        return out

    def connector_properties(self) -> dict[str, str]:
        """Kafka client properties for the Flink SQL connector (``properties.<name>``)."""
        k = self.kafka
        out: dict[str, str] = {}
        if k.security_protocol != "PLAINTEXT":
            out["security.protocol"] = k.security_protocol
        if k.sasl:
            assert k.password_file is not None
            module = SHADED_KAFKA + _LOGIN_MODULES[k.sasl_mechanism]
            out.update({"sasl.mechanism": k.sasl_mechanism,
                        "sasl.jaas.config": f"{module} required username={_jaas_quote(k.username)}"
                                            f" password={_jaas_quote(_secret(k.password_file))};"})
        if k.tls and k.truststore is not None:
            out.update({"ssl.truststore.location": str(k.truststore), "ssl.truststore.type": "PKCS12"})
            if k.truststore_password_file is not None:
                out["ssl.truststore.password"] = _secret(k.truststore_password_file)
        return out

    def cassandra_options(self) -> dict[str, Any]:
        """Keyword arguments for ``cassandra.cluster.Cluster``: credentials and TLS."""
        c = self.cassandra
        if c is None:
            return {}
        out: dict[str, Any] = {}
        if c.password_file is not None:
            from cassandra.auth import PlainTextAuthProvider

            out["auth_provider"] = PlainTextAuthProvider(c.username, _secret(c.password_file))
        if c.ca_file is not None:
            # checks the chain and the host name (the driver passes each node's address)
            out["ssl_context"] = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(c.ca_file))
        return out

    def __repr__(self) -> str:     # paths only: nothing secret is ever held here
        return f"Security(kafka={self.kafka.security_protocol}, cassandra={'on' if self.cassandra else 'off'})"


@functools.lru_cache(maxsize=8)
def security(path: str) -> Security:
    """The settings of ``path`` ("" or unset: plaintext, no credentials), read once per process."""
    return Security.from_file(path) if path else Security()
