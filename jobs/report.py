"""An HTML report of the job's online metrics (README "Online evaluation in the job"):

    python -m jobs.report --metrics-topic recommendations-metrics [--bootstrap-servers H:P] --out report.html
    python -m jobs.report --input metrics.jsonl [--since EPOCH_MS] [--kind tumble] --out report.html

Reads the metrics topic (read_committed, from its beginning to its current end) or a JSON lines
file of the same records (``jobs.evaluate --metrics-out``), keeps the windows of one ``--kind``
(default ``tumble``) that start at or after ``--since``, and writes one self-contained page:
per variant over event time, recall@k, NDCG@k and MRR, diversity and novelty, the model's
event-time lag, online AUC, catalogue coverage and the job's latency (PNG plots embedded); per variant, the totals
with a 95 % Wilson interval of the hit rate; and each variant against the first (the control, by name order unless
``--control``) with a two-proportion z-test on the hit rate (sample sizes, difference, z, p);
the health guard's rollbacks (``"kind": "alert"`` records) in a table and as dashed lines on
the plots. Exit 2 with one line for an unreadable input or no windows to show.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import math
import sys
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from operators.model.evaluation import SUMS, ratios, two_proportion_z

PLOTS = [("Hit rate / recall@k, NDCG@k, MRR", ["recall_at_k", "ndcg_at_k", "mrr"], "rate"),
         ("Intra-list diversity", ["diversity"], "1 - mean pairwise similarity"),
         ("Novelty", ["novelty"], "bits"),
         ("Online AUC (the event's item against every other item, before learning)", ["auc"], "AUC"),
         ("Catalogue coverage (distinct items served / items known)", ["coverage"], "share"),
         ("Job latency (the event's Kafka timestamp to its list; mean and largest)", ["latency_ms", "latency_ms_max"],
          "seconds"),
         ("Model lag (event time ahead of the newest learned event)", ["model_lag_ms"], "seconds")]


@dataclass(frozen=True)
class Comparison:
    variant: str
    control: str
    n: int
    n_control: int
    rate: float
    rate_control: float
    z: float
    p_value: float


def wilson(hits: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion.

    >>> [round(x, 4) for x in wilson(20, 100)]
    [0.1334, 0.2888]
    """
    if n == 0:
        return 0.0, 1.0
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def totals(windows: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per variant: the windows' sums added up, with the rates made from them (coverage, a
    distinct count, does not add up over windows). A sum an older job did not write counts 0."""
    sums: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(SUMS, 0))
    for w in windows:
        for name in SUMS:
            sums[w["variant"]][name] += w.get(name, 0)
    return {v: {**s, **ratios(s)} for v, s in sorted(sums.items())}


def compare(by_variant: dict[str, dict[str, Any]], control: str) -> list[Comparison]:
    base = by_variant[control]
    out = []
    for variant, t in by_variant.items():
        if variant == control:
            continue
        z, p = two_proportion_z(int(t["hits"]), int(t["tested"]), int(base["hits"]), int(base["tested"])) or (0.0, 1.0)
        out.append(Comparison(variant, control, int(t["tested"]), int(base["tested"]), t["recall_at_k"] or 0.0,
                              base["recall_at_k"] or 0.0, z, p))
    return out


def _plot_png(windows: list[dict[str, Any]], title: str, fields: list[str], unit: str,
              alerts: Iterable[dict[str, Any]] = ()) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.6))
    for variant in sorted({w["variant"] for w in windows}):
        mine = sorted((w for w in windows if w["variant"] == variant), key=lambda w: w["window_start"])
        for field in fields:
            points = [(w["window_end"] / 1000, w[field]) for w in mine if w.get(field) is not None]
            if "_ms" in field:
                points = [(x, y / 1000) for x, y in points]
            if points:
                xs, ys = zip(*points, strict=True)
                ax.plot(_dates(xs), ys, marker=".", label=f"{variant}: {field}" if len(fields) > 1 else variant)
    for n, alert in enumerate(a for a in alerts if a.get("event_ts") is not None):
        ax.axvline(_dates([alert["event_ts"] / 1000])[0], color="red", linestyle="--", alpha=0.6,
                   label="guard rollback" if n == 0 else None)
    ax.set_title(title)
    ax.set_ylabel(unit)
    ax.set_xlabel("window end (event time, UTC)")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    elif not ax.lines:                          # a metric no window measured (e.g. latency offline)
        ax.text(0.5, 0.5, "not measured in these records", ha="center", va="center", transform=ax.transAxes)
    fig.autofmt_xdate()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _dates(seconds: Iterable[float]) -> list[Any]:
    from datetime import UTC, datetime

    return [datetime.fromtimestamp(s, UTC) for s in seconds]


def _when(ms: int | None) -> str:
    return "–" if ms is None else f"{_dates([ms / 1000])[0]:%Y-%m-%d %H:%M}"


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return f"{value:,}"


def render(windows: list[dict[str, Any]], control: str | None = None, source: str = "",
           alerts: Iterable[dict[str, Any]] = ()) -> str:
    """The report page for ``windows`` (metrics records of one kind) and the guard's ``alerts``."""
    alerts = sorted(alerts, key=lambda a: (a.get("event_ts") or 0, a.get("variant", "")))
    by_variant = totals(windows)
    control = control or next(iter(by_variant))
    if control not in by_variant:
        raise ValueError(f"control variant {control!r} not in the metrics ({', '.join(by_variant)})")
    rows = []
    for v, t in by_variant.items():
        lo, hi = wilson(int(t["hits"]), int(t["tested"]))
        rows.append(f"<tr><td>{html.escape(v)}</td><td>{_fmt(int(t['events']))}</td><td>{_fmt(int(t['tested']))}</td>"
                    f"<td>{_fmt(int(t['hits']))}</td><td>{_fmt(t['recall_at_k'])} [{lo:.4f}, {hi:.4f}]</td>"
                    f"<td>{_fmt(t['ndcg_at_k'])}</td><td>{_fmt(t['mrr'])}</td><td>{_fmt(t['diversity'])}</td>"
                    f"<td>{_fmt(t['novelty'], 2)}</td><td>{_fmt(t['auc'])}</td></tr>")
    tests = [f"<tr><td>{html.escape(c.variant)} vs {html.escape(c.control)}</td><td>{c.n:,} / {c.n_control:,}</td>"
             f"<td>{c.rate:.4f} vs {c.rate_control:.4f}</td><td>{c.rate - c.rate_control:+.4f}</td>"
             f"<td>{c.z:.3f}</td><td>{c.p_value:.4g}</td></tr>" for c in compare(by_variant, control)]
    ab = ("<table><tr><th>variants</th><th>tested</th><th>hit rate</th><th>difference</th><th>z</th>"
          "<th>p (two-sided)</th></tr>" + "".join(tests) + "</table>") if tests else \
        "<p>One variant: no comparison.</p>"
    plots = "".join(f'<h3>{html.escape(title)}</h3><img alt="{html.escape(title)}" '
                    f'src="data:image/png;base64,{_plot_png(windows, title, fields, unit, alerts)}">'
                    for title, fields, unit in PLOTS)
    guard = ("<table><tr><th>variant</th><th>event time (UTC)</th><th>at version</th><th>back to</th>"
             "<th>reason</th></tr>"
             + "".join(f"<tr><td>{html.escape(str(a.get('variant')))}</td><td>{_when(a.get('event_ts'))}</td>"
                       f"<td>{_fmt(a.get('version'))}</td><td>{_fmt(a.get('to_version'))}</td>"
                       f"<td>{html.escape(str(a.get('reason')))}</td></tr>" for a in alerts)
             + "</table>") if alerts else "<p>None.</p>"
    start = min(w["window_start"] for w in windows)
    end = max(w["window_end"] for w in windows)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>streamrec online metrics</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}} img{{max-width:100%}}</style></head>
<body><h1>Online metrics</h1>
<p>{html.escape(source)}: {len(windows):,} windows of kind {html.escape(windows[0]['kind'])}, event time
{_dates([start / 1000])[0]:%Y-%m-%d %H:%M} to {_dates([end / 1000])[0]:%Y-%m-%d %H:%M} UTC. Each event is tested
against the list its user was last served, before the model learns it.</p>
<h2>Per variant</h2>
<table><tr><th>variant</th><th>events</th><th>tested</th><th>hits</th><th>hit rate [95 % CI]</th><th>NDCG@k</th>
<th>MRR</th><th>diversity</th><th>novelty (bits)</th><th>AUC</th></tr>{"".join(rows)}</table>
<h2>A/B: two-proportion z-test on the hit rate, against {html.escape(control)}</h2>{ab}
<h2>Health guard: rollbacks</h2>{guard}
<h2>Over time</h2>{plots}
</body></html>
"""


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def read_topic(bootstrap: str, topic: str, timeout_s: float = 30.0) -> list[dict[str, Any]]:
    """Every committed record of ``topic``, from its beginning to its end as of now."""
    from confluent_kafka import TopicPartition

    from jobs.kafka_io import consumer

    c = consumer(bootstrap, topic, f"report-{uuid.uuid4().hex}", subscribe=False)
    try:
        meta = c.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if meta is None or meta.error is not None:
            raise OSError(f"topic {topic!r} not found at {bootstrap}")
        parts = [TopicPartition(topic, p, 0) for p in sorted(meta.partitions)]
        left = {p.partition: c.get_watermark_offsets(p, timeout=timeout_s)[1] for p in parts}
        c.assign(parts)
        out = []
        while any(n > 0 for n in left.values()):
            msg = c.poll(timeout_s)
            if msg is None:
                break          # read_committed: an open transaction's records count in the end offset
            if msg.error():
                continue
            left[msg.partition() or 0] = max(0, (left[msg.partition() or 0]) - 1)
            out.append(json.loads(msg.value() or b"null"))
        return out
    finally:
        c.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--metrics-topic")
    source.add_argument("--input", type=Path, help="JSON lines of metrics records")
    parser.add_argument("--bootstrap-servers", default="127.0.0.1:9092")
    parser.add_argument("--since", type=int, default=None, help="epoch ms: windows starting at or after it")
    parser.add_argument("--kind", default="tumble", help="which windows: tumble or sliding")
    parser.add_argument("--control", default=None, help="the variant the others are tested against")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        records = (read_jsonl(args.input) if args.input else read_topic(args.bootstrap_servers, args.metrics_topic))
    except (OSError, ValueError) as exc:
        print(f"report: cannot read the metrics: {exc}", file=sys.stderr)
        return 2
    windows = [r for r in records if isinstance(r, dict) and r.get("kind") == args.kind
               and (args.since is None or r.get("window_start", 0) >= args.since)]
    alerts = [r for r in records if isinstance(r, dict) and r.get("kind") == "alert"
              and (args.since is None or (r.get("event_ts") or 0) >= args.since)]
    if not windows:
        print(f"report: no {args.kind} windows to show", file=sys.stderr)
        return 2
    try:
        page = render(windows, args.control, str(args.input or args.metrics_topic), alerts)
    except (KeyError, TypeError, ValueError) as exc:
        print(f"report: not metrics records: {exc}", file=sys.stderr)
        return 2
    args.out.write_text(page)
    variants = sorted({w["variant"] for w in windows})
    print(json.dumps({"out": str(args.out), "windows": len(windows), "variants": variants}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
