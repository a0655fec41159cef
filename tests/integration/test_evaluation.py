"""Online evaluation inside the real job: the metrics topic equals jobs.evaluate's offline
replay of the same events, window for window, and the Prometheus counters agree with it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from jobs import report
from jobs.evaluate import online_metrics
from operators.model.metrics_sql import SINK_COLUMNS
from operators.model.online import OnlineConfig
from tests.integration.harness import BOOTSTRAP, Pipeline, prometheus, stream

pytestmark = pytest.mark.integration

HOUR = 3_600_000
WINDOWS = [("tumble", HOUR, HOUR), ("sliding", 6 * HOUR, HOUR)]
COUNTS = {"events", "tested", "hits", "lists", "lagged", "model_lag_ms_sum", "window_start", "window_end"}


def _keyed(windows: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
    return {(w["kind"], w["window_start"]): w for w in windows}


def test_metrics_topic_equals_the_offline_replay(pipeline: Pipeline, tmp_path: Path) -> None:
    events = stream(1500)          # strictly increasing times: the model's order is fixed (~25 h of events)
    pipeline.extra_args = ["--metrics-window-ms", str(HOUR), "--metrics-sliding-ms", str(6 * HOUR),
                           "--metrics-slide-ms", str(HOUR)]
    expected = _keyed(online_metrics(events, WINDOWS, model=OnlineConfig(learn_every=pipeline.learn_every)))
    pipeline.send(events)
    pipeline.submit()
    recs = pipeline.read("output", len(events))
    got = _keyed(pipeline.read("metrics", len(expected), settle=5))

    assert sorted(got) == sorted(expected)          # every closed window, once (exactly-once sink)
    for key, want in expected.items():
        have = got[key]
        assert set(have) == {name for name, _ in SINK_COLUMNS}
        for name, value in want.items():
            if name in COUNTS or value is None or isinstance(value, str):
                assert have[name] == value, (key, name)
            else:
                assert have[name] == pytest.approx(value, rel=1e-9, abs=1e-12), (key, name)
    tumbling = [w for w in got.values() if w["kind"] == "tumble"]
    tested = sum(w["tested"] for w in tumbling)
    assert tested > 500 and 0 < sum(w["hits"] for w in tumbling) < tested    # a real measurement
    # every record carries its test; the windows closed so far hold all but the last hour's
    assert sum(r["evaluation"]["tested"] for r in recs) >= tested
    assert sum(w["events"] for w in tumbling) == sum(1 for r in recs if r["event_ts"] < max(
        w["window_end"] for w in tumbling))

    # The same tests as Flink counters, over Prometheus: their ratio is the job's hit rate.
    deadline = time.monotonic() + 30
    counted = [float(sum(r["evaluation"][f] for r in recs)) for f in ("tested", "hit")]
    while time.monotonic() < deadline:
        scraped = [sum(v for _, _, v in prometheus(f"flink_taskmanager_job_task_operator_model_online_{name}",
                                                   job_name=pipeline.name)) for name in ("tested", "hits")]
        if scraped == counted:
            break
        time.sleep(1)
    assert scraped == counted

    # The report reads the same topic: every tumbling window, one variant.
    out = tmp_path / "report.html"
    assert report.main(["--metrics-topic", pipeline.topics["metrics"], "--bootstrap-servers", BOOTSTRAP,
                        "--out", str(out)]) == 0
    assert out.read_text().count("data:image/png;base64,") == len(report.PLOTS)
    assert f"{len(tumbling):,} windows of kind tumble" in out.read_text()
