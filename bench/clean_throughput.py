"""Speed of the offline cleaning command (target: >= 50,000 events/s on one core).

    python bench/clean_throughput.py [--events 200000] [--bad-fraction 0.05]

Builds a JSONL input from MovieLens 100K (repeated and renumbered to --events; a generated
sample when the data set is absent) with a fraction of broken records mixed in, then runs
``python -m jobs.clean`` pinned to one core (taskset) and, as the baseline measured in the same
run, a bare ``json.loads`` loop over the same lines. Prints one JSON line and writes
bench/results/clean_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jobs.replay import read_events  # noqa: E402
from jobs.sample import generate  # noqa: E402

BROKEN = [b"not json", b"\xff\xfe\xfd", b'{"event_id": "x"}', b"[1,2,3]", b'{"ts": NaN}',
          b'{"event_id":"b","user_id":true,"item_id":"i","event_type":"view","ts":1000000000000}']


def build_input(path: Path, events: int, bad_fraction: float, data: Path) -> None:
    if data.is_file():
        base = [e for e in read_events(data) if isinstance(e, dict)]
    else:
        base = [{"event_id": f"s{n}", "user_id": str(u), "item_id": str(i), "event_type": "rating",
                 "value": float(r), "ts": t * 1000} for n, (u, i, r, t) in enumerate(generate(20_000, 300, 400, 1))]
    rnd = random.Random(0)
    span = base[-1]["ts"] - base[0]["ts"] + 1000      # each repeat of the log comes later in time
    with path.open("wb") as f:
        for n in range(events):
            if rnd.random() < bad_fraction:
                f.write(rnd.choice(BROKEN) + b"\n")
                continue
            e = dict(base[n % len(base)])
            e["event_id"] = f"{e['event_id']}#{n}"
            e["ts"] += span * (n // len(base))
            f.write(json.dumps(e).encode() + b"\n")


def bare_json_rate(path: Path) -> float:
    lines = path.read_bytes().splitlines()
    start = time.perf_counter()
    for line in lines:
        try:  # noqa: SIM105 - contextlib.suppress would add its own cost to the baseline
            json.loads(line)
        except ValueError:
            pass
    return len(lines) / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--bad-fraction", type=float, default=0.05)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "ml-100k" / "u.data")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.jsonl"
        build_input(src, args.events, args.bad_fraction, args.data)
        pin = ["taskset", "-c", "0"] if os.path.exists("/usr/bin/taskset") else []
        proc = subprocess.run([*pin, sys.executable, "-m", "jobs.clean", "--input", str(src), "--out",
                               str(Path(tmp) / "out.jsonl"), "--dlq", str(Path(tmp) / "dlq.jsonl"),
                               "--now-ms", str(2_000_000_000_000)],
                              capture_output=True, text=True, cwd=ROOT, check=True)
        summary = json.loads(proc.stdout.strip().splitlines()[-1])
        baseline = bare_json_rate(src)
    result = {"events": summary["in"], "clean_events_per_sec": summary["events_per_sec"],
              "bare_json_loads_per_sec": round(baseline), "clean_over_bare_json":
              round(summary["events_per_sec"] / baseline, 3), "target_events_per_sec": 50_000,
              "dlq": summary["dlq"], "duplicates": summary["duplicates"], "by_reason": summary["by_reason"],
              "one_core": bool(pin)}
    print(json.dumps(result))
    out = ROOT / "bench" / "results" / "clean_throughput.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
