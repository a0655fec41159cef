"""Feature ablation of the learned ranker: prequential recall with and without each group of its
features, in one run.

    python bench/ablation.py [--data ../shared/data/ml-100k/u.data] [--format movielens-100k]
                             [--groups window,session,window+session,last_item,history]

Runs ``python -m jobs.evaluate --without GROUP`` once with every feature and once per entry of
``--groups`` (``+`` joins groups hidden together; names from ``operators.model.ranker.
FEATURE_GROUPS``), each pinned to one core (``taskset -c 0`` when available), one after the
other. Prints one line per run and, last, a markdown table and a JSON summary (Recall@10,
NDCG@10, the learned ranker's own exponentially weighted hit rate, and each run's difference
to the run with every feature); writes the JSON to bench/results/ablation.json (or
``--out``). Exits 2 when the input file is absent.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT.parent / "shared" / "data" / "ml-100k" / "u.data"


def run(data: Path, fmt: str, without: str) -> dict[str, Any]:
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    label = without or "(every feature)"
    print(f"ablation: evaluating without {label} ...", file=sys.stderr, flush=True)
    out = subprocess.run([*pin, sys.executable, "-m", "jobs.evaluate", "--input", str(data), "--format", fmt,
                          "--without", without.replace("+", ",")],
                         cwd=ROOT, stdout=subprocess.PIPE, text=True, check=True)
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    row = {"without": without, "recall_at_10": summary["recall_at_10"], "ndcg_at_10": summary["ndcg_at_10"],
           "ranker_hit_rate": summary["learned_ranker"]["hit_rate"],
           "ranker_leads": summary["learned_ranker"]["leads"], "events_per_sec": summary["events_per_sec"]}
    print(f"ablation: {json.dumps(row)}", file=sys.stderr, flush=True)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT)
    parser.add_argument("--format", default="movielens-100k")
    parser.add_argument("--groups", default="window,session,window+session,last_item,history")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ablation.json")
    args = parser.parse_args()
    if not args.data.is_file():
        print(f"ablation: {args.data} not found; pass --data", file=sys.stderr)
        return 2
    rows = [run(args.data, args.format, g) for g in ["", *args.groups.split(",")]]
    base = rows[0]
    for r in rows:
        r["recall_delta"] = round(r["recall_at_10"] - base["recall_at_10"], 4)
        r["ranker_hit_rate_delta"] = round(r["ranker_hit_rate"] - base["ranker_hit_rate"], 4)
    print("| without | Recall@10 | NDCG@10 | ranker hit rate | Δ recall | Δ ranker hit rate |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['without'] or '(every feature)'} | {r['recall_at_10']:.4f} | {r['ndcg_at_10']:.4f} | "
              f"{r['ranker_hit_rate']:.4f} | {r['recall_delta']:+.4f} | {r['ranker_hit_rate_delta']:+.4f} |")
    result = {"data": args.data.name, "runs": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
