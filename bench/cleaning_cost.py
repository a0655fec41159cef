"""What the cleaning stage costs per event inside the job, stage by stage.

    python bench/cleaning_cost.py [--events 100000]

Runs the job four times on the same input (the first N events of MovieLens 100K) with the
pipeline cut at different points (bench/stages_job.py ``--stages``):
  passthrough  Kafka -> Kafka in the JVM only (the baseline, measured in the same run)
  validate     + the stateless Python validation operator
  clean        + watermarks and the per-user guard (dedupe, lateness, bot limit; keyed state)
  full         + item window features and the model
and prints events/s and microseconds per event for each, plus the difference per stage.
Writes bench/results/cleaning_cost.{json,png}. Needs the local services.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.jobrun import stage_bench  # noqa: E402

VARIANTS = ["passthrough", "validate", "clean"]   # "full" too with --variants (slow on 100k)


def main() -> int:
    return stage_bench(__doc__ or "", VARIANTS, 100_000, "cleaning_cost",
                       "Cost of each part of the pipeline", against_first=False)


if __name__ == "__main__":
    sys.exit(main())
