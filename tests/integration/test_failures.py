"""Failure scenarios on the real stack (issues 6, 14): a lost TaskManager (at parallelism 1,
compared output by output with an uninterrupted run, and at parallelism 2), Cassandra away for
30 s and the Kafka broker killed (both at parallelism 2, one shared model), a rescale through a
savepoint, and half-written snapshots. Each prints its time to recover."""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness import (
    BOOTSTRAP,
    OutputCounter,
    Pipeline,
    event,
    rest,
    services,
    snapshot_store,
    stream,
    taskmanager_logs,
)

pytestmark = pytest.mark.integration


def feed(pipeline: Pipeline, records: list[dict[str, Any]], chunk: int, pause_s: float, flush_s: float = 30) -> None:
    """Send ``records`` in chunks, each followed by a heartbeat, ``pause_s`` apart."""
    for start in range(0, len(records), chunk):
        pipeline.send(records[start:start + chunk], flush_s=flush_s)
        time.sleep(pause_s)


def by_event(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    duplicates = [e for e, n in Counter(r["event_id"] for r in records).items() if n > 1]
    assert not duplicates, f"duplicated output: {duplicates[:5]}"
    return {r["event_id"]: r for r in records}


def top10(record: dict[str, Any]) -> list[str]:
    return [i["item_id"] for i in record["items"]]


def test_taskmanager_killed_mid_replay_recovers_to_the_same_model(
        new_pipeline: Callable[..., Pipeline], report: Callable[[str], None]) -> None:
    events = stream(3_000)
    probes = [event(10_000 + n, f"u{n}", "probe-item", ts=events[-1]["ts"] + 1000 * (n + 1)) for n in range(10)]
    runs: dict[str, dict[str, dict[str, Any]]] = {}
    for name in ("uninterrupted", "killed"):
        # The killed run snapshots only when it starts (an empty model): after the kill the
        # model is rebuilt from the update log alone, the path that must be exact.
        p = new_pipeline(snapshot_every=500 if name == "uninterrupted" else 1_000_000)
        try:
            if name == "uninterrupted":
                p.send(events + probes)
                job = p.submit()
            else:   # fed as a live stream, so that the kill lands mid-stream
                job = p.submit()
                lost, recovered_s = kill_mid_stream(p, job, events + probes, kill_after=900)
                replayed = _metric(job, "updates_replayed_at_start")
                out_at_kill = lost.outputs
                restored = p.restored_from(job)
                assert replayed >= out_at_kill, "the restarted model did not rebuild from the update log"
            records = p.read("output", len(events) + len(probes), timeout=600)
            runs[name] = by_event(records)
            assert len(records) == len(events) + len(probes), "lost or duplicated output"
        finally:
            p.cancel_all()
    report(f"[scenario 1] TaskManager killed with {out_at_kill} of {len(events)} outputs committed; {lost}; "
           f"output resumed {recovered_s:.1f} s after the kill; the model replayed {replayed} logged updates; "
           f"{restored}")

    whole, killed = runs["uninterrupted"], runs["killed"]
    assert set(whole) == set(killed)
    for probe in probes:   # the final model, asked about fixed users
        assert top10(killed[probe["event_id"]]) == top10(whole[probe["event_id"]]), probe["user_id"]
        assert killed[probe["event_id"]]["model_version"] == whole[probe["event_id"]]["model_version"]
    # The killed run's only snapshot is the empty model it started with, so the restarted model
    # is that snapshot plus the committed update log: exactly the model as of the checkpoint the
    # source rewinds to. Every output, replayed ones included, must equal the uninterrupted run's.
    differing = [e for e in whole if top10(whole[e]) != top10(killed[e])]
    report(f"[scenario 1] {len(differing)} of {len(whole)} outputs differ from the uninterrupted run")
    assert not differing, differing[:5]


def test_cassandra_down_for_30s_recommendations_keep_flowing_and_snapshots_resume(
        new_pipeline: Callable[..., Pipeline], report: Callable[[str], None]) -> None:
    # Parallelism 2: both replicas keep following the update log (Kafka) while Cassandra is
    # away; subtask 0's writer retries the snapshots it cut meanwhile.
    p = new_pipeline(snapshot_every=100, partitions=2)
    events = stream(1_000, seed=12)
    first, during, trickle = events[:300], events[300:900], events[900:]
    store = None
    try:
        p.send(first)
        job = p.submit(parallelism=2)
        assert len(p.read("output", len(first))) == len(first)

        services("down", "cassandra")
        down_at = time.monotonic()
        p.send(during)
        counter = OutputCounter(p)
        try:
            flowed = counter.wait_for(len(first) + len(during), timeout=120)      # while Cassandra is down
            # The stream goes on. (It also refreshes the gauges: a Python operator's metrics reach
            # Flink when it finishes a bundle of records, not on its timers.)
            time.sleep(max(0.0, 20 - (time.monotonic() - down_at)))
            p.send(trickle)
            counter.wait_for(len(events), timeout=60)
        finally:
            counter.close()
        assert time.monotonic() - down_at < 60, "recommendations stalled while Cassandra was down"
        time.sleep(max(0.0, 30 - (time.monotonic() - down_at)))
        failures = _metric(job, "snapshot_failures")
        services("up", "cassandra")
        up_at = time.monotonic()

        store = snapshot_store(p.name)
        # Subtask 0 cuts the shared model at every 100th version, also once its users are quiet.
        while not store.list() or store.list()[0].learned_events < len(events):
            assert time.monotonic() - up_at < 180, "snapshots did not resume after Cassandra came back"
            time.sleep(2)
        resumed_s = time.monotonic() - up_at
        records = p.read("output", len(events))
        assert sorted(by_event(records)) == sorted(e["event_id"] for e in events)
        assert {r["model_shard"] for r in records} == {0, 1}
        assert p.restarts(job) == 0, "the job restarted because of Cassandra"
        assert store.list()[0].learned_events == len(events)
        assert store.list()[0].lineage == learned_once(p, events)
        assert failures > 0, "no snapshot write failed while Cassandra was down"
        report(f"[scenario 2] Cassandra down 30 s at parallelism 2: {len(during)} events sent as it went down got "
              f"recommendations within {flowed:.1f} s, {len(trickle)} more 20 s later too; {failures} snapshot "
              f"writes failed; a complete snapshot of all "
              f"{len(events)} events landed {resumed_s:.1f} s after Cassandra was back; no job restart")
    finally:
        services("up", "cassandra")
        if store is not None:
            store.close()
        p.cancel_all()


def test_kafka_broker_killed_mid_stream_loses_and_doubles_nothing(
        new_pipeline: Callable[..., Pipeline], report: Callable[[str], None]) -> None:
    events = stream(1_500, seed=13)
    first, later = events[:1_000], events[1_000:]
    p = new_pipeline(snapshot_every=300, partitions=2)
    try:
        job = p.submit(parallelism=2)
        # A live stream (50 a second) whose producer waits out the broker's absence (idempotent: no copies).
        with mid_stream(p, first, 300, chunk=50, flush_s=240, join_s=300) as (counter, feeder):
            services("kill", "kafka")
            killed_at, out_at_kill = time.monotonic(), counter.count
            time.sleep(5)
            services("up", "kafka")
            back_s = time.monotonic() - killed_at
            counter.wait_for(out_at_kill + 1, timeout=300)
            recovered_s = time.monotonic() - killed_at
        assert not feeder.is_alive(), "the feeder never got its records to the broker"
        assert out_at_kill < len(first), "the job finished before the kill; not a mid-stream failure"
        p.send(later, flush_s=120)
        records = by_event(p.read("output", len(events), timeout=600))     # no duplicates
        assert sorted(records) == sorted(e["event_id"] for e in events), "lost output"
        assert {r["model_shard"] for r in records.values()} == {0, 1}
        lineage = learned_once(p, events)
        equal_replicas(lineage, at_least=3)
        rejected = p.read("dlq", 0, settle=5)
        assert rejected == [], f"records rejected after the broker came back: {rejected[:3]}"
        report(f"[scenario 5] Kafka broker killed (SIGKILL) at parallelism 2 with {out_at_kill} of {len(events)} "
               f"outputs committed; it was back {back_s:.1f} s later and output resumed {recovered_s:.1f} s after "
               f"the kill; Flink restarted the job {p.restarts(job)} times; all {len(events)} outputs once, "
               f"every event learned once, replicas equal; none rejected")
    finally:
        services("up", "kafka")
        p.cancel_all()


@pytest.mark.parametrize("checkpoints", ["aligned", "unaligned"])
def test_taskmanager_killed_at_parallelism_2_the_one_model_learns_every_event_once(
        checkpoints: str, new_pipeline: Callable[..., Pipeline], report: Callable[[str], None]) -> None:
    """Both replicas die with the TaskManager; both restart from the shared snapshot plus the
    committed log. The outputs are not compared with an uninterrupted run (which replica
    update an answer saw depends on timing); what must hold: every event answered once and
    learned once, and the replicas, before and after the kill, equal at equal versions.
    Unaligned: checkpoints that take over 500 ms to align turn unaligned, so the restore feeds
    the model events from the checkpoint's channel state, which another subtask's committed
    updates may have passed (progress.py; lost learning before updates named their writer)."""
    events = stream(2_000, seed=14)
    extra = ["--aligned-checkpoint-timeout-ms", "500"] if checkpoints == "unaligned" else []
    p = new_pipeline(snapshot_every=200, partitions=2, extra_args=extra)
    try:
        job = p.submit(parallelism=2)
        lost, recovered_s = kill_mid_stream(p, job, events, kill_after=700)
        out_at_kill = lost.outputs
        restored = p.restored_from(job)
        records = by_event(p.read("output", len(events), timeout=600))
        assert sorted(records) == sorted(e["event_id"] for e in events), "lost output"
        assert {r["model_shard"] for r in records.values()} == {0, 1}
        lineage = learned_once(p, events)
        equal_replicas(lineage, at_least=len(events) // 200)
    finally:
        p.cancel_all()
    report(f"[scenario 1b] TaskManager killed at parallelism 2 ({checkpoints} checkpoints) with {out_at_kill} of "
           f"{len(events)} outputs committed; {lost}; output resumed {recovered_s:.1f} s after the kill; every event "
           f"answered once and learned once; replicas equal before and after the kill; {restored}")


@contextlib.contextmanager
def mid_stream(p: Pipeline, records: list[dict[str, Any]], committed: int, chunk: int = 150,
               flush_s: float = 30, join_s: float = 120) -> Iterator[tuple[OutputCounter, threading.Thread]]:
    """Feed ``records`` as a live stream (``chunk`` a second) and yield the output counter and
    the feeder once ``committed`` outputs are committed while the feed still runs: the moment
    for a failure. The first 150 records warm the job up: until the Python worker runs and a
    checkpoint commits, fed events pile up and commit at once, which on a busy machine carried
    the first commit past half the stream (CI, 2026-12-01: 1,650 of 3,010) or past its end (the
    Kafka broker test, CI, 2026-12-03). Leaving, it closes the counter and joins the feeder."""
    counter = OutputCounter(p)
    feeder = threading.Thread(target=feed, args=(p, records[150:], chunk, 1.0, flush_s), daemon=True)
    try:
        p.send(records[:150])
        counter.wait_for(150, timeout=300)
        feeder.start()
        counter.wait_for(committed, timeout=300)    # the job is now part-way through the stream
        # Mid-stream means events are still being fed when the failure comes (outputs commit in
        # bursts, one per checkpoint, so their count alone says little: CI, 2026-12-02, 1,050
        # of 2,000 at the kill with the feed still running).
        assert feeder.is_alive(), "the whole stream was fed before the failure: not a mid-stream failure"
        yield counter, feeder
    finally:
        counter.close()
        if feeder.ident is not None:
            feeder.join(join_s)


def kill_mid_stream(p: Pipeline, job: str, records: list[dict[str, Any]],
                    kill_after: int) -> tuple[LostTaskManager, float]:
    """Feed ``records`` as a live stream (``mid_stream``), kill the TaskManager running the
    model once ``kill_after`` outputs are committed, and wait for output again. Returns the loss
    and the seconds from the kill to the first output computed after it being committed."""
    with mid_stream(p, records, kill_after) as (counter, _):
        lost = LostTaskManager(p, job, counter)
        try:
            counter.wait_for_emitted_after(lost.killed_wall, timeout=300)
            recovered = lost.since()
            lost.find_model_open()
            return lost, recovered
        finally:
            lost.replace()


class LostTaskManager:
    """SIGKILL the TaskManager that runs the job's model operator, with its Python workers (a
    lost machine), and wait until Flink restarts the job.

    The local cluster's TaskManagers have slots to spare, and a job's slots are spread over
    them (deploy/local/env.sh, JobConfig.model_slot_group), so the TaskManager left takes the
    lost one's tasks at once, on a JVM that already runs part of the job. The lost one's
    replacement is started by ``replace()`` once output flows again: on this one 2-core machine
    its JVM start would otherwise compete for the CPU with the recovery being measured, where a
    real cluster starts it on other hardware. Without another TaskManager the replacement starts
    2 s after the kill, as the job cannot run until it is up."""

    def __init__(self, p: Pipeline, job: str, counter: OutputCounter) -> None:
        before = len(rest("/taskmanagers")["taskmanagers"])
        killed_wall = time.time()
        killed = services("taskmanager", "kill", job).count("killed taskmanager")
        self.at, self.outputs = time.monotonic(), counter.count
        self.on_standby, self.replaced = before > killed, False
        self.opened_s = self.worker_started_s = float("nan")
        if not self.on_standby:
            time.sleep(2)
            self.replace()
        try:
            while p.restarts(job) < 1:            # Flink notices the lost TaskManager
                assert time.monotonic() - self.at < 120, "Flink did not restart the job"
                time.sleep(0.5)
        except BaseException:
            self.replace()                        # the next tests need the cluster whole
            raise
        self.job, self.killed_wall = job, killed_wall

    def replace(self) -> None:
        if not self.replaced:
            services("taskmanager", "start")
            self.replaced = True

    def since(self) -> float:
        return time.monotonic() - self.at

    def noticed_s(self) -> float:
        """Seconds from the kill to the failure in the job's exception history (which the REST
        API fills in a little after the restart)."""
        deadline = time.monotonic() + 30
        while True:
            entries = rest(f"/jobs/{self.job}/exceptions")["exceptionHistory"]["entries"]
            if entries:
                return min(e["timestamp"] for e in entries) / 1000 - self.killed_wall
            if time.monotonic() > deadline:
                return float("nan")
            time.sleep(1)

    def find_model_open(self) -> None:
        """Find, in the TaskManager logs, the first model open after the kill (its line says
        how long before it the model's Python worker started): where the recovery's time went
        (README "Recovery time"). Fails when no model open after the kill is logged."""
        deadline = time.monotonic() + 15          # the line reaches the log through Beam's logging service
        while True:
            opens = sorted(o for log in taskmanager_logs() for o in _model_opens(log) if o[0] > self.killed_wall)
            if opens:
                opened, age = opens[0]
                self.opened_s, self.worker_started_s = opened - self.killed_wall, opened - age - self.killed_wall
                return
            assert time.monotonic() < deadline, "no model open logged after the kill"
            time.sleep(1)

    def __str__(self) -> str:
        where = "the TaskManager left" if self.on_standby else "a replacement TaskManager started 2 s after the kill"
        return (f"Flink noticed the loss {self.noticed_s():.1f} s after the kill and restarted the job on {where}; "
                f"its Python worker started {self.worker_started_s:.1f} s and the model opened {self.opened_s:.1f} s "
                "after the kill")


_MODEL_OPEN = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .* - model \S+: opened in .*process started "
                         r"([\d.]+) s before", re.MULTILINE)


def _model_opens(log: str) -> list[tuple[float, float]]:
    """(epoch seconds of the open, age in seconds of its process) of each model open line of a
    TaskManager log (operators/model/flink.py; timestamps in the machine's local time, as Flink
    writes them)."""
    return [(datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp(), float(age))
            for stamp, age in _MODEL_OPEN.findall(log)]


def learned_once(p: Pipeline, events: list[dict[str, Any]]) -> str:
    """Every event's update is in the update log exactly once, all in one lineage (the shared
    model never started over); returns that lineage."""
    updates = read_update_log(f"{p.topics['output']}-model-updates")
    lineages = {u.lineage for u in updates}
    assert len(lineages) == 1, f"updates in {len(lineages)} lineages"
    learned = Counter(u.event.event_id for u in updates)
    assert set(learned) == {e["event_id"] for e in events}, "an event never learned"
    assert max(learned.values()) == 1, f"learned twice: {[e for e, n in learned.items() if n > 1][:5]}"
    return lineages.pop()


def equal_replicas(lineage: str, at_least: int) -> dict[int, dict[str, set[str]]]:
    """The versions of ``lineage`` digested by two replicas or more, with their digests and
    reporters. Fails unless there are at least ``at_least`` and the replicas agree at each."""
    compared = {v: d for v, d in replica_digests(lineage).items() if len(d["reporters"]) > 1}
    assert len(compared) >= at_least, f"{len(compared)} versions digested by two replicas: {sorted(compared)}"
    split = {v: sorted(d["digests"]) for v, d in compared.items() if len(d["digests"]) > 1}
    assert not split, f"replicas disagree: {split}"
    return compared


def _metric(job: str, name: str) -> int:
    """The model operator's gauge ``name`` summed over subtasks (Flink REST, refreshed ~10 s)."""
    vertex = next(v["id"] for v in rest(f"/jobs/{job}")["vertices"] if "model-recommend" in v["name"])
    deadline = time.monotonic() + 30
    while True:
        listed = rest(f"/jobs/{job}/vertices/{vertex}/subtasks/metrics")
        wanted = [m["id"] for m in listed if m["id"].endswith(f"model.{name}")]
        if wanted:
            values = rest(f"/jobs/{job}/vertices/{vertex}/subtasks/metrics?get={wanted[0]}&agg=sum")
            if values and float(values[0]["sum"]) > 0 or time.monotonic() > deadline:
                return int(float(values[0]["sum"])) if values else 0
        elif time.monotonic() > deadline:
            return 0
        time.sleep(2)


def test_one_shared_model_through_savepoint_rescales_1_2_1_3_2(
        new_pipeline: Callable[..., Pipeline], report: Callable[[str], None], tmp_path: Path) -> None:
    """Stop with a savepoint and resubmit at another parallelism, four times: 1 -> 2 (the
    one-subtask model becomes the shared one, replica.py), 2 -> 1, 1 -> 3, 3 -> 2. Every
    event is answered once and learned once, and replicas report equal digests at equal
    versions, across subtasks and across the rescales."""
    # Three input partitions: a source subtask needs one (the job refuses more subtasks). Every
    # snapshot is kept, the founding one included (a cut at every 100th version gives ten).
    p = new_pipeline(snapshot_every=100, partitions=3, extra_args=["--snapshot-retain", "20"])
    plan = [1, 2, 1, 3, 2]
    events = stream(1_000, users=60, seed=13)
    batches = [events[n * 200:(n + 1) * 200] for n in range(len(plan))]
    store = snapshot_store(p.name)
    savepoint, took = None, []
    try:
        for n, (parallelism, batch) in enumerate(zip(plan, batches, strict=True)):
            p.send(batch)
            started = time.monotonic()
            job = p.submit(savepoint=savepoint, parallelism=parallelism)
            sent = sum(len(b) for b in batches[:n + 1])
            records = p.read("output", sent, timeout=300)
            took.append(time.monotonic() - started)
            assert len(records) == sent, f"run {n + 1} at parallelism {parallelism}: {len(records)} of {sent} outputs"
            assert rest(f"/jobs/{job}")["vertices"][-1]["parallelism"] == parallelism
            shards = {r["model_shard"] for r in records if r["event_id"] in {e["event_id"] for e in batch}}
            assert shards == set(range(parallelism)), f"run {n + 1}: outputs from subtasks {shards}"
            if n < len(plan) - 1:
                savepoint = p.stop_with_savepoint(job, tmp_path / "savepoints")
        by_event(records)
        assert sorted(r["event_id"] for r in records) == sorted(e["event_id"] for e in events), "lost output"
        seen: dict[str, set[str]] = {}
        for e in events:
            seen.setdefault(e["user_id"], set()).add(e["item_id"])
        for user, r in {r["user_id"]: r for r in records}.items():   # keyed histories moved with the users
            assert not set(top10(r)) & seen[user], user

        infos = store.list()
        shared = [i for i in infos if i.shared]
        assert shared and all((i.shard, i.shards) == (0, 0) for i in shared)
        lineage = shared[0].lineage
        assert {i.lineage for i in shared} == {lineage}, "a rescale started another lineage"
        founding = min(shared, key=lambda i: i.version)
        assert founding.learned_events == len(batches[0]), "the shared model did not start from the first run's"
        # The update log is the model: the first run's lineage holds its events, the shared
        # lineage every later one, each once.
        updates = read_update_log(f"{p.topics['output']}-model-updates")
        learned = Counter(u.event.event_id for u in updates if u.lineage == lineage)
        later = {e["event_id"] for b in batches[1:] for e in b}
        assert set(learned) == later and max(learned.values()) == 1, "an event lost or learned twice"
        first = [u.event.event_id for u in updates if u.lineage != lineage]
        assert sorted(first) == sorted(e["event_id"] for e in batches[0])

        # A batch sent before its run is learned in a burst that commits after it: the run's
        # replicas see it only at the next start (freshness is a checkpoint interval).
        compared = equal_replicas(lineage, at_least=3)
        assert max(len(d["reporters"]) for d in compared.values()) >= 3, "no version digested at parallelism 3"
        report(f"[scenario 3] savepoint rescales 1->2->1->3->2 over {len(events)} events: every event answered "
               f"and learned once; {len(compared)} versions ({min(compared)}..{max(compared)}) digested by 2-"
               f"{max(len(d['reporters']) for d in compared.values())} replicas, all equal; all output "
               f"{', '.join(f'{t:.0f}' for t in took)} s after each submit")
    finally:
        store.close()


def read_update_log(topic: str) -> list[Any]:
    from operators.model.update_log import KafkaLogTail  # what the replicas read

    tail = KafkaLogTail(BOOTSTRAP, topic)
    try:
        return [u for _, u in tail.read(0, wait=True)]
    finally:
        tail.close()


def replica_digests(lineage: str) -> dict[int, dict[str, set[str]]]:
    """What every replica of ``lineage`` logged: per version, its digests and its reporters
    (a replica: a subtask of one run, whose Python worker has its own python-dist directory)."""
    pattern = re.compile(r"python-dist-([0-9a-f-]+)/.* - model (\S+) \(lineage " + lineage
                         + r"\): replica digest at version (\d+) \(log offset \d+\): ([0-9a-f]{64})")
    out: dict[int, dict[str, set[str]]] = {}
    for log in taskmanager_logs():
        for line in log.splitlines():
            match = pattern.search(line)
            if match:
                worker, who, version, digest = match.groups()
                entry = out.setdefault(int(version), {"digests": set(), "reporters": set()})
                entry["digests"].add(digest)
                entry["reporters"].add(f"{worker}:{who}")
    return out


def test_half_written_snapshots_are_ignored_for_the_previous_complete_one(
        new_pipeline: Callable[..., Pipeline], report: Callable[[str], None]) -> None:
    p = new_pipeline(snapshot_every=4)
    first = [event(n, f"u{n % 4}", f"i{n % 7}") for n in range(12)]
    store = snapshot_store(p.name)
    try:
        p.send(first)
        p.submit()
        assert len(p.read("output", len(first))) == len(first)
        p.cancel_all()
        complete = store.list()[0]
        blob = store.read(complete)
        assert blob is not None and complete.learned_events == len(first)

        # A writer that died before its manifest, and one whose chunks did not all land.
        no_manifest = store.save(blob, complete.positions, 999, p.topics["input"], complete.lineage)
        store.session.execute(f"DELETE FROM {p.name}.snapshot_manifests WHERE model = %s AND version = %s",
                              ("default", no_manifest.version))
        store.chunk_bytes = 64                              # several chunks, one of which goes missing
        torn = store.save(blob, complete.positions, 998, p.topics["input"], complete.lineage)
        store.session.execute(f"DELETE FROM {p.name}.snapshot_chunks WHERE model = %s AND version = %s AND chunk = 1",
                              ("default", torn.version))
        assert store.list()[0].version == torn.version and store.read(torn) is None

        later = [event(n, "newcomer", f"i{n % 7}") for n in range(12, 14)]
        p.send(later)
        started = time.monotonic()
        job = p.submit(group=p.name + "-again")            # a fresh start that re-reads the topic
        records = p.read("output", 2 * len(first) + len(later))
        second = records[len(first):]
        assert {r["snapshot_version"] for r in second[:len(first)]} == {complete.version}
        assert [r["model_version"] for r in second] == [len(first)] * len(first) + [13, 14]
        assert p.restarts(job) == 0
        report(f"[scenario 4] newest manifest torn (v{torn.version}) and chunks without manifest "
              f"(v{no_manifest.version}): loaded v{complete.version}, output in {time.monotonic() - started:.1f} s")
    finally:
        store.close()
        p.cancel_all()
