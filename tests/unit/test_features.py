"""The feature stage's pure logic: exact values on a hand-made stream, as-of-time semantics
against a brute-force definition, and bounded state."""

from __future__ import annotations

import json
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.offline import OfflinePipeline
from operators.cleaning import GuardConfig
from operators.features import FeatureConfig, WindowFeatureBuilder
from operators.features.spec import COUNT_KINDS, ENTITIES, WINDOWS
from operators.records import Event
from tests import feature_cases as case


def offline_features() -> tuple[list[str], dict[str, dict[str, object]]]:
    pipeline = OfflinePipeline(features=case.CONFIG,
                               guard=GuardConfig(max_out_of_orderness_ms=case.MAX_OUT_OF_ORDERNESS_MS))
    out = pipeline.run([json.dumps(p).encode() for p in case.payloads()])
    return ([m.event.event_id for m in out],
            {m.event.event_id: {**m.window.as_dict(), **m.result.session.as_dict()} for m in out})


def test_hand_made_stream_gives_the_expected_features_in_event_time_order() -> None:
    order, features = offline_features()
    assert order == case.MODEL_ORDER
    wrong = [w for eid in case.EXPECTED for w in case.check(eid, features[eid])]
    assert not wrong, "\n".join(wrong)


def brute_force(stream: list[Event], event: Event, config: FeatureConfig) -> dict[str, int]:
    """The definition, computed from the whole stream: only events before the window end count."""
    out = {}
    for entity in ENTITIES:
        key = event.item_id if entity == "item" else event.user_id
        for window in WINDOWS:
            size, slide = config.window(window)
            end = FeatureConfig.window_end(event.ts, slide)
            inside = [e for e in stream if end - size <= e.ts < end
                      and (e.item_id if entity == "item" else e.user_id) == key]
            for kind in COUNT_KINDS:
                out[f"{entity}_{kind}_{window}"] = sum(kind in ("all", e.event_type) for e in inside)
    size, slide = config.window("short")
    end = FeatureConfig.window_end(event.ts, slide)
    out["active_items"] = len({e.item_id for e in stream if end - size <= e.ts < end})
    return out


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 4), st.sampled_from(["view", "click", "rating"]),
                          st.integers(0, 3 * 3_600_000)), min_size=1, max_size=60),
       st.randoms(use_true_random=False))
def test_features_never_count_a_later_event_and_ignore_arrival_order(
        rows: list[tuple[int, int, str, int]], rnd: random.Random) -> None:
    config = FeatureConfig(short_window_ms=600_000, short_slide_ms=60_000, long_window_ms=3_600_000,
                           long_slide_ms=300_000, idle_state_ttl_ms=3_600_000)
    stream = [Event(f"e{n}", f"u{u}", f"i{i}", t, None, ts) for n, (u, i, t, ts) in enumerate(rows)]
    builder = WindowFeatureBuilder(config)
    for e in rnd.sample(stream, len(stream)):          # any arrival order
        builder.add(e)
    for e in stream:
        got = builder.features(e).as_dict()
        assert {k: got[k] for k in brute_force(stream, e, config)} == brute_force(stream, e, config)
        # the definition itself: nothing later than the event is counted
        later = [x for x in stream if x.ts > e.ts]
        assert brute_force([x for x in stream if x not in later], e, config) == brute_force(stream, e, config)


def test_window_state_stops_growing_when_the_active_population_is_constant() -> None:
    config = FeatureConfig()
    builder = WindowFeatureBuilder(config)
    rnd = random.Random(7)
    sizes = []
    for n in range(60_000):                  # 100 users active at a time; each leaves after ~1000 events
        ts = 1_700_000_000_000 + n * 10_000  # one event every 10 s: ~7 days of event time
        user = f"u{n // 1000}-{rnd.randrange(100)}"
        e = Event(f"e{n}", user, f"i{rnd.randrange(500)}", "view", None, ts)
        builder.add(e)
        builder.prune(ts - 5_000)
        if n % 5_000 == 4_999:
            sizes.append(builder.state_size())
    # after the first day (long window) has passed, the state size is flat
    settled = sizes[3:]
    assert max(settled) <= 1.2 * min(settled), sizes


def test_sessions_split_on_the_gap_and_the_sequence_is_capped() -> None:
    from operators.features import UserActivity

    a = UserActivity()
    out = [a.observe(f"i{n}", "view", ts, gap_ms=100, max_recent=2) for n, ts in enumerate([0, 50, 150, 251, 300])]
    assert [f.session_index for f in out] == [0, 0, 0, 1, 1]
    assert [f.session_events for f in out] == [1, 2, 3, 1, 2]
    assert [f.gap_ms for f in out] == [None, 50, 100, 101, 49]
    assert [r[0] for r in out[-1].recent_items] == ["i2", "i3"]


def test_a_heartbeat_releases_the_events_waiting_for_the_watermark() -> None:
    pipeline = OfflinePipeline(guard=GuardConfig(max_out_of_orderness_ms=1_000))
    line = '{{"event_id":"{}","user_id":"u","item_id":"i","event_type":"view","ts":{}}}'
    t = 1_700_000_000_000
    assert pipeline.process(line.format("a", t).encode(), now_ms=t) == []          # waits for the watermark
    assert pipeline.process(line.format("b", t + 500).encode(), now_ms=t) == []
    released = pipeline.process(b'{"heartbeat_ts": %d}' % (t + 1_501), now_ms=t + 2_000)
    assert [m.event.event_id for m in released] == ["a", "b"]
    assert pipeline.cleaning.counts()["heartbeats"] == 1
    late = pipeline.process(line.format("c", t + 400).encode(), now_ms=t + 2_000)
    assert late == [] and pipeline.rejected == {"late": 1}
