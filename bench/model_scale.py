"""The model at catalogue scale: prequential speed, memory and snapshot size on ml-100k and on a
synthetic log with 100k items and 1M users, in one run.

    python bench/model_scale.py [--events 1000000] [--users 1000000] [--items 100000] [--seed 1]
                                [--data ../shared/data/ml-100k/u.data]

Generates the synthetic log with ``python -m jobs.sample`` (deterministic by seed) into a
temporary folder, then runs ``python -m jobs.evaluate`` on each log pinned to one core
(``taskset -c 0`` when available), each in its own process so its peak RSS is its own.
Prints one line per log and, last, a JSON summary with events/s of each, their ratio
(target: the synthetic log within 2x of ml-100k, ratio >= 0.5), the model's memory per part,
the snapshot's raw and stored (zlib) size (target <= 100 MB stored) and each process's peak
RSS; writes it to bench/results/model_scale.json. Exits 2 when the ml-100k file is absent.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT.parent / "shared" / "data" / "ml-100k" / "u.data"
SNAPSHOT_TARGET = 100 * 2**20


def evaluate(data: Path, label: str) -> dict[str, Any]:
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.monotonic()
    print(f"bench: evaluating {label} ({data}) ...", file=sys.stderr, flush=True)
    run = subprocess.run([*pin, sys.executable, "-m", "jobs.evaluate", "--input", str(data),
                          "--format", "movielens-100k"], cwd=ROOT, stdout=subprocess.PIPE, text=True, check=True)
    summary: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the largest child so far: only a new maximum says this one's
    summary["peak_rss_mb"] = round(peak / 1024) if peak > before else f"<= {round(before / 1024)}"
    summary["wall_s"] = round(time.monotonic() - started, 1)
    keep = ("events", "recall_at_10", "events_per_sec", "model_bytes", "snapshot_bytes", "peak_rss_mb", "wall_s")
    print(f"bench: {label}: " + json.dumps({k: summary[k] for k in keep}), file=sys.stderr, flush=True)
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if not args.data.is_file():
        print(f"bench: {args.data} not found; pass --data", file=sys.stderr)
        return 2
    small = evaluate(args.data, "ml-100k")
    with tempfile.TemporaryDirectory() as tmp:
        synthetic = Path(tmp) / "synthetic.data"
        subprocess.run([sys.executable, "-m", "jobs.sample", str(synthetic), "--events", str(args.events),
                        "--users", str(args.users), "--items", str(args.items), "--seed", str(args.seed)],
                       cwd=ROOT, check=True)
        large = evaluate(synthetic, f"synthetic {args.users:,} users x {args.items:,} items")
    ratio = large["events_per_sec"] / small["events_per_sec"]
    result = {
        "ml100k": {k: small[k] for k in ("events", "recall_at_10", "events_per_sec", "model_bytes", "snapshot_bytes",
                                         "peak_rss_mb")},
        "synthetic": {"users": args.users, "items_requested": args.items, "seed": args.seed,
                      **{k: large[k] for k in ("events", "recall_at_10", "events_per_sec", "model_bytes",
                                               "snapshot_bytes", "peak_rss_mb")}},
        "ratio_events_per_sec": round(ratio, 3), "ratio_target": 0.5,
        "snapshot_stored_mb": round(large["snapshot_bytes"]["stored"] / 2**20, 1),
        "snapshot_target_mb": SNAPSHOT_TARGET // 2**20,
    }
    out = ROOT / "bench" / "results" / "model_scale.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
