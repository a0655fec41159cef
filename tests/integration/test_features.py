"""The feature stage inside the real job: the model receives the hand-made stream's exact
features, in event-time order, and a late event goes to the dead-letter topic, not into a window."""

from __future__ import annotations

import pytest

from tests import feature_cases as case
from tests.integration.harness import Pipeline

pytestmark = pytest.mark.integration


def test_model_receives_exact_features_as_of_each_events_time(pipeline: Pipeline) -> None:
    c = case.CONFIG
    pipeline.extra_args = [
        "--emit-features", "1", "--max-out-of-orderness-ms", str(case.MAX_OUT_OF_ORDERNESS_MS),
        "--short-window-ms", str(c.short_window_ms), "--short-slide-ms", str(c.short_slide_ms),
        "--long-window-ms", str(c.long_window_ms), "--long-slide-ms", str(c.long_slide_ms),
        "--session-gap-ms", str(c.session_gap_ms), "--sequence-length", str(c.sequence_length),
        "--idle-state-ttl-ms", str(c.idle_state_ttl_ms)]
    on_topic = pipeline.send(case.payloads())
    pipeline.submit()
    recs = pipeline.read("output", len(case.ARRIVALS))

    assert [r["event_id"] for r in recs] == case.MODEL_ORDER     # one partition: the model's order
    wrong = [w for r in recs for w in case.check(r["event_id"], r["features"])]
    assert not wrong, "\n".join(wrong)
    assert [r["features"]["user_event_number"] for r in recs if r["user_id"] == "u1"] == [1, 2, 3, 4, 5]

    # Now the watermark is past the stream: an event from before it is late, in the DLQ.
    late = {**case.payloads()[0], "event_id": "late", "ts": case.T + 3 * case.M}
    pipeline.send([late], heartbeat=False)
    dead = pipeline.read("dlq", 1)
    assert [(d["reason"], d["source"]["offset"]) for d in dead] == [("late", on_topic)]
    assert len(pipeline.read("output", len(recs), settle=3)) == len(recs)    # and nothing else came out
