"""Prequential quality and speed of the online ranker against the simple baselines.

    python bench/model_quality.py [--data ../shared/data/ml-100k/u.data] [--limit N]

Runs ``python -m jobs.evaluate --baselines`` pinned to one core (``taskset -c 0`` when
available): every event is tested (top-10 before learning) and then learned, through the
job's cleaning, feature and model code. Prints the summary JSON with the targets beside it
and writes bench/results/model_quality.{json,png} (moving-window recall per model, per
component and for the fusion). Exits 2 when the data file is absent.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT.parent / "shared" / "data" / "ml-100k" / "u.data"
TARGETS = {"recall_at_10": 0.21, "events_per_sec": 5_000}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT)
    parser.add_argument("--format", default="movielens-100k")
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    if not args.data.is_file():
        print(f"bench: {args.data} not found; pass --data", file=sys.stderr)
        return 2
    out = ROOT / "bench" / "results" / "model_quality"
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    cmd = [*pin, sys.executable, "-m", "jobs.evaluate", "--input", str(args.data), "--format", args.format,
           "--baselines", "--plot", str(out.with_suffix(".png"))]
    if args.limit:
        cmd += ["--limit", str(args.limit)]
    items = args.data.parent / "u.item"
    if items.is_file():
        cmd += ["--item-metadata", str(items)]
    run = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    if run.returncode != 0:
        return run.returncode
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    best_baseline = max(b["recall_at_10"] for b in summary["baselines"].values())
    summary["targets"] = TARGETS
    summary["over_best_baseline"] = round(summary["recall_at_10"] / best_baseline, 3)
    print(json.dumps(summary))
    out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
