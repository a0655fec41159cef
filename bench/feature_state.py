"""Does state stop growing when the set of active users is constant? (issue: bounded state)

    python bench/feature_state.py [--seconds 180] [--rate 300] [--offline-events 200000]

Two measurements of the same workload: a constant population of ``--active`` users, a few of
whom leave every second for good and are replaced by new ones, so the number of distinct users
grows without end while the number of active ones stays flat.

1. offline: the feature builder's state (slides held) over a long stream, with event-time
   pruning and, for comparison in the same run, without it;
2. job: ``--stages features`` (cleaning + the feature SQL) on the local cluster, fed live
   (event time = wall clock) with short windows, run twice: with a 60 s idle-state TTL and,
   as the baseline in the same run, with a 1-day TTL (nothing expires). The size of each
   completed checkpoint is read from the REST API.

Prints one JSON line; writes bench/results/feature_state.{json,png}. Part 2 needs the local
services (skipped with --offline-only).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from operators.features import FeatureConfig, WindowFeatureBuilder  # noqa: E402
from operators.records import Event  # noqa: E402


class Population:
    """``active`` users at any time; every ``turnover_every`` events one of them leaves for good."""

    def __init__(self, active: int, turnover_every: int, seed: int = 1) -> None:
        self.rnd = random.Random(seed)
        self.users = [f"u{n}" for n in range(active)]
        self.next_id, self.turnover_every, self.n = active, turnover_every, 0

    def draw(self) -> str:
        self.n += 1
        if self.n % self.turnover_every == 0:
            self.users[self.rnd.randrange(len(self.users))] = f"u{self.next_id}"
            self.next_id += 1
        return self.rnd.choice(self.users)


def offline(events: int, active: int) -> dict[str, list[int]]:
    from tqdm import tqdm

    curves: dict[str, list[int]] = {"pruned": [], "not_pruned": [], "distinct_users": []}
    builders = {"pruned": WindowFeatureBuilder(FeatureConfig()), "not_pruned": WindowFeatureBuilder(FeatureConfig())}
    people, rnd = Population(active, 20), random.Random(2)
    for n in tqdm(range(events), desc="offline", unit="ev", file=sys.stderr, mininterval=1.0):
        ts = 1_700_000_000_000 + n * 5_000          # one event every 5 s of event time
        e = Event(f"e{n}", people.draw(), f"i{rnd.randrange(1000)}", "view", None, ts)
        for b in builders.values():
            b.add(e)
        builders["pruned"].prune(ts - 5_000)
        if n % (events // 50) == 0:
            for name, b in builders.items():
                curves[name].append(b.state_size())
            curves["distinct_users"].append(people.next_id)
    return curves


def job(seconds: float, rate: float, active: int, turnover_per_s: float, ttl_ms: int) -> dict[str, list[float]]:
    from jobs.kafka_io import producer
    from tests.integration.harness import BOOTSTRAP, Pipeline, drop_keyspace, rest

    args = ["--stages", "features", "--checkpoint-interval-ms", "5000",
            "--short-window-ms", "10000", "--short-slide-ms", "2000", "--long-window-ms", "60000",
            "--long-slide-ms", "10000", "--idle-state-ttl-ms", str(ttl_ms), "--dedupe-ttl-ms", str(ttl_ms),
            "--rate-window-ms", "10000"]
    p = Pipeline(extra_args=args, entry="bench/stages_job.py")
    p.create_topics()
    curve: dict[str, list[float]] = {"t": [], "checkpoint_bytes": [], "distinct_users": []}
    people, rnd = Population(active, max(1, int(rate / turnover_per_s))), random.Random(3)
    stop = threading.Event()

    def produce() -> None:
        prod, n, start = producer(BOOTSTRAP), 0, time.monotonic()
        while not stop.is_set():
            now = int(time.time() * 1000)
            user = people.draw()
            prod.produce(p.topics["input"], key=user.encode(), value=json.dumps({
                "event_id": f"e{n}", "user_id": user, "item_id": f"i{rnd.randrange(500)}", "event_type": "view",
                "value": None, "ts": now}).encode())
            n += 1
            prod.poll(0)
            ahead = n / rate - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)
        prod.flush(30)

    try:
        job_id = p.submit()
        producer_thread = threading.Thread(target=produce, daemon=True)
        producer_thread.start()
        start, last_id = time.monotonic(), None
        while time.monotonic() - start < seconds:
            latest = (rest(f"/jobs/{job_id}/checkpoints").get("latest") or {}).get("completed") or {}
            if latest and latest.get("id") != last_id:
                last_id = latest["id"]
                curve["t"].append(round(time.monotonic() - start, 1))
                curve["checkpoint_bytes"].append(latest.get("state_size") or latest.get("checkpointed_size") or 0)
                curve["distinct_users"].append(people.next_id)
                print(f"job ttl={ttl_ms // 1000}s t={curve['t'][-1]:>6}s  "
                      f"checkpoint {curve['checkpoint_bytes'][-1]:>9,} B  distinct users {people.next_id}",
                      file=sys.stderr)
            time.sleep(1)
        stop.set()
        producer_thread.join(30)
    finally:
        stop.set()
        p.cancel_all()
        drop_keyspace(p.name)
    return curve


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--rate", type=float, default=300)
    parser.add_argument("--active", type=int, default=100)
    parser.add_argument("--turnover", type=float, default=5.0, help="users replaced per second (job)")
    parser.add_argument("--offline-events", type=int, default=200_000)
    parser.add_argument("--offline-only", action="store_true")
    args = parser.parse_args()
    result: dict[str, object] = {"offline": offline(args.offline_events, args.active)}
    runs = {} if args.offline_only else {
        f"ttl {ttl // 1000} s": job(args.seconds, args.rate, args.active, args.turnover, ttl)
        for ttl in (60_000, 86_400_000)}
    if runs:
        result["job"] = runs
    summary: dict[str, object] = {"offline_state_end": {k: v[-1] for k, v in result["offline"].items()}}  # type: ignore[attr-defined]
    for label, curve in runs.items():
        sizes = curve["checkpoint_bytes"]
        half = len(sizes) // 2
        summary[f"job {label}"] = {"checkpoint_bytes_second_half": [min(sizes[half:]), max(sizes[half:])],
                                   "checkpoint_bytes_last": sizes[-1], "distinct_users": curve["distinct_users"][-1]}
    print(json.dumps(summary))
    out = ROOT / "bench" / "results" / "feature_state"
    out.with_suffix(".json").write_text(json.dumps({**summary, "curves": result}, indent=1) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = 2 if "job" in result else 1
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 3.8), squeeze=False)
    off = result["offline"]
    ax = axes[0][0]
    x = [n * args.offline_events // 50 for n in range(len(off["pruned"]))]   # type: ignore[index]
    ax.plot(x, off["pruned"], label="with event-time pruning")  # type: ignore[index]
    ax.plot(x, off["not_pruned"], label="without (same run)", linestyle="--")  # type: ignore[index]
    ax.set_xlabel("events (5 s of event time each)")
    ax.set_ylabel("slides held")
    ax.set_title(f"Offline feature state, {args.active} active users")
    ax2 = ax.twinx()
    ax2.plot(x, off["distinct_users"], color="grey", linewidth=0.8)  # type: ignore[index]
    ax2.set_ylabel("distinct users so far (grey)")
    ax.legend(loc="upper left")
    if runs:
        ax = axes[0][1]
        for label, curve in runs.items():
            ax.plot(curve["t"], [b / 1024 for b in curve["checkpoint_bytes"]], marker=".", label=label)
        ax.set_xlabel("seconds since submission")
        ax.set_ylabel("checkpoint size (KiB)")
        ax.set_title(f"Job (clean + feature SQL), {args.rate:.0f} ev/s, {args.turnover:g} new users/s")
        ax.legend(loc="upper left")
        curve = next(iter(runs.values()))
        ax2 = ax.twinx()
        ax2.plot(curve["t"], curve["distinct_users"], color="grey", linewidth=0.8)
        ax2.set_ylabel("distinct users so far (grey)")
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"), dpi=100)
    return 0


if __name__ == "__main__":
    sys.exit(main())
