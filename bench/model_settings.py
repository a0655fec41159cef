"""Prequential quality with some of the model's settings changed (a search around the defaults).

    python bench/model_settings.py [--data ../shared/data/ml-100k/u.data] [--format movielens-100k]
                                   NAME=VALUE ...

Runs ``jobs.evaluate``'s evaluation (every event tested, then learned, through the job's
cleaning, feature and model code) with the ``OnlineConfig`` defaults overridden by each
NAME=VALUE (a field of operators/model/online.py's ``OnlineConfig``, its value parsed as the
default's type). Prints one JSON line: the settings, the fusion's hits and tests, Recall@10
exact and rounded, NDCG@10 and the whole run's events/s. The hits are there because the
summary rounds recall to four places: 0.20999 shows as 0.21. Exits 2 for an absent input or
a bad setting.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jobs.evaluate import evaluate  # noqa: E402
from jobs.replay import FORMATS  # noqa: E402
from operators.model.online import OnlineConfig  # noqa: E402

DEFAULT = ROOT.parent / "shared" / "data" / "ml-100k" / "u.data"


def settings(pairs: list[str]) -> dict[str, Any]:
    """``OnlineConfig`` overrides from NAME=VALUE strings, each value of its default's type.

    >>> settings(["neighbours=384", "knn_decay=0.85"])
    {'neighbours': 384, 'knn_decay': 0.85}
    >>> settings(["no_such=1"])
    Traceback (most recent call last):
    ValueError: no_such is not a setting of OnlineConfig
    """
    defaults = {f.name: getattr(OnlineConfig(), f.name) for f in fields(OnlineConfig)}
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"{pair!r} is not NAME=VALUE")
        if name not in defaults:
            raise ValueError(f"{name} is not a setting of OnlineConfig")
        kind = type(defaults[name])
        if kind not in (int, float, str):
            raise ValueError(f"{name} ({kind.__name__}) cannot be set from the command line")
        out[name] = kind(value)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT)
    parser.add_argument("--format", default="movielens-100k", choices=FORMATS)
    parser.add_argument("settings", nargs="*", metavar="NAME=VALUE")
    args = parser.parse_args()
    if not args.data.is_file():
        print(f"model_settings: {args.data} not found; pass --data", file=sys.stderr)
        return 2
    try:
        overrides = settings(args.settings)
    except ValueError as exc:
        print(f"model_settings: {exc}", file=sys.stderr)
        return 2
    summary, curves = evaluate(args.data, args.format, None, False, model=OnlineConfig(**overrides))
    fusion = curves["fusion"]
    print(json.dumps({"settings": overrides, "hits": fusion.hits, "tests": fusion.tests,
                      "recall_at_10_exact": fusion.hits / max(fusion.tests, 1),
                      "recall_at_10": summary["recall_at_10"], "ndcg_at_10": summary["ndcg_at_10"],
                      "events_per_sec": summary["events_per_sec"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
