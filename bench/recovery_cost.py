"""What a restart costs the model operator: snapshot cut, restore, and replaying the update log.

    python bench/recovery_cost.py [--data ../shared/data/ml-100k/u.data] [--trained 50000] [--log 20000]

No services: the ranker is trained in-process on the first ``--trained`` events of the log
(the job's ModelStep, one core), then timed for ``snapshot()`` (size too) and ``restore()``,
and for replaying 0..``--log`` logged updates (JSON-decoded, as read from Kafka) after the
restore. The baseline, measured in the same run, is learning the same events live (test,
learn, recommend: what the job does per event). After a failure the model replays at most
``--snapshot-every-events`` plus one checkpoint interval of updates, so this curve shows what
that setting costs at start-up. Prints one JSON line; writes bench/results/recovery_cost.{json,png}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jobs.replay import read_events  # noqa: E402
from operators.model.history import UserState  # noqa: E402
from operators.model.online import OnlineRanker  # noqa: E402
from operators.model.step import ModelStep  # noqa: E402
from operators.model.updates import ModelUpdate, replay  # noqa: E402
from operators.records import Event, SourcePosition  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "ml-100k" / "u.data"


def events_of(path: Path, limit: int) -> list[Event]:
    raw = [r for r in read_events(path, limit=limit) if isinstance(r, dict)]
    return [Event(r["event_id"], r["user_id"], r["item_id"], r["event_type"], r.get("value"), r["ts"],
                  SourcePosition(0, n)) for n, r in enumerate(raw)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--trained", type=int, default=50_000)
    parser.add_argument("--log", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "recovery_cost")
    args = parser.parse_args()
    if not args.data.is_file():
        print(f"bench: {args.data} not found; pass --data", file=sys.stderr)
        return 2
    events = events_of(args.data, args.trained + args.log)
    trained, logged = events[:args.trained], events[args.trained:]

    ranker = OnlineRanker()
    step = ModelStep(ranker, k=10, test_every_event=False, lineage="bench")
    users: dict[str, UserState] = {}
    print(f"training on {len(trained)} events...", file=sys.stderr)
    for e in trained:
        step.process(e, users.setdefault(e.user_id, UserState()), None, watermark=e.ts - 5_000)

    started = time.perf_counter()
    blob = ranker.snapshot()
    cut_s = time.perf_counter() - started

    print(f"learning {len(logged)} events live (the baseline)...", file=sys.stderr)
    records: list[str] = []
    started = time.perf_counter()
    for e in logged:
        result = step.process(e, users.setdefault(e.user_id, UserState()), None, watermark=e.ts - 5_000)
        if result.update is not None:
            records.append(result.update.to_json())
    live_rate = len(logged) / (time.perf_counter() - started)

    points = []
    for k in sorted({0, 1_000, 2_000, 5_000, 10_000, len(records)}):
        if k > len(records):
            continue
        started = time.perf_counter()
        restored = OnlineRanker.restore(blob)
        restore_s = time.perf_counter() - started
        applied = replay(restored, (ModelUpdate.from_json(r) for r in records[:k]), "bench")
        total_s = time.perf_counter() - started
        assert applied == k
        points.append({"updates": k, "restore_s": round(restore_s, 3), "restore_and_replay_s": round(total_s, 3)})
        print(f"  restore + {k:>6} updates: {total_s:.2f} s", file=sys.stderr)
    last = points[-1]
    replay_rate = (last["updates"] / (last["restore_and_replay_s"] - last["restore_s"])) if last["updates"] else 0.0
    summary = {"trained_events": len(trained), "items": len(ranker.item_ids), "snapshot_bytes": len(blob),
               "snapshot_cut_s": round(cut_s, 3), "live_events_per_sec": round(live_rate, 1),
               "replay_updates_per_sec": round(replay_rate, 1),
               "replay_over_live": round(replay_rate / live_rate, 2) if live_rate else None, "points": points}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    plot(points, live_rate, args.out.with_suffix(".png"))
    print(json.dumps(summary))
    return 0


def plot(points: list[dict[str, float]], live_rate: float, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [p["updates"] for p in points]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(xs, [p["restore_and_replay_s"] for p in points], "o-", label="restore snapshot + replay log")
    ax.plot(xs, [points[0]["restore_s"] + x / live_rate for x in xs], "--", label="restore + learn the same live")
    ax.set_xlabel("updates in the log after the snapshot")
    ax.set_ylabel("seconds (one core)")
    ax.set_title("Model operator start-up after a failure")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
