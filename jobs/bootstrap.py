"""Warm the model from history: learn a historical log offline, then let the job go on from it.

    python -m jobs.bootstrap --input PATH [--format auto|parquet|movielens-csv|movielens-100k|amazon-ratings|jsonl]
                             [--until TS] [any of the job's flags: --model-name, --keyspace,
                              --cassandra-hosts, --input-topic, --pseudonym-key-file, --snapshot-key-file,
                              --security-file, model and feature settings ...]

The log goes through the job's own cleaning, window-feature and model code in this process
(jobs/offline.py), without Flink and without Kafka: a Parquet log a record batch at a time in
file order (it must be in event-time order up to the job's out-of-orderness bound, as a topic
is), the text formats sorted by time. Events after ``--until`` (epoch milliseconds or an
ISO-8601 time, UTC unless it says; default: the log's last event time) are left to the stream.
Then, in this order, it writes to the job's keyspace:

1. every user's state (recent and seen items, session; ``user_histories``, sealed with the
   snapshot key when there is one), which the job reads on its first sight of each user
   (operators/model/user_histories.py);
2. a snapshot of the model under a new lineage, the newest version, holding every event up to
   the cut as learned: the job started afterwards restores it and skips every event at or
   before the cut that the stream brings again (progress.py), so nothing is learned twice;
3. a row in ``bootstraps`` (time, cut, events, users, snapshot version), which tells the job
   to look for user histories.

Start the job afterwards with the same model settings (and ``--start-from-timestamp-ms`` to
skip the input topic's records appended before a time). The bootstrap learns as the job does,
except that it serves no lists: the health guard's served-list checks (health.py) have no
lists to check until the job serves some (its NaN/Inf check runs as always). One model only:
with ``--variants`` it stops with an error. Progress goes to stderr; the last line of stdout
is a JSON summary (events read, learned, after the cut, rejected by reason, users, the cut,
the snapshot written, seconds, events/s, peak memory). Exit 2 with one line for an unusable
argument or input, or an unreachable Cassandra.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from jobs.config import JobConfig
from jobs.offline import OfflinePipeline
from jobs.parquet_io import ParquetSchemaError
from jobs.replay import FORMATS, detect_format, event_ts, iter_log, read_events
from operators.model.online import OnlineRanker
from operators.model.snapshot_store import SnapshotInfo, SnapshotStore
from operators.model.user_histories import BootstrapRecord, CassandraHistoryTables, UserHistories
from operators.security import KeyFileError, pseudonymizer, snapshot_keys


@dataclass
class BootstrapResult:
    events_read: int = 0
    learned: int = 0
    after_cut: int = 0                  # events later than the cut, left to the stream
    rejected: dict[str, int] = field(default_factory=dict)
    users: int = 0
    until_ms: int | None = None
    snapshot: SnapshotInfo | None = None
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        out = asdict(self)
        out["snapshot"] = None if self.snapshot is None else {
            k: getattr(self.snapshot, k) for k in ("version", "lineage", "learned_events", "size", "source", "digest")}
        out["events_per_sec"] = round(self.events_read / self.seconds) if self.seconds else None
        return out


def bootstrap(events: Iterable[dict[str, Any] | str], pipeline: OfflinePipeline, store: SnapshotStore,
              histories: UserHistories, source_topic: str, until_ms: int | None = None, source_name: str = "",
              clock: Callable[[], float] = time.time) -> BootstrapResult:
    """Learn ``events`` up to ``until_ms`` (default: the newest event time among them) with
    ``pipeline``, then write the users' state, the model's snapshot (for the job reading
    ``source_topic``) and the bootstrap's record, in that order: a job that finds the record
    finds the rest."""
    started = time.perf_counter()
    result = BootstrapResult()
    newest: int | None = None
    for event in events:
        result.events_read += 1
        ts = event_ts(event)
        if until_ms is not None and ts is not None and ts > until_ms:
            result.after_cut += 1
            continue
        if ts is not None and (newest is None or ts > newest):
            newest = ts
        payload = json.dumps(event, ensure_ascii=False) if isinstance(event, dict) else event
        pipeline.process(payload.encode("utf-8", "surrogateescape"))
    pipeline.flush()
    ranker = pipeline.step.ranker
    cut = until_ms if until_ms is not None else newest
    if cut is None:
        raise ValueError("the log has no event to learn before the cut")
    ranker.holds_until(cut)
    result.until_ms, result.learned, result.rejected = cut, ranker.learned_events, dict(pipeline.rejected)
    result.users = histories.put_many(pipeline.users.items())
    state = ranker.cut()
    created_ms = int(clock() * 1000)
    result.snapshot = store.save(state.blob(), dict(ranker.positions), ranker.learned_events, source_topic,
                                 uuid.uuid4().hex, 0, 1, created_ms=created_ms, digest=state.digest())
    histories.record(BootstrapRecord(created_ms, cut, ranker.learned_events, result.users, result.snapshot.version,
                                     source_name))
    result.seconds = round(time.perf_counter() - started, 2)
    return result


def resume_offline(store: SnapshotStore, histories: UserHistories, users: Iterable[str],
                   pipeline: OfflinePipeline) -> OfflinePipeline:
    """``pipeline`` set up as the job starts after a bootstrap: the newest snapshot's model, and
    the bootstrapped state of ``users`` (the job reads each on first sight; offline, up front),
    with the feature windows and the cleaning stage's state empty. For comparisons offline
    (tests, bench/bootstrap.py)."""
    newest = store.list(limit=1)[0]
    blob = store.read(newest)
    if blob is None:
        raise ValueError(f"snapshot v{newest.version} is incomplete")
    pipeline.step.ranker = OnlineRanker.restore(blob, pipeline.model)
    pipeline.users = {user: state for user in users if (state := histories.first_sight(user)) is not None}
    return pipeline


def parse_time(text: str) -> int:
    """Epoch milliseconds, or an ISO-8601 time (UTC unless it says).

    >>> parse_time("889000000000"), parse_time("1998-03-04"), parse_time("1998-03-04T01:00:00+01:00")
    (889000000000, 888969600000, 888969600000)
    """
    if text.lstrip("-").isdigit():
        return int(text)
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _events(path: Path, fmt: str) -> tuple[Iterable[dict[str, Any] | str], int | None]:
    """The log's events and their number when known up front (a progress bar's total)."""
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt == "parquet":
        import pyarrow.parquet as pq
        return iter_log(path, fmt), pq.ParquetFile(path).metadata.num_rows
    events = read_events(path, fmt)
    return events, len(events)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", type=Path, required=True)
    parser.add_argument("--format", default="auto", choices=FORMATS)
    parser.add_argument("--until", default=None, help="epoch ms or ISO-8601 time; default: the last event's")
    args, rest = parser.parse_known_args(argv)
    config = JobConfig.from_args(rest)

    def fail(message: str) -> int:
        print(f"bootstrap: {message}", file=sys.stderr)
        return 2

    if not args.input.is_file():
        return fail(f"cannot read {args.input}")
    if len(config.variant_list()) > 1:
        return fail("one model only: bootstrap each variant's model is not supported (drop --variants)")
    try:
        until = parse_time(args.until) if args.until is not None else None
        keys = snapshot_keys(config.snapshot_key_file)
        pipeline = OfflinePipeline(k=config.k, features=config.feature_config(), guard=config.guard_config(),
                                   model=config.online_config(), recommend=False, test_every_event=False,
                                   pseudonyms=pseudonymizer(config.pseudonym_key_file))
        events, total = _events(args.input, args.format)
    except (ValueError, KeyFileError, OSError, ParquetSchemaError) as exc:
        return fail(str(exc))
    hosts = [h.strip() for h in config.cassandra_hosts.split(",") if h.strip()]
    try:
        store = SnapshotStore.connect(hosts, config.cassandra_port, config.keyspace, config.model_name,
                                      replication=config.cassandra_replication, keys=keys,
                                      security_file=config.security_file)
    except Exception as exc:  # noqa: BLE001 - the driver's NoHostAvailable and friends
        return fail(f"cannot reach Cassandra at {config.cassandra_hosts}:{config.cassandra_port}: {exc}")
    histories = UserHistories(CassandraHistoryTables(store.session, config.keyspace), config.model_name, keys)
    try:
        with tqdm(events, total=total, desc="bootstrap", unit="ev", file=sys.stderr, mininterval=2.0) as bar:
            result = bootstrap(bar, pipeline, store, histories, config.input_topic, until, str(args.input))
    except (ValueError, ParquetSchemaError) as exc:
        return fail(str(exc))
    finally:
        store.close()
    summary = result.summary()
    summary["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    summary["until"] = datetime.fromtimestamp((result.until_ms or 0) / 1000, UTC).isoformat()
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
