"""deploy/k8s: every manifest against its schema, and the image and manifests against the pins.

No cluster and no network: the schemas are stored in deploy/k8s/schemas (README.md there says
where each came from). A CRD's openAPIV3Schema is OpenAPI, not JSON Schema; ``json_schema``
turns it into JSON Schema the way the API server reads it:

- ``x-kubernetes-int-or-string: true`` -> integer or string;
- ``nullable: true`` -> null allowed too;
- an object schema that lists ``properties`` allows no other field, unless it has
  ``x-kubernetes-preserve-unknown-fields: true`` or its own ``additionalProperties``. The API
  server prunes (drops) such a field, and kubectl's default strict field validation refuses
  it: either way a misspelled field must fail here;
- ``x-kubernetes-embedded-resource`` objects may also carry apiVersion, kind and metadata.
Not checked: CEL rules (``x-kubernetes-validations``) and ``format``.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
SCHEMAS = K8S / "schemas"
MANIFESTS = ("kafka.yaml", "cassandra.yaml", "flinkdeployment.yaml", "secrets.example.yaml")

# (apiVersion, kind) -> stored schema
SCHEMA_FILES = {
    ("flink.apache.org/v1beta1", "FlinkDeployment"): "flinkdeployment-flink.apache.org-v1beta1.json",
    ("kafka.strimzi.io/v1", "Kafka"): "kafka-kafka.strimzi.io-v1.json",
    ("kafka.strimzi.io/v1", "KafkaNodePool"): "kafkanodepool-kafka.strimzi.io-v1.json",
    ("kafka.strimzi.io/v1", "KafkaTopic"): "kafkatopic-kafka.strimzi.io-v1.json",
    ("kafka.strimzi.io/v1", "KafkaUser"): "kafkauser-kafka.strimzi.io-v1.json",
    ("k8ssandra.io/v1alpha1", "K8ssandraCluster"): "k8ssandracluster-k8ssandra.io-v1alpha1.json",
    ("v1", "Secret"): "secret-v1.json",
    ("v1", "ConfigMap"): "configmap-v1.json",
}

_SUBSCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions")
_SUBSCHEMA = ("items", "additionalProperties", "not", "contains")
_SUBSCHEMA_LISTS = ("anyOf", "allOf", "oneOf", "prefixItems")


def json_schema(node: Any) -> Any:
    """An OpenAPI v3 (CRD) or Kubernetes JSON schema, as JSON Schema (module docstring)."""
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _SUBSCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: json_schema(sub) for name, sub in value.items()}
        elif key in _SUBSCHEMA and isinstance(value, dict):
            out[key] = json_schema(value)
        elif key in _SUBSCHEMA_LISTS and isinstance(value, list):
            out[key] = [json_schema(sub) for sub in value]
        else:               # keywords with literal values (enum, default, required, ...) as they are
            out[key] = value
    if node.get("x-kubernetes-int-or-string") and "anyOf" not in out:
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable") and "type" in out:
        types = out["type"] if isinstance(out["type"], list) else [out["type"]]
        out["type"] = [*types, "null"]
    types = out.get("type", [])
    is_object = "object" in (types if isinstance(types, list) else [types])
    if node.get("x-kubernetes-embedded-resource") and "properties" in out:
        out["properties"] = {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                             "metadata": {"type": "object"}, **out["properties"]}
    if (is_object and "properties" in out and "additionalProperties" not in out
            and not node.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


_validators: dict[str, Draft202012Validator] = {}


def validator(api_version: str, kind: str) -> Draft202012Validator:
    name = SCHEMA_FILES.get((api_version, kind))
    assert name, f"no stored schema for {api_version} {kind}: add it to deploy/k8s/schemas and SCHEMA_FILES"
    if name not in _validators:
        schema = json_schema(json.loads((SCHEMAS / name).read_text(encoding="utf-8")))
        # every object has these, whether or not a CRD's schema lists them
        schema["properties"] = {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                                "metadata": {"type": "object"}, **schema["properties"]}
        # (no Draft202012Validator.check_schema: against the meta-schema it takes seconds for
        # the large CRDs; a malformed keyword still fails when validating)
        _validators[name] = Draft202012Validator(schema)
    return _validators[name]


def errors(doc: dict[str, Any]) -> list[str]:
    found = validator(doc["apiVersion"], doc["kind"]).iter_errors(doc)
    return sorted(f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in found)


def documents(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((K8S / name).read_text(encoding="utf-8")) if d]


@functools.cache
def _parsed() -> tuple[tuple[str, dict[str, Any]], ...]:
    return tuple((name, doc) for name in MANIFESTS for doc in documents(name))


def all_documents() -> list[tuple[str, dict[str, Any]]]:
    """Every manifest document (copies: a test may change its own)."""
    return copy.deepcopy(list(_parsed()))


def one(kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for _, d in all_documents() if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"{len(found)} {kind} {name or ''}"
    return found[0]


# -- every manifest against its schema -------------------------------------------------------

@pytest.mark.parametrize(("name", "doc"), all_documents(),
                         ids=[f"{n}:{d['kind']}/{d['metadata']['name']}" for n, d in all_documents()])
def test_manifest_matches_its_schema(name: str, doc: dict[str, Any]) -> None:
    assert errors(doc) == []


def test_every_manifest_file_is_checked_and_kustomized() -> None:
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert on_disk == set(MANIFESTS)
    resources = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))["resources"]
    assert sorted(resources) == sorted(set(MANIFESTS) - {"secrets.example.yaml"})


def test_every_stored_schema_is_used() -> None:
    stored = {p.name for p in SCHEMAS.glob("*.json")}
    assert stored == set(SCHEMA_FILES.values())
    for api_version, kind in SCHEMA_FILES:
        validator(api_version, kind)


# -- the check can fail ----------------------------------------------------------------------

def test_a_misspelled_field_is_refused() -> None:
    flink = one("FlinkDeployment")
    flink["spec"]["job"]["upgradMode"] = flink["spec"]["job"].pop("upgradeMode")
    assert errors(flink) == ["spec/job: Additional properties are not allowed ('upgradMode' was unexpected)"]
    topic = one("KafkaTopic", "interactions")
    topic["spec"]["partition"] = topic["spec"].pop("partitions")
    assert errors(topic) == ["spec: Additional properties are not allowed ('partition' was unexpected)"]
    # deep in the pod template (the Pod schema inside the CRD)
    flink = one("FlinkDeployment")
    flink["spec"]["podTemplate"]["spec"]["volumes"][0]["projected"]["sources"][1]["secret"]["nam"] = "x"
    assert len(errors(flink)) == 1 and "'nam' was unexpected" in errors(flink)[0]
    secret = one("Secret", "streamrec-keys")
    secret["stringdata"] = secret.pop("stringData")
    assert errors(secret) == ["(root): Additional properties are not allowed ('stringdata' was unexpected)"]


def test_a_wrong_type_or_value_is_refused() -> None:
    topic = one("KafkaTopic", "interactions")
    topic["spec"]["partitions"] = "2"
    assert errors(topic) == ["spec/partitions: '2' is not of type 'integer'"]
    flink = one("FlinkDeployment")
    flink["spec"]["flinkVersion"] = "v2_9"
    assert len(errors(flink)) == 1 and errors(flink)[0].startswith("spec/flinkVersion: 'v2_9' is not one of")
    flink = one("FlinkDeployment")
    flink["spec"]["taskManager"]["resource"]["cpu"] = "two"
    assert errors(flink) == ["spec/taskManager/resource/cpu: 'two' is not of type 'number'"]
    user = one("KafkaUser")
    user["spec"]["authorization"]["acls"][0]["operations"] = ["Reed"]
    assert len(errors(user)) == 1 and "'Reed' is not one of" in errors(user)[0]
    cassandra = one("K8ssandraCluster")
    del cassandra["spec"]["cassandra"]["datacenters"][0]["size"]
    assert errors(cassandra) == ["spec/cassandra/datacenters/0: 'size' is a required property"]


def test_what_the_api_server_allows_is_allowed() -> None:
    # preserve-unknown-fields: any Flink configuration key; int-or-string: 4 or "4Gi"
    flink = one("FlinkDeployment")
    flink["spec"]["flinkConfiguration"]["any.key.at.all"] = "x"
    resources = {"limits": {"memory": "4Gi", "cpu": 2}}
    flink["spec"]["podTemplate"]["spec"]["containers"][0]["resources"] = resources
    assert errors(flink) == []
    cassandra = one("K8ssandraCluster")
    cassandra["spec"]["cassandra"]["config"]["cassandraYaml"]["num_tokens"] = 16
    assert errors(cassandra) == []


# -- the image against the pins ---------------------------------------------------------------

def dockerfile() -> tuple[dict[str, str], list[str]]:
    """The Dockerfile's ARG defaults and its instructions (continuation lines joined, comments
    dropped), the ARGs substituted."""
    lines: list[str] = []
    current = ""
    for raw in (K8S / "Dockerfile").read_text(encoding="utf-8").splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or not stripped:
            continue
        current += " " + stripped.removesuffix("\\").strip() if current else stripped.removesuffix("\\").strip()
        if not stripped.endswith("\\"):
            lines.append(current)
            current = ""
    args: dict[str, str] = {}
    for line in lines:
        m = re.fullmatch(r"ARG (\w+)=(\S*)", line)
        if m:
            args[m.group(1)] = m.group(2)
    subst = [re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), line) for line in lines]
    return args, subst


def pins() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    out = {}
    for dep in project["dependencies"]:
        name, _, version = dep.partition("==")
        assert version, f"unpinned dependency {dep}"
        out[name.lower()] = version
    return out


def constraints() -> dict[str, str]:
    out = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.strip().partition("==")
            out[name.lower().replace("_", "-")] = version
    return out


def env_default(name: str) -> str:
    m = re.search(rf'^: "\$\{{{name}:=([^}}]+)\}}"', (ROOT / "deploy/local/env.sh").read_text(encoding="utf-8"), re.M)
    assert m, f"{name} not in deploy/local/env.sh"
    return m.group(1)


def pip_installs(lines: list[str]) -> list[list[str]]:
    """Each ``pip install`` command's arguments."""
    out = []
    for line in lines:
        for command in re.split(r";|&&", line):
            words = shlex.split(command)
            for i in range(len(words) - 1):
                if words[i].endswith("pip") and words[i + 1] == "install":
                    out.append(words[i + 2:])
    return out


def test_image_installs_exactly_the_pinned_versions() -> None:
    args, lines = dockerfile()
    pinned, frozen = pins(), constraints()
    flink = pinned["apache-flink"]
    assert args["FLINK_VERSION"] == flink == frozen["apache-flink"]
    assert args["TORCH_VERSION"] == pinned["torch"]
    assert args["KAFKA_CONNECTOR_VERSION"] == env_default("KAFKA_CONNECTOR_VERSION")
    connector_pom = (ROOT / "deploy/local/maven/flink/pom.xml").read_text(encoding="utf-8")
    assert f"<connector.version>{args['KAFKA_CONNECTOR_VERSION']}</connector.version>" in connector_pom
    # the connector build is the one for this Flink minor (5.0.0-2.2 for 2.2.x)
    assert args["KAFKA_CONNECTOR_VERSION"].endswith("-" + ".".join(flink.split(".")[:2]))
    assert re.search(rf"<flink.version>{re.escape(flink)}</flink.version>", (ROOT / "jvm/pom.xml").read_text())
    # the Python the venv is built with is the one pyproject.toml requires
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["requires-python"] == ">=3.11,<3.12" and args["PYTHON_VERSION"].startswith("3.11.")
    froms = [line.split()[1] for line in lines if line.startswith("FROM ")]
    assert froms.count(f"flink:{flink}-scala_2.12-java17") == 2 and froms[-1] == f"flink:{flink}-scala_2.12-java17"

    installs = pip_installs(lines)
    assert len(installs) == 2, installs
    seen = {}
    for words in installs:
        specs = [w for w in words if not w.startswith("-") and not w.startswith(("/", "."))
                 and w not in (args["TORCH_INDEX_URL"],) and "constraints.txt" not in w]
        constrained = "/src/constraints.txt" in words
        for spec in specs:
            name, _, version = spec.partition("==")
            if not version and constrained:       # pinned by the constraints file the install applies
                version = frozen[name.lower()]
            assert version, f"unpinned: {spec}"
            public = version.split("+")[0]
            assert public == frozen[name.lower()] == pinned.get(name.lower(), public), spec
            seen[name.lower()] = public
    project_install = installs[-1]
    assert project_install[project_install.index("-c") + 1] == "/src/constraints.txt" and project_install[-1] == "/src"
    assert seen == {"torch": pinned["torch"], "setuptools": frozen["setuptools"]}
    # every pyproject.toml pin is in constraints.txt too, so "-c constraints.txt ." installs it
    for name, version in pinned.items():
        assert frozen[name] == version, name
    # the files the install reads are the repo's
    assert "COPY pyproject.toml constraints.txt /src/" in lines


def test_manifests_use_what_the_image_holds() -> None:
    args, lines = dockerfile()
    flink = args["FLINK_VERSION"]
    spec = one("FlinkDeployment")["spec"]
    major, minor = flink.split(".")[:2]
    assert spec["flinkVersion"] == f"v{major}_{minor}"
    assert spec["job"]["jarURI"] == f"local:///opt/flink/opt/flink-python-{flink}.jar"
    assert f'test -f "/opt/flink/opt/flink-python-{flink}.jar"' in " ".join(lines)
    assert spec["job"]["entryClass"] == "org.apache.flink.client.python.PythonDriver"
    job = flags(spec["job"]["args"])
    assert job["connector-jar"] == f"/opt/streamrec/lib/flink-sql-connector-kafka-{args['KAFKA_CONNECTOR_VERSION']}.jar"
    assert job["jvm-jar"] == "/opt/streamrec/lib/streamrec-jvm.jar"
    assert any(line.startswith("COPY --from=jvm ") and line.endswith(" /opt/streamrec/lib/") for line in lines)
    python = "/opt/venv/bin/python"
    conf = spec["flinkConfiguration"]
    assert conf["python.executable"] == conf["python.client.executable"] == job["python-executable"] == python
    assert spec["job"]["args"][:2] == ["-py", "/opt/streamrec/jobs/recommend.py"]
    assert "COPY jobs/ /opt/streamrec/jobs/" in lines and "COPY operators/ /opt/streamrec/operators/" in lines


# -- the manifests against the job ------------------------------------------------------------

def flags(argv: list[str]) -> dict[str, str]:
    """The job's ``--name value`` flags after PythonDriver's ``-py FILE``."""
    assert argv[0] == "-py"
    rest = argv[2:]
    assert len(rest) % 2 == 0 and all(a.startswith("--") for a in rest[::2]), rest
    return {a[2:]: b for a, b in zip(rest[::2], rest[1::2], strict=True)}


def job_config() -> Any:
    from jobs.config import JobConfig  # imports the job's packages (numpy, torch): only here

    spec = one("FlinkDeployment")["spec"]
    argv = spec["job"]["args"][2:]
    known = {f"--{name.replace('_', '-')}" for name in JobConfig.__dataclass_fields__}
    assert set(argv[::2]) <= known, f"not a job flag (jobs/config.py): {set(argv[::2]) - known}"
    return JobConfig.from_args(argv, env={})


def test_topics_fit_the_job() -> None:
    from operators.model.update_log import TOPIC_CONFIG, log_topic_problem

    config = job_config()
    spec = one("FlinkDeployment")["spec"]
    assert config.parallelism == spec["job"]["parallelism"]
    assert int(spec["flinkConfiguration"]["execution.checkpointing.interval"].removesuffix("s")) * 1000 \
        == config.checkpoint_interval_ms
    topics = {d["metadata"]["name"]: d["spec"] for _, d in all_documents() if d["kind"] == "KafkaTopic"}
    names = [config.input_topic, config.control_topic_name, config.dlq_topic, config.output_topic,
             config.update_log_topic, config.metrics_topic_name]
    assert sorted(topics) == sorted(names)
    config.check_input_partitions(topics[config.input_topic]["partitions"])
    assert topics[config.control_topic_name]["partitions"] >= config.parallelism
    log = topics[config.update_log_topic]
    assert log["partitions"] == 1          # one order for every replica (operators/model/replica.py)
    settings = {k: str(v) for k, v in log["config"].items()}
    assert {k: settings.get(k) for k in TOPIC_CONFIG} == TOPIC_CONFIG
    assert log_topic_problem(settings, config.update_log_min_retention_ms) == ""


def test_kafka_user_acls_are_what_the_job_needs() -> None:
    from jobs.grant import job_acls

    config = job_config()
    kinds = {"TOPIC": "topic", "GROUP": "group", "TRANSACTIONAL_ID": "transactionalId"}
    operations = {"READ": "Read", "WRITE": "Write", "DESCRIBE": "Describe", "DESCRIBE_CONFIGS": "DescribeConfigs"}
    wanted = {(kinds[g.resource], g.name, "prefix" if g.prefixed else "literal", operations[g.operation])
              for g in job_acls(config)}
    user = one("KafkaUser", "streamrec")["spec"]
    assert user["authentication"]["type"] == "scram-sha-512"
    granted = {(acl["resource"]["type"], acl["resource"]["name"], acl["resource"].get("patternType", "literal"), op)
               for acl in user["authorization"]["acls"] for op in acl["operations"]}
    assert all(acl.get("type", "allow") == "allow" for acl in user["authorization"]["acls"])
    assert granted == wanted


def test_the_job_reads_its_secrets_from_the_mounted_files(tmp_path: Path) -> None:
    from operators.connections import Security

    spec = one("FlinkDeployment")["spec"]
    config = job_config()
    mount = next(m for m in spec["podTemplate"]["spec"]["containers"][0]["volumeMounts"]
                 if m["name"] == "streamrec-secrets")["mountPath"]
    volume = next(v for v in spec["podTemplate"]["spec"]["volumes"] if v["name"] == "streamrec-secrets")
    files = {f"{mount}/{item['path']}" for source in volume["projected"]["sources"]
             for kind in ("secret", "configMap") if kind in source for item in source[kind]["items"]}
    for path in (config.security_file, config.snapshot_key_file, config.pseudonym_key_file):
        assert path in files
    # the security file names files of the same volume
    security_json = one("ConfigMap", "streamrec-security")["data"]["security.json"]
    doc = json.loads(security_json)
    named = {f"{mount}/{section[key]}" for section in doc.values()
             for key in section if key.endswith(("_file", "store"))}
    assert named <= files, named - files
    assert doc["kafka"]["username"] == one("KafkaUser")["metadata"]["name"]
    assert doc["kafka"]["security_protocol"] == "SASL_SSL" and doc["kafka"]["sasl_mechanism"] == "SCRAM-SHA-512"
    # the job accepts it, laid out as the volume lays it out (placeholder content)
    (tmp_path / "security.json").write_text(security_json, encoding="utf-8")
    for path in named:
        target = tmp_path / Path(path).relative_to(mount)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("placeholder\n", encoding="utf-8")
    security = Security.from_file(tmp_path / "security.json")
    assert security.kafka.tls and security.kafka.sasl and security.cassandra is not None
    assert security.cassandra.ca_file is not None       # TLS to Cassandra, server certificate checked
    # no secret in the job's arguments or environment
    assert not any(re.search(r"password|secret", a, re.I) for a in spec["job"]["args"] if not a.startswith("/"))
    assert "env" not in spec["podTemplate"]["spec"]["containers"][0]
