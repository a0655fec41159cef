"""How the model scales with the catalogue: prequential speed, memory, snapshot size and recall on
synthetic logs of several catalogue sizes, in one run.

    python -m bench.scale [--items 1000,10000,100000] [--users 1000000] [--events 200000] [--seed 1]
                          [--json] [--plot bench/results/scale.png]

For each catalogue size, generates a log with ``python -m jobs.sample`` (deterministic by seed,
the same users, events and seed for every size) into a temporary folder and runs
``python -m jobs.evaluate`` on it pinned to one core (``bench.model_scale.evaluate``). Prints a
line per size (unless ``--json``), then, as the last line of stdout, the JSON
``{"results": [{"items", "users", "events", "events_per_sec", "model_bytes",
"snapshot_bytes", "snapshot_bytes_compressed", "incremental_bytes_compressed", "recall_at_10",
"items_seen", "peak_rss_mb"}, ...]}``; ``model_bytes`` is the sum of the model's arrays
(``OnlineRanker.memory``); ``incremental_bytes_compressed`` is an incremental snapshot (delta.py)
of the last 5,000 events, the job's default snapshot interval. Writes
the JSON to bench/results/scale.json and a plot of events/s, model memory and snapshot size
against the catalogue.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.model_scale import ROOT, evaluate


def measure(items: int, users: int, events: int, seed: int, folder: Path) -> dict[str, Any]:
    log = folder / f"sample-{items}.data"
    print(f"scale: generating {events:,} events, {users:,} users x {items:,} items ...", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "jobs.sample", str(log), "--events", str(events), "--users", str(users),
                    "--items", str(items), "--seed", str(seed)], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    s = evaluate(log, f"{items:,} items")
    memory = s["model_bytes"]
    return {"items": items, "users": users, "events": s["events"], "events_per_sec": s["events_per_sec"],
            "model_bytes": sum(v for k, v in memory.items() if k != "items"),
            "snapshot_bytes": s["snapshot_bytes"]["raw"], "snapshot_bytes_compressed": s["snapshot_bytes"]["stored"],
            "incremental_bytes_compressed": s["snapshot_bytes"]["incremental"]["stored"],
            "recall_at_10": s["recall_at_10"], "items_seen": memory["items"], "peak_rss_mb": s["peak_rss_mb"]}


def plot(results: list[dict[str, Any]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    items = [r["items"] for r in results]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    panels = [("events/s (one core)", {"": [r["events_per_sec"] for r in results]}),
              ("MiB", {"": [r["model_bytes"] / 2**20 for r in results]}),
              ("snapshot MiB", {"full": [r["snapshot_bytes_compressed"] / 2**20 for r in results],
                               "incremental (5,000 events)":
                                   [r["incremental_bytes_compressed"] / 2**20 for r in results]})]
    for ax, (label, series) in zip(axes, panels, strict=True):
        for name, values in series.items():
            ax.plot(items, values, marker="o", label=name or None)
        if len(series) > 1:
            ax.legend()
        ax.set_xscale("log")
        ax.set_ylim(bottom=0)
        ax.set_xlabel("catalogue (items requested)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[1].set_title("model memory")
    axes[2].set_title("snapshot, compressed")
    axes[0].set_title("prequential speed")
    fig.tight_layout()
    fig.savefig(out, dpi=100)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", default="1000,10000,100000")
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    parser.add_argument("--plot", type=Path, default=ROOT / "bench" / "results" / "scale.png")
    args = parser.parse_args()
    try:
        sizes = [int(x) for x in args.items.split(",")]
    except ValueError:
        print(f"scale: --items must be comma-separated integers, not {args.items!r}", file=sys.stderr)
        return 2
    if not sizes or min(sizes) <= 0 or args.users <= 0 or args.events <= 0:
        print("scale: --items, --users and --events must be positive", file=sys.stderr)
        return 2
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for items in sizes:
            r = measure(items, args.users, args.events, args.seed, Path(tmp))
            results.append(r)
            if not args.json:
                print(f"{items:>9,} items ({r['items_seen']:,} seen): {r['events_per_sec']:,} ev/s, "
                      f"model {r['model_bytes'] / 2**20:.1f} MB, snapshot {r['snapshot_bytes'] / 2**20:.1f} MB raw / "
                      f"{r['snapshot_bytes_compressed'] / 2**20:.1f} MB compressed "
                      f"({r['incremental_bytes_compressed'] / 2**20:.1f} MB incremental), "
                      f"Recall@10 {r['recall_at_10']}",
                      flush=True)
    out = {"results": results}
    (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
    (ROOT / "bench" / "results" / "scale.json").write_text(json.dumps(out, indent=1) + "\n")
    plot(results, args.plot)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
