"""Write a small synthetic interaction log in MovieLens ``u.data`` layout (user, item, rating, ts).

Used by the demo when ../shared/data/ml-100k is absent. Deterministic for a seed: users
belong to taste groups and mostly pick items of their group, so co-occurrence has something
to find.

    python -m jobs.sample OUT [--events 20000] [--users 300] [--items 400] [--seed 1]
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path


def generate(events: int, users: int, items: int, seed: int, groups: int = 8) -> list[tuple[int, int, int, int]]:
    rnd = random.Random(seed)
    per_group = max(1, items // groups)
    rows, ts = [], 880_000_000
    for _ in range(events):
        user = rnd.randrange(1, users + 1)
        group = user % groups if rnd.random() < 0.8 else rnd.randrange(groups)
        # Popular items first within a group: a power law over ranks.
        item = 1 + group * per_group + min(per_group - 1, int(rnd.paretovariate(1.2)) - 1)
        ts += rnd.randrange(1, 120)
        rows.append((user, min(item, items), rnd.randint(1, 5), ts))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--items", type=int, default=400)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rows = generate(args.events, args.users, args.items, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in rows))
    print(f"wrote {len(rows)} events to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
