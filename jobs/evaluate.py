"""Prequential (test-then-learn) evaluation of the online ranker on an interaction log.

    python -m jobs.evaluate --input PATH [--format auto|movielens-100k|movielens-csv|amazon-ratings|jsonl|parquet]
                            [--limit N] [--baselines] [--plot FILE.png] [--item-metadata PATH]
                            [--without window,session,history,last_item,proposed,popularity]
                            [--metrics-out FILE.jsonl [--metrics-window-ms MS] [--metrics-sliding-ms MS]
                             [--metrics-slide-ms MS] [--variants SPEC] [--variant-salt S]]

The log is replayed in timestamp order (ties in line order) through the job's own cleaning,
feature and model code without Flink (jobs/offline.py). For each event whose user has an
earlier one, the ranker is asked for the user's top-10 (excluding items the user already
interacted with) before it learns the event: a hit if the event's item is in it
(DESIGN.md §6). ``--baselines`` runs popularity and item-kNN on the same events in the same
run. Progress goes to stderr; the last line of stdout is a JSON summary with ``events``,
``evaluated``, ``recall_at_10``, ``ndcg_at_10`` and ``events_per_sec`` (the pipeline's own
time, baselines excluded), the model's memory per part (``model_bytes``) and its snapshot's
size, raw and as stored in Cassandra, with the seconds to write, encrypt and decrypt it
(``snapshot_bytes``). Exit 2 with one line for a bad argument or an unreadable input.
``--without`` hides groups of the learned ranker's features (ablation;
``ranker.FEATURE_GROUPS``): the README's feature ablation table comes from it.
``--metrics-out`` also replays the log the job's way (lists served; OfflinePipeline) and writes
the records the job's metrics topic gets for it (README "Online evaluation in the job").
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from jobs.config import JobConfig
from jobs.offline import OfflinePipeline
from jobs.replay import FORMATS, read_events
from operators.model.baselines import ItemKNN, Popularity
from operators.model.delta import compose, encode
from operators.model.evaluation import ab_tests, window_totals
from operators.model.metadata import load_titles
from operators.model.online import COMPONENTS, ModelState, OnlineConfig
from operators.model.ranker import FEATURE_GROUPS
from operators.model.snapshot_store import compress
from operators.model.variants import DEFAULT, Variant, parse_variants
from operators.security import SnapshotKey

K = 10


class Curve:
    """Hits and NDCG of one model, with the moving recall over the last ``window`` tests."""

    def __init__(self, window: int) -> None:
        self.tests = self.hits = 0
        self.ndcg = 0.0
        self.recent: deque[int] = deque(maxlen=window)
        self.points: list[tuple[int, float]] = []

    def add(self, rank: int, at: int) -> None:
        hit = rank >= 0
        self.tests += 1
        self.hits += hit
        self.ndcg += 1.0 / math.log2(rank + 2) if hit else 0.0
        self.recent.append(hit)
        if self.tests % 250 == 0:
            self.points.append((at, sum(self.recent) / len(self.recent)))

    def summary(self) -> dict[str, float]:
        n = max(self.tests, 1)
        return {"recall_at_10": round(self.hits / n, 4), "ndcg_at_10": round(self.ndcg / n, 4),
                "moving_recall_at_10": round(sum(self.recent) / max(len(self.recent), 1), 4), "tests": self.tests}


def evaluate(path: Path, fmt: str, limit: int | None, baselines: bool, window: int = 5_000,
             item_metadata: str | None = None, model: OnlineConfig | None = None,
             delta_events: int = 5_000) -> tuple[dict[str, Any], dict[str, Curve]]:
    """Prequential quality and cost of the model on the log at ``path``; the snapshot's size
    whole and as an incremental one over the last ``delta_events`` events (delta.py; the job
    cuts a snapshot every 5,000 learned events by default)."""
    events = read_events(path, fmt, limit)
    earlier: ModelState | None = None
    pipeline = OfflinePipeline(recommend=False, model=model or OnlineConfig())
    if item_metadata:
        pipeline.step.ranker.titles = load_titles(item_metadata)
    curves = {"fusion": Curve(window)}
    others: list[Popularity | ItemKNN] = [Popularity(), ItemKNN()] if baselines else []
    curves.update({b.name: Curve(window) for b in others})
    component_curves = {c: Curve(max(window // 4, 1)) for c in COMPONENTS}   # measured on every 4th test
    spent = 0.0
    for n, e in enumerate(tqdm(events, desc="evaluate", unit="ev", file=sys.stderr, mininterval=1.0)):
        payload = (json.dumps(e) if isinstance(e, dict) else e).encode("utf-8", "surrogateescape")
        start = time.perf_counter()
        released = pipeline.process(payload)
        if n == len(events) - 1:
            released += pipeline.flush()
        spent += time.perf_counter() - start
        if n == len(events) - 1 - delta_events:
            earlier = pipeline.step.ranker.cut()
        for m in released:
            if m.result.rank is not None:
                curves["fusion"].add(m.result.rank, curves["fusion"].tests)
                if m.result.hits is not None:
                    last = pipeline.step.ranker.fusion.component_hits_of(m.result.hits)
                    for name, hit in zip(COMPONENTS, last, strict=True):
                        component_curves[name].add(0 if hit else -1, curves["fusion"].tests)
            for b in others:
                rank = b.observe(m.event.user_id, m.event.item_id, K)
                if rank is not None:
                    curves[b.name].add(rank, curves["fusion"].tests)
                b.learn(m.event.user_id, m.event.item_id)
    fusion = curves["fusion"].summary()
    summary: dict[str, Any] = {
        "events": len(events), "evaluated": fusion["tests"], "recall_at_10": fusion["recall_at_10"],
        "ndcg_at_10": fusion["ndcg_at_10"], "moving_recall_at_10": fusion["moving_recall_at_10"],
        "events_per_sec": round(len(events) / spent) if spent else None,
        "rejected": pipeline.rejected, **pipeline.step.ranker.fusion_report(),
        # each component alone, on the tests the fusion measures: every 4th, and only those whose
        # item was known (a first-seen item is a miss for everyone), so higher than overall figures
        "components_on_measured_tests": {c: v.summary()["recall_at_10"] for c, v in component_curves.items()},
        "model_bytes": pipeline.step.ranker.memory(),
    }
    # what the snapshot writer thread does: serialise (or diff against the last full state and
    # serialise the delta) and compress; and what a start does first to read an incremental one
    started = time.perf_counter()
    state = pipeline.step.ranker.cut()
    blob = state.blob()
    stored = compress(blob)
    summary["snapshot_bytes"] = {"raw": len(blob), "stored": len(stored),
                                 "write_s": round(time.perf_counter() - started, 2)}
    # what --snapshot-key-file adds: AES-256-GCM over the stored bytes, on write and on read
    key = SnapshotKey(os.urandom(32))
    started = time.perf_counter()
    sealed = key.seal(stored, version=1)
    summary["snapshot_bytes"]["encrypt_s"] = round(time.perf_counter() - started, 4)
    started = time.perf_counter()
    key.open(sealed, 1, key.key_id)
    summary["snapshot_bytes"]["decrypt_s"] = round(time.perf_counter() - started, 4)
    if earlier is not None:
        started = time.perf_counter()
        delta = encode(earlier.values, state.values)
        stored = compress(delta)
        written = time.perf_counter() - started
        base = earlier.blob()
        started = time.perf_counter()
        compose(base, delta)
        summary["snapshot_bytes"]["incremental"] = {"events": delta_events, "raw": len(delta), "stored": len(stored),
                                                    "write_s": round(written, 2),
                                                    "compose_s": round(time.perf_counter() - started, 2)}
    if others:
        summary["baselines"] = {b.name: curves[b.name].summary() for b in others}
    curves.update({f"component: {c} (measured tests)": v for c, v in component_curves.items()})
    return summary, curves


def online_metrics(events: Sequence[dict[str, Any] | str], windows: Sequence[tuple[str, int, int]],
                   model: OnlineConfig | None = None, variants: Sequence[Variant] = (Variant(DEFAULT, 1.0),),
                   variant_salt: str = "") -> list[dict[str, Any]]:
    """The job's metrics topic, offline: ``events`` through the job's path (lists served, the
    fusion's tests only, OfflinePipeline), each output's evaluation summed per event-time
    window (evaluation.window_totals) as the job's SQL does, and with several variants the A/B
    records (evaluation.ab_tests). Only windows the job would have closed: those the last
    event's time is past (the watermark a heartbeat puts there)."""
    pipeline = OfflinePipeline(recommend=True, test_every_event=False, model=model or OnlineConfig(),
                               variants=tuple(variants), variant_salt=variant_salt)
    rows: list[tuple[str, int, dict[str, Any], list[str]]] = []
    for n, e in enumerate(tqdm(events, desc="online metrics", unit="ev", file=sys.stderr, mininterval=1.0)):
        payload = (json.dumps(e) if isinstance(e, dict) else e).encode("utf-8", "surrogateescape")
        released = pipeline.process(payload) + (pipeline.flush() if n == len(events) - 1 else [])
        rows += [(m.variant, m.event.ts, m.result.evaluation.as_dict(), [r.item_id for r in m.result.recommendations])
                 for m in released if m.result.evaluation is not None]
    closed_by = max((ts for _, ts, _, _ in rows), default=None)
    out = [w for kind, size, slide in windows for w in window_totals(rows, size, slide, kind, closed_by)]
    if len(variants) > 1:       # the job's A/B records: each variant against the first
        out += ab_tests(out, [v.name for v in variants])
    return out


def plot(curves: dict[str, Curve], out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5))
    for name, curve in curves.items():
        if curve.points:
            xs, ys = zip(*curve.points, strict=True)
            ax.plot(xs, ys, label=name, linewidth=2.2 if name == "fusion" else 1.0,
                    linestyle=":" if name.startswith("component") else "-")
    ax.set_xlabel("evaluated events (test-then-learn, in time order)")
    ax.set_ylabel("recall@10, moving window")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", type=Path, required=True)
    parser.add_argument("--format", default="auto", choices=FORMATS, help="auto: by name (u.data, .csv, .parquet)")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--baselines", action="store_true")
    parser.add_argument("--plot", type=Path, default=None)
    parser.add_argument("--item-metadata", default=None, help="titles for reasons: u.item, movies.csv, JSON lines")
    parser.add_argument("--window", type=int, default=5_000, help="moving-window length, in evaluated events")
    parser.add_argument("--metrics-out", type=Path, default=None,
                        help="also write the job's metrics-topic records for this log (JSON lines): lists served, "
                             "windows as --metrics-window-ms, --metrics-sliding-ms, --metrics-slide-ms")
    for flag in ("window", "sliding", "slide"):
        name = f"metrics_{flag}_ms"
        parser.add_argument(f"--metrics-{flag}-ms", type=int, dest=name, default=getattr(JobConfig, name))
    parser.add_argument("--variants", default="", help="A/B variants as the job's --variants (for --metrics-out)")
    parser.add_argument("--variant-salt", default="", help="as the job's --variant-salt (for --metrics-out)")
    parser.add_argument("--without", default="", metavar="GROUPS",
                        help=f"ablation: feature groups the learned ranker does not see, comma-separated "
                             f"({', '.join(FEATURE_GROUPS)})")
    args = parser.parse_args(argv)
    without = tuple(g for g in args.without.split(",") if g)
    if set(without) - set(FEATURE_GROUPS):
        print(f"evaluate: unknown --without groups {sorted(set(without) - set(FEATURE_GROUPS))}", file=sys.stderr)
        return 2
    if not args.input.is_file():
        print(f"evaluate: cannot read {args.input}", file=sys.stderr)
        return 2
    if args.limit is not None and args.limit <= 0:
        print("evaluate: --limit must be positive", file=sys.stderr)
        return 2
    try:
        summary, curves = evaluate(args.input, args.format, args.limit, args.baselines, args.window,
                                   args.item_metadata, OnlineConfig(ranker_without=without))
        summary["ranker_without"] = list(without)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        print(f"evaluate: cannot read {args.input}: {exc}", file=sys.stderr)
        return 2
    if args.metrics_out:
        try:
            windows = JobConfig(metrics_window_ms=args.metrics_window_ms, metrics_sliding_ms=args.metrics_sliding_ms,
                                metrics_slide_ms=args.metrics_slide_ms).metrics_windows()
            variants = parse_variants(args.variants)
        except (ValueError, OSError) as exc:
            print(f"evaluate: {exc}", file=sys.stderr)
            return 2
        records = online_metrics(read_events(args.input, args.format, args.limit), windows,
                                 model=OnlineConfig(ranker_without=without), variants=variants,
                                 variant_salt=args.variant_salt)
        args.metrics_out.write_text("".join(json.dumps(r) + "\n" for r in records))
    if args.plot:
        plot(curves, args.plot, f"{args.input.name}: prequential recall@10 (window {args.window:,})")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
