"""What security costs end to end: bench/e2e.py on the plain stack, then on the secured one
(TLS + SASL/SCRAM + ACLs on Kafka, password auth + TLS on Cassandra, TLS inside Flink), in
one invocation, back to back, with the same events and job flags (by default pseudonyms and
encrypted snapshots on in both, so the difference is the transport's security alone; pass
--job-args "" to compare a fully plain job instead).

    python -m bench.secure_cost [--events 20000] [--job-args "..."]

Starts the secured stack (deploy/local/services up --secure, beside the plain one, which must
be running) and leaves both running. Prints each run's rates and latencies and the ratio; the
last stdout line is JSON. Both runs also append their rows to bench/RESULTS.md (bench.e2e).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.integration.harness import SERVICES, secure_env  # noqa: E402

KEYS = Path(os.environ.get("STREAMREC_HOME") or Path.home() / ".cache/streamrec") / "keys"


def privacy_args() -> str:
    """The demo's keys (made here if absent): pseudonyms and encrypted snapshots."""
    KEYS.mkdir(parents=True, exist_ok=True)
    KEYS.chmod(0o700)
    for name in ("pseudonym", "snapshot"):
        key = KEYS / f"{name}.key"
        if not key.exists() or key.stat().st_size == 0:
            key.touch(mode=0o600)
            key.write_bytes(os.urandom(32))
    return f"--pseudonym-key-file {KEYS / 'pseudonym.key'} --snapshot-key-file {KEYS / 'snapshot.key'}"


def e2e(label: str, events: int, job_args: str, env: dict[str, str]) -> dict[str, Any]:
    out = ROOT / "bench" / "results" / f"e2e-{label}"
    command = [sys.executable, "-m", "bench.e2e", "--events", str(events), "--no-floor", "--json",
               "--job-args", job_args, "--out", str(out)]
    print(f"==> {label}: {shlex.join(command[1:])}", file=sys.stderr, flush=True)
    done = subprocess.run(command, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.PIPE, text=True,
                          check=False)
    if done.returncode != 0:
        raise SystemExit(f"bench.e2e on the {label} stack failed ({done.returncode})")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--job-args", default=None, help="job flags for both runs (default: pseudonyms + "
                        "encrypted snapshots under ~/.cache/streamrec/keys)")
    args = parser.parse_args(argv)
    job_args = privacy_args() if args.job_args is None else args.job_args
    secure = secure_env()
    subprocess.run([str(SERVICES), "up"], env={**os.environ, **secure}, check=True)
    plain = e2e("plain", args.events, job_args, {})
    secured = e2e("secure", args.events, job_args, secure)
    keys = ("events_per_sec", "steady_state_events_per_sec", "p50_ms", "p99_ms")
    runs = {"plain": {k: plain[k] for k in keys}, "secure": {k: secured[k] for k in keys}}
    summary = {"events": args.events, "job_args": job_args, **runs,
               "secure_to_plain": round(secured["events_per_sec"] / plain["events_per_sec"], 3)}
    for label, r in runs.items():
        print(f"{label}: {r['events_per_sec']} ev/s whole run, {r['steady_state_events_per_sec']} steady, "
              f"latency p50 {r['p50_ms']} p99 {r['p99_ms']} ms", file=sys.stderr)
    print(f"secured / plain: {summary['secure_to_plain']}", file=sys.stderr)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
