"""Online evaluation inside the real job, with two A/B variants: every output names its
user's variant, each variant is its own model with its own snapshots, the metrics topic equals
jobs.evaluate's offline replay of the same events window for window and variant for variant,
and the Prometheus counters, per variant, agree with it."""

from __future__ import annotations

import html
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from jobs import models, report
from jobs.evaluate import online_metrics
from operators.model.metrics_sql import AB_COLUMNS, SINK_COLUMNS
from operators.model.online import OnlineConfig
from operators.model.variants import assign, parse_variants
from tests.integration.harness import (
    BOOTSTRAP,
    CASSANDRA_PORT,
    REPO,
    Pipeline,
    dashboard_metrics,
    prometheus,
    snapshot_store,
    stream,
)

pytestmark = pytest.mark.integration

HOUR = 3_600_000
WINDOWS = [("tumble", HOUR, HOUR), ("sliding", 6 * HOUR, HOUR)]
VARIANTS = 'control=0.5,treatment=0.5:{"mmr_lambda": 0.7, "ranker_rate": 0.05}'
COUNTS = {"events", "tested", "hits", "control_tested", "control_hits", "lists", "lagged", "model_lag_ms_sum",
          "ranked", "items_served", "catalogue", "window_start", "window_end"}
LATENCY = {"timed", "latency_ms_sum", "latency_ms", "latency_ms_max"}    # wall clock: the job's own, not replayed


def _keyed(windows: list[dict[str, Any]]) -> dict[tuple[str, str, str, int], dict[str, Any]]:
    """Windows and A/B records by (variant, kind, window kind of an A/B record, start)."""
    return {(w["variant"], w["kind"], w.get("window", ""), w["window_start"]): w for w in windows}


def test_metrics_topic_equals_the_offline_replay(pipeline: Pipeline, tmp_path: Path) -> None:
    events = stream(1500)          # strictly increasing times: the model's order is fixed (~25 h of events)
    pipeline.extra_args = ["--metrics-window-ms", str(HOUR), "--metrics-sliding-ms", str(6 * HOUR),
                           "--metrics-slide-ms", str(HOUR), "--variants", VARIANTS]
    variants = parse_variants(VARIANTS)
    expected = _keyed(online_metrics(events, WINDOWS, model=OnlineConfig(learn_every=pipeline.learn_every),
                                     variants=variants))
    pipeline.send(events)
    pipeline.submit()
    recs = pipeline.read("output", len(events))
    got = _keyed(pipeline.read("metrics", len(expected), settle=5))

    assert sorted(got) == sorted(expected)          # every closed window, once (exactly-once sink)
    assert {kind for _, kind, _, _ in expected} == {"tumble", "sliding", "ab"}     # the z-tests per window too
    for key, want in expected.items():
        have = got[key]
        assert set(have) == {name for name, _ in (AB_COLUMNS if key[1] == "ab" else SINK_COLUMNS)}
        for name, value in want.items():
            if name in LATENCY:
                continue
            if name in COUNTS or value is None or isinstance(value, str):
                assert have[name] == value, (key, name)
            else:      # the SQL's p-value comes from an erfc to 1.5e-7
                assert have[name] == pytest.approx(value, rel=1e-9, abs=2e-7 if name == "p_value" else 1e-12), \
                    (key, name)
    tumbling = [w for w in got.values() if w["kind"] == "tumble"]
    tested = sum(w["tested"] for w in tumbling)
    assert tested > 500 and 0 < sum(w["hits"] for w in tumbling) < tested    # a real measurement
    # AUC on the fusion's sample: one in fusion_every (4) of the tests, of those whose item the model knows
    ranked = sum(w["ranked"] for w in tumbling)
    assert 50 < ranked < tested // 4 and 0.5 < sum(w["auc_sum"] for w in tumbling) / ranked < 1
    assert all(0 < w["coverage"] < 1 and w["items_served"] >= 10 for w in tumbling if w["lists"] > 20)
    # every output's latency, from its event's Kafka timestamp to its list, within the run's time
    assert all(w["timed"] == w["events"] and 0 < w["latency_ms"] <= w["latency_ms_max"] < 600_000 for w in tumbling)
    assert all(r["evaluation"]["timed"] and 0 < r["evaluation"]["latency_ms"] == r["emitted_ts"] - r["ingest_ts"]
               for r in recs)
    # every record carries its test; the windows closed so far hold all but the last hour's
    assert sum(r["evaluation"]["tested"] for r in recs) >= tested
    assert sum(w["events"] for w in tumbling) == sum(1 for r in recs if r["event_ts"] < max(
        w["window_end"] for w in tumbling))

    # Each output names its user's variant, and comes from that variant's own model: a
    # model's version never passes the number of its own users' events.
    mine = {v.name: sum(assign(e["user_id"], variants).name == v.name for e in events) for v in variants}
    assert all(r["variant"] == assign(r["user_id"], variants).name for r in recs)
    assert {r["variant"] for r in recs} == set(mine) and min(mine.values()) > 500
    for name, n in mine.items():
        versions = [r["model_version"] for r in recs if r["variant"] == name]
        assert n // 2 < max(versions) <= n, (name, max(versions), n)
        store = snapshot_store(pipeline.name, model=f"default.{name}")
        assert store.list(limit=1), f"no snapshot of variant {name}"
    assert snapshot_store(pipeline.name).list(limit=1) == [], "a model outside the variants"

    # The same tests as Flink counters per variant, over Prometheus: their ratio is each
    # variant's hit rate.
    deadline = time.monotonic() + 30
    counted = {(v, f): float(sum(r["evaluation"][f] for r in recs if r["variant"] == v))
               for v in mine for f in ("tested", "hit")}
    while time.monotonic() < deadline:
        scraped = {(v, f): sum(value for _, _, value in prometheus(
                       f"flink_taskmanager_job_task_operator_model_variant_online_{name}",
                       job_name=pipeline.name, variant=v))
                   for v in mine for f, name in (("tested", "tested"), ("hit", "hits"))}
        if scraped == counted:
            break
        time.sleep(1)
    assert scraped == counted
    # The dashboard's per-variant panels chart what this job exports.
    exported = {name for name, _, _ in prometheus(job_name=pipeline.name)}
    charted = {m for m in dashboard_metrics(REPO / "deploy" / "grafana" / "streamrec.json") if "_model_variant_" in m}
    assert charted and not charted - exported, sorted(charted - exported)

    # The report reads the same topic: every tumbling window of both variants, and the
    # treatment's z-test against the control on the topic's counts.
    out = tmp_path / "report.html"
    assert report.main(["--metrics-topic", pipeline.topics["metrics"], "--bootstrap-servers", BOOTSTRAP,
                        "--control", "control", "--out", str(out)]) == 0
    page = out.read_text()
    assert page.count("data:image/png;base64,") == len(report.PLOTS)
    assert f"{len(tumbling):,} windows of kind tumble" in page
    (test,) = report.compare(report.totals(tumbling), "control")
    assert test.n + test.n_control == tested
    assert f"<td>treatment vs control</td><td>{test.n:,} / {test.n_control:,}</td>" in page
    assert f"<td>{test.z:.3f}</td><td>{test.p_value:.4g}</td>" in page


def test_the_guard_rolls_back_a_variant_gone_bad_and_leaves_the_other_alone(
        new_pipeline: Callable[..., Pipeline], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A treatment whose embedding step overflows (learning rate 1e38: NaN within one learning
    batch) beside a sound control, at parallelism 2 (shared replicas): the guard rolls the
    treatment back at its checks, every output still comes once, the alerts reach the metrics
    topic once each, the treatment's snapshots list the rollbacks, and the control has none."""
    events = stream(1500, seed=21)
    p = new_pipeline(snapshot_every=200, partitions=2)
    p.extra_args = ["--variants", 'control=0.5,treatment=0.5:{"learning_rate": 1e38}', "--metrics-window-ms",
                    str(HOUR), "--metrics-sliding-ms", "0", "--metrics-slide-ms", "0"]
    variants = parse_variants('control=0.5,treatment=0.5')
    p.send(events)
    p.submit(parallelism=2)
    recs = p.read("output", len(events), timeout=600)
    assert sorted(r["event_id"] for r in recs) == sorted(e["event_id"] for e in events)     # all served, once
    assert all(r["variant"] == assign(r["user_id"], variants).name for r in recs)
    treated = sum(r["variant"] == "treatment" for r in recs)

    records = p.read("metrics", 1, settle=10)
    alerts = [r for r in records if r.get("kind") == "alert"]
    assert alerts and {a["variant"] for a in alerts} == {"treatment"}
    keys = [(a["lineage"], a["version"]) for a in alerts]
    assert len(set(keys)) == len(keys), "an alert twice"
    assert all(a["version"] % 200 == 0 and a["to_version"] < a["version"] for a in alerts)
    assert all(a["reason"].startswith("non-finite parameters in ") for a in alerts)
    # one check every 200 of the treatment's events, and each one after its first batch is bad
    assert len(alerts) >= treated // 200 - 2
    # A step of 1e38 x the gradient overflows float32 within two learning batches; the first
    # check after the last good one (200 versions before) rolls back to it.
    first = min(alerts, key=lambda a: a["version"])
    assert first["version"] - first["to_version"] == 200 and first["version"] <= 2 * p.learn_every + 200
    # The treatment is bad from its first event; the replicas learn once the log commits.
    started = min(r["emitted_ts"] for r in recs)
    with capsys.disabled():
        print(f"\nguard: last good check at treatment version {first['to_version']}, rolled back at "
              f"{first['version']}, alert {(first['emitted_ts'] - started) / 1000:.1f} s after the job's first output")

    def listed(variant: str) -> list[dict[str, Any]]:        # python -m jobs.models --variant V list
        capsys.readouterr()
        assert models.main(["--cassandra-port", str(CASSANDRA_PORT), "--keyspace", p.name, "--variant", variant,
                            "list", "--limit", "100"]) == 0
        return [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    newest = listed("treatment")[0]
    assert [(r["version"], r["reason"]) for r in newest["rollbacks"]] == \
           [(a["version"], a["reason"]) for a in sorted(alerts, key=lambda a: a["version"])
            if a["version"] <= newest["learned_events"]]
    control = listed("control")
    assert control and all(row["rollbacks"] == [] for row in control)

    out = tmp_path / "report.html"
    assert report.main(["--metrics-topic", p.topics["metrics"], "--bootstrap-servers", BOOTSTRAP,
                        "--out", str(out)]) == 0
    page = out.read_text()
    assert page.count("<td>treatment</td>") >= len(alerts)       # one guard-table row each (and the totals')
    assert all(html.escape(a["reason"]) in page for a in alerts)
