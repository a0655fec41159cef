"""What the feature stage costs per event inside the job: Flink SQL against a Python operator.

    python bench/feature_cost.py [--events 30000]

Runs the job on the same input (the first N events of MovieLens 100K) cut at different points
(bench/stages_job.py ``--stages``), all in the same run:
  clean            cleaning only (the baseline)
  features         + every window feature in Flink SQL (HOP windows, temporal joins, ordering)
  features-python  + only the item counts, in a Python operator keyed by item (the alternative)
  full             + the SQL features and the model operator
and prints events/s and microseconds per event for each, plus the difference to the baseline.
Writes bench/results/feature_cost.{json,png}. Needs the local services.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.jobrun import stage_bench  # noqa: E402

VARIANTS = ["clean", "features", "features-python", "full"]


def main() -> int:
    return stage_bench(__doc__ or "", VARIANTS, 30_000, "feature_cost",
                       "Window features in SQL vs Python", against_first=True)


if __name__ == "__main__":
    sys.exit(main())
