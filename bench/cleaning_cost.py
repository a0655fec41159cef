"""What the cleaning stage costs per event inside the job, stage by stage.

    python bench/cleaning_cost.py [--events 100000]

Runs the job four times on the same input (the first N events of MovieLens 100K) with the
pipeline cut at different points (``--stages``):
  passthrough  Kafka -> Kafka in the JVM only (the baseline, measured in the same run)
  validate     + the stateless Python validation operator
  clean        + watermarks and the per-user guard (dedupe, lateness, bot limit; keyed state)
  full         + item window features and the model
and prints events/s and microseconds per event for each, plus the difference per stage.
Writes bench/results/cleaning_cost.{json,png}. Needs the local services.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.jobrun import DEFAULT_DATA, compare_stages, load_input  # noqa: E402

VARIANTS = ["passthrough", "validate", "clean"]   # "full" too with --variants (slow on 100k)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()
    loaded = load_input(args.data, args.events)
    if loaded is None:
        return 2
    payloads, keys = loaded
    variants = args.variants.split(",")
    pairs = list(zip(variants, variants[1:], strict=False))       # what each stage adds to the one before
    compare_stages(payloads, keys, variants, pairs, "cleaning_cost", "Cost of each part of the pipeline")
    return 0


if __name__ == "__main__":
    sys.exit(main())
