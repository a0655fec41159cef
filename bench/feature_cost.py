"""What the feature stage costs per event inside the job: Flink SQL against a Python operator.

    python bench/feature_cost.py [--events 30000]

Runs the job on the same input (the first N events of MovieLens 100K) cut at different points
(``--stages``), all in the same run:
  clean            cleaning only (the baseline)
  features         + every window feature in Flink SQL (HOP windows, temporal joins, ordering)
  features-python  + only the item counts, in a Python operator keyed by item (the alternative)
  full             + the SQL features and the model operator
and prints events/s and microseconds per event for each, plus the difference to the baseline.
Writes bench/results/feature_cost.{json,png}. Needs the local services.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.jobrun import DEFAULT_DATA, load_input, run_job  # noqa: E402

VARIANTS = ["clean", "features", "features-python", "full"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()
    loaded = load_input(args.data, args.events)
    if loaded is None:
        return 2
    payloads, keys = loaded
    results: dict[str, dict[str, float]] = {}
    for variant in args.variants.split(","):
        run = run_job(payloads, keys, ["--stages", variant], variant)
        rate = run.events_per_sec
        results[variant] = {"events_per_sec": round(rate, 1), "us_per_event": round(1e6 / rate, 1),
                            "first_output_s": round(run.first_output_s or float("nan"), 1),
                            "all_output_s": round(run.all_output_s or float("nan"), 1)}
    names = list(results)
    base = names[0]
    steps = {f"{n} - {base}": round(results[n]["us_per_event"] - results[base]["us_per_event"], 1)
             for n in names[1:]}
    summary = {"events": len(payloads), "variants": results, "added_us_per_event": steps}
    print(json.dumps(summary))
    out = ROOT / "bench" / "results" / "feature_cost"
    out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 3.5))
        ax.barh(names, [results[n]["us_per_event"] for n in names])
        for y, n in enumerate(names):
            ax.text(results[n]["us_per_event"], y, f" {results[n]['events_per_sec']:,.0f} ev/s", va="center")
        ax.set_xlabel("microseconds per event (job on local Flink, parallelism 1)")
        ax.set_title(f"Window features in SQL vs Python, first {len(payloads):,} MovieLens events")
        fig.tight_layout()
        fig.savefig(out.with_suffix(".png"), dpi=100)
    except ImportError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
