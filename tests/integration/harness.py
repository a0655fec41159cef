"""Helpers for tests on the real local services started by deploy/local/services."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobs.kafka_io import consumer, ensure_topics, producer
from jobs.sample import generate
from operators.cleaning.guard import GuardConfig

REPO = Path(__file__).resolve().parents[2]
# deploy/local/env.sh: pid files and logs of the local services
RUN_DIR = Path(os.environ.get("STREAMREC_RUN") or Path(os.environ.get("STREAMREC_HOME")
               or Path.home() / ".cache/streamrec") / "run")
FLINK_LOGS = RUN_DIR / "logs/flink"
SERVICES = REPO / "deploy" / "local" / "services"
BOOTSTRAP = f"127.0.0.1:{os.environ.get('KAFKA_PORT', '9092')}"
CASSANDRA_PORT = int(os.environ.get("CASSANDRA_PORT", "9042"))
FLINK_REST = f"http://127.0.0.1:{os.environ.get('FLINK_REST_PORT', '8081')}"
PROMETHEUS_PORTS = os.environ.get("FLINK_PROMETHEUS_PORTS", "9249-9259")   # deploy/local/env.sh
# Run with deploy/local/secure-env.sh sourced (bench/secure_cost.py), the constants above name
# the secured stack, and these its connection settings (job and admin) that `services up
# --secure` wrote.
SECURE = os.environ.get("STREAMREC_SECURE") == "1"
JOB_SECURITY = str(RUN_DIR / "secure/job-security.json") if SECURE else ""
ADMIN_SECURITY = str(RUN_DIR / "secure/admin-security.json") if SECURE else ""
_SAMPLE = re.compile(r'^(?P<name>[a-zA-Z_:][\w:]*)\{(?P<labels>.*)\} (?P<value>\S+)$')
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def services(*args: str, timeout: float = 300) -> str:
    """deploy/local/services with ``args`` (e.g. ``taskmanager kill``, ``down cassandra``)."""
    proc = subprocess.run([str(SERVICES), *args], capture_output=True, text=True, timeout=timeout, cwd=REPO)
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise AssertionError(f"services {' '.join(args)} failed ({proc.returncode}):\n{out[-3000:]}")
    return out


def flink_cli(*args: str, timeout: float = 240, env: dict[str, str] | None = None) -> str:
    """The Flink CLI on the local cluster (``env``: deploy/local/env.sh overrides naming another)."""
    proc = subprocess.run([str(SERVICES), "flink", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=REPO, env={**os.environ, **(env or {})})
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise AssertionError(f"flink {' '.join(args)} failed ({proc.returncode}):\n{out[-4000:]}")
    return out


def rest(path: str, base: str = FLINK_REST) -> Any:
    with urllib.request.urlopen(base + path, timeout=10) as r:
        return json.load(r)


def prometheus(name: str | None = None, **labels: str) -> list[tuple[str, dict[str, str], float]]:
    """Every sample (metric name, labels, value) of metric ``name`` (any, if None) whose labels
    include ``labels``, scraped over HTTP from the Prometheus endpoint of each Flink process
    (JobManager and TaskManagers), as a Prometheus server would. Ports that answer nothing (no
    process there) are skipped."""
    first, _, last = PROMETHEUS_PORTS.partition("-")
    found = []
    for port in range(int(first), int(last or first) + 1):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                text = r.read().decode()
        except OSError:
            continue
        for line in text.splitlines():
            m = _SAMPLE.match(line)
            if m and name in (None, m["name"]):
                have = dict(_LABEL.findall(m["labels"]))
                if all(have.get(k) == v for k, v in labels.items()):
                    found.append((m["name"], have, float(m["value"])))
    return found


def taskmanager_logs() -> list[str]:
    """The text of every TaskManager log of the local cluster, rotated ones included."""
    return [path.read_text(errors="replace") for path in sorted(FLINK_LOGS.glob("flink-*-taskexecutor-*.log*"))]


def slots_taken(job_id: str) -> int:
    """How many slots the TaskManagers gave the job's current and earlier attempts (their
    "Receive slot request ... for job" lines): one per slot sharing group and subtask."""
    pattern = re.compile(rf"Receive slot request \w+ for job {job_id}\b")
    return sum(len(pattern.findall(log)) for log in taskmanager_logs())


def dashboard_metrics(path: Path) -> set[str]:
    """The Prometheus metric names a Grafana dashboard's panels query (deploy/grafana/)."""
    exprs = [t["expr"] for panel in json.loads(path.read_text())["panels"] for t in panel["targets"]]
    return {name for e in exprs for name in re.findall(r"\bflink_\w+", e)}


@dataclass
class Pipeline:
    """One job's worth of uniquely named topics, keyspace, group and transactional ids."""

    name: str = field(default_factory=lambda: "t" + uuid.uuid4().hex[:10])
    snapshot_every: int = 10
    learn_every: int = 256               # the model's learning batch (the job's default)
    partitions: int = 1                  # of the input topic
    extra_args: list[str] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)
    entry: str = "jobs/recommend.py"     # the job's script (benchmarks: bench/stages_job.py)
    # the stores it talks to (test_secure.py: the secured pair, with the job's security file)
    bootstrap: str = BOOTSTRAP
    cassandra_port: int = CASSANDRA_PORT
    security_file: str = JOB_SECURITY
    admin_security_file: str = ADMIN_SECURITY   # the test's own clients and topic creation (default: the job's)
    flink_env: dict[str, str] = field(default_factory=dict)     # another local Flink cluster (env.sh names)

    @property
    def flink_rest(self) -> str:
        return f"http://127.0.0.1:{self.flink_env['FLINK_REST_PORT']}" if self.flink_env else FLINK_REST

    @property
    def client_security(self) -> str:
        return self.admin_security_file or self.security_file

    @property
    def topics(self) -> dict[str, str]:
        return {"input": f"{self.name}-in", "output": f"{self.name}-recs", "dlq": f"{self.name}-dlq",
                "metrics": f"{self.name}-recs-metrics",     # the job's default: <output topic>-metrics
                "control": f"{self.name}-in-control"}       # the job's default: <input topic>-control

    def job_args(self, group: str | None = None) -> list[str]:
        t = self.topics
        secured = ["--security-file", self.security_file] if self.security_file else []
        return ["--bootstrap-servers", self.bootstrap, "--input-topic", t["input"], "--output-topic", t["output"],
                "--dlq-topic", t["dlq"], "--consumer-group", group or self.name, "--keyspace", self.name,
                "--transactional-id-prefix", self.name, "--checkpoint-interval-ms", "2000",
                "--snapshot-every-events", str(self.snapshot_every), "--cassandra-port", str(self.cassandra_port),
                "--model-learn-every", str(self.learn_every),
                "--job-name", self.name, *secured, *self.extra_args]

    def create_topics(self) -> None:
        ensure_topics(self.bootstrap, [self.topics["input"]], partitions=self.partitions,
                      security_file=self.client_security)
        ensure_topics(self.bootstrap, [self.topics["output"], self.topics["dlq"]], security_file=self.client_security)

    def submit(self, savepoint: str | None = None, group: str | None = None, parallelism: int = 1) -> str:
        extra = ["-s", savepoint] if savepoint else []
        out = flink_cli("run", "-d", *extra, "-py", str(REPO / self.entry), *self.job_args(group),
                        "--parallelism", str(parallelism), env=self.flink_env)
        match = re.search(r"JobID ([0-9a-f]{32})", out)
        assert match, out[-3000:]
        self.jobs.append(match.group(1))
        self.wait_running(match.group(1))
        return match.group(1)

    def wait_running(self, job_id: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = rest(f"/jobs/{job_id}", self.flink_rest)
            if job["state"] == "RUNNING" and all(v["status"] == "RUNNING" for v in job["vertices"]):
                return
            if job["state"] in ("FAILED", "CANCELED", "FINISHED"):
                raise AssertionError(f"job {job_id} is {job['state']}")
            time.sleep(1)
        raise AssertionError(f"job {job_id} not running after {timeout}s")

    def restarts(self, job_id: str) -> int:
        """The failures Flink has handled for the job, each of which restarts it: its exception
        history, which the JobManager serves from its scheduler. Not the ``numRestarts`` metric:
        REST metrics come through a fetcher that a dead TaskManager can hold up for
        ``web.timeout`` (README "Metrics for Prometheus"), and it read 0 for 120 s after a
        restart in CI (2026-12-03)."""
        history = rest(f"/jobs/{job_id}/exceptions")["exceptionHistory"]
        assert not history["truncated"], f"job {job_id} failed more often than its exception history keeps"
        return len(history["entries"])

    def restored_from(self, job_id: str) -> str:
        """Which checkpoint the job last restored from, and whether it held channel state (an
        unaligned checkpoint's in-flight records), from the JobManager's checkpoint history."""
        stats = rest(f"/jobs/{job_id}/checkpoints")
        restored = (stats.get("latest") or {}).get("restored")
        if not restored:
            return "not restored from a checkpoint"
        entry = next((h for h in stats.get("history", []) if h.get("id") == restored["id"]), None)
        if entry is None:
            return f"restored from checkpoint {restored['id']} (no longer in the checkpoint history)"
        # Counted by the records it persisted, not ``is_unaligned``: a checkpoint that turned
        # unaligned on its alignment timeout read not unaligned with 24,499 bytes persisted.
        return (f"restored from checkpoint {restored['id']} ({entry.get('persisted_data', 0):,} bytes of "
                f"in-flight records in its channel state)")

    def stop_with_savepoint(self, job_id: str, directory: Path) -> str:
        out = flink_cli("stop", "--savepointPath", directory.as_uri(), job_id)
        match = re.search(r"Savepoint completed\. Path: (\S+)", out)
        assert match, out[-3000:]
        return match.group(1)

    def check_nothing_dropped_late(self) -> None:
        """Every running job of this pipeline: no operator dropped a row as late (Flink's
        ``numLateRecordsDropped``), and the windows that would report one are there."""
        for job_id in self.jobs:
            if rest(f"/jobs/{job_id}")["state"] != "RUNNING":
                continue
            time.sleep(2)          # the metrics fetcher's interval (1 s on the local cluster)
            drops = late_drops(job_id)
            assert drops, f"job {job_id}: no operator reports numLateRecordsDropped"
            dropped = {k: v for k, v in drops.items() if v}
            assert not dropped, f"job {job_id} dropped rows as late: {dropped}"

    def cancel_all(self) -> None:
        for job_id in self.jobs:
            try:     # a failing job RESTARTING (or still CREATED) would otherwise loop for hours
                if rest(f"/jobs/{job_id}", self.flink_rest)["state"] not in ("CANCELED", "CANCELLING", "FINISHED",
                                                                             "FAILED"):
                    flink_cli("cancel", job_id, env=self.flink_env)
            except Exception:  # noqa: BLE001 - best-effort clean-up
                pass

    def send(self, records: Sequence[dict[str, Any] | bytes], heartbeat: bool = True, flush_s: float = 30) -> int:
        """Produce ``records``; then, unless told not to, a heartbeat just far enough ahead of the
        newest ts for the watermark to pass every event sent (the job hands an event to the model
        once the watermark has passed it); waits up to ``flush_s`` for the broker to take them.
        Returns how many messages went to the topic."""
        prod = producer(self.bootstrap, self.client_security)
        for r in records:
            if isinstance(r, bytes):
                prod.produce(self.topics["input"], value=r)
            else:
                prod.produce(self.topics["input"], value=json.dumps(r).encode(), key=str(r.get("user_id", "")).encode())
        now_ms = time.time() * 1000
        stamps = [r["ts"] for r in records if isinstance(r, dict) and type(r.get("ts")) is int and r["ts"] < now_ms]
        if heartbeat and stamps:
            # Flink's watermark is max ts - bound - 1: this puts it exactly at the newest event.
            # One per partition: each source subtask's watermark must move.
            clock = {"heartbeat_ts": max(stamps) + self.bound_ms + 1}
            for partition in range(self.partitions):
                prod.produce(self.topics["input"], value=json.dumps(clock).encode(), partition=partition)
        assert prod.flush(flush_s) == 0, f"the broker did not take the records within {flush_s:.0f} s"
        return len(records) + (self.partitions if heartbeat and stamps else 0)

    def input_timestamps(self) -> dict[str, int]:
        """event_id -> the Kafka record timestamp of every event on the input topic."""
        from confluent_kafka import Consumer, TopicPartition

        c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": f"ts-{uuid.uuid4().hex}",
                      "enable.auto.commit": False})
        parts = [TopicPartition(self.topics["input"], p, 0) for p in range(self.partitions)]
        left = {p.partition: c.get_watermark_offsets(p, timeout=10)[1] for p in parts}
        c.assign(parts)
        stamps: dict[str, int] = {}
        try:
            while any(left.values()):
                msg = c.poll(1.0)
                if msg is None or msg.error():
                    continue
                left[msg.partition() or 0] -= 1
                with contextlib.suppress(ValueError, AttributeError):
                    doc = json.loads(msg.value() or b"")
                    if isinstance(doc, dict) and "event_id" in doc:
                        stamps[doc["event_id"]] = msg.timestamp()[1]
        finally:
            c.close()
        return stamps

    @property
    def bound_ms(self) -> int:
        args = self.extra_args
        flag = "--max-out-of-orderness-ms"
        return int(args[args.index(flag) + 1]) if flag in args else GuardConfig.max_out_of_orderness_ms

    def read(self, topic_kind: str, count: int, timeout: float = 120, settle: float = 3.0) -> list[dict[str, Any]]:
        """Read at least ``count`` records (read_committed), then wait ``settle`` s for extras."""
        c = consumer(self.bootstrap, self.topics[topic_kind], f"reader-{uuid.uuid4().hex}",
                     security_file=self.client_security)
        records: list[dict[str, Any]] = []
        deadline, settled_at = time.monotonic() + timeout, None
        try:
            while time.monotonic() < deadline:
                msg = c.poll(0.5)
                if msg is not None and not msg.error():
                    records.append(json.loads(msg.value() or b"null"))
                if len(records) >= count:
                    settled_at = settled_at or time.monotonic()
                    if time.monotonic() - settled_at >= settle:
                        break
        finally:
            c.close()
        return records


def late_drops(job_id: str) -> dict[str, int]:
    """``numLateRecordsDropped`` of every operator that has the metric, summed over subtasks."""
    out: dict[str, int] = {}
    for vertex in rest(f"/jobs/{job_id}")["vertices"]:
        base = f"/jobs/{job_id}/vertices/{vertex['id']}/metrics"
        ids = [m["id"] for m in rest(base) if m["id"].endswith(".numLateRecordsDropped")]
        if not ids:
            continue
        for metric in rest(f"{base}?get={urllib.parse.quote(','.join(ids))}"):
            operator = metric["id"].split(".", 1)[1].rsplit(".", 1)[0]
            out[operator] = out.get(operator, 0) + int(float(metric["value"]))
    return out


def secure_env() -> dict[str, str]:
    """deploy/local/secure-env.sh's settings: the secured stack's folders and ports."""
    script = f". {REPO / 'deploy/local/secure-env.sh'} && env -0"
    out = subprocess.run(["bash", "-c", script], capture_output=True, check=True, env=dict(os.environ)).stdout
    names = ("STREAMREC_RUN", "STREAMREC_DATA", "STREAMREC_SECURE", "KAFKA_", "CASSANDRA_", "FLINK_")
    return {k: v for k, _, v in (item.decode().partition("=") for item in out.split(b"\0") if item)
            if k.startswith(names)}


def event(n: int, user: str, item: str, ts: int | None = None, kind: str = "click") -> dict[str, Any]:
    return {"event_id": f"ev-{n}", "user_id": user, "item_id": item, "event_type": kind, "value": None,
            "ts": 1_700_000_000_000 + 1000 * n if ts is None else ts}


def snapshot_store(keyspace: str, model: str = "default", port: int = CASSANDRA_PORT,
                   security_file: str = ADMIN_SECURITY) -> Any:
    from operators.model.snapshot_store import SnapshotStore

    return SnapshotStore.connect(["127.0.0.1"], port, keyspace, model, security_file=security_file)


def drop_keyspace(keyspace: str) -> None:
    store = snapshot_store(keyspace)        # (as the admin on the secured stack: the job's role may not)
    try:
        store.session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}")
    finally:
        store.close()


def stream(n: int, users: int = 60, items: int = 120, seed: int = 11) -> list[dict[str, Any]]:
    """A MovieLens-like stream with strictly increasing timestamps (so the model's input order,
    event-time order, is the same in every run)."""
    return [{"event_id": f"e{k}", "user_id": f"u{u}", "item_id": f"i{i}", "event_type": "rating",
             "value": float(r), "ts": ts * 1000}
            for k, (u, i, r, ts) in enumerate(generate(n, users=users, items=items, seed=seed))]


class OutputCounter:
    """Counts committed records on an output topic as they appear (a background consumer), and
    keeps the newest ``emitted_ts`` among them (the processing time a list was computed at)."""

    def __init__(self, pipeline: Pipeline, topic_kind: str = "output") -> None:
        self.count, self.stopped = 0, threading.Event()
        self.newest_emitted_ms = 0
        self._consumer = consumer(BOOTSTRAP, pipeline.topics[topic_kind], f"count-{uuid.uuid4().hex}")
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self.stopped.is_set():
                msg = self._consumer.poll(0.2)
                if msg is not None and not msg.error():
                    self.count += 1
                    emitted = json.loads(msg.value() or b"{}").get("emitted_ts")
                    if isinstance(emitted, int):
                        self.newest_emitted_ms = max(self.newest_emitted_ms, emitted)
        finally:
            self._consumer.close()

    def wait_for(self, count: int, timeout: float) -> float:
        """Seconds until at least ``count`` records are committed."""
        return self._wait(lambda: self.count >= count, timeout,
                          lambda: f"{self.count} < {count} outputs after {timeout:.0f} s")

    def wait_for_emitted_after(self, wall_s: float, timeout: float) -> float:
        """Seconds until a record computed after ``wall_s`` (epoch seconds) is committed. After a
        restart the restored sinks first commit what the failed attempt had checkpointed but not
        yet committed, computed before the failure: that is not output flowing again."""
        return self._wait(lambda: self.newest_emitted_ms > wall_s * 1000, timeout,
                          lambda: f"no output computed after the failure in {timeout:.0f} s")

    @staticmethod
    def _wait(done: Callable[[], bool], timeout: float, failure: Callable[[], str]) -> float:
        """Poll ``done`` every 100 ms; the seconds it took, or ``failure()`` after ``timeout``."""
        started = time.monotonic()
        while not done():
            assert time.monotonic() - started < timeout, failure()
            time.sleep(0.1)
        return time.monotonic() - started

    def close(self) -> None:
        self.stopped.set()
        self._thread.join(5)
