"""Run the job once on the local cluster over a fixed input and time it (shared by benches).

Progress is the output topic's end offset, sampled every 0.2 s: an exactly-once sink appends
records as it writes them (committed only at checkpoints), so the end offset follows
processing, while a read_committed reader would only see checkpoint-sized steps.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from confluent_kafka import Consumer, TopicPartition  # noqa: E402

from jobs.kafka_io import producer  # noqa: E402
from tests.integration.harness import BOOTSTRAP, REPO, Pipeline, drop_keyspace, flink_cli  # noqa: E402


@dataclass
class Run:
    samples: list[tuple[float, int]] = field(default_factory=list)   # (s since submit, records out)
    expected: int = 0

    @property
    def events_per_sec(self) -> float:
        """Steady rate: from the first output to the first sample holding them all."""
        moving = [(t, n) for t, n in self.samples if n > 0]
        done = next(((t, n) for t, n in moving if n >= self.expected), None)
        if not moving or done is None or done[0] == moving[0][0]:
            return float("nan")
        return (done[1] - moving[0][1]) / (done[0] - moving[0][0])

    @property
    def first_output_s(self) -> float | None:
        return next((t for t, n in self.samples if n > 0), None)


def run_job(payloads: list[bytes], keys: list[bytes], job_args: list[str], label: str,
            expected: int | None = None, timeout_idle: float = 120) -> Run:
    """Produce the input to fresh topics, submit the job with ``job_args``, wait for
    ``expected`` output records (default: one per input), cancel, clean up."""
    from tqdm import tqdm

    p = Pipeline(snapshot_every=5000, extra_args=job_args)
    p.create_topics()
    run = Run(expected=len(payloads) if expected is None else expected)
    try:
        prod = producer(BOOTSTRAP)
        for key, value in zip(keys, payloads, strict=True):
            while True:
                try:
                    prod.produce(p.topics["input"], value=value, key=key)
                    break
                except BufferError:
                    prod.poll(0.1)
        prod.flush(60)
        watcher = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": f"bench-{p.name}"})
        out = TopicPartition(p.topics["output"], 0)
        start_offset = watcher.get_watermark_offsets(out, timeout=10)[1]
        submitted = time.monotonic()
        submit = flink_cli("run", "-d", "-py", str(REPO / "jobs" / "recommend.py"), *p.job_args())
        p.jobs.append(submit.rsplit("JobID ", 1)[1].split()[0])
        with tqdm(total=run.expected, desc=label, unit="ev", file=sys.stderr) as bar:
            last_change = time.monotonic()
            while True:
                n = watcher.get_watermark_offsets(out, timeout=10, cached=False)[1] - start_offset
                if not run.samples or n > run.samples[-1][1]:
                    bar.update(n - (run.samples[-1][1] if run.samples else 0))
                    last_change = time.monotonic()
                run.samples.append((time.monotonic() - submitted, n))
                if n >= run.expected or time.monotonic() - last_change > timeout_idle:
                    break
                time.sleep(0.2)
        watcher.close()
    finally:
        p.cancel_all()
        drop_keyspace(p.name)
    return run
