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
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.jobrun import DEFAULT_DATA, compare_stages, load_input  # noqa: E402

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
    variants = args.variants.split(",")
    pairs = [(variants[0], v) for v in variants[1:]]               # what each variant adds to the baseline
    compare_stages(payloads, keys, variants, pairs, "feature_cost", "Window features in SQL vs Python")
    return 0


if __name__ == "__main__":
    sys.exit(main())
